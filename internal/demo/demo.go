// Package demo creates a demo counter and fills it with a synthetic, seeded
// month of a furniture shop: visits from search and social ads, organic
// search, referrals, e-mail and direct; calls through a number pool and to
// offline static numbers; leads; a CRM's online and offline orders in every
// status; and the ad networks' costs — matched and rolled up, so that a
// newcomer sees a full end-to-end report seconds after the first command.
//
// The data is written through the same code paths real data takes where
// they are fast enough (the CRM imports, leads, costs, numbers), so what the
// demo shows is what Throughline does with real data.
package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/reports"
	"github.com/throughline/throughline/internal/store"
)

// The demo counter is recognised by its domain: a name under .local, which
// no real site has.
const (
	Domain   = "demo.throughline.local"
	Name     = "Demo shop"
	Timezone = "Europe/Moscow"
)

// DefaultDays is the period the demo fills; MaxDays caps it (a year of
// demo data is already 180,000 sessions).
const (
	DefaultDays = 30
	MaxDays     = 366
)

// Phases, in the order Generate reports them through Options.Progress.
const (
	PhaseReset    = "reset"
	PhaseCounter  = "counter"
	PhaseGenerate = "generate"
	PhaseSessions = "sessions"
	PhaseLeads    = "leads"
	PhaseOrders   = "orders"
	PhaseCosts    = "costs"
	PhaseMatching = "matching"
	PhaseReports  = "reports"
)

// Options tune Generate.
type Options struct {
	Seed     int64     // the same seed gives the same data
	Days     int       // days before Now's date to fill; DefaultDays when 0
	Now      time.Time // the demo's "today"; time.Now() when zero
	Progress func(phase string)
}

// Result says what Generate made.
type Result struct {
	CounterID int64          `json:"counter_id"`
	Token     string         `json:"token"` // the counter's API token, shown once
	From      string         `json:"from"`  // the filled days, YYYY-MM-DD, both included
	To        string         `json:"to"`
	Sessions  int            `json:"sessions"`
	Visitors  int            `json:"visitors"`
	Hits      int            `json:"hits"`
	Calls     int            `json:"calls"`
	Leads     int            `json:"leads"`
	Orders    int            `json:"orders"`
	CostRows  int            `json:"cost_rows"`
	Matching  matching.Stats `json:"matching"`
	Took      time.Duration  `json:"-"`
	TookMS    int64          `json:"took_ms"`
}

// ReportPath is the API path of the end-to-end report over the demo's days.
func (r Result) ReportPath() string {
	return fmt.Sprintf("/api/v1/counters/%d/reports/end-to-end?from=%s&to=%s", r.CounterID, r.From, r.To)
}

// Generate creates the demo counter — deleting the one a previous run made,
// with all its data — and fills it. If it fails half-way the counter stays
// as far as it got; the next run starts over.
func Generate(ctx context.Context, db *store.DB, opt Options) (Result, error) {
	began := time.Now()
	if opt.Days == 0 {
		opt.Days = DefaultDays
	}
	if opt.Days < 1 || opt.Days > MaxDays {
		return Result{}, fmt.Errorf("demo: %d days: want 1 to %d", opt.Days, MaxDays)
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	phase := func(p string) {
		if opt.Progress != nil {
			opt.Progress(p)
		}
	}

	phase(PhaseReset)
	old, err := demoCounters(ctx, db)
	if err != nil {
		return Result{}, err
	}
	for _, id := range old {
		if err := Reset(ctx, db, id); err != nil {
			return Result{}, err
		}
	}

	phase(PhaseCounter)
	c, token, err := counter.Create(ctx, db, counter.NewCounter{Name: Name, Domain: Domain, Timezone: Timezone})
	if err != nil {
		return Result{}, fmt.Errorf("demo: %w", err)
	}
	phone, selector := sitePhone, ".header-phone"
	if c, err = counter.Update(ctx, db, c.ID, counter.Patch{DNIPhone: &phone, DNISelector: &selector}); err != nil {
		return Result{}, fmt.Errorf("demo: %w", err)
	}
	loc := c.Location()
	poolID, err := numbers(ctx, db, c.ID)
	if err != nil {
		return Result{}, err
	}

	phase(PhaseGenerate)
	w := build(opt.Seed, opt.Days, opt.Now, loc)
	res := Result{CounterID: c.ID, Token: token,
		From: w.from.Format(time.DateOnly), To: w.to.AddDate(0, 0, -1).Format(time.DateOnly),
		Sessions: len(w.sessions), Visitors: w.visitors, Hits: w.hitsCount, Calls: len(w.calls),
		Leads: len(w.leads), Orders: len(w.orders), CostRows: len(w.costs)}

	phase(PhaseSessions)
	if err := traffic(ctx, db, c.ID, poolID, w); err != nil {
		return Result{}, err
	}
	phase(PhaseLeads)
	if err := storeLeads(ctx, db, c.ID, w); err != nil {
		return Result{}, err
	}
	phase(PhaseOrders)
	if err := orders(ctx, db, c.ID, loc, w); err != nil {
		return Result{}, err
	}
	phase(PhaseCosts)
	if err := adCosts(ctx, db, c.ID, w); err != nil {
		return Result{}, err
	}
	phase(PhaseMatching)
	if res.Matching, err = matching.Run(ctx, db, c.ID); err != nil {
		return Result{}, fmt.Errorf("demo: %w", err)
	}

	// The first report over the period builds its rollups; build them now
	// so that the newcomer's first report is instant.
	phase(PhaseReports)
	q, err := reports.ParseQuery(func(k string) string {
		return map[string]string{"from": res.From, "to": res.To}[k]
	})
	if err != nil {
		return Result{}, fmt.Errorf("demo: report query: %w", err)
	}
	if _, err := reports.EndToEnd(ctx, db, c.ID, loc, q, opt.Now); err != nil {
		return Result{}, fmt.Errorf("demo: %w", err)
	}
	res.Took = time.Since(began)
	res.TookMS = res.Took.Milliseconds()
	return res, nil
}
