// Package exports writes matched orders in the formats other systems
// read: Yandex Metrica's offline conversions CSV (shared/spec/metrica-cdp.md
// §11), so Direct can learn from the CRM's goals.
package exports

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"time"

	"github.com/throughline/throughline/internal/rollup"
	"github.com/throughline/throughline/internal/store"
)

// Goals an export writes conversions for (seeds 002/003).
const (
	GoalCreated = "created" // IN_PROGRESS or PAID orders, at their creation
	GoalPaid    = "paid"    // PAID orders, when they finished (or were last updated)
)

// MetricaWindowDays: Metrica binds a conversion only to a visit at most this
// many days old when the file is processed (§11.3).
const MetricaWindowDays = 21

// MetricaQuery is what an offline conversions export writes.
type MetricaQuery struct {
	From, To time.Time // orders created in [From, To); zero: unbounded
	Goal     string    // GoalCreated or GoalPaid
	Target   string    // the Metrica goal's identifier (a "JavaScript event" goal)
	// MaxAgeDays skips conversions whose ad click is older than this at
	// Now (0: keep all — for a counter with Metrica's extended window).
	MaxAgeDays int
	Now        time.Time
}

// InvalidError is a parameter that is wrong.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// Metrica's names and ids: 1–255 characters of letters, digits, _ - :.
var targetPattern = regexp.MustCompile(`^[\w\-:]{1,255}$`)

// Check validates the query.
func (q MetricaQuery) Check() error {
	if q.Goal != GoalCreated && q.Goal != GoalPaid {
		return &InvalidError{"goal", fmt.Sprintf("%q: want created or paid", q.Goal)}
	}
	if !targetPattern.MatchString(q.Target) {
		return &InvalidError{"target", fmt.Sprintf("%q: want the Metrica goal's identifier, 1–255 letters, digits, _ - :", q.Target)}
	}
	if q.MaxAgeDays < 0 || q.MaxAgeDays > 3660 {
		return &InvalidError{"max_age_days", "must be 0 (no limit) to 3660"}
	}
	return nil
}

// MetricaOfflineConversions writes the counter's conversions as Metrica's
// offline conversions CSV — `Yclid,Target,DateTime,Price,Currency`, UTF-8,
// comma, LF (§11.4) — and returns how many rows it wrote.
//
// A conversion is bound by Yclid: the Yandex Direct click id of the latest
// visit in the order's path that came from one. ClientId is not written:
// Throughline's visitor id is not Metrica's, and it does not capture
// Metrica's _ym_uid. DateTime is the goal's moment in Unix seconds (strictly
// past: later ones are skipped); Price is the goal revenue (revenue − cost
// when the cost is known).
func MetricaOfflineConversions(ctx context.Context, db *store.DB, counterID int64, q MetricaQuery, w io.Writer) (int, error) {
	if err := q.Check(); err != nil {
		return 0, err
	}
	if q.To.IsZero() {
		q.To = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	types := "'IN_PROGRESS', 'PAID'"
	if q.Goal == GoalPaid {
		types = "'PAID'"
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT o.order_id, o.created_at, o.updated_at, o.finished_at, o.revenue, o.cost, o.margin,
		       o.currency, s.click_ids, s.started_at
		FROM crm_orders o
		JOIN order_touches t ON t.counter_id = o.counter_id AND t.order_id = o.order_id AND t.kind = 'session'
		JOIN sessions s ON s.counter_id = t.counter_id AND s.sid = t.ref
		WHERE o.counter_id = $1 AND o.created_at >= $2 AND o.created_at < $3 AND o.status_type IN (`+types+`)
		  AND s.click_ids LIKE '%"yclid"%'
		ORDER BY o.created_at, o.order_id, t.seq`, counterID, q.From, q.To)
	if err != nil {
		return 0, fmt.Errorf("exports: offline conversions: %w", err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"Yclid", "Target", "DateTime", "Price", "Currency"}); err != nil {
		return 0, err
	}
	type conversion struct {
		yclid    string
		clicked  time.Time
		at       time.Time
		price    float64
		currency string
	}
	n := 0
	var cur string
	var last *conversion
	emit := func() error {
		if last == nil || last.yclid == "" {
			return nil
		}
		if !last.at.Before(q.Now) {
			return nil // Metrica refuses a conversion in the future
		}
		if q.MaxAgeDays > 0 && q.Now.Sub(last.clicked) > time.Duration(q.MaxAgeDays)*24*time.Hour {
			return nil // Metrica would not bind it
		}
		n++
		return cw.Write([]string{last.yclid, q.Target, strconv.FormatInt(last.at.Unix(), 10),
			strconv.FormatFloat(last.price/100, 'f', 2, 64), last.currency})
	}
	for rows.Next() {
		var id, currency, clicks string
		var created, started time.Time
		var updated, finished sql.NullTime
		var revenue, cost, margin sql.NullInt64
		if err := rows.Scan(&id, &created, &updated, &finished, &revenue, &cost, &margin, &currency, &clicks, &started); err != nil {
			return n, fmt.Errorf("exports: offline conversions: %w", err)
		}
		if id != cur {
			if err := emit(); err != nil {
				return n, err
			}
			cur, last = id, nil
		}
		var ids map[string]string
		if json.Unmarshal([]byte(clicks), &ids) != nil || ids["yclid"] == "" {
			continue
		}
		// Touches come oldest first: the last one with a click wins.
		at := created
		if q.Goal == GoalPaid {
			switch {
			case finished.Valid:
				at = finished.Time
			case updated.Valid:
				at = updated.Time
			}
		}
		_, goal := rollup.GoalRevenue(revenue, cost, margin)
		last = &conversion{yclid: ids["yclid"], clicked: started, at: at, price: goal, currency: currency}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("exports: offline conversions: %w", err)
	}
	if err := emit(); err != nil {
		return n, err
	}
	cw.Flush()
	return n, cw.Error()
}
