// Command matching measures order matching and the end-to-end report on a
// year of a busy shop (issue 6), on SQLite and PostgreSQL:
//
//   - generated data: -sessions sessions of -visitors visitors over 365
//     days, -calls calls and -leads leads, -orders CRM orders carrying every
//     kind of evidence (sid, uuid, caller phone, phone, e-mail, md5,
//     nothing), ad costs per day and campaign;
//
//   - (a) full matching of every order — `throughline match --counter ID`
//     as a child process, for its wall time and peak RSS — against the
//     baseline of one hand-written SQL statement that matches the orders to
//     sessions by sid and uuid only and stores the pairs (run before and
//     after; the faster counts);
//
//   - (b) 1,000 late calls from customers with orders (calltracking.Ingest),
//     then the incremental re-match they queue;
//
//   - (c) the end-to-end report for the 12 months by source, medium and
//     campaign: cold (rollups built), then warm p50/p95 of -reports runs,
//     against the same aggregate as plain GROUP BYs over the raw tables;
//     the two are checked to agree.
//
//     go run ./bench/matching                      # the sizes: 10 M sessions
//     go run ./bench/matching -scale 0.05          # a quick look
//
// Machines here are shared and noisy; only ratios of runs in the same
// process mean much. See BENCHMARKS.md.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/reports"
	"github.com/throughline/throughline/internal/store"
)

var (
	nSessions = flag.Int("sessions", 10_000_000, "sessions")
	nVisitors = flag.Int("visitors", 3_000_000, "visitors")
	nCalls    = flag.Int("calls", 500_000, "calls")
	nLeads    = flag.Int("leads", 500_000, "leads")
	nOrders   = flag.Int("orders", 300_000, "orders")
	scale     = flag.Float64("scale", 1, "multiply every size by this")
	nReports  = flag.Int("reports", 20, "warm report runs")
	doReport  = flag.Bool("report", true, "measure the report too (false: matching only)")
	profile   = flag.String("cpuprofile", "", "match in this process, not a child, and write its CPU profile here")
)

const days = 365

// start is the first day of the generated year; the bench runs "now" a day
// after its end.
var start = time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)

func main() {
	engines := flag.String("engines", "sqlite,postgres", "engines to measure")
	pg := flag.String("postgres", cmp(os.Getenv("THROUGHLINE_TEST_POSTGRES"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		"PostgreSQL server to create scratch databases on")
	keep := flag.Bool("keep", false, "keep the scratch databases (prints where)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	for _, p := range []*int{nSessions, nVisitors, nCalls, nLeads, nOrders} {
		*p = int(math.Round(float64(*p) * *scale))
	}

	work, err := os.MkdirTemp("", "throughline-matchbench-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(work)
	}
	bin := filepath.Join(work, "throughline")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/throughline").CombinedOutput(); err != nil {
		log.Fatalf("build: %v\n%s", err, out)
	}
	fmt.Printf("data: %d sessions of %d visitors over %d days, %d calls, %d leads, %d orders\n",
		*nSessions, *nVisitors, days, *nCalls, *nLeads, *nOrders)
	for _, engine := range strings.Split(*engines, ",") {
		engine = strings.TrimSpace(engine)
		dsn, drop := filepath.Join(work, "bench.db"), func() {}
		if engine == "postgres" {
			if dsn, drop, err = scratchDatabase(*pg); err != nil {
				log.Fatal(err)
			}
		}
		if err := measure(engine, dsn, bin); err != nil {
			log.Fatalf("%s: %v", engine, err)
		}
		if *keep {
			fmt.Printf("%s: kept %s\n", engine, dsn)
		} else {
			drop()
		}
	}
}

func measure(engine, dsn, bin string) error {
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, "", store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	c, _, err := counter.Create(ctx, db, counter.NewCounter{Name: "Bench", Domain: "bench.ru", Timezone: "UTC"})
	if err != nil {
		return err
	}
	g := &gen{db: db, d: db.Dialect(), counter: c.ID}
	t0 := time.Now()
	if err := g.load(ctx); err != nil {
		return err
	}
	fmt.Printf("\n== %s: data generated and loaded in %s\n", engine, time.Since(t0).Round(time.Second))
	if _, err := matching.EnqueueAll(ctx, db.Writer(), c.ID, time.Now()); err != nil {
		return err
	}

	// (a) Full matching against the sid/uuid join.
	base1, err := g.baseline(ctx)
	if err != nil {
		return err
	}
	var st matching.Stats
	var took time.Duration
	var rss float64
	if *profile != "" {
		f, err := os.Create(engine + "-" + *profile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		t := time.Now()
		st, err = matching.Run(ctx, db, c.ID)
		took = time.Since(t)
		pprof.StopCPUProfile()
		f.Close()
		if err != nil {
			return err
		}
	} else {
		cmd := exec.Command(bin, "match", "--counter", strconv.FormatInt(c.ID, 10), "--json")
		cmd.Env = append(os.Environ(), "THROUGHLINE_DB="+dsn)
		out, t, r, err := timed(cmd)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(out, &st); err != nil {
			return fmt.Errorf("match output %q: %w", out, err)
		}
		took, rss = t, r
	}
	base2, err := g.baseline(ctx)
	if err != nil {
		return err
	}
	base := min(base1.took, base2.took)
	rate := func(d time.Duration) float64 { return float64(*nOrders) / d.Seconds() }
	fmt.Printf("%-10s %-58s %10s %12s %7s %9s\n", "engine", "run", "time", "orders/s", "ratio", "RSS MiB")
	fmt.Printf("%-10s %-58s %10s %12.0f %7.2f\n", engine, fmt.Sprintf("baseline: one SQL join by sid and uuid (%d pairs)", base1.pairs),
		base.Round(time.Millisecond), rate(base), 1.0)
	fmt.Printf("%-10s %-58s %10s %12.0f %7.2f %9.0f\n", engine, "full ladder: throughline match (child process)",
		took.Round(time.Millisecond), rate(took), base.Seconds()/took.Seconds(), rss)
	fmt.Printf("%-10s   matched %d orders, %d touches; by rung %v\n", engine, st.Orders, st.Touches, st.ByRung)

	// (b) 1,000 late calls, and the re-match they cause.
	late, ingest, err := g.lateCalls(ctx, c, 1000)
	if err != nil {
		return err
	}
	queued, _ := matching.Queued(ctx, db, c.ID)
	t1 := time.Now()
	st, err = matching.Run(ctx, db, c.ID)
	if err != nil {
		return err
	}
	fmt.Printf("%-10s %-58s %10s   (%d calls stored in %s; %d orders queued, %d re-matched)\n", engine, "incremental re-match after 1,000 late calls",
		time.Since(t1).Round(time.Millisecond), late, ingest.Round(time.Millisecond), queued, st.Orders)

	// (c) The report, against plain GROUP BYs.
	if !*doReport {
		return nil
	}
	return g.reports(ctx, engine, c)
}

type gen struct {
	db      *store.DB
	d       store.Dialect
	counter int64
}

// The traffic keys: a fifth of visits are direct, a fifth organic, a half
// from ads (40 campaigns with terms), the rest referral and social.
type source struct {
	typ, source, medium, campaign, content, term, clicks string
}

func pick(r *rand.Rand) source {
	switch x := r.IntN(100); {
	case x < 20:
		return source{"direct", "(direct)", "(none)", "", "", "", "{}"}
	case x < 40:
		return source{"organic", []string{"yandex", "google"}[r.IntN(2)], "organic", "", "", "", "{}"}
	case x < 72:
		c := r.IntN(25)
		return source{"ad", "yandex", "cpc", "y-campaign-" + strconv.Itoa(c), "ad" + strconv.Itoa(r.IntN(3)), "term " + strconv.Itoa(r.IntN(30)),
			`{"yclid":"` + strconv.FormatUint(r.Uint64()>>1, 10) + `"}`}
	case x < 87:
		c := r.IntN(10)
		return source{"ad", "google", "cpc", "g-campaign-" + strconv.Itoa(c), "", "kw " + strconv.Itoa(r.IntN(20)),
			`{"gclid":"` + strconv.FormatUint(r.Uint64()>>1, 10) + `"}`}
	case x < 92:
		return source{"ad", "vk", "cpc", "vk-campaign-" + strconv.Itoa(r.IntN(5)), "", "", "{}"}
	case x < 97:
		return source{"referral", "site" + strconv.Itoa(r.IntN(50)) + ".ru", "referral", "", "", "", "{}"}
	}
	return source{"social", "vk.com", "social", "", "", "", "{}"}
}

// session i, derived from i alone: orders, calls and leads refer to
// sessions without keeping ten million of them in memory.
type session struct {
	sid, uuid string
	visitor   int
	at        time.Time
	src       source
}

func sessionAt(i int) session {
	r := rand.New(rand.NewPCG(1, uint64(i)))
	// Visitors: a skewed draw, so some come back often.
	v := int(math.Pow(r.Float64(), 1.6) * float64(*nVisitors))
	at := start.Add(time.Duration(r.Int64N(int64(days * 24 * time.Hour))))
	return session{sid: id(1, i), uuid: id(2, v), visitor: v, at: at.Truncate(time.Microsecond), src: pick(r)}
}

func id(kind, n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", kind, n) }

func phoneOf(visitor int) string { return strconv.Itoa(79000000000 + visitor) }
func emailOf(visitor int) string { return "v" + strconv.Itoa(visitor) + "@example.ru" }

type call struct {
	caller string
	at     time.Time
	s      *session
}

func callAt(j int) call {
	r := rand.New(rand.NewPCG(3, uint64(j)))
	s := sessionAt(r.IntN(*nSessions))
	c := call{caller: phoneOf(s.visitor), at: s.at.Add(time.Duration(1+r.IntN(20)) * time.Minute)}
	if r.IntN(10) < 7 { // the rest: static numbers, no session
		c.s = &s
	}
	return c
}

type lead struct {
	phone, email string
	at           time.Time
	s            session
}

func leadAt(j int) lead {
	r := rand.New(rand.NewPCG(4, uint64(j)))
	s := sessionAt(r.IntN(*nSessions))
	return lead{phone: phoneOf(s.visitor), email: emailOf(s.visitor), at: s.at.Add(time.Duration(1+r.IntN(20)) * time.Minute), s: s}
}

// insert writes rows in transactions of up to 20,000.
func (g *gen) insert(ctx context.Context, table string, cols []string, n int, row func(i int) []any) error {
	for from := 0; from < n; from += 20_000 {
		rows := make([][]any, 0, 20_000)
		for i := from; i < min(from+20_000, n); i++ {
			rows = append(rows, row(i))
		}
		conn, err := g.db.Writer().Conn(ctx)
		if err != nil {
			return err
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			conn.Close()
			return err
		}
		if err := g.d.Insert(ctx, conn, tx, table, cols, rows); err != nil {
			tx.Rollback()
			conn.Close()
			return err
		}
		if err := tx.Commit(); err != nil {
			conn.Close()
			return err
		}
		conn.Close()
		if from/20_000%50 == 0 {
			fmt.Fprintf(os.Stderr, "\r%s: %d / %d   ", table, from, n)
		}
	}
	fmt.Fprintf(os.Stderr, "\r%s: %d rows   \n", table, n)
	return nil
}

func (g *gen) load(ctx context.Context) error {
	err := g.insert(ctx, "sessions", strings.Fields(`counter_id sid uuid started_at landing_url referrer utm_source utm_medium
		utm_campaign utm_content utm_term click_ids traffic_type source medium device browser os ip`), *nSessions, func(i int) []any {
		s := sessionAt(i)
		utmSource, utmMedium := s.src.source, s.src.medium
		if s.src.typ != "ad" {
			utmSource, utmMedium = "", ""
		}
		return []any{g.counter, s.sid, s.uuid, s.at, "https://bench.ru/", "", utmSource, utmMedium,
			s.src.campaign, s.src.content, s.src.term, s.src.clicks, s.src.typ, s.src.source, s.src.medium, "desktop", "Chrome", "Linux", ""}
	})
	if err != nil {
		return err
	}
	// A caller's first call in 30 days is unique; the generator does not
	// track that, so every tenth call is a repeat.
	err = g.insert(ctx, "calls", strings.Fields(`counter_id provider external_id direction caller caller_raw caller_md5 tracked_number started_at
		answered talk_seconds wait_seconds disposition recording_url employee ended match match_reason lease_id sid uuid traffic_type source
		medium campaign is_unique created_at updated_at`), *nCalls, func(j int) []any {
		c := callAt(j)
		m, sid, uuid, typ, src, med, camp := "static", "", "", "offline", "radio", "offline", ""
		if c.s != nil {
			m, sid, uuid, typ, src, med, camp = "lease", c.s.sid, c.s.uuid, c.s.src.typ, c.s.src.source, c.s.src.medium, c.s.src.campaign
		}
		answered := j%4 != 0
		return []any{g.counter, "generic", "c" + strconv.Itoa(j), "in", c.caller, c.caller, normalize.MD5(c.caller), "74950000000", c.at,
			answered, int64(60), int64(5), "", "", "", true, m, "", "", sid, uuid, typ, src, med, camp, j%10 != 0, c.at, c.at}
	})
	if err != nil {
		return err
	}
	err = g.insert(ctx, "leads", strings.Fields(`counter_id type subject name phone phone_raw email phone_md5 email_md5 comment sid uuid
		traffic_type source medium campaign origin created_at received_at`), *nLeads, func(j int) []any {
		l := leadAt(j)
		return []any{g.counter, "form", "", "", l.phone, "", l.email, normalize.MD5(l.phone), normalize.MD5(l.email), "", l.s.sid, l.s.uuid,
			l.s.src.typ, l.s.src.source, l.s.src.medium, l.s.src.campaign, "site", l.at, l.at}
	})
	if err != nil {
		return err
	}
	statuses := []struct {
		code string
		typ  any
	}{{"PAID", "PAID"}, {"PAID", "PAID"}, {"IN_PROGRESS", "IN_PROGRESS"}, {"CANCELLED", "CANCELLED"}, {"SPAM", "SPAM"}, {"weird", nil}}
	now := start.AddDate(0, 0, days)
	err = g.insert(ctx, "crm_orders", strings.Fields(`counter_id order_id contact_id created_at updated_at finished_at status status_type revenue
		cost margin items currency comment order_type sid caller_phone client_ids phones emails phones_md5 emails_md5 products goals
		attributes intake id_generated row_hash import_id imported_at changed_at`), *nOrders, func(k int) []any {
		r := rand.New(rand.NewPCG(5, uint64(k)))
		var sid, caller string
		clientIDs, phones, emails, phonesMD5 := "[]", "[]", "[]", "[]"
		var created time.Time
		list := func(v string) string { return `["` + v + `"]` }
		switch x := k % 20; {
		case x < 6: // the session id (K50's sid)
			s := sessionAt(r.IntN(*nSessions))
			sid, created = s.sid, s.at.Add(time.Hour)
		case x < 10: // the visitor id
			s := sessionAt(r.IntN(*nSessions))
			clientIDs, created = list(s.uuid), s.at.Add(2*time.Hour)
		case x < 14: // the number the customer called from
			c := callAt(r.IntN(*nCalls))
			caller, created = c.caller, c.at.Add(time.Hour)
		case x < 17: // a phone a lead left
			l := leadAt(r.IntN(*nLeads))
			phones, created = list(l.phone), l.at.Add(time.Hour)
		case x < 18: // an e-mail
			l := leadAt(r.IntN(*nLeads))
			emails, created = list(l.email), l.at.Add(time.Hour)
		case x < 19: // the md5 of a phone
			l := leadAt(r.IntN(*nLeads))
			phonesMD5, created = list(normalize.MD5(l.phone)), l.at.Add(time.Hour)
		default: // nothing Throughline knows
			phones, created = list(strconv.Itoa(78000000000+k)), start.Add(time.Duration(r.Int64N(int64(days*24*time.Hour))))
		}
		if created.After(now) {
			created = now.Add(-time.Minute)
		}
		st := statuses[r.IntN(len(statuses))]
		revenue := int64(100_000 + r.IntN(4_900_000))
		var cost any
		if r.IntN(2) == 0 {
			cost = revenue * 6 / 10
		}
		return []any{g.counter, "o" + strconv.Itoa(k), "", created, created, nil, st.code, st.typ, revenue, cost, nil, nil, "RUB", "", "online",
			sid, caller, clientIDs, phones, emails, phonesMD5, "[]", "{}", "[]", "{}", "k50", false, int64(k), "bench", now, now}
	})
	if err != nil {
		return err
	}
	var campaigns []source
	for c := range 25 {
		campaigns = append(campaigns, source{source: "yandex", medium: "cpc", campaign: "y-campaign-" + strconv.Itoa(c)})
	}
	for c := range 10 {
		campaigns = append(campaigns, source{source: "google", medium: "cpc", campaign: "g-campaign-" + strconv.Itoa(c)})
	}
	for c := range 5 {
		campaigns = append(campaigns, source{source: "vk", medium: "cpc", campaign: "vk-campaign-" + strconv.Itoa(c)})
	}
	err = g.insert(ctx, "ad_costs", strings.Fields(`counter_id day source medium campaign content term cost clicks impressions currency imported_at`),
		days*len(campaigns), func(i int) []any {
			c := campaigns[i%len(campaigns)]
			day := start.AddDate(0, 0, i/len(campaigns)).Format(time.DateOnly)
			return []any{g.counter, day, c.source, c.medium, c.campaign, "", "", int64(100_000 + i%7*10_000), int64(40), int64(900), "RUB", now}
		})
	if err != nil {
		return err
	}
	// Fresh statistics, as a database that has been running has.
	_, err = g.db.Writer().ExecContext(ctx, `ANALYZE`)
	return err
}

type baselineRun struct {
	took  time.Duration
	pairs int64
}

// baseline matches orders to sessions by sid and by uuid (the order's first
// client id; its sessions in the year before the order) in one statement,
// and stores the pairs.
func (g *gen) baseline(ctx context.Context) (baselineRun, error) {
	firstClient := `o.client_ids::jsonb->>0`
	lookback := `o.created_at - interval '365 days'`
	if g.d == store.SQLite {
		firstClient = `json_extract(o.client_ids, '$[0]')`
		lookback = `datetime(o.created_at, '-365 days')`
	}
	w := g.db.Writer()
	w.ExecContext(ctx, `DROP TABLE IF EXISTS baseline_pairs`)
	start := time.Now()
	if _, err := w.ExecContext(ctx, `CREATE TABLE baseline_pairs AS
		SELECT o.order_id, s.sid FROM crm_orders o
		JOIN sessions s ON s.counter_id = o.counter_id AND s.sid = o.sid
		WHERE o.counter_id = $1 AND o.sid <> '' AND s.started_at <= o.created_at
		UNION ALL
		SELECT o.order_id, s.sid FROM crm_orders o
		JOIN sessions s ON s.counter_id = o.counter_id AND s.uuid = `+firstClient+`
		WHERE o.counter_id = $1 AND o.client_ids <> '[]' AND s.started_at <= o.created_at AND s.started_at >= `+lookback, g.counter); err != nil {
		return baselineRun{}, fmt.Errorf("baseline: %w", err)
	}
	r := baselineRun{took: time.Since(start)}
	if err := w.QueryRowContext(ctx, `SELECT count(*) FROM baseline_pairs`).Scan(&r.pairs); err != nil {
		return r, err
	}
	_, err := w.ExecContext(ctx, `DROP TABLE baseline_pairs`)
	return r, err
}

// lateCalls stores n calls, placed an hour before orders that were matched
// by their caller's number, through call tracking: each queues the orders of
// its caller.
func (g *gen) lateCalls(ctx context.Context, c counter.Counter, n int) (int, time.Duration, error) {
	static := "78005553535"
	src := calltracking.Traffic{Source: "tv", Medium: "offline"}
	if _, err := calltracking.SaveNumber(ctx, g.db, c.ID, calltracking.NumberInput{Number: &static, Source: &src}); err != nil {
		return 0, 0, err
	}
	rows, err := g.db.Reader().QueryContext(ctx, `SELECT caller_phone, created_at FROM crm_orders
		WHERE counter_id = $1 AND caller_phone <> '' ORDER BY order_id LIMIT $2`, c.ID, n)
	if err != nil {
		return 0, 0, err
	}
	type late struct {
		caller string
		at     time.Time
	}
	var calls []late
	for rows.Next() {
		var l late
		if err := rows.Scan(&l.caller, &l.at); err != nil {
			rows.Close()
			return 0, 0, err
		}
		calls = append(calls, l)
	}
	rows.Close()
	t0 := time.Now()
	for i, l := range calls {
		if _, err := calltracking.Ingest(ctx, g.db, c, calltracking.Event{Provider: "generic", CallID: "late-" + strconv.Itoa(i), Caller: l.caller,
			Tracked: static, StartedAt: l.at.Add(-time.Minute)}, time.Now()); err != nil {
			return i, 0, err
		}
	}
	return len(calls), time.Since(t0), nil
}

// reports times the end-to-end report over the year against plain
// GROUP BYs over the raw tables, and checks that they agree.
func (g *gen) reports(ctx context.Context, engine string, c counter.Counter) error {
	now := start.AddDate(0, 0, days+1)
	q, err := reports.ParseQuery(func(k string) string {
		return map[string]string{"from": start.Format(time.DateOnly), "to": start.AddDate(0, 0, days-1).Format(time.DateOnly)}[k]
	})
	if err != nil {
		return err
	}
	t0 := time.Now()
	rep, err := reports.EndToEnd(ctx, g.db, c.ID, c.Location(), q, now)
	if err != nil {
		return err
	}
	cold := time.Since(t0)
	var warm []time.Duration
	if *profile != "" {
		f, err := os.Create(engine + "-report-" + *profile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	for range *nReports {
		t := time.Now()
		if rep, err = reports.EndToEnd(ctx, g.db, c.ID, c.Location(), q, now); err != nil {
			return err
		}
		warm = append(warm, time.Since(t))
	}
	if *profile != "" {
		pprof.StopCPUProfile()
	}
	var plain []time.Duration
	var raw map[[3]string]*rawRow
	for range 3 {
		t := time.Now()
		if raw, err = g.groupBy(ctx, q); err != nil {
			return err
		}
		plain = append(plain, time.Since(t))
	}
	p50, p95 := percentiles(warm)
	b50, b95 := percentiles(plain)
	fmt.Printf("%-10s %-58s %10s   (%d rows; rollups built for the year)\n", engine, "report, 12 months by source/medium/campaign: cold", cold.Round(time.Millisecond), len(rep.Rows))
	fmt.Printf("%-10s %-58s %10s   p95 %s\n", engine, fmt.Sprintf("report, warm: p50 of %d runs", len(warm)), p50.Round(time.Millisecond), p95.Round(time.Millisecond))
	fmt.Printf("%-10s %-58s %10s   p95 %s   ratio of p95s %.1f×\n", engine, fmt.Sprintf("baseline: plain GROUP BYs over raw tables, median of %d", len(plain)),
		b50.Round(time.Millisecond), b95.Round(time.Millisecond), b95.Seconds()/p95.Seconds())
	// The two must agree: sessions, calls, leads exactly; orders and
	// revenue to rounding; visitors within the sketch's error.
	bad, worstVisitors := 0, 0.0
	for _, row := range rep.Rows {
		k := [3]string{row.Dims["source"], row.Dims["medium"], row.Dims["campaign"]}
		r := raw[k]
		if r == nil {
			r = &rawRow{}
		}
		rev, _ := strconv.ParseFloat(string(row.Revenue), 64)
		if row.Sessions != r.sessions || row.Calls != r.calls || row.Leads != r.leads ||
			math.Abs(row.Orders-r.orders) > 0.01 || math.Abs(rev-r.revenue/100) > 1 {
			bad++
			if bad <= 3 {
				fmt.Printf("%-10s   MISMATCH %v: report %+v, GROUP BY %+v\n", engine, k, row.Metrics, *r)
			}
		}
		if r.visitors > 100 {
			worstVisitors = max(worstVisitors, math.Abs(float64(row.Visitors)-float64(r.visitors))/float64(r.visitors))
		}
	}
	fmt.Printf("%-10s   report rows agree with the GROUP BYs: %d of %d differ; visitors (HyperLogLog) within %.1f%%\n",
		engine, bad, len(rep.Rows), 100*worstVisitors)
	return nil
}

type rawRow struct {
	sessions, visitors, calls, leads int64
	orders, revenue                  float64
}

// groupBy is the report's figures as plain GROUP BYs over the raw tables.
func (g *gen) groupBy(ctx context.Context, q reports.Query) (map[[3]string]*rawRow, error) {
	from, to := q.From, q.To.AddDate(0, 0, 1)
	out := map[[3]string]*rawRow{}
	get := func(k [3]string) *rawRow {
		if out[k] == nil {
			out[k] = &rawRow{}
		}
		return out[k]
	}
	scan := func(query string, fn func(k [3]string, a, b int64, f1, f2 float64), args ...any) error {
		rows, err := g.db.Reader().QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k [3]string
			var a, b int64
			var f1, f2 sql.NullFloat64
			if err := rows.Scan(&k[0], &k[1], &k[2], &a, &b, &f1, &f2); err != nil {
				return err
			}
			fn(k, a, b, f1.Float64, f2.Float64)
		}
		return rows.Err()
	}
	err := scan(`SELECT lower(source), lower(medium), utm_campaign, count(*), count(DISTINCT uuid), 0, 0 FROM sessions
		WHERE counter_id = $1 AND started_at >= $2 AND started_at < $3 GROUP BY lower(source), lower(medium), utm_campaign`,
		func(k [3]string, a, b int64, _, _ float64) { get(k).sessions, get(k).visitors = a, b }, g.counter, from, to)
	if err != nil {
		return nil, err
	}
	err = scan(`SELECT lower(source), lower(medium), campaign, count(*), 0, 0, 0 FROM calls
		WHERE counter_id = $1 AND started_at >= $2 AND started_at < $3 AND direction NOT IN ('out', 'internal') GROUP BY lower(source), lower(medium), campaign`,
		func(k [3]string, a, _ int64, _, _ float64) { get(k).calls = a }, g.counter, from, to)
	if err != nil {
		return nil, err
	}
	err = scan(`SELECT lower(source), lower(medium), campaign, count(*), 0, 0, 0 FROM leads
		WHERE counter_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY lower(source), lower(medium), campaign`,
		func(k [3]string, a, _ int64, _, _ float64) { get(k).leads = a }, g.counter, from, to)
	if err != nil {
		return nil, err
	}
	err = scan(`SELECT t.source, t.medium, t.campaign, 0, 0,
		       SUM(CASE WHEN o.status_type IS NULL OR o.status_type <> 'SPAM' THEN t.w_last_non_direct ELSE 0 END),
		       SUM(CASE WHEN o.status_type = 'PAID' THEN t.w_last_non_direct * o.revenue ELSE 0 END)
		FROM order_touches t JOIN crm_orders o ON o.counter_id = t.counter_id AND o.order_id = t.order_id
		WHERE t.counter_id = $1 AND t.order_created_at >= $2 AND t.order_created_at < $3 GROUP BY t.source, t.medium, t.campaign`,
		func(k [3]string, _, _ int64, f1, f2 float64) { get(k).orders, get(k).revenue = f1, f2 }, g.counter, from, to)
	if err != nil {
		return nil, err
	}
	err = scan(`SELECT source, medium, campaign, SUM(cost), 0, 0, 0 FROM ad_costs
		WHERE counter_id = $1 AND day >= $2 AND day < $3 GROUP BY source, medium, campaign`,
		func(k [3]string, _, _ int64, _, _ float64) { get(k) }, g.counter, from.Format(time.DateOnly), to.Format(time.DateOnly))
	return out, err
}

func percentiles(ds []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)] }
	return at(0.50), at(0.95)
}

// timed runs cmd and returns its output, wall time and peak RSS in MiB.
func timed(cmd *exec.Cmd) ([]byte, time.Duration, float64, error) {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	took := time.Since(t0)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	rss := 0.0
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	return out, took, rss, nil
}

func scratchDatabase(base string) (string, func(), error) {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("throughline_matchbench_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create scratch database: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		admin.Close()
	}, nil
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
