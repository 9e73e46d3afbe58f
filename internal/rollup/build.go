package rollup

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/axiomhq/hyperloglog"

	"github.com/throughline/throughline/internal/attribution"
	"github.com/throughline/throughline/internal/store"
)

// Key is the source a rollup row sums: the traffic type and the utm-style
// fields (content and term empty on coarse rows).
type Key struct {
	Type, Source, Medium, Campaign, Content, Term string
}

// normKey makes keys of sessions, calls, leads and touches comparable with
// ad costs: source and medium trimmed and lower-cased, the rest trimmed. A
// call or lead from nowhere (an unidentified call) is "(unknown)".
func normKey(typ, source, medium, campaign, content, term string) Key {
	k := Key{Type: typ, Source: strings.ToLower(strings.TrimSpace(source)), Medium: strings.ToLower(strings.TrimSpace(medium)),
		Campaign: strings.TrimSpace(campaign), Content: strings.TrimSpace(content), Term: strings.TrimSpace(term)}
	if k.Type == "" && k.Source == "" {
		k.Type, k.Source = "unknown", "(unknown)"
	}
	return k
}

func (k Key) coarse() Key { k.Content, k.Term = "", ""; return k }

// Traffic is a rollup row's traffic figures.
type Traffic struct {
	Sessions, Calls, UniqueCalls, AnsweredCalls, Leads int64
	Visitors                                           *hyperloglog.Sketch // nil: no sessions

	merged int // sketches merged into Visitors so far
}

// denseAfter is how many sketches a sum merges into a sparse one before it
// turns dense: a few small sketches merge fast sparse and stay a few bytes
// (a report by term has many rare keys); a sum of many is faster as a
// register-wise max over 4 KiB.
const denseAfter = 8

// NewSketch returns an empty visitor sketch: HyperLogLog at precision 12
// (4 KiB at most, about 1.6% error), sparse — exact enough for small
// counts and small on disk.
func NewSketch() *hyperloglog.Sketch {
	s, _ := hyperloglog.NewSketch(12, true)
	return s
}

// Add adds o's figures to t, merging the visitors.
func (t *Traffic) Add(o *Traffic) error { return t.add(o, false) }

// Take is Add for an o that is not used again: t may keep o's visitor
// sketch rather than copy it (a report merges thousands).
func (t *Traffic) Take(o *Traffic) error { return t.add(o, true) }

func (t *Traffic) add(o *Traffic, take bool) error {
	t.Sessions += o.Sessions
	t.Calls += o.Calls
	t.UniqueCalls += o.UniqueCalls
	t.AnsweredCalls += o.AnsweredCalls
	t.Leads += o.Leads
	if o.Visitors != nil {
		if t.Visitors == nil && take {
			t.Visitors = o.Visitors
			return nil
		}
		if t.Visitors == nil {
			t.Visitors = NewSketch()
		}
		if t.merged++; t.merged == denseAfter {
			dense, _ := hyperloglog.NewSketch(12, false)
			if err := dense.Merge(t.Visitors); err != nil {
				return fmt.Errorf("rollup: merge visitors: %w", err)
			}
			t.Visitors = dense
		}
		if err := t.Visitors.Merge(o.Visitors); err != nil {
			return fmt.Errorf("rollup: merge visitors: %w", err)
		}
	}
	return nil
}

// Orders is a rollup row's order figures under each model, in the order of
// attribution.Models: the share of orders, of their revenue, and of their
// goal revenue (revenue − cost when the cost is known).
type Orders struct {
	Orders, Revenue, Margin [6]float64
}

type orderKey struct {
	grain, basis string
	key          Key
	status       string
}

type trafficKey struct {
	grain string
	key   Key
}

// OrderColumns are rollup_orders' figure columns, model by model.
func OrderColumns() []string {
	var cols []string
	for _, m := range attribution.Models {
		cols = append(cols, "orders_"+m, "revenue_"+m, "margin_"+m)
	}
	return cols
}

// weightColumns are order_touches' weight columns, model by model.
func weightColumns() string {
	var cols []string
	for _, m := range attribution.Models {
		cols = append(cols, "t.w_"+m)
	}
	return strings.Join(cols, ", ")
}

// dayBounds is the UTC start and end of a local day.
func dayBounds(day string, loc *time.Location) (time.Time, time.Time, error) {
	d, err := time.ParseInLocation(dayLayout, day, loc)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("rollup: day %q: %w", day, err)
	}
	return d.UTC(), d.AddDate(0, 0, 1).UTC(), nil
}

// buildDay computes a local day's rollups from the raw rows and reports
// whether it did (false: another process built it meanwhile).
func buildDay(ctx context.Context, db *store.DB, counterID int64, loc *time.Location, day string) (bool, error) {
	start, end, err := dayBounds(day, loc)
	if err != nil {
		return false, err
	}
	conn, tx, err := begin(ctx, db, counterID)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	defer tx.Rollback()
	if ok, err := claim(ctx, tx, counterID, day); !ok || err != nil {
		return false, err
	}
	traffic := map[trafficKey]*Traffic{}
	at := func(k Key) []*Traffic {
		out := make([]*Traffic, 0, 2)
		for _, tk := range []trafficKey{{Coarse, k.coarse()}, {Fine, k}} {
			t := traffic[tk]
			if t == nil {
				t = &Traffic{}
				traffic[tk] = t
			}
			out = append(out, t)
		}
		return out
	}
	args := []any{counterID, start, end}

	rows, err := tx.QueryContext(ctx, `SELECT traffic_type, source, medium, utm_campaign, utm_content, utm_term, uuid
		FROM sessions WHERE counter_id = $1 AND started_at >= $2 AND started_at < $3`, args...)
	if err != nil {
		return false, fmt.Errorf("rollup: sessions of %s: %w", day, err)
	}
	var typ, source, medium, campaign, content, term, uuid string
	for rows.Next() {
		if err := rows.Scan(&typ, &source, &medium, &campaign, &content, &term, &uuid); err != nil {
			rows.Close()
			return false, fmt.Errorf("rollup: sessions of %s: %w", day, err)
		}
		for _, t := range at(normKey(typ, source, medium, campaign, content, term)) {
			t.Sessions++
			if t.Visitors == nil {
				t.Visitors = NewSketch()
			}
			t.Visitors.Insert([]byte(uuid))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("rollup: sessions of %s: %w", day, err)
	}

	// Calls and leads take content and term from their session, if any.
	rows, err = tx.QueryContext(ctx, `SELECT c.traffic_type, c.source, c.medium, c.campaign,
		       COALESCE(s.utm_content, ''), COALESCE(s.utm_term, ''), c.is_unique, COALESCE(c.answered, `+db.Dialect().Bool(false)+`)
		FROM calls c LEFT JOIN sessions s ON s.counter_id = c.counter_id AND s.sid = c.sid AND c.sid <> ''
		WHERE c.counter_id = $1 AND c.started_at >= $2 AND c.started_at < $3 AND c.direction NOT IN ('out', 'internal')`, args...)
	if err != nil {
		return false, fmt.Errorf("rollup: calls of %s: %w", day, err)
	}
	var unique, answered bool
	for rows.Next() {
		if err := rows.Scan(&typ, &source, &medium, &campaign, &content, &term, &unique, &answered); err != nil {
			rows.Close()
			return false, fmt.Errorf("rollup: calls of %s: %w", day, err)
		}
		for _, t := range at(normKey(typ, source, medium, campaign, content, term)) {
			t.Calls++
			if unique {
				t.UniqueCalls++
			}
			if answered {
				t.AnsweredCalls++
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("rollup: calls of %s: %w", day, err)
	}

	rows, err = tx.QueryContext(ctx, `SELECT l.traffic_type, l.source, l.medium, l.campaign, COALESCE(s.utm_content, ''), COALESCE(s.utm_term, '')
		FROM leads l LEFT JOIN sessions s ON s.counter_id = l.counter_id AND s.sid = l.sid AND l.sid <> ''
		WHERE l.counter_id = $1 AND l.created_at >= $2 AND l.created_at < $3`, args...)
	if err != nil {
		return false, fmt.Errorf("rollup: leads of %s: %w", day, err)
	}
	for rows.Next() {
		if err := rows.Scan(&typ, &source, &medium, &campaign, &content, &term); err != nil {
			rows.Close()
			return false, fmt.Errorf("rollup: leads of %s: %w", day, err)
		}
		for _, t := range at(normKey(typ, source, medium, campaign, content, term)) {
			t.Leads++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("rollup: leads of %s: %w", day, err)
	}

	orders := map[orderKey]*Orders{}
	for _, basis := range []string{ByOrder, ByVisit} {
		col := "t.order_created_at"
		if basis == ByVisit {
			col = "t.at"
		}
		if err := sumTouches(ctx, tx, orders, basis, col, args); err != nil {
			return false, fmt.Errorf("rollup: orders of %s: %w", day, err)
		}
	}

	if err := clearPeriod(ctx, tx, counterID, day); err != nil {
		return false, err
	}
	if err := writeRows(ctx, conn, tx, db.Dialect(), counterID, day, traffic, orders); err != nil {
		return false, err
	}
	// Costs are kept by local day already: the day's rows, summed by key.
	for _, g := range []struct{ grain, cols, group string }{
		{Fine, "source, medium, campaign, content, term", "source, medium, campaign, content, term"},
		{Coarse, "source, medium, campaign, '', ''", "source, medium, campaign"},
	} {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_costs (counter_id, period, grain, source, medium, campaign, content, term,
			cost, clicks, impressions)
			SELECT counter_id, day, '`+g.grain+`', `+g.cols+`, SUM(cost), SUM(clicks), SUM(impressions)
			FROM ad_costs WHERE counter_id = $1 AND day = $2 GROUP BY counter_id, day, `+g.group, counterID, day); err != nil {
			return false, fmt.Errorf("rollup: costs of %s: %w", day, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_rungs (counter_id, period, rung, orders)
		SELECT counter_id, $4, rung, count(*) FROM order_matches
		WHERE counter_id = $1 AND order_created_at >= $2 AND order_created_at < $3 GROUP BY counter_id, rung`,
		counterID, start, end, day); err != nil {
		return false, fmt.Errorf("rollup: rungs of %s: %w", day, err)
	}
	if err := markBuilt(ctx, tx, counterID, day); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("rollup: commit %s: %w", day, err)
	}
	return true, nil
}

// sumTouches adds the touches dated (by col) in the day to orders, with
// their orders' status types and revenue.
func sumTouches(ctx context.Context, tx *sql.Tx, orders map[orderKey]*Orders, basis, col string, args []any) error {
	rows, err := tx.QueryContext(ctx, `SELECT t.traffic_type, t.source, t.medium, t.campaign, t.content, t.term,
		       COALESCE(o.status_type, ''), o.revenue, o.cost, o.margin, `+weightColumns()+`
		FROM order_touches t JOIN crm_orders o ON o.counter_id = t.counter_id AND o.order_id = t.order_id
		WHERE t.counter_id = $1 AND `+col+` >= $2 AND `+col+` < $3`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var typ, source, medium, campaign, content, term, status string
	var revenue, cost, margin sql.NullInt64
	var w [6]float64
	for rows.Next() {
		if err := rows.Scan(&typ, &source, &medium, &campaign, &content, &term, &status, &revenue, &cost, &margin,
			&w[0], &w[1], &w[2], &w[3], &w[4], &w[5]); err != nil {
			return err
		}
		rev, goal := GoalRevenue(revenue, cost, margin)
		k := normKey(typ, source, medium, campaign, content, term)
		for _, ok := range []orderKey{{Coarse, basis, k.coarse(), status}, {Fine, basis, k, status}} {
			o := orders[ok]
			if o == nil {
				o = &Orders{}
				orders[ok] = o
			}
			for i := range w {
				o.Orders[i] += w[i]
				o.Revenue[i] += w[i] * rev
				o.Margin[i] += w[i] * goal
			}
		}
	}
	return rows.Err()
}

// GoalRevenue is an order's revenue and its goal revenue, in minor units:
// revenue − cost when the cost is known (Metrica, seeds 002/003), else the
// CRM's margin when it gave one, else the revenue. Unknown revenue is 0.
func GoalRevenue(revenue, cost, margin sql.NullInt64) (float64, float64) {
	rev := float64(revenue.Int64)
	switch {
	case !revenue.Valid:
		return 0, 0
	case cost.Valid:
		return rev, rev - float64(cost.Int64)
	case margin.Valid:
		return rev, float64(margin.Int64)
	}
	return rev, rev
}

var trafficColumns = []string{"counter_id", "period", "grain", "traffic_type", "source", "medium", "campaign", "content", "term",
	"sessions", "visitors", "calls", "unique_calls", "answered_calls", "leads"}

func orderColumns() []string {
	return append([]string{"counter_id", "period", "grain", "basis", "traffic_type", "source", "medium", "campaign", "content", "term", "status_type"},
		OrderColumns()...)
}

func writeRows(ctx context.Context, conn *sql.Conn, tx *sql.Tx, d store.Dialect, counterID int64, period string,
	traffic map[trafficKey]*Traffic, orders map[orderKey]*Orders) error {
	rows := make([][]any, 0, len(traffic))
	for tk, t := range traffic {
		visitors := []byte{}
		if t.Visitors != nil {
			b, err := t.Visitors.MarshalBinary()
			if err != nil {
				return fmt.Errorf("rollup: encode visitors: %w", err)
			}
			visitors = b
		}
		k := tk.key
		rows = append(rows, []any{counterID, period, tk.grain, k.Type, k.Source, k.Medium, k.Campaign, k.Content, k.Term,
			t.Sessions, visitors, t.Calls, t.UniqueCalls, t.AnsweredCalls, t.Leads})
	}
	if err := d.Insert(ctx, conn, tx, "rollup_traffic", trafficColumns, rows); err != nil {
		return fmt.Errorf("rollup: write traffic of %s: %w", period, err)
	}
	rows = rows[:0]
	for ok, o := range orders {
		k := ok.key
		r := []any{counterID, period, ok.grain, ok.basis, k.Type, k.Source, k.Medium, k.Campaign, k.Content, k.Term, ok.status}
		for i := range o.Orders {
			r = append(r, o.Orders[i], o.Revenue[i], o.Margin[i])
		}
		rows = append(rows, r)
	}
	if err := d.Insert(ctx, conn, tx, "rollup_orders", orderColumns(), rows); err != nil {
		return fmt.Errorf("rollup: write orders of %s: %w", period, err)
	}
	return nil
}

// buildMonth sums a finished month's days (built before) into its month
// rows.
func buildMonth(ctx context.Context, db *store.DB, counterID int64, month string) (bool, error) {
	conn, tx, err := begin(ctx, db, counterID)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	defer tx.Rollback()
	if ok, err := claim(ctx, tx, counterID, month); !ok || err != nil {
		return false, err
	}
	// Every day must be built: one may have been unbuilt since Ensure
	// looked (new data); then the month waits for the next report.
	var days int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM rollup_periods WHERE counter_id = $1 AND period > $2 AND period < $3`,
		counterID, month, month+"-32").Scan(&days); err != nil {
		return false, fmt.Errorf("rollup: days of %s: %w", month, err)
	}
	if days != len(monthDays(month)) {
		return false, nil
	}
	// Day periods sort between "2026-03" and "2026-03-32".
	in := []any{counterID, month, month + "-32"}
	rows, err := tx.QueryContext(ctx, `SELECT grain, traffic_type, source, medium, campaign, content, term,
		       sessions, visitors, calls, unique_calls, answered_calls, leads
		FROM rollup_traffic WHERE counter_id = $1 AND period > $2 AND period < $3`, in...)
	if err != nil {
		return false, fmt.Errorf("rollup: traffic of %s: %w", month, err)
	}
	traffic := map[trafficKey]*Traffic{}
	for rows.Next() {
		var tk trafficKey
		var t Traffic
		var visitors []byte
		k := &tk.key
		if err := rows.Scan(&tk.grain, &k.Type, &k.Source, &k.Medium, &k.Campaign, &k.Content, &k.Term,
			&t.Sessions, &visitors, &t.Calls, &t.UniqueCalls, &t.AnsweredCalls, &t.Leads); err != nil {
			rows.Close()
			return false, fmt.Errorf("rollup: traffic of %s: %w", month, err)
		}
		if t.Visitors, err = DecodeSketch(visitors); err != nil {
			rows.Close()
			return false, err
		}
		sum := traffic[tk]
		if sum == nil {
			sum = &Traffic{}
			traffic[tk] = sum
		}
		if err := sum.Add(&t); err != nil {
			rows.Close()
			return false, err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("rollup: traffic of %s: %w", month, err)
	}
	if err := clearPeriod(ctx, tx, counterID, month); err != nil {
		return false, err
	}
	if err := writeRows(ctx, conn, tx, db.Dialect(), counterID, month, traffic, nil); err != nil {
		return false, err
	}
	figures := OrderColumns()
	sums := make([]string, len(figures))
	for i, c := range figures {
		sums[i] = "SUM(" + c + ")"
	}
	dims := "grain, basis, traffic_type, source, medium, campaign, content, term, status_type"
	if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_orders (counter_id, period, `+dims+`, `+strings.Join(figures, ", ")+`)
		SELECT counter_id, $4, `+dims+`, `+strings.Join(sums, ", ")+`
		FROM rollup_orders WHERE counter_id = $1 AND period > $2 AND period < $3
		GROUP BY counter_id, `+dims, append(in, month)...); err != nil {
		return false, fmt.Errorf("rollup: orders of %s: %w", month, err)
	}
	costDims := "grain, source, medium, campaign, content, term"
	if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_costs (counter_id, period, `+costDims+`, cost, clicks, impressions)
		SELECT counter_id, $4, `+costDims+`, SUM(cost), SUM(clicks), SUM(impressions)
		FROM rollup_costs WHERE counter_id = $1 AND period > $2 AND period < $3
		GROUP BY counter_id, `+costDims, append(in, month)...); err != nil {
		return false, fmt.Errorf("rollup: costs of %s: %w", month, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_rungs (counter_id, period, rung, orders)
		SELECT counter_id, $4, rung, SUM(orders) FROM rollup_rungs
		WHERE counter_id = $1 AND period > $2 AND period < $3 GROUP BY counter_id, rung`, append(in, month)...); err != nil {
		return false, fmt.Errorf("rollup: rungs of %s: %w", month, err)
	}
	if err := markBuilt(ctx, tx, counterID, month); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("rollup: commit %s: %w", month, err)
	}
	return true, nil
}

// DecodeSketch reads a stored visitor sketch; empty means no visitors.
func DecodeSketch(b []byte) (*hyperloglog.Sketch, error) {
	if len(b) == 0 {
		return nil, nil
	}
	s := NewSketch()
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("rollup: decode visitors: %w", err)
	}
	return s, nil
}
