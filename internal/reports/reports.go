// Package reports answers the end-to-end report: per source, medium and
// campaign (or any of the session's traffic fields), the sessions and
// visitors, calls and leads, orders and revenue under an attribution model,
// and what the traffic cost — with ROI, ROMI, CPL, CPO and the conversions
// between them. It reads the rollups (internal/rollup) and the ad costs.
package reports

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/attribution"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/rollup"
	"github.com/throughline/throughline/internal/store"
)

// Dimensions a report can group and filter by, in the order a key lists
// them.
var Dimensions = []string{"traffic_type", "source", "medium", "campaign", "content", "term"}

// DefaultGroup is the grouping of a report that names none.
var DefaultGroup = []string{"source", "medium", "campaign"}

// Date bases: orders counted on the day they were created, or on the day of
// the touch that earned them.
const (
	DateOrder = "order"
	DateVisit = "visit"
)

// MaxDays caps a report's range.
const MaxDays = 3660

// Query is what a report is asked for.
type Query struct {
	From, To time.Time         // local dates (midnight UTC as civil dates), inclusive
	Group    []string          // of Dimensions
	Model    string            // of attribution.Models
	Date     string            // DateOrder or DateVisit
	Filter   map[string]string // dimension → the one value to keep
}

// InvalidError is a query parameter that is wrong.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// ParseQuery reads a report's parameters: from and to (YYYY-MM-DD, both
// required), group (comma-separated dimensions), model, date, and a filter
// per dimension named as the dimension.
func ParseQuery(get func(string) string) (Query, error) {
	var q Query
	var err error
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		v := get(f.name)
		if v == "" {
			return q, &InvalidError{f.name, "is required: a date, YYYY-MM-DD"}
		}
		if *f.t, err = time.Parse(time.DateOnly, v); err != nil {
			return q, &InvalidError{f.name, fmt.Sprintf("%q is not a date (YYYY-MM-DD)", v)}
		}
	}
	if q.To.Before(q.From) {
		return q, &InvalidError{"to", "is before from"}
	}
	if days := int(q.To.Sub(q.From).Hours()/24) + 1; days > MaxDays {
		return q, &InvalidError{"to", fmt.Sprintf("the range is %d days; at most %d", days, MaxDays)}
	}
	q.Group = DefaultGroup
	if g := get("group"); g != "" {
		q.Group = nil
		for _, d := range strings.Split(g, ",") {
			d = strings.TrimSpace(d)
			if !slices.Contains(Dimensions, d) {
				return q, &InvalidError{"group", fmt.Sprintf("%q is not a dimension (allowed: %s)", d, strings.Join(Dimensions, ", "))}
			}
			if slices.Contains(q.Group, d) {
				return q, &InvalidError{"group", fmt.Sprintf("%q is listed twice", d)}
			}
			q.Group = append(q.Group, d)
		}
	}
	if q.Model, err = attribution.ParseModel(get("model")); err != nil {
		return q, &InvalidError{"model", fmt.Sprintf("%q is not a model (allowed: %s)", get("model"), strings.Join(attribution.Models, ", "))}
	}
	switch q.Date = get("date"); q.Date {
	case "":
		q.Date = DateOrder
	case DateOrder, DateVisit:
	default:
		return q, &InvalidError{"date", fmt.Sprintf("%q: want order (orders on the day they were created) or visit (on the day of the touch)", q.Date)}
	}
	for _, d := range Dimensions {
		if v := get(d); v != "" {
			if q.Filter == nil {
				q.Filter = map[string]string{}
			}
			q.Filter[d] = v
		}
	}
	return q, nil
}

// Metrics are a report row's figures. Money is in the currency's major
// units with two decimals; fractional orders are the model's shares.
type Metrics struct {
	Sessions      int64 `json:"sessions"`
	Visitors      int64 `json:"visitors"` // distinct visitors, estimated (HyperLogLog, ±2%)
	Calls         int64 `json:"calls"`
	UniqueCalls   int64 `json:"unique_calls"`
	AnsweredCalls int64 `json:"answered_calls"`
	Leads         int64 `json:"leads"`
	// Requests are unique calls and leads: what a visitor asked the shop.
	Requests      int64        `json:"requests"`
	Orders        float64      `json:"orders"`         // every order, any status
	OrdersCreated float64      `json:"orders_created"` // reached "CRM: order created": IN_PROGRESS or PAID
	OrdersPaid    float64      `json:"orders_paid"`    // reached "CRM: order paid"
	Revenue       json.Number  `json:"revenue"`        // of paid orders
	Margin        json.Number  `json:"margin"`         // goal revenue of paid orders: revenue − cost when the cost is known
	Cost          json.Number  `json:"cost"`           // ad costs
	Clicks        float64      `json:"clicks"`
	Impressions   float64      `json:"impressions"`
	ROI           *float64     `json:"roi"`  // (revenue − cost) / cost
	ROMI          *float64     `json:"romi"` // (margin − cost) / cost
	CPL           *json.Number `json:"cpl"`  // cost per request
	CPO           *json.Number `json:"cpo"`  // cost per created order
	// Conversions: session → request, request → created order, created →
	// paid order.
	ConvSessionRequest *float64 `json:"conv_session_request"`
	ConvRequestOrder   *float64 `json:"conv_request_order"`
	ConvOrderPaid      *float64 `json:"conv_order_paid"`
}

// Row is one group of a report.
type Row struct {
	Dims map[string]string `json:"dims"`
	Metrics
}

// RungShare is how many of the period's orders one rung matched.
type RungShare struct {
	Rung   string  `json:"rung"`
	Orders int64   `json:"orders"`
	Share  float64 `json:"share"`
}

// Report is the end-to-end report.
type Report struct {
	From    string            `json:"from"`
	To      string            `json:"to"`
	Group   []string          `json:"group"`
	Model   string            `json:"model"`
	Date    string            `json:"date"`
	Filter  map[string]string `json:"filter,omitempty"`
	Rows    []Row             `json:"rows"`
	Totals  Metrics           `json:"totals"`
	Quality []RungShare       `json:"quality"` // orders by the rung that matched them, created in the period
}

// acc sums one group.
type acc struct {
	traffic                                rollup.Traffic
	orders, created, paid, revenue, margin float64
	cost, clicks, impressions              float64
}

// add adds o to a; with take, o is not used again and a may keep its
// visitor sketch.
func (a *acc) add(o *acc, take bool) error {
	add := a.traffic.Add
	if take {
		add = a.traffic.Take
	}
	if err := add(&o.traffic); err != nil {
		return err
	}
	a.orders += o.orders
	a.created += o.created
	a.paid += o.paid
	a.revenue += o.revenue
	a.margin += o.margin
	a.cost += o.cost
	a.clicks += o.clicks
	a.impressions += o.impressions
	return nil
}

// EndToEnd builds the report of a counter whose days are in loc, as of now.
func EndToEnd(ctx context.Context, db *store.DB, counterID int64, loc *time.Location, q Query, now time.Time) (*Report, error) {
	periods, err := rollup.Ensure(ctx, db, counterID, loc, past(rollup.Periods(q.From, q.To, today(loc, now)), loc, now))
	if err != nil {
		return nil, err
	}
	keys, err := load(ctx, db, counterID, q, periods, false)
	if err != nil {
		return nil, err
	}
	groups := map[string]*acc{}
	dims := map[string]map[string]string{}
	var total acc
	for pk, a := range keys {
		if !q.keep(pk.key) {
			continue
		}
		id, d := project(pk.key, q.Group)
		g := groups[id]
		if g == nil {
			g = &acc{}
			groups[id], dims[id] = g, d
		}
		if err := g.add(a, true); err != nil {
			return nil, err
		}
	}
	for _, g := range groups {
		if err := total.add(g, false); err != nil {
			return nil, err
		}
	}
	r := &Report{From: q.From.Format(time.DateOnly), To: q.To.Format(time.DateOnly), Group: q.Group, Model: q.Model, Date: q.Date,
		Filter: q.Filter, Rows: make([]Row, 0, len(groups)), Totals: total.metrics()}
	for id, g := range groups {
		r.Rows = append(r.Rows, Row{Dims: dims[id], Metrics: g.metrics()})
	}
	slices.SortFunc(r.Rows, func(a, b Row) int {
		if a.Sessions != b.Sessions {
			return int(b.Sessions - a.Sessions)
		}
		if a.Orders != b.Orders {
			if a.Orders > b.Orders {
				return -1
			}
			return 1
		}
		for _, d := range q.Group {
			if c := strings.Compare(a.Dims[d], b.Dims[d]); c != 0 {
				return c
			}
		}
		return 0
	})
	if r.Quality, err = quality(ctx, db, counterID, periods); err != nil {
		return nil, err
	}
	return r, nil
}

// today is the local date of now in loc.
// past drops the days after today: nothing has happened on them, and a
// report reaching years ahead must not build (and store) empty rollups.
func past(periods []string, loc *time.Location, now time.Time) []string {
	t := today(loc, now).Format(time.DateOnly)
	for i, p := range periods {
		if p > t {
			return periods[:i]
		}
	}
	return periods
}

func today(loc *time.Location, now time.Time) time.Time {
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// project is a key's group: its id and its values of the group's dimensions.
func project(k rollup.Key, group []string) (string, map[string]string) {
	d := make(map[string]string, len(group))
	var b strings.Builder
	for _, g := range group {
		v := dim(k, g)
		d[g] = v
		b.WriteString(v)
		b.WriteByte(0)
	}
	return b.String(), d
}

func dim(k rollup.Key, name string) string {
	switch name {
	case "traffic_type":
		return k.Type
	case "source":
		return k.Source
	case "medium":
		return k.Medium
	case "campaign":
		return k.Campaign
	case "content":
		return k.Content
	case "term":
		return k.Term
	}
	return ""
}

func (q Query) keep(k rollup.Key) bool {
	for d, v := range q.Filter {
		if d == "source" || d == "medium" {
			if !strings.EqualFold(dim(k, d), v) {
				return false
			}
		} else if dim(k, d) != v {
			return false
		}
	}
	return true
}

// grain is the rollup grain a query reads: fine only when it groups or
// filters by content or term.
func (q Query) grain() string {
	for _, d := range []string{"content", "term"} {
		if slices.Contains(q.Group, d) || q.Filter[d] != "" {
			return rollup.Fine
		}
	}
	return rollup.Coarse
}

// periodKey is a rollup key within a period ("" when the periods are summed).
type periodKey struct {
	period string
	key    rollup.Key
}

// load sums the rollups of the periods per key (and per period when
// byPeriod), with the ad costs spread over them. The query's filter is
// left to the caller: costs are spread before it.
func load(ctx context.Context, db *store.DB, counterID int64, q Query, periods []string, byPeriod bool) (map[periodKey]*acc, error) {
	grain := q.grain()
	out := map[periodKey]*acc{}
	get := func(period string, k rollup.Key) *acc {
		if !byPeriod {
			period = ""
		}
		pk := periodKey{period, k}
		a := out[pk]
		if a == nil {
			a = &acc{}
			out[pk] = a
		}
		return a
	}
	where, args := periodFilter(db.Dialect(), counterID, grain, periods)

	rows, err := db.Reader().QueryContext(ctx, `SELECT period, traffic_type, source, medium, campaign, content, term,
		       sessions, visitors, calls, unique_calls, answered_calls, leads
		FROM rollup_traffic WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("reports: traffic: %w", err)
	}
	for rows.Next() {
		var period string
		var k rollup.Key
		var t rollup.Traffic
		var visitors []byte
		if err := rows.Scan(&period, &k.Type, &k.Source, &k.Medium, &k.Campaign, &k.Content, &k.Term,
			&t.Sessions, &visitors, &t.Calls, &t.UniqueCalls, &t.AnsweredCalls, &t.Leads); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reports: traffic: %w", err)
		}
		if t.Visitors, err = rollup.DecodeSketch(visitors); err != nil {
			rows.Close()
			return nil, err
		}
		// Take: the decoded sketch is fresh and stays sparse (a few
		// bytes), where Add would make each (period, key) a dense 4 KiB.
		if err := get(period, k).traffic.Take(&t); err != nil {
			rows.Close()
			return nil, err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reports: traffic: %w", err)
	}

	m := q.Model
	rows, err = db.Reader().QueryContext(ctx, `SELECT period, traffic_type, source, medium, campaign, content, term, status_type,
		       orders_`+m+`, revenue_`+m+`, margin_`+m+`
		FROM rollup_orders WHERE `+where+` AND basis = `+db.Dialect().Param(len(args)+1), append(args, q.Date)...)
	if err != nil {
		return nil, fmt.Errorf("reports: orders: %w", err)
	}
	for rows.Next() {
		var period, status string
		var k rollup.Key
		var orders, revenue, margin float64
		if err := rows.Scan(&period, &k.Type, &k.Source, &k.Medium, &k.Campaign, &k.Content, &k.Term, &status,
			&orders, &revenue, &margin); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reports: orders: %w", err)
		}
		a := get(period, k)
		// Goals (seeds 002/003): IN_PROGRESS and PAID reach "order
		// created", PAID also "order paid"; CANCELLED and SPAM none. All
		// orders but spam count as orders (Metrica's cdpOrdersAllOrders).
		if status != "SPAM" {
			a.orders += orders
		}
		switch status {
		case "PAID":
			a.created += orders
			a.paid += orders
			a.revenue += revenue
			a.margin += margin
		case "IN_PROGRESS":
			a.created += orders
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reports: orders: %w", err)
	}

	if err := spreadCosts(ctx, db, counterID, periods, grain, byPeriod, out, get); err != nil {
		return nil, err
	}
	return out, nil
}

// periodFilter is the WHERE clause over rollup rows of the periods.
func periodFilter(d store.Dialect, counterID int64, grain string, periods []string) (string, []any) {
	if d == store.Postgres {
		return `counter_id = $1 AND grain = $2 AND period = ANY($3)`, []any{counterID, grain, periods}
	}
	args := []any{counterID, grain}
	for _, p := range periods {
		args = append(args, p)
	}
	return `counter_id = ? AND grain = ? AND period IN (` + d.Params(3, len(periods)) + `)`, args
}

// costKey is the key of a cost row in a bucket (a day of a daily series,
// "" for the whole range): content and term empty when the cost row does
// not split by them (and always at the coarse grain).
type costKey struct {
	bucket                                  string
	source, medium, campaign, content, term string
}

// spreadCosts adds the ad costs of the range to the keys: a cost row goes
// to the keys of its source, medium and campaign (and content and term, when
// it names them) in proportion to their sessions in the bucket — so a report
// that slices finer than the costs were given (by term, by traffic type)
// shares them out. A cost without sessions stays on a row of its own key.
func spreadCosts(ctx context.Context, db *store.DB, counterID int64, periods []string, grain string, byPeriod bool,
	out map[periodKey]*acc, get func(string, rollup.Key) *acc) error {
	where, args := periodFilter(db.Dialect(), counterID, grain, periods)
	rows, err := db.Reader().QueryContext(ctx, `SELECT period, source, medium, campaign, content, term, cost, clicks, impressions
		FROM rollup_costs WHERE `+where, args...)
	if err != nil {
		return fmt.Errorf("reports: costs: %w", err)
	}
	type figures struct{ cost, clicks, impressions float64 }
	costs := map[costKey]figures{}
	for rows.Next() {
		var k costKey
		var cost, clicks, impressions int64
		if err := rows.Scan(&k.bucket, &k.source, &k.medium, &k.campaign, &k.content, &k.term, &cost, &clicks, &impressions); err != nil {
			rows.Close()
			return fmt.Errorf("reports: costs: %w", err)
		}
		if !byPeriod {
			k.bucket = ""
		}
		f := costs[k]
		costs[k] = figures{f.cost + float64(cost), f.clicks + float64(clicks), f.impressions + float64(impressions)}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reports: costs: %w", err)
	}
	type smc struct{ bucket, source, medium, campaign string }
	index := map[smc][]periodKey{}
	for pk, a := range out {
		if a.traffic.Sessions > 0 {
			i := smc{pk.period, pk.key.Source, pk.key.Medium, pk.key.Campaign}
			index[i] = append(index[i], pk)
		}
	}
	for ck, f := range costs {
		var keys []periodKey
		var total float64
		for _, pk := range index[smc{ck.bucket, ck.source, ck.medium, ck.campaign}] {
			if (ck.content == "" || pk.key.Content == ck.content) && (ck.term == "" || pk.key.Term == ck.term) {
				keys = append(keys, pk)
				total += float64(out[pk].traffic.Sessions)
			}
		}
		if total == 0 {
			a := get(ck.bucket, rollup.Key{Type: "ad", Source: ck.source, Medium: ck.medium, Campaign: ck.campaign, Content: ck.content, Term: ck.term})
			a.cost += f.cost
			a.clicks += f.clicks
			a.impressions += f.impressions
			continue
		}
		for _, pk := range keys {
			a := out[pk]
			share := float64(a.traffic.Sessions) / total
			a.cost += f.cost * share
			a.clicks += f.clicks * share
			a.impressions += f.impressions * share
		}
	}
	return nil
}

// quality is the share of the periods' orders each rung matched.
func quality(ctx context.Context, db *store.DB, counterID int64, periods []string) ([]RungShare, error) {
	d := db.Dialect()
	where, args := `counter_id = $1 AND period = ANY($2)`, []any{counterID, periods}
	if d != store.Postgres {
		args = []any{counterID}
		for _, p := range periods {
			args = append(args, p)
		}
		where = `counter_id = ? AND period IN (` + d.Params(2, len(periods)) + `)`
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT rung, SUM(orders) FROM rollup_rungs WHERE `+where+` GROUP BY rung`, args...)
	if err != nil {
		return nil, fmt.Errorf("reports: match quality: %w", err)
	}
	defer rows.Close()
	counts := map[string]int64{}
	var total int64
	for rows.Next() {
		var rung string
		var n int64
		if err := rows.Scan(&rung, &n); err != nil {
			return nil, fmt.Errorf("reports: match quality: %w", err)
		}
		counts[rung] = n
		total += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reports: match quality: %w", err)
	}
	out := make([]RungShare, 0, len(matching.Rungs))
	for _, r := range matching.Rungs {
		s := RungShare{Rung: r, Orders: counts[r]}
		if total > 0 {
			s.Share = round(float64(s.Orders)/float64(total), 4)
		}
		out = append(out, s)
	}
	return out, nil
}

func (a *acc) metrics() Metrics {
	t := &a.traffic
	m := Metrics{Sessions: t.Sessions, Calls: t.Calls, UniqueCalls: t.UniqueCalls, AnsweredCalls: t.AnsweredCalls, Leads: t.Leads,
		Requests: t.UniqueCalls + t.Leads,
		Orders:   round(a.orders, 4), OrdersCreated: round(a.created, 4), OrdersPaid: round(a.paid, 4),
		Revenue: money(a.revenue), Margin: money(a.margin), Cost: money(a.cost),
		Clicks: round(a.clicks, 2), Impressions: round(a.impressions, 2)}
	if t.Visitors != nil {
		m.Visitors = int64(t.Visitors.Estimate())
	}
	cost := math.Round(a.cost)
	if cost > 0 {
		m.ROI = ratio(math.Round(a.revenue)-cost, cost)
		m.ROMI = ratio(math.Round(a.margin)-cost, cost)
		if m.Requests > 0 {
			v := money(a.cost / float64(m.Requests))
			m.CPL = &v
		}
		if a.created > 0 {
			v := money(a.cost / a.created)
			m.CPO = &v
		}
	}
	if m.Sessions > 0 {
		m.ConvSessionRequest = ratio(float64(m.Requests), float64(m.Sessions))
	}
	if m.Requests > 0 {
		m.ConvRequestOrder = ratio(a.created, float64(m.Requests))
	}
	if a.created > 0 {
		m.ConvOrderPaid = ratio(a.paid, a.created)
	}
	return m
}

// money writes minor units as a decimal of major units: 123450.4 → 1234.50.
func money(minor float64) json.Number {
	return json.Number(strconv.FormatFloat(math.Round(minor)/100, 'f', 2, 64))
}

func ratio(a, b float64) *float64 {
	v := round(a/b, 4)
	return &v
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// MaxDailyDays caps a daily series.
const MaxDailyDays = 731

// Day is one day of a daily series.
type Day struct {
	Day string `json:"day"`
	Metrics
}

// Daily is the report's totals day by day, for charts.
type Daily struct {
	From   string            `json:"from"`
	To     string            `json:"to"`
	Model  string            `json:"model"`
	Date   string            `json:"date"`
	Filter map[string]string `json:"filter,omitempty"`
	Days   []Day             `json:"days"`
}

// DailySeries is the query's totals for each day from..to (its group is
// ignored; its filter applies).
func DailySeries(ctx context.Context, db *store.DB, counterID int64, loc *time.Location, q Query, now time.Time) (*Daily, error) {
	if days := int(q.To.Sub(q.From).Hours()/24) + 1; days > MaxDailyDays {
		return nil, &InvalidError{"to", fmt.Sprintf("the range is %d days; a daily series has at most %d", days, MaxDailyDays)}
	}
	var periods []string
	for d := q.From; !d.After(q.To); d = d.AddDate(0, 0, 1) {
		periods = append(periods, d.Format(time.DateOnly))
	}
	if _, err := rollup.Ensure(ctx, db, counterID, loc, past(periods, loc, now)); err != nil {
		return nil, err
	}
	keys, err := load(ctx, db, counterID, q, periods, true)
	if err != nil {
		return nil, err
	}
	byDay := make(map[string]*acc, len(periods))
	for _, p := range periods {
		byDay[p] = &acc{}
	}
	for pk, a := range keys {
		if sum := byDay[pk.period]; sum != nil && q.keep(pk.key) {
			if err := sum.add(a, true); err != nil {
				return nil, err
			}
		}
	}
	out := &Daily{From: q.From.Format(time.DateOnly), To: q.To.Format(time.DateOnly), Model: q.Model, Date: q.Date, Filter: q.Filter,
		Days: make([]Day, 0, len(periods))}
	for _, p := range periods {
		out.Days = append(out.Days, Day{Day: p, Metrics: byDay[p].metrics()})
	}
	return out, nil
}
