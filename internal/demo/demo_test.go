package demo

import (
	"context"
	"encoding/json"
	"math"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/reports"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
	"github.com/throughline/throughline/internal/tracker"
)

// The demo's "today": its data covers 2026-03-11 to 2026-04-09 (Moscow).
var now = time.Date(2026, 4, 10, 9, 30, 0, 0, time.UTC)

// report reads the end-to-end report over the demo's days, as GET
// …/reports/end-to-end?from=&to= does.
func report(t *testing.T, db *store.DB, res Result, group string) *reports.Report {
	t.Helper()
	q, err := reports.ParseQuery(func(k string) string {
		return map[string]string{"from": res.From, "to": res.To, "group": group}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation(Timezone)
	rep, err := reports.EndToEnd(context.Background(), db, res.CounterID, loc, q, now)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// raceDetector reports whether the test runs with -race, under which the
// pure-Go SQLite is some twenty times slower: a month takes a minute.
func raceDetector() bool {
	bi, ok := debug.ReadBuildInfo()
	return ok && slices.ContainsFunc(bi.Settings, func(s debug.BuildSetting) bool { return s.Key == "-race" && s.Value == "true" })
}

func TestGenerate(t *testing.T) {
	days := DefaultDays
	if raceDetector() {
		days = 6
	}
	scale := func(n int) int { return n * days / DefaultDays }
	// A short period has fewer returning visits and late orders in it.
	low := func(n int) int {
		if days < DefaultDays {
			return scale(n) * 3 / 4
		}
		return n
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// Another shop on the same database must come through untouched.
		shop, _, err := counter.Create(ctx, db, counter.NewCounter{Name: "Shop", Domain: "shop.ru"})
		if err != nil {
			t.Fatal(err)
		}

		var phases []string
		first, err := Generate(ctx, db, Options{Seed: 7, Days: days, Now: now, Progress: func(p string) { phases = append(phases, p) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("demo of %d days on %s: %v — %d sessions of %d visitors, %d hits, %d calls, %d leads, %d orders, %d cost rows",
			days, db.Dialect(), first.Took.Round(time.Millisecond), first.Sessions, first.Visitors, first.Hits, first.Calls, first.Leads, first.Orders, first.CostRows)
		if want := []string{PhaseReset, PhaseCounter, PhaseGenerate, PhaseSessions, PhaseLeads, PhaseOrders, PhaseCosts, PhaseMatching, PhaseReports}; !slices.Equal(phases, want) {
			t.Errorf("phases %v, want %v", phases, want)
		}
		if first.From != now.AddDate(0, 0, -days).Format(time.DateOnly) || first.To != "2026-04-09" {
			t.Errorf("period %s … %s", first.From, first.To)
		}
		for _, c := range []struct {
			what      string
			n, lo, hi int
		}{
			{"sessions", first.Sessions, 20_000, 30_000},
			{"visitors", first.Visitors, 14_000, 16_000},
			{"calls", first.Calls, 1_000, 2_000},
			{"leads", first.Leads, 450, 1_000},
			{"orders", first.Orders, 1_000, 2_000},
			{"cost rows", first.CostRows, 300, 1_000},
		} {
			if c.n < low(c.lo) || c.n > scale(c.hi) {
				t.Errorf("%d %s, want %d–%d", c.n, c.what, low(c.lo), scale(c.hi))
			}
		}
		if first.Matching.Orders != first.Orders {
			t.Errorf("matched %d of %d orders", first.Matching.Orders, first.Orders)
		}
		rep1 := report(t, db, first, "")

		// Again with the same seed: the old counter and its token are gone,
		// and the new one holds the same data.
		second, err := Generate(ctx, db, Options{Seed: 7, Days: days, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := counter.Authenticate(ctx, db, first.Token); err == nil {
			t.Error("the first demo's token still works")
		}
		if id, err := counter.Authenticate(ctx, db, second.Token); err != nil || id != second.CounterID {
			t.Errorf("the new token: %d %v", id, err)
		}
		cs, err := counter.List(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		var demos []int64
		for _, c := range cs {
			if c.Domain == Domain {
				demos = append(demos, c.ID)
			}
		}
		if len(cs) != 2 || !slices.Equal(demos, []int64{second.CounterID}) {
			t.Errorf("counters after the second run: %+v", cs)
		}
		strip := func(r Result) Result {
			r.CounterID, r.Token, r.Took, r.TookMS = 0, "", 0, 0
			// Not compared: matching keeps an order's older static-number
			// call as a touch or not depending on the order the database
			// returns the calls in (internal/matching, lastCall).
			r.Matching.Touches = 0
			return r
		}
		a, _ := json.Marshal(strip(first))
		b, _ := json.Marshal(strip(second))
		if string(a) != string(b) {
			t.Errorf("the same seed gave\n%s\nthen\n%s", a, b)
		}
		rep2 := report(t, db, second, "")
		a, _ = json.Marshal([]any{rep1.Totals, rep1.Quality, rep1.Rows})
		b, _ = json.Marshal([]any{rep2.Totals, rep2.Quality, rep2.Rows})
		if string(a) != string(b) {
			t.Errorf("the same seed gave another report:\n%s\n%s", a, b)
		}

		// The report has what a newcomer should see: several sources with
		// sessions, calls, leads and orders, ad costs, every kind of match.
		tot := rep2.Totals
		var spam int
		if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM crm_orders WHERE counter_id = $1 AND status_type = 'SPAM'`, second.CounterID).Scan(&spam); err != nil {
			t.Fatal(err)
		}
		if tot.Sessions != int64(second.Sessions) || tot.Calls != int64(second.Calls) || tot.Leads != int64(second.Leads) ||
			math.Round(tot.Orders) != float64(second.Orders-spam) || tot.OrdersPaid == 0 || tot.Revenue == "0.00" || tot.Cost == "0.00" || tot.ROI == nil {
			t.Errorf("report totals: %+v", tot)
		}
		full, costed := map[string]bool{}, map[string]bool{}
		for _, r := range rep2.Rows {
			if r.Sessions > 0 && r.Calls > 0 && r.Leads > 0 && r.Orders > 0 {
				full[r.Dims["source"]] = true
			}
			if r.Cost != "0.00" && r.Clicks > 0 {
				costed[r.Dims["source"]+"/"+r.Dims["campaign"]] = true
			}
		}
		if len(full) < max(3, scale(5)) || len(costed) < 6 {
			t.Errorf("sources with sessions, calls, leads and orders: %v; campaigns with costs: %v", full, costed)
		}
		rungs := map[string]int64{}
		for _, q := range rep2.Quality {
			rungs[q.Rung] = q.Orders
		}
		for _, r := range matching.Rungs {
			if rungs[r] == 0 {
				t.Errorf("no order matched by %s: %v", r, rep2.Quality)
			}
		}
		if share := float64(rungs[matching.RungNotFound]) / float64(second.Orders); share < 0.03 || share > 0.08 {
			t.Errorf("%.1f%% of orders not found, want about 5%%", share*100)
		}
		byType := report(t, db, second, "traffic_type")
		types := map[string]bool{}
		for _, r := range byType.Rows {
			if r.Sessions > 0 {
				types[r.Dims["traffic_type"]] = true
			}
		}
		for _, typ := range []tracker.TrafficType{tracker.Ad, tracker.Organic, tracker.Social, tracker.Referral, tracker.Email, tracker.Direct} {
			if !types[string(typ)] {
				t.Errorf("no %s sessions: %v", typ, types)
			}
		}

		// Orders in every status type, and one status the mapping lacks.
		statuses := map[string]int{}
		rows, err := db.Reader().QueryContext(ctx, `SELECT COALESCE(status_type, 'UNMAPPED'), count(*) FROM crm_orders WHERE counter_id = $1 GROUP BY 1`, second.CounterID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var st string
			var n int
			rows.Scan(&st, &n)
			statuses[st] = n
		}
		rows.Close()
		for _, st := range append(crm.StatusTypes, "UNMAPPED") {
			if statuses[string(st)] == 0 {
				t.Errorf("no %s orders: %v", st, statuses)
			}
		}
		unmapped, err := crm.UnmappedStatuses(ctx, db, second.CounterID)
		if err != nil || len(unmapped) != 1 || unmapped[0].Code != unmappedStatus {
			t.Errorf("unmapped statuses: %+v %v", unmapped, err)
		}

		// Reset leaves nothing of the demo, and the other shop as it was.
		if _, err := db.Writer().ExecContext(ctx, `INSERT INTO bot_hits (counter_id, day, hits) VALUES ($1, '2026-04-01', 3)`, shop.ID); err != nil {
			t.Fatal(err)
		}
		if err := Reset(ctx, db, second.CounterID); err != nil {
			t.Fatal(err)
		}
		for _, table := range counterTables {
			var n int
			if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE counter_id = $1`, second.CounterID).Scan(&n); err != nil || n != 0 {
				t.Errorf("%s: %d rows of the reset counter (%v)", table, n, err)
			}
		}
		if _, err := counter.Get(ctx, db, second.CounterID); err != counter.ErrNotFound {
			t.Errorf("the reset counter: %v", err)
		}
		var n int
		if err := db.Reader().QueryRowContext(ctx, `SELECT hits FROM bot_hits WHERE counter_id = $1`, shop.ID).Scan(&n); err != nil || n != 3 {
			t.Errorf("the other shop's data: %d %v", n, err)
		}
	})
}

// A table with a counter_id column that Reset does not know would keep a
// deleted demo's rows (and, on SQLite, hand them to the next counter that
// reuses the id). This fails when a migration adds one.
func TestResetCoversEveryTable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		query := `SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) c
			WHERE m.type = 'table' AND c.name = 'counter_id' ORDER BY m.name`
		if db.Dialect() == store.Postgres {
			query = `SELECT table_name FROM information_schema.columns
				WHERE table_schema = current_schema() AND column_name = 'counter_id' ORDER BY table_name`
		}
		rows, err := db.Reader().Query(query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var tables []string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, name)
			if !slices.Contains(counterTables, name) {
				t.Errorf("table %s has a counter_id column, but demo.Reset does not delete from it: add it to counterTables", name)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(tables) < 20 {
			t.Fatalf("read only %d tables from the schema: %v", len(tables), tables)
		}
		for _, name := range counterTables {
			if !slices.Contains(tables, name) {
				t.Errorf("counterTables names %s, which the schema does not have", name)
			}
		}
	})
}

// The generator alone: ids in the shapes the collector and t.js use,
// sources as the collector classifies them, another seed another world.
func TestBuild(t *testing.T) {
	loc, err := time.LoadLocation(Timezone)
	if err != nil {
		t.Fatal(err)
	}
	w := build(7, 30, now, loc)
	sids := map[string]bool{}
	for _, s := range w.sessions {
		if !tracker.ValidID(s.sid) || !tracker.ValidID(s.v.uuid) || sids[s.sid] {
			t.Fatalf("session %q of visitor %q", s.sid, s.v.uuid)
		}
		sids[s.sid] = true
		if s.start.Before(w.from) || !s.last.Before(w.to.Add(3*time.Hour)) || s.pageviews+s.events != len(s.hits) {
			t.Fatalf("session %s: %v … %v, %d+%d hits of %d", s.sid, s.start, s.last, s.pageviews, s.events, len(s.hits))
		}
		if s.ad != nil && (s.source.Type != tracker.Ad || s.source.Source != s.ad.source || s.campaign.Name != s.ad.name) {
			t.Fatalf("ad session %s classified %+v", s.sid, s.source)
		}
	}
	for _, c := range w.calls {
		if c.at.Before(w.from) || !c.at.Before(w.to) || (c.s != nil) != (c.lease != nil) {
			t.Fatalf("call %+v", c)
		}
	}
	other := build(8, 30, now, loc)
	if len(other.sessions) == len(w.sessions) && other.sessions[0].sid == w.sessions[0].sid {
		t.Error("seed 8 made the world of seed 7")
	}
	short := build(7, 3, now, loc)
	if n := len(short.sessions); n < 1500 || n > 3000 {
		t.Errorf("3 days: %d sessions", n)
	}
}

// The demo's ads earn what real ones earn, so that a marketer believes the
// report: the paid traffic as a whole, and Yandex Direct (most of the ad
// spend), return 0.5–4 times their cost in margin (ROMI); requests and
// orders cost what Moscow furniture pays for them; the campaigns differ —
// brand search earns most, broad display loses money — and ad costs are a
// believable share of the shop's revenue. A month, whatever the race
// detector costs: a few days hold too few orders per campaign for a story.
func TestStory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		res, err := Generate(context.Background(), db, Options{Seed: 7, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		num := func(n json.Number) float64 {
			f, err := n.Float64()
			if err != nil {
				t.Fatalf("%q: %v", n, err)
			}
			return f
		}
		romi := func(m reports.Metrics) float64 {
			if m.ROMI == nil {
				t.Fatalf("no ROMI in %+v", m)
			}
			return *m.ROMI
		}

		byType := report(t, db, res, "traffic_type")
		var ad *reports.Row
		for i, r := range byType.Rows {
			if r.Dims["traffic_type"] == string(tracker.Ad) {
				ad = &byType.Rows[i]
			}
		}
		if ad == nil || num(ad.Cost) != num(byType.Totals.Cost) {
			t.Fatalf("the ad costs are not all on the ad row: %+v", byType.Rows)
		}
		cost := num(ad.Cost)
		if r := romi(ad.Metrics); r < 0.5 || r > 4 {
			t.Errorf("paid traffic: ROMI %.2f, want 0.5–4", r)
		}
		if ad.ROI == nil || ad.CPL == nil || ad.CPO == nil {
			t.Fatalf("paid traffic: no ROI, CPL or CPO: %+v", ad.Metrics)
		}
		for _, c := range []struct {
			what   string
			v      float64
			lo, hi float64
		}{
			{"revenue over costs (ROI)", *ad.ROI, 1.5, 6},
			{"a click (CPC, ₽)", cost / ad.Clicks, 50, 250},
			{"a request (CPL, ₽)", num(*ad.CPL), 2000, 9000},
			{"an order (CPO, ₽)", num(*ad.CPO), 4000, 15000},
			// ДРР, the ad costs' share of the shop's revenue (every channel's).
			{"ad costs / revenue", cost / num(byType.Totals.Revenue), 0.05, 0.15},
		} {
			if c.v < c.lo || c.v > c.hi {
				t.Errorf("paid traffic: %s %.2f, want %.2f–%.2f", c.what, c.v, c.lo, c.hi)
			}
		}

		for _, r := range report(t, db, res, "source,medium").Rows {
			if r.Dims["source"] == "yandex" && r.Dims["medium"] == "cpc" {
				if v := romi(r.Metrics); v < 0.5 || v > 4 {
					t.Errorf("yandex/cpc: ROMI %.2f, want 0.5–4", v)
				}
			}
		}

		byCampaign := map[string]float64{}
		inRange := 0
		for _, r := range report(t, db, res, "source,medium,campaign").Rows {
			if r.Cost == "0.00" {
				continue
			}
			v := romi(r.Metrics)
			byCampaign[r.Dims["campaign"]] = v
			if v >= 0.5 && v <= 4 {
				inRange++
			}
			if v > 15 {
				t.Errorf("%s/%s/%s: ROMI %.2f; no campaign earns that", r.Dims["source"], r.Dims["medium"], r.Dims["campaign"], v)
			}
		}
		if len(byCampaign) != 8 || inRange < len(byCampaign)/2 {
			t.Errorf("%d of %d campaigns have a ROMI of 0.5–4, want most: %v", inRange, len(byCampaign), byCampaign)
		}
		best, worst := "", ""
		for c, v := range byCampaign {
			if best == "" || v > byCampaign[best] {
				best = c
			}
			if worst == "" || v < byCampaign[worst] {
				worst = c
			}
		}
		if best != yandexBrand.name || byCampaign[best] < 3 {
			t.Errorf("the best campaign is %s (ROMI %.2f), want brand search earning at least 3 times its cost: %v", best, byCampaign[best], byCampaign)
		}
		if byCampaign[yandexNetwork.name] >= 0 || byCampaign[worst] >= 0 {
			t.Errorf("broad display (%s) has ROMI %.2f, want a loss: %v", yandexNetwork.name, byCampaign[yandexNetwork.name], byCampaign)
		}
	})
}
