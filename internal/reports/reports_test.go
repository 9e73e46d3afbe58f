package reports_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/costs"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/leads"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/reports"
	"github.com/throughline/throughline/internal/rollup"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// now is long after the scenario's March: March is a finished month, so a
// report over it reads the month's rollup.
var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func at(day, hour int) time.Time { return time.Date(2026, 3, day, hour, 0, 0, 0, time.UTC) }

type scenario struct {
	t  *testing.T
	db *store.DB
	c  counter.Counter
}

func (s *scenario) exec(q string, args ...any) {
	s.t.Helper()
	if _, err := s.db.Writer().Exec(q, args...); err != nil {
		s.t.Fatal(err)
	}
}

// session stores a visit as the collector does (its source as classified,
// its utm tags as landed).
func (s *scenario) session(sid, uuid string, t time.Time, typ, source, medium, campaign, term string) {
	s.t.Helper()
	s.exec(`INSERT INTO sessions (counter_id, sid, uuid, started_at, landing_url, referrer,
		utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids, traffic_type, source, medium, device, browser, os, ip)
		VALUES ($1, $2, $3, $4, 'https://shop.ru/', '', $5, $6, $7, '', $8, '{}', $9, $5, $6, 'desktop', 'Chrome', 'Linux', '')`,
		s.c.ID, sid, uuid, t, source, medium, campaign, term, typ)
	// As the collector does with the sessions it writes.
	if err := rollup.Mark(context.Background(), s.db.Writer(), s.db.Dialect(), s.c.ID, t); err != nil {
		s.t.Fatal(err)
	}
}

// call stores a call as call tracking does when it matched a session.
func (s *scenario) call(ext, caller string, t time.Time, sid, uuid, typ, source, medium, campaign string, unique, answered bool) {
	s.t.Helper()
	s.exec(`INSERT INTO calls (counter_id, provider, external_id, direction, caller, caller_raw, caller_md5, tracked_number, started_at,
		answered, disposition, recording_url, employee, ended, match, match_reason, lease_id, sid, uuid, traffic_type, source, medium, campaign,
		is_unique, created_at, updated_at)
		VALUES ($1, 'generic', $2, 'in', $3, $3, '', '74950000000', $4, $5, '', '', '', $6, 'lease', '', 'l', $7, $8, $9, $10, $11, $12, $13, $4, $4)`,
		s.c.ID, ext, caller, t, answered, true, sid, uuid, typ, source, medium, campaign, unique)
}

func (s *scenario) lead(phone, email string, t time.Time, sid, uuid string) {
	s.t.Helper()
	if _, err := leads.Create(context.Background(), s.db, s.c.ID, leads.Input{Phone: phone, Email: email, SID: sid, UUID: uuid, CreatedAt: &t}, "api", t); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) cost(day, source, medium, campaign, term string, kopecks, clicks int64) {
	s.t.Helper()
	s.exec(`INSERT INTO ad_costs (counter_id, day, source, medium, campaign, content, term, cost, clicks, impressions, currency, imported_at)
		VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8, $9, 'RUB', $10)`, s.c.ID, day, source, medium, campaign, term, kopecks, clicks, 10*clicks, now)
}

func (s *scenario) orders(csv string) {
	s.t.Helper()
	_, err := crm.Import(context.Background(), s.db, s.c.ID, crm.Options{Intake: crm.SimpleOrders}, func() (crm.RowReader, error) {
		return crm.NewMetricaCSVReader(strings.NewReader(csv), crm.MetricaFormat{Intake: crm.SimpleOrders, Location: time.UTC})
	})
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := matching.Run(context.Background(), s.db, s.c.ID); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) report(q string) *reports.Report {
	s.t.Helper()
	query, err := reports.ParseQuery(params(q))
	if err != nil {
		s.t.Fatal(err)
	}
	r, err := reports.EndToEnd(context.Background(), s.db, s.c.ID, s.c.Location(), query, now)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

func params(q string) func(string) string {
	m := map[string]string{}
	for _, kv := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

func opt(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func optN(p *json.Number) string {
	if p == nil {
		return "-"
	}
	return p.String()
}

// line renders a row's figures compactly, for comparison with the hand
// computed lines below.
func line(dims []string, d map[string]string, m reports.Metrics) string {
	var key []string
	for _, g := range dims {
		key = append(key, d[g])
	}
	return fmt.Sprintf("%s: s=%d v=%d calls=%d/%d/%d leads=%d req=%d orders=%g/%g/%g rev=%s margin=%s cost=%s roi=%s romi=%s cpl=%s cpo=%s conv=%s/%s/%s",
		strings.Join(key, "/"), m.Sessions, m.Visitors, m.Calls, m.UniqueCalls, m.AnsweredCalls, m.Leads, m.Requests,
		m.Orders, m.OrdersCreated, m.OrdersPaid, m.Revenue, m.Margin, m.Cost, opt(m.ROI), opt(m.ROMI), optN(m.CPL), optN(m.CPO),
		opt(m.ConvSessionRequest), opt(m.ConvRequestOrder), opt(m.ConvOrderPaid))
}

func lines(r *reports.Report) []string {
	var out []string
	for _, row := range r.Rows {
		out = append(out, line(r.Group, row.Dims, row.Metrics))
	}
	slices.Sort(out)
	return out
}

func check(t *testing.T, what string, got, want []string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// build writes the golden scenario: twelve sessions of nine visitors, two
// calls, two leads, eight orders, five cost rows.
func build(t *testing.T, db *store.DB) *scenario {
	c, _, err := counter.Create(context.Background(), db, counter.NewCounter{Name: "Golden", Domain: "shop.ru", Timezone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	s := &scenario{t: t, db: db, c: c}
	s.session("s1", "u1", at(2, 10), "ad", "yandex", "cpc", "brand", "купить")
	s.session("s2", "u1", at(5, 9), "direct", "(direct)", "(none)", "", "")
	s.session("s3", "u2", at(3, 12), "ad", "yandex", "cpc", "brand", "brand shop")
	s.session("s4", "u3", at(4, 10), "ad", "google", "cpc", "generic", "")
	s.session("s5", "u3", at(6, 10), "organic", "google", "organic", "", "")
	s.session("s6", "u4", at(7, 10), "ad", "yandex", "cpc", "generic", "")
	s.session("s7", "u5", at(8, 10), "referral", "blog.ru", "referral", "", "")
	s.session("s8", "u6", at(9, 10), "ad", "Yandex", "CPC", "brand", "купить") // tags as the visitor's link had them
	s.session("s9", "u7", at(10, 10), "ad", "google", "cpc", "generic", "")
	s.session("s10", "u8", at(11, 10), "direct", "(direct)", "(none)", "", "")
	s.session("s11", "u2", at(12, 10), "ad", "yandex", "cpc", "brand", "")
	s.session("s12", "u9", at(12, 11), "ad", "vk", "cpc", "promo", "")

	s.call("C1", "79991110001", at(3, 13), "s3", "u2", "ad", "yandex", "cpc", "brand", true, true)
	s.call("C2", "79991110001", at(12, 11), "s11", "u2", "ad", "yandex", "cpc", "brand", false, false)
	s.lead("+79992220001", "", at(4, 11), "s4", "u3")
	s.lead("", "a@b.ru", at(8, 11), "s7", "u5")

	s.cost("2026-03-02", "yandex", "cpc", "brand", "", 50000, 50)
	s.cost("2026-03-04", "google", "cpc", "generic", "", 30000, 30)
	s.cost("2026-03-07", "yandex", "cpc", "generic", "", 20000, 20)
	s.cost("2026-03-12", "vk", "cpc", "promo", "", 10000, 10)
	s.cost("2026-03-20", "yandex", "cpc", "nosess", "", 5000, 5)

	s.orders(`id,create_date_time,client_ids,phones,emails,order_status,revenue,cost
O1,05.03.2026 15:00,u1,,,PAID,10000,6000
O2,12.03.2026 18:00,,+79991110001,,IN_PROGRESS,5000,
O3,06.03.2026 12:00,,+79992220001,,PAID,3000,
O4,09.03.2026 12:00,,,a@b.ru,CANCELLED,2000,
O6,15.03.2026 12:00,,+79990000000,,PAID,1500,
O7,11.03.2026 12:00,u8,,,SPAM,100,
O8,10.03.2026 12:00,u7,,,weird,700,
`)
	// O5 carries the session id and a margin (no cost, no status: paid):
	// the K50 feed.
	_, err = crm.Import(context.Background(), db, c.ID, crm.Options{Intake: crm.K50Feed}, func() (crm.RowReader, error) {
		return crm.NewK50Reader(strings.NewReader("date;orderId;callerPhone;sid;uuid;revenue;margin\n2026-03-09 12:00:00;O5;;s8;;4000;3000\n"), time.UTC, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := matching.Run(context.Background(), db, c.ID); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGolden checks the end-to-end report of a hand-written March against
// figures computed by hand:
//
//	O1 u1 → S1 yandex/brand, S2 direct; paid 10000, cost 6000 (margin 4000)
//	O2 phone → last call C2 → u2 → S3, S11 yandex/brand; in progress 5000
//	O3 phone → lead → u3 → S4 google/cpc, S5 google/organic; paid 3000
//	O4 e-mail → lead → u5 → S7 blog.ru; cancelled
//	O5 sid S8 (Yandex/CPC/brand, tags lower-cased); paid 4000, margin 3000
//	O6 nothing → not found; paid 1500
//	O7 u8 → S10 direct only; spam
//	O8 u7 → S9 google/cpc; unmapped status
func TestGolden(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := build(t, db)
		r := s.report("from=2026-03-01&to=2026-03-31")
		check(t, "last non-direct click, by order date", lines(r), []string{
			// 4 sessions (S1 S3 S8 S11) of 3 visitors; C1 unique and answered, C2 neither;
			// orders O1 O2 O5 (3 created, 2 paid); revenue 10000+4000, margin 4000+3000;
			// cost 500: ROI (14000-500)/500, ROMI (7000-500)/500, CPL 500/1, CPO 500/3.
			"yandex/cpc/brand: s=4 v=3 calls=2/1/1 leads=0 req=1 orders=3/3/2 rev=14000.00 margin=7000.00 cost=500.00 roi=27 romi=13 cpl=500.00 cpo=166.67 conv=0.25/3/0.6667",
			// O8 (unmapped: no goal); lead L1; cost 300.
			"google/cpc/generic: s=2 v=2 calls=0/0/0 leads=1 req=1 orders=1/0/0 rev=0.00 margin=0.00 cost=300.00 roi=-1 romi=-1 cpl=300.00 cpo=- conv=0.5/0/-",
			// O3's last non-direct touch is the organic visit.
			"google/organic/: s=1 v=1 calls=0/0/0 leads=0 req=0 orders=1/1/1 rev=3000.00 margin=3000.00 cost=0.00 roi=- romi=- cpl=- cpo=- conv=0/-/1",
			"yandex/cpc/generic: s=1 v=1 calls=0/0/0 leads=0 req=0 orders=0/0/0 rev=0.00 margin=0.00 cost=200.00 roi=-1 romi=-1 cpl=- cpo=- conv=0/-/-",
			"blog.ru/referral/: s=1 v=1 calls=0/0/0 leads=1 req=1 orders=1/0/0 rev=0.00 margin=0.00 cost=0.00 roi=- romi=- cpl=- cpo=- conv=1/0/-",
			"vk/cpc/promo: s=1 v=1 calls=0/0/0 leads=0 req=0 orders=0/0/0 rev=0.00 margin=0.00 cost=100.00 roi=-1 romi=-1 cpl=- cpo=- conv=0/-/-",
			// O7 (spam) has only a direct visit: direct gets it, but spam is no order.
			"(direct)/(none)/: s=2 v=2 calls=0/0/0 leads=0 req=0 orders=0/0/0 rev=0.00 margin=0.00 cost=0.00 roi=- romi=- cpl=- cpo=- conv=0/-/-",
			"(not found)//: s=0 v=0 calls=0/0/0 leads=0 req=0 orders=1/1/1 rev=1500.00 margin=1500.00 cost=0.00 roi=- romi=- cpl=- cpo=- conv=-/-/1",
			// A cost without sessions keeps a row of its own.
			"yandex/cpc/nosess: s=0 v=0 calls=0/0/0 leads=0 req=0 orders=0/0/0 rev=0.00 margin=0.00 cost=50.00 roi=-1 romi=-1 cpl=- cpo=- conv=-/-/-",
		})
		total := line(nil, nil, r.Totals)
		want := ": s=12 v=9 calls=2/1/1 leads=2 req=3 orders=7/5/4 rev=18500.00 margin=11500.00 cost=1150.00 roi=15.087 romi=9 cpl=383.33 cpo=230.00 conv=0.25/1.6667/0.8"
		if total != want {
			t.Errorf("totals:\ngot  %s\nwant %s", total, want)
		}
		var quality []string
		for _, q := range r.Quality {
			if q.Orders > 0 {
				quality = append(quality, fmt.Sprintf("%s=%d/%g", q.Rung, q.Orders, q.Share))
			}
		}
		if got := strings.Join(quality, " "); got != "sid=1/0.125 uuid=3/0.375 phone=2/0.25 email=1/0.125 not_found=1/0.125" {
			t.Errorf("quality: %s", got)
		}

		// Last click: O1 goes to its direct visit.
		r = s.report("from=2026-03-01&to=2026-03-31&model=last_click&group=source")
		check(t, "last click, by source", lines(r), []string{
			"yandex: s=5 v=4 calls=2/1/1 leads=0 req=1 orders=2/2/1 rev=4000.00 margin=3000.00 cost=750.00 roi=4.3333 romi=3 cpl=750.00 cpo=375.00 conv=0.2/2/0.5",
			"google: s=3 v=2 calls=0/0/0 leads=1 req=1 orders=2/1/1 rev=3000.00 margin=3000.00 cost=300.00 roi=9 romi=9 cpl=300.00 cpo=300.00 conv=0.3333/1/1",
			"blog.ru: s=1 v=1 calls=0/0/0 leads=1 req=1 orders=1/0/0 rev=0.00 margin=0.00 cost=0.00 roi=- romi=- cpl=- cpo=- conv=1/0/-",
			"vk: s=1 v=1 calls=0/0/0 leads=0 req=0 orders=0/0/0 rev=0.00 margin=0.00 cost=100.00 roi=-1 romi=-1 cpl=- cpo=- conv=0/-/-",
			"(direct): s=2 v=2 calls=0/0/0 leads=0 req=0 orders=1/1/1 rev=10000.00 margin=4000.00 cost=0.00 roi=- romi=- cpl=- cpo=- conv=0/-/1",
			"(not found): s=0 v=0 calls=0/0/0 leads=0 req=0 orders=1/1/1 rev=1500.00 margin=1500.00 cost=0.00 roi=- romi=- cpl=- cpo=- conv=-/-/1",
		})

		// Linear: O3 half to S4 (ad), half to S5 (organic); O1 all to S1 —
		// its direct visit counts only when there is nothing else.
		r = s.report("from=2026-03-01&to=2026-03-31&model=linear&group=traffic_type")
		check(t, "linear, by traffic type", lines(r), []string{
			// orders O1 O2 O5 O8 + half O3; paid O1 O5 + half O3: revenue 10000+4000+1500, margin 4000+3000+1500.
			"ad: s=8 v=7 calls=2/1/1 leads=1 req=2 orders=4.5/3.5/2.5 rev=15500.00 margin=8500.00 cost=1150.00 roi=12.4783 romi=6.3913 cpl=575.00 cpo=328.57 conv=0.25/1.75/0.7143",
			"direct: s=2 v=2 calls=0/0/0 leads=0 req=0 orders=0/0/0 rev=0.00 margin=0.00 cost=0.00 roi=- romi=- cpl=- cpo=- conv=0/-/-",
			"organic: s=1 v=1 calls=0/0/0 leads=0 req=0 orders=0.5/0.5/0.5 rev=1500.00 margin=1500.00 cost=0.00 roi=- romi=- cpl=- cpo=- conv=0/-/1",
			"referral: s=1 v=1 calls=0/0/0 leads=1 req=1 orders=1/0/0 rev=0.00 margin=0.00 cost=0.00 roi=- romi=- cpl=- cpo=- conv=1/0/-",
			"none: s=0 v=0 calls=0/0/0 leads=0 req=0 orders=1/1/1 rev=1500.00 margin=1500.00 cost=0.00 roi=- romi=- cpl=- cpo=- conv=-/-/1",
		})

		// By visit date from 5 March: O1's credited visit (S1, 2 March) is
		// outside, O2's (S11) and O5's (S8) inside. Days, not the month.
		r = s.report("from=2026-03-05&to=2026-03-31&source=yandex&medium=cpc&campaign=brand&date=visit")
		check(t, "by visit date, filtered", lines(r), []string{
			"yandex/cpc/brand: s=2 v=2 calls=1/0/0 leads=0 req=0 orders=2/2/1 rev=4000.00 margin=3000.00 cost=0.00 roi=- romi=- cpl=- cpo=- conv=0/-/0.5",
		})

		// Costs split by term in proportion to sessions: the 500 of
		// yandex/cpc/brand over S1 (купить), S3 (brand shop), S8 (купить), S11 (none).
		r = s.report("from=2026-03-01&to=2026-03-31&group=term&campaign=brand")
		check(t, "costs spread over terms", lines(r), []string{
			"купить: s=2 v=2 calls=0/0/0 leads=0 req=0 orders=2/2/2 rev=14000.00 margin=7000.00 cost=250.00 roi=55 romi=27 cpl=- cpo=125.00 conv=0/-/1",
			"brand shop: s=1 v=1 calls=1/1/1 leads=0 req=1 orders=0/0/0 rev=0.00 margin=0.00 cost=125.00 roi=-1 romi=-1 cpl=125.00 cpo=- conv=1/0/-",
			": s=1 v=1 calls=1/0/0 leads=0 req=0 orders=1/1/0 rev=0.00 margin=0.00 cost=125.00 roi=-1 romi=-1 cpl=- cpo=125.00 conv=0/-/0",
		})

		// A range reaching years ahead reads the past and builds nothing
		// after today.
		r = s.report("from=2026-03-01&to=2035-12-31")
		if r.Totals.Sessions == 0 {
			t.Error("a report to 2035 lost the March sessions")
		}
		var future int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM rollup_periods WHERE counter_id = $1 AND period > $2`,
			s.c.ID, now.Format(time.DateOnly)).Scan(&future); err != nil || future != 0 {
			t.Errorf("%d periods after today built (%v), want none", future, err)
		}

		// Another counter sees none of it.
		other, _, err := counter.Create(context.Background(), db, counter.NewCounter{Name: "Other", Domain: "other.ru", Timezone: "UTC"})
		if err != nil {
			t.Fatal(err)
		}
		q, _ := reports.ParseQuery(params("from=2026-03-01&to=2026-03-31"))
		r, err = reports.EndToEnd(context.Background(), db, other.ID, other.Location(), q, now)
		if err != nil || len(r.Rows) != 0 || r.Totals.Sessions != 0 {
			t.Errorf("another counter's report: %+v %v", r, err)
		}
	})
}

// TestLateDataReachesTheReport: a report built once is rebuilt where late
// data lands — a lead, a call, a re-matched order, a status mapping.
func TestLateDataReachesTheReport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var err error
		s := build(t, db)
		q := "from=2026-03-01&to=2026-03-31&group=source"
		row := func(r *reports.Report, source string) reports.Metrics {
			for _, row := range r.Rows {
				if row.Dims["source"] == source {
					return row.Metrics
				}
			}
			return reports.Metrics{}
		}
		before := s.report(q)
		if row(before, "vk").Leads != 0 {
			t.Fatal("vk has a lead before the test sends one")
		}
		// A lead from the vk visitor, sent in March, arrives now.
		s.lead("+79993330001", "", at(12, 12), "s12", "u9")
		// A call to a static number (radio), in March, arrives now.
		static, src := "78001002030", calltracking.Traffic{Source: "radio", Medium: "offline"}
		if _, err := calltracking.SaveNumber(ctx, db, s.c.ID, calltracking.NumberInput{Number: &static, Source: &src}); err != nil {
			t.Fatal(err)
		}
		if _, err := calltracking.Ingest(ctx, db, s.c, calltracking.Event{Provider: "generic", CallID: "late", Caller: "79995550001", Tracked: static,
			StartedAt: at(20, 10)}, now); err != nil {
			t.Fatal(err)
		}
		// An order from that caller, and the lead's phone places an order.
		s.orders("id,create_date_time,phones,order_status,revenue\nO9,21.03.2026 12:00,+79995550001,PAID,900\nO10,13.03.2026 12:00,+79993330001,PAID,800\n")
		after := s.report(q)
		if m := row(after, "vk"); m.Leads != 1 || m.OrdersPaid != 1 || m.Revenue != "800.00" {
			t.Errorf("vk after a late lead and its order: %+v", m)
		}
		if m := row(after, "radio"); m.Calls != 1 || m.OrdersPaid != 1 || m.Revenue != "900.00" {
			t.Errorf("radio after a late static call and its order: %+v", m)
		}
		if after.Totals.Orders != before.Totals.Orders+2 {
			t.Errorf("orders %g → %g, want two more", before.Totals.Orders, after.Totals.Orders)
		}
		// A cost uploaded late lands on its day.
		if _, err := costs.ImportRows(ctx, db, s.c.ID, []costs.Row{{Day: "2026-03-25", Source: "vk", Medium: "cpc", Campaign: "promo", Cost: 5000}}); err != nil {
			t.Fatal(err)
		}
		if m := row(s.report(q), "vk"); m.Cost != "150.00" {
			t.Errorf("vk after a late cost: %+v", m)
		}
		// The unmapped status "weird" becomes PAID: O8 (google) is paid now.
		if err := crm.SaveStatuses(ctx, db, s.c.ID, []crm.Status{{Code: "weird", Type: crm.Paid}}, false); err != nil {
			t.Fatal(err)
		}
		if _, err := matching.Run(ctx, db, s.c.ID); err != nil {
			t.Fatal(err)
		}
		if m := row(s.report(q), "google"); m.OrdersPaid != 2 || m.Revenue != "3700.00" {
			t.Errorf("google after the status mapping: %+v", m)
		}
		// The counter's days move to Moscow (UTC+3): a visit at 22:00 UTC
		// on 31 March is 1 April there. The rollups are rebuilt.
		s.session("s13", "u10", at(31, 22), "ad", "vk", "cpc", "promo", "")
		if got := s.report(q).Totals.Sessions; got != 13 {
			t.Errorf("March in UTC: %d sessions, want 13", got)
		}
		if s.c, err = counter.Update(ctx, db, s.c.ID, counter.Patch{Timezone: ptr("Europe/Moscow")}); err != nil {
			t.Fatal(err)
		}
		if err := rollup.Forget(ctx, db, s.c.ID); err != nil {
			t.Fatal(err)
		}
		if got := s.report(q).Totals.Sessions; got != 12 {
			t.Errorf("March in Moscow: %d sessions, want 12", got)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestParseQuery(t *testing.T) {
	bad := map[string]string{
		"":                              "from",
		"from=2026-03-01":               "to",
		"from=2026-03-01&to=yesterday":  "to",
		"from=2026-03-02&to=2026-03-01": "to",
		"from=2000-01-01&to=2026-03-01": "to",
		"from=2026-03-01&to=2026-03-02&group=country":       "group",
		"from=2026-03-01&to=2026-03-02&group=source,source": "group",
		"from=2026-03-01&to=2026-03-02&model=best":          "model",
		"from=2026-03-01&to=2026-03-02&date=click":          "date",
	}
	for q, field := range bad {
		_, err := reports.ParseQuery(params(q))
		var invalid *reports.InvalidError
		if !errors.As(err, &invalid) || invalid.Field != field {
			t.Errorf("%q: %v, want an error about %s", q, err, field)
		}
	}
	q, err := reports.ParseQuery(params("from=2026-03-01&to=2026-03-02&group=campaign,source&model=TIME_DECAY&date=visit&term=x"))
	if err != nil || !slices.Equal(q.Group, []string{"campaign", "source"}) || q.Model != "time_decay" || q.Date != "visit" || q.Filter["term"] != "x" {
		t.Errorf("%+v %v", q, err)
	}
}
