package matching_test

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/leads"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// The day the test's orders are placed: 2026-03-10, 12:00 UTC.
var day = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t  *testing.T
	db *store.DB
	c  counter.Counter
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	c, _, err := counter.Create(context.Background(), db, counter.NewCounter{Name: "Shop", Domain: "shop.ru", Timezone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, db: db, c: c}
}

func uid(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// session stores a visit as the collector would.
func (f *fixture) session(sid, uuid string, at time.Time, typ, source, medium, campaign string) {
	f.t.Helper()
	_, err := f.db.Writer().Exec(`INSERT INTO sessions (counter_id, sid, uuid, started_at, landing_url, referrer,
		utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids, traffic_type, source, medium, device, browser, os, ip)
		VALUES ($1, $2, $3, $4, 'https://shop.ru/', '', $5, $6, $7, '', '', '{}', $8, $5, $6, 'desktop', 'Chrome', 'Linux', '')`,
		f.c.ID, sid, uuid, at, source, medium, campaign, typ)
	if err != nil {
		f.t.Fatal(err)
	}
}

// orders imports simple orders (CSV) as a CRM would send them.
func (f *fixture) orders(csv string) {
	f.t.Helper()
	_, err := crm.Import(context.Background(), f.db, f.c.ID, crm.Options{Intake: crm.SimpleOrders}, func() (crm.RowReader, error) {
		return crm.NewMetricaCSVReader(strings.NewReader(csv), crm.MetricaFormat{Intake: crm.SimpleOrders, Location: time.UTC})
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) k50(feed string) {
	f.t.Helper()
	_, err := crm.Import(context.Background(), f.db, f.c.ID, crm.Options{Intake: crm.K50Feed}, func() (crm.RowReader, error) {
		return crm.NewK50Reader(strings.NewReader(feed), time.UTC, nil)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) run() matching.Stats {
	f.t.Helper()
	st, err := matching.Run(context.Background(), f.db, f.c.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

type match struct {
	Rung     string
	Evidence []matching.Evidence
	Touches  []struct {
		Kind, Ref, Source string
		W                 map[string]float64
	}
}

func (f *fixture) match(orderID string) match {
	f.t.Helper()
	var m match
	var ev string
	if err := f.db.Reader().QueryRow(`SELECT rung, evidence FROM order_matches WHERE counter_id = $1 AND order_id = $2`, f.c.ID, orderID).Scan(&m.Rung, &ev); err != nil {
		f.t.Fatalf("order %s: %v", orderID, err)
	}
	json.Unmarshal([]byte(ev), &m.Evidence)
	rows, err := f.db.Reader().Query(`SELECT kind, ref, source, w_last_non_direct, w_last_click, w_first_click, w_linear, w_position_based, w_time_decay
		FROM order_touches WHERE counter_id = $1 AND order_id = $2 ORDER BY seq`, f.c.ID, orderID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var t struct {
			Kind, Ref, Source string
			W                 map[string]float64
		}
		var w [6]float64
		rows.Scan(&t.Kind, &t.Ref, &t.Source, &w[0], &w[1], &w[2], &w[3], &w[4], &w[5])
		t.W = map[string]float64{"last_non_direct": w[0], "last_click": w[1], "first_click": w[2], "linear": w[3], "position_based": w[4], "time_decay": w[5]}
		m.Touches = append(m.Touches, t)
	}
	return m
}

func (m match) refs() string {
	var s []string
	for _, t := range m.Touches {
		s = append(s, t.Ref)
	}
	return strings.Join(s, ",")
}

func TestLadder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		h := time.Hour
		// Visitor 1: an organic visit a week ago, then a Yandex ad click today.
		f.session("s1a", uid(1), day.Add(-7*24*h), "organic", "google", "organic", "")
		f.session("s1b", uid(1), day.Add(-2*h), "ad", "yandex", "cpc", "boots")
		// Visitor 2: one VK visit.
		f.session("s2", uid(2), day.Add(-3*h), "social", "vk", "social", "")
		// Visitor 3 sees a tracked number and calls from 79160000003.
		f.session("s3", uid(3), day.Add(-5*h), "ad", "google", "cpc", "sofas")
		name, n := "Pool", "74951110001"
		pool, _ := calltracking.CreatePool(ctx, db, f.c.ID, calltracking.PoolInput{Name: &name})
		calltracking.SaveNumber(ctx, db, f.c.ID, calltracking.NumberInput{Number: &n, PoolID: &pool.ID})
		if s, err := calltracking.Assign(ctx, db, f.c, "s3", uid(3), day.Add(-5*h)); err != nil || s == nil {
			t.Fatalf("lease: %v %v", s, err)
		}
		if _, err := calltracking.Ingest(ctx, db, f.c, calltracking.Event{Provider: "generic", CallID: "c3", Caller: "79160000003", Tracked: n,
			StartedAt: day.Add(-5*h + time.Minute)}, day.Add(-5*h+2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		// Visitor 4 leaves a callback request with a phone; visitor 5 a chat with an e-mail.
		f.session("s4", uid(4), day.Add(-4*h), "referral", "forum.ru", "referral", "")
		created := day.Add(-4*h + time.Minute)
		if _, err := leads.Create(ctx, db, f.c.ID, leads.Input{Type: "callback", Phone: "+7 916 000-00-04", SID: "s4", UUID: uid(4), CreatedAt: &created}, "api", day); err != nil {
			t.Fatal(err)
		}
		f.session("s5", uid(5), day.Add(-6*h), "email", "newsletter", "email", "march")
		created = day.Add(-6*h + time.Minute)
		if _, err := leads.Create(ctx, db, f.c.ID, leads.Input{Type: "chat", Email: "Ann@Example.com", SID: "s5", UUID: uid(5), CreatedAt: &created}, "api", day); err != nil {
			t.Fatal(err)
		}
		// Visitor 6 typed a phone into a form (kept as md5 only).
		f.session("s6", uid(6), day.Add(-8*h), "ad", "facebook", "cpc", "")
		if _, err := leads.Capture(ctx, db, f.c.ID, "s6", uid(6), []string{"8 916 000-00-06"}, nil, day.Add(-8*h)); err != nil {
			t.Fatal(err)
		}
		// Visitor 7 is known only through the CRM contact's client id.
		f.session("s7", uid(7), day.Add(-9*h), "direct", "", "", "")
		if _, err := crm.Import(ctx, db, f.c.ID, crm.Options{Intake: crm.ContactsUp}, func() (crm.RowReader, error) {
			return crm.NewMetricaJSONReader(strings.NewReader(`{"contacts": [{"uniq_id": "C7", "client_ids": ["`+uid(7)+`"]}]}`), crm.MetricaFormat{Intake: crm.ContactsUp, Location: time.UTC})
		}); err != nil {
			t.Fatal(err)
		}
		// Orders (K50 feed: sid, uuid, caller phone).
		f.k50("date;orderId;callerPhone;sid;uuid\n" +
			"2026-03-10 12:00:00;O1;;s1b;\n" +
			"2026-03-10 12:00:00;O2;;;" + uid(2) + "\n" +
			"2026-03-10 12:00:00;O3;79160000003;;\n" +
			"2026-03-10 12:00:00;O8;;;\n")
		// Simple orders: phone, e-mail, md5 of a phone, the contact.
		f.orders("id,create_date_time,client_uniq_id,phones,emails,phones_md5\n" +
			"O4,10.03.2026 12:00,,89160000004,,\n" +
			"O5,10.03.2026 12:00,,,ann@example.com,\n" +
			"O6,10.03.2026 12:00,,,,\"" + md5hex("79160000006") + "\"\n" +
			"O7,10.03.2026 12:00,C7,,,\n" +
			"O9,10.03.2026 12:00,,89169999999,,\n")
		st := f.run()
		if st.Orders != 9 {
			t.Fatalf("matched %d orders: %+v", st.Orders, st)
		}
		want := []struct{ order, rung, refs, lastNonDirect string }{
			{"O1", "sid", "s1a,s1b", "yandex"},
			{"O2", "uuid", "s2", "vk"},
			{"O3", "caller_phone", "s3", "google"},
			{"O4", "phone", "s4", "forum.ru"},
			{"O5", "email", "s5", "newsletter"},
			{"O6", "hash", "s6", "facebook"},
			{"O7", "contact", "s7", ""},
			{"O8", "not_found", "", "(not found)"},
			{"O9", "not_found", "", "(not found)"},
		}
		for _, w := range want {
			m := f.match(w.order)
			if m.Rung != w.rung || m.refs() != w.refs || len(m.Evidence) == 0 && w.rung != "not_found" {
				t.Errorf("%s: rung %s, path %q, evidence %+v; want %s, %q", w.order, m.Rung, m.refs(), m.Evidence, w.rung, w.refs)
				continue
			}
			credited := ""
			for _, tc := range m.Touches {
				if tc.W["last_non_direct"] == 1 {
					credited = tc.Source
				}
			}
			if credited != w.lastNonDirect {
				t.Errorf("%s: last non-direct credit to %q, want %q", w.order, credited, w.lastNonDirect)
			}
		}
		// The reason is kept: what of the order matched, and what it matched.
		if e := f.match("O3").Evidence[0]; e.Key != "caller_phone" || e.Value != "79160000003" || e.Kind != "call" {
			t.Errorf("O3 evidence: %+v", e)
		}
		// Every order's weights sum to 1 under every model.
		rows, _ := db.Reader().Query(`SELECT order_id, SUM(w_last_non_direct), SUM(w_last_click), SUM(w_first_click), SUM(w_linear),
			SUM(w_position_based), SUM(w_time_decay) FROM order_touches WHERE counter_id = $1 GROUP BY order_id`, f.c.ID)
		defer rows.Close()
		for rows.Next() {
			var id string
			var s [6]float64
			rows.Scan(&id, &s[0], &s[1], &s[2], &s[3], &s[4], &s[5])
			for i, v := range s {
				if math.Abs(v-1) > 1e-9 {
					t.Errorf("%s: model %d weights sum to %v", id, i, v)
				}
			}
		}
	})
}

func md5hex(s string) string {
	return fmt.Sprintf("%x", md5sum(s))
}

func TestLookbackAndLateData(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		h := time.Hour
		// Evidence outside the window or after the order does not count.
		f.session("old", uid(1), day.Add(-366*24*h), "ad", "yandex", "cpc", "")
		f.session("inside", uid(1), day.Add(-364*24*h), "ad", "google", "cpc", "")
		f.session("after", uid(1), day.Add(h), "ad", "vk", "cpc", "")
		f.k50("date;orderId;callerPhone;sid;uuid\n2026-03-10 12:00:00;L1;;;" + uid(1) + "\n" +
			"2026-03-10 12:00:00;L2;79161112233;;\n")
		f.orders("id,create_date_time,phones\nL3,10.03.2026 12:00,89165554433\n")
		f.orders("id,create_date_time,client_uniq_id,phones\nL4,10.03.2026 12:00,C9,\n")
		f.run()
		if m := f.match("L1"); m.refs() != "inside" {
			t.Errorf("L1 path %q, want only the session inside the window and before the order", m.refs())
		}
		if f.match("L2").Rung != "not_found" || f.match("L3").Rung != "not_found" {
			t.Fatal("L2, L3 should not be found yet")
		}
		// A call from L2's caller phone, placed before the order, arrives late.
		f.session("s2", uid(2), day.Add(-2*h), "ad", "google", "cpc", "")
		static, src := "78001002030", calltracking.Traffic{Source: "radio", Medium: "offline"}
		calltracking.SaveNumber(ctx, db, f.c.ID, calltracking.NumberInput{Number: &static, Source: &src})
		if _, err := calltracking.Ingest(ctx, db, f.c, calltracking.Event{Provider: "generic", CallID: "late", Caller: "79161112233", Tracked: static,
			StartedAt: day.Add(-h)}, day.Add(2*h)); err != nil {
			t.Fatal(err)
		}
		// A lead with L3's phone, sent before the order, arrives late too.
		f.session("s3", uid(3), day.Add(-3*h), "social", "vk", "social", "")
		created := day.Add(-3 * h)
		if _, err := leads.Create(ctx, db, f.c.ID, leads.Input{Phone: "+79165554433", SID: "s3", UUID: uid(3), CreatedAt: &created}, "api", day.Add(2*h)); err != nil {
			t.Fatal(err)
		}
		// L4's contact arrives late with the visitor id the site knew.
		f.session("s4", uid(4), day.Add(-4*h), "ad", "yandex", "cpc", "")
		if _, err := crm.Import(ctx, db, f.c.ID, crm.Options{Intake: crm.ContactsUp}, func() (crm.RowReader, error) {
			return crm.NewMetricaJSONReader(strings.NewReader(`{"contacts": [{"uniq_id": "C9", "client_ids": ["`+uid(4)+`"]}, {"uniq_id": "C10"}]}`),
				crm.MetricaFormat{Intake: crm.ContactsUp, Location: time.UTC})
		}); err != nil {
			t.Fatal(err)
		}
		if n, _ := matching.Queued(ctx, db, f.c.ID); n != 3 {
			t.Errorf("late data queued %d orders, want L2, L3 and L4", n)
		}
		st := f.run()
		if st.Orders != 3 {
			t.Errorf("re-matched %d orders, want 3 (incremental, not everything)", st.Orders)
		}
		if m := f.match("L4"); m.Rung != "contact" || m.refs() != "s4" {
			t.Errorf("L4 after its contact: %+v", m)
		}
		if m := f.match("L2"); m.Rung != "caller_phone" || len(m.Touches) != 1 || m.Touches[0].Kind != "call" || m.Touches[0].Source != "radio" {
			t.Errorf("L2 after the late call: %+v", m)
		}
		if m := f.match("L3"); m.Rung != "phone" || m.refs() != "s3" {
			t.Errorf("L3 after the late lead: %+v", m)
		}
		// A changed order is re-matched; an unchanged re-import is not.
		f.k50("date;orderId;callerPhone;sid;uuid\n2026-03-10 12:00:00;L1;;;" + uid(1) + "\n" + "2026-03-10 12:00:00;L2;79161112233;;\n")
		if n, _ := matching.Queued(ctx, db, f.c.ID); n != 0 {
			t.Errorf("an unchanged feed queued %d orders", n)
		}
	})
}

func md5sum(s string) [16]byte { return md5.Sum([]byte(s)) }

// TestWebhookEvents: matching queues a delivery per active webhook for an
// order found for the first time or by another rung, or whose status type
// changed — and nothing when a re-match changes neither.
func TestWebhookEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		for _, h := range []struct {
			id     string
			active bool
		}{{"on", true}, {"off", false}} {
			if _, err := db.Writer().Exec(`INSERT INTO webhooks (counter_id, id, url, secret, active, created_at, updated_at)
				VALUES ($1, $2, 'https://crm.example/hook', 's', $3, $4, $4)`, f.c.ID, h.id, h.active, day); err != nil {
				t.Fatal(err)
			}
		}
		events := func() string {
			rows, err := db.Reader().Query(`SELECT webhook_id, order_id, event FROM webhook_deliveries WHERE counter_id = $1 ORDER BY id`, f.c.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var h, o, e string
				rows.Scan(&h, &o, &e)
				out = append(out, h+":"+o+":"+e)
			}
			db.Writer().Exec(`DELETE FROM webhook_deliveries WHERE counter_id = $1`, f.c.ID)
			return strings.Join(out, " ")
		}
		f.session("s1", uid(1), day.Add(-time.Hour), "ad", "yandex", "cpc", "boots")
		f.orders("id,create_date_time,client_ids,order_status\nW1,10.03.2026 12:00," + uid(1) + ",IN_PROGRESS\nW2,10.03.2026 12:00,,new\n")
		f.run()
		if got := events(); got != "on:W1:matched" {
			t.Errorf("first match: %q, want W1 only (W2, not found, is no news)", got)
		}
		if _, err := matching.EnqueueAll(ctx, db.Writer(), f.c.ID, day); err != nil {
			t.Fatal(err)
		}
		f.run()
		if got := events(); got != "" {
			t.Errorf("a re-match that changed nothing: %q", got)
		}
		if err := crm.SaveStatuses(ctx, db, f.c.ID, []crm.Status{{Code: "new", Type: crm.InProgress}}, false); err != nil {
			t.Fatal(err)
		}
		f.orders("id,create_date_time,client_ids,order_status\nW1,10.03.2026 12:00," + uid(1) + ",PAID\n")
		f.run()
		if got := events(); got != "on:W1:status on:W2:status" {
			t.Errorf("status changes (a new status, a new mapping): %q", got)
		}
	})
}

// TestRepeatCallerKeepsOnlyTheLastCall: a customer who called a static
// number twice before the order has one call in the path — the last —
// whichever order the calls were stored (and are read) in.
func TestRepeatCallerKeepsOnlyTheLastCall(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, order := range [][]string{{"early", "late"}, {"late", "early"}} {
			f := newFixture(t, db)
			static, src := "78001002030", calltracking.Traffic{Source: "radio", Medium: "offline"}
			if _, err := calltracking.SaveNumber(ctx, db, f.c.ID, calltracking.NumberInput{Number: &static, Source: &src}); err != nil {
				t.Fatal(err)
			}
			at := map[string]time.Time{"early": day.Add(-3 * time.Hour), "late": day.Add(-time.Hour)}
			ids := map[string]string{}
			for _, name := range order {
				c, err := calltracking.Ingest(ctx, db, f.c, calltracking.Event{Provider: "generic", CallID: name, Caller: "79161112233",
					Tracked: static, StartedAt: at[name]}, day)
				if err != nil {
					t.Fatal(err)
				}
				ids[name] = fmt.Sprint(c.ID)
			}
			f.k50("date;orderId;callerPhone;sid;uuid\n2026-03-10 12:00:00;R1;79161112233;;\n")
			f.run()
			if m := f.match("R1"); m.Rung != "caller_phone" || m.refs() != ids["late"] {
				t.Errorf("stored %v: path %q, want only the last call %s", order, m.refs(), ids["late"])
			}
		}
	})
}

// Two leads with the order's phone from two visitors: only the later lead's
// visitor is in the path, whichever lead was stored first.
func TestRepeatLeadKeepsOnlyTheLastVisitor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, order := range [][]int{{1, 2}, {2, 1}} {
			f := newFixture(t, db)
			at := map[int]time.Time{1: day.Add(-3 * time.Hour), 2: day.Add(-time.Hour)}
			for _, n := range order {
				sid := fmt.Sprintf("v%d", n)
				f.session(sid, uid(n), at[n].Add(-time.Minute), "ad", "yandex", "cpc", sid)
				created := at[n]
				if _, err := leads.Create(ctx, db, f.c.ID, leads.Input{Phone: "+79160000077", SID: sid, UUID: uid(n), CreatedAt: &created}, "api", day); err != nil {
					t.Fatal(err)
				}
			}
			f.orders("id,create_date_time,phones\nR1,10.03.2026 12:00,79160000077\n")
			f.run()
			if m := f.match("R1"); m.Rung != "phone" || m.refs() != "v2" || len(m.Evidence) != 1 {
				t.Errorf("stored %v: rung %s, path %q, evidence %+v; want phone, only v2, one lead", order, m.Rung, m.refs(), m.Evidence)
			}
		}
	})
}

// An order with several client ids, some without sessions: each is probed.
func TestManyKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.session("m1", uid(1), day.Add(-48*time.Hour), "ad", "yandex", "cpc", "one")
		f.session("m2", uid(2), day.Add(-time.Hour), "organic", "google", "organic", "")
		f.orders("id,create_date_time,client_ids\nK1,10.03.2026 12:00,\"" + uid(1) + "," + uid(2) + "," + uid(3) + "\"\n")
		f.run()
		if m := f.match("K1"); m.Rung != "uuid" || m.refs() != "m1,m2" {
			t.Errorf("rung %s, path %q; want uuid, m1,m2", m.Rung, m.refs())
		}
	})
}

// A batch that cannot be matched (here: a corrupt order row) is put back
// for later, and the orders queued after it are matched meanwhile.
func TestFailedBatchDoesNotBlockTheQueue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		// The database refuses the order's match, as a full disk or a bad
		// row would.
		poison := []string{`CREATE TRIGGER poison BEFORE INSERT ON order_matches WHEN (NEW.order_id = 'BAD')
			BEGIN SELECT RAISE(ABORT, 'poisoned order'); END`}
		if db.Dialect() == store.Postgres {
			poison = []string{`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'poisoned order'; END $$`,
				`CREATE TRIGGER poison BEFORE INSERT ON order_matches FOR EACH ROW WHEN (NEW.order_id = 'BAD') EXECUTE FUNCTION poison()`}
		}
		for _, q := range poison {
			if _, err := db.Writer().Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		f.orders("id,create_date_time,phones\nBAD,10.03.2026 12:00,79160000001\n")
		if _, err := matching.Run(ctx, db, f.c.ID); err == nil || !strings.Contains(err.Error(), "poisoned order") || !strings.Contains(err.Error(), "tried again in") {
			t.Fatalf("run with a corrupt order: %v, want the batch's error and its postponement", err)
		}
		var due time.Time
		if err := db.Reader().QueryRow(`SELECT queued_at FROM match_queue WHERE counter_id = $1 AND order_id = 'BAD'`, f.c.ID).Scan(&due); err != nil {
			t.Fatal(err)
		}
		if time.Until(due) < matching.Retry-time.Minute {
			t.Errorf("failed order due %v, want about %v from now", due, matching.Retry)
		}
		f.session("g1", uid(1), day.Add(-time.Hour), "ad", "yandex", "cpc", "one")
		f.orders("id,create_date_time,client_ids\nGOOD,10.03.2026 12:00," + uid(1) + "\n")
		if _, err := matching.Run(ctx, db, f.c.ID); err != nil {
			t.Fatalf("run after: %v", err)
		}
		if m := f.match("GOOD"); m.Rung != "uuid" {
			t.Errorf("the order queued after the failed batch: rung %s, want uuid", m.Rung)
		}
		if n, _ := matching.Queued(ctx, db, f.c.ID); n != 1 {
			t.Errorf("queued %d, want the postponed order only", n)
		}
	})
}
