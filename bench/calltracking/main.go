// Command calltracking measures number assignment and call matching, in
// one run on one machine, on SQLite and PostgreSQL:
//
//   - baseline (PostgreSQL): one transaction with a single indexed
//     SELECT … FOR UPDATE SKIP LOCKED on the pool's numbers — the least a
//     safe assignment can cost;
//   - assign: calltracking.Assign for new sessions, from a 100-number pool
//     whose leases keep expiring (sessions arrive on a simulated clock at a
//     rate the pool can just serve, so numbers are both taken and freed);
//   - match: calltracking.Ingest of webhook calls to pool numbers, each
//     matched to the session holding the number at the call's start.
//
// Each runs with -workers concurrent goroutines for -duration. It prints
// operations/s, the ratio to the baseline, and p50/p99 latency.
//
//	go run ./bench/calltracking -duration 20s
//
// Machines here are shared and noisy; only ratios of runs in the same
// process mean much. See BENCHMARKS.md.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/store"
)

func main() {
	engines := flag.String("engines", "sqlite,postgres", "engines to measure")
	duration := flag.Duration("duration", 20*time.Second, "length of each run")
	workers := flag.Int("workers", 16, "concurrent goroutines")
	pg := flag.String("postgres", cmpOr(os.Getenv("THROUGHLINE_TEST_POSTGRES"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		"PostgreSQL server to create scratch databases on")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench: ")

	work, err := os.MkdirTemp("", "throughline-ctbench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)

	fmt.Printf("\n%-10s %-46s %10s %7s %9s %9s\n", "engine", "run", "ops/s", "ratio", "p50", "p99")
	var baseline float64
	for _, engine := range strings.Split(*engines, ",") {
		engine = strings.TrimSpace(engine)
		dsn, drop := "", func() {}
		if engine == "postgres" {
			if dsn, drop, err = scratchDatabase(*pg); err != nil {
				log.Fatal(err)
			}
		} else {
			dsn = filepath.Join(work, "bench.db")
		}
		b, err := setup(dsn)
		if err != nil {
			log.Fatalf("%s: %v", engine, err)
		}
		if engine == "postgres" {
			r := b.run(*workers, *duration, b.skipLocked)
			baseline = r.rate
			r.print(engine, "baseline: SELECT … FOR UPDATE SKIP LOCKED", 1)
		}
		ratio := func(r result) float64 {
			if baseline == 0 {
				return 0
			}
			return r.rate / baseline
		}
		ra := b.run(*workers, *duration, b.assign)
		ra.print(engine, "assign a number to a new session", ratio(ra))
		rm := b.run(*workers, *duration, b.match)
		rm.print(engine, "webhook call matched to its session", ratio(rm))
		fmt.Printf("%-10s %d sessions got a number, %d found the pool full (fallback); %d calls matched to a session (lease or cooldown after it) of %d\n",
			engine, b.leased.Load(), b.fallback.Load(), b.matched.Load(), b.calls.Load())
		b.db.Close()
		drop()
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type bench struct {
	db                       *store.DB
	c                        counter.Counter
	poolID                   int64
	clock                    atomic.Int64 // simulated time, microseconds since t0
	seq                      atomic.Int64
	leased                   atomic.Int64
	fallback, matched, calls atomic.Int64
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func setup(dsn string) (*bench, error) {
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, "", store.Options{})
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		return nil, err
	}
	c, _, err := counter.Create(ctx, db, counter.NewCounter{Name: "Bench", Domain: "shop.ru"})
	if err != nil {
		return nil, err
	}
	// A one-minute hold and the shortest cooldown (30 s): a number serves a
	// session for a minute and a half of simulated time, then the next.
	hold, cool := 1, 30
	if c, err = counter.Update(ctx, db, c.ID, counter.Patch{LeaseHoldMinutes: &hold, LeaseCooldownSeconds: &cool}); err != nil {
		return nil, err
	}
	name, fallback := "Paid", "74950000000"
	p, err := calltracking.CreatePool(ctx, db, c.ID, calltracking.PoolInput{Name: &name, FallbackNumber: &fallback})
	if err != nil {
		return nil, err
	}
	for i := range 100 {
		n := fmt.Sprintf("7495111%04d", i)
		if _, err := calltracking.SaveNumber(ctx, db, c.ID, calltracking.NumberInput{Number: &n, PoolID: &p.ID}); err != nil {
			return nil, err
		}
	}
	// Only a recorded session of its visitor gets a number: record the
	// sessions the assign run will use, as the collector would have.
	const sessions, perInsert = 120_000, 500
	for start := 0; start < sessions; start += perInsert {
		args := make([]any, 0, perInsert*4)
		for i := start + 1; i <= start+perInsert; i++ {
			args = append(args, c.ID, sid(int64(i)), visitor(int64(i)), t0)
		}
		if _, err := db.Writer().ExecContext(ctx, `WITH v(c, s, u, t) AS (VALUES `+db.Dialect().TypedValues(perInsert, "bigint", "text", "text", "timestamptz")+`)
			INSERT INTO sessions (counter_id, sid, uuid, started_at, landing_url, referrer,
			utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids, traffic_type, source, medium, device, browser, os, ip)
			SELECT c, s, u, t, 'https://shop.ru/', '', 'yandex', 'cpc', '', '', '', '{}', 'ad', 'yandex', 'cpc', 'desktop', 'Chrome', 'Linux', ''
			FROM v`, args...); err != nil {
			return nil, fmt.Errorf("record sessions: %w", err)
		}
	}
	return &bench{db: db, c: c, poolID: p.ID}, nil
}

func sid(i int64) string     { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }
func visitor(i int64) string { return fmt.Sprintf("10000000-0000-4000-8000-%012d", i) }

// now advances the simulated clock by 0.5 s per assignment: 120 new
// sessions a simulated minute against 100 numbers that each serve a session
// every 1.5 minutes, so the pool runs full and numbers are freed as fast as
// they are taken.
func (b *bench) now() time.Time {
	return t0.Add(time.Duration(b.clock.Add(500_000)) * time.Microsecond)
}

func (b *bench) skipLocked(ctx context.Context) error {
	tx, err := b.db.Writer().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n string
	err = tx.QueryRowContext(ctx, `SELECT number FROM tracked_numbers WHERE counter_id = $1 AND pool_id = $2 AND active
		ORDER BY lease_end LIMIT 1 FOR UPDATE SKIP LOCKED`, b.c.ID, b.poolID).Scan(&n)
	if err != nil && err != sql.ErrNoRows {
		return err
	}
	return tx.Commit()
}

func (b *bench) assign(ctx context.Context) error {
	i := b.seq.Add(1)
	s, err := calltracking.Assign(ctx, b.db, b.c, sid(i), visitor(i), b.now())
	switch {
	case err != nil:
		return err
	case s != nil && s.Kind == "lease":
		b.leased.Add(1)
	case s != nil:
		b.fallback.Add(1)
	}
	return nil
}

// match reports a call to a pool number at a random moment of the
// simulated day the assign run covered.
func (b *bench) match(ctx context.Context) error {
	i := b.seq.Add(1)
	span := max(b.clock.Load(), 1)
	at := t0.Add(time.Duration(i*7919%span) * time.Microsecond)
	c, err := calltracking.Ingest(ctx, b.db, b.c, calltracking.Event{Provider: "generic", CallID: fmt.Sprint("call-", i),
		Caller: fmt.Sprintf("7916%07d", i%10_000_000), Tracked: fmt.Sprintf("7495111%04d", i%100), StartedAt: at}, at.Add(time.Second))
	if err != nil {
		return err
	}
	b.calls.Add(1)
	if c.Match.Type == calltracking.MatchLease || c.Match.Type == calltracking.MatchAfterLease {
		b.matched.Add(1)
	}
	return nil
}

type result struct {
	rate     float64
	p50, p99 time.Duration
}

func (r result) print(engine, name string, ratio float64) {
	rs := fmt.Sprintf("%.2f", ratio)
	if ratio == 0 {
		rs = "-"
	}
	fmt.Printf("%-10s %-46s %10.0f %7s %9s %9s\n", engine, name, r.rate, rs, r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond))
}

func (b *bench) run(workers int, d time.Duration, op func(context.Context) error) result {
	ctx := context.Background()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t := time.Now()
				if err := op(ctx); err != nil {
					log.Fatal(err)
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	return result{rate: float64(len(lat)) / elapsed.Seconds(), p50: pct(0.5), p99: pct(0.99)}
}

func scratchDatabase(base string) (string, func(), error) {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("throughline_ctbench_%d", time.Now().UnixNano())
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
