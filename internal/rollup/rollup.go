// Package rollup keeps the sums the end-to-end report reads: per day and
// per finished month of the counter's time zone, per source, medium,
// campaign (and content and term), the sessions, visitors, calls, leads and
// each attribution model's share of orders and revenue.
//
// A year of a busy shop is ten million sessions; a report over it must not
// read them. Rollups are built on demand — the first report over a period
// builds it — and kept current: whoever writes sessions, calls, leads or
// order touches marks the UTC days it wrote (Mark, in its own transaction),
// and the next report or the background worker rebuilds the periods over
// those days. A rebuilt day is recomputed from the raw rows, so a rollup is
// never patched and cannot drift.
package rollup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/throughline/throughline/internal/store"
)

// Grains of rollup rows: coarse rows leave content and term empty, for the
// reports that do not group by them (most, and the fast ones).
const (
	Coarse = "c"
	Fine   = "f"
)

// Bases of order rows: dated by the order's creation or by the touch.
const (
	ByOrder = "order"
	ByVisit = "visit"
)

// rollupLock is the first key of the PostgreSQL advisory lock that
// serialises rollup builds of one counter (crm uses 1, costs its own).
const rollupLock = 7

const dayLayout = "2006-01-02"

// Mark records that the counter's data at the given times changed, so the
// rollups over those days are rebuilt. Call it in the transaction that
// writes the data: the mark commits with it.
func Mark(ctx context.Context, q store.Execer, d store.Dialect, counterID int64, times ...time.Time) error {
	var days []string
	seen := map[string]bool{}
	for _, t := range times {
		if t.IsZero() {
			continue
		}
		if day := t.UTC().Format(dayLayout); !seen[day] {
			seen[day] = true
			days = append(days, day)
		}
	}
	if len(days) == 0 {
		return nil
	}
	// In order: concurrent writers then take the rows' locks in one order
	// and cannot deadlock each other (PostgreSQL).
	slices.Sort(days)
	args := make([]any, 0, 2*len(days))
	for _, day := range days {
		args = append(args, counterID, day)
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO rollup_dirty (counter_id, utc_day) VALUES `+d.Values(len(days), 2)+`
		ON CONFLICT (counter_id, utc_day) DO NOTHING`, args...); err != nil {
		return fmt.Errorf("rollup: mark %d days changed: %w", len(days), err)
	}
	return nil
}

// MarkDays records that the counter's data of the local days (YYYY-MM-DD)
// that the query selects changed — for data kept by local day, such as ad
// costs. A local day always overlaps the UTC day of the same date (zones
// are within ±14 h), so marking that UTC day rebuilds it.
func MarkDays(ctx context.Context, q store.Execer, counterID int64, daysQuery string, args ...any) error {
	// WHERE true: without it SQLite would read ON CONFLICT as a join's ON.
	if _, err := q.ExecContext(ctx, `INSERT INTO rollup_dirty (counter_id, utc_day)
		SELECT DISTINCT `+strconv.FormatInt(counterID, 10)+`, d.day FROM (`+daysQuery+`) d WHERE true ORDER BY d.day
		ON CONFLICT (counter_id, utc_day) DO NOTHING`, args...); err != nil {
		return fmt.Errorf("rollup: mark days changed: %w", err)
	}
	return nil
}

// Forget drops every built period of the counter, for when its time zone
// changes: its days begin at other hours now.
func Forget(ctx context.Context, db *store.DB, counterID int64) error {
	if _, err := db.Writer().ExecContext(ctx, `DELETE FROM rollup_periods WHERE counter_id = $1`, counterID); err != nil {
		return fmt.Errorf("rollup: forget counter %d: %w", counterID, err)
	}
	return nil
}

// Periods splits the local days from..to (inclusive, dates at midnight UTC
// as civil dates) into what a report reads: whole months that ended before
// today, and the days of the rest. A month still running changes all day
// long, so its days are read one by one.
func Periods(from, to, today time.Time) []string {
	var out []string
	for m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC); !m.After(to); m = m.AddDate(0, 1, 0) {
		last := m.AddDate(0, 1, -1)
		if !m.Before(from) && !last.After(to) && last.Before(today) {
			out = append(out, m.Format("2006-01"))
			continue
		}
		for d := maxDay(m, from); !d.After(last) && !d.After(to); d = d.AddDate(0, 0, 1) {
			out = append(out, d.Format(dayLayout))
		}
	}
	return out
}

func maxDay(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// isMonth tells a month period (2026-03) from a day (2026-03-05).
func isMonth(p string) bool { return len(p) == 7 }

// monthDays lists the days of a month period.
func monthDays(month string) []string {
	m, _ := time.Parse("2006-01", month)
	var out []string
	for d := m; d.Month() == m.Month(); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(dayLayout))
	}
	return out
}

// Ensure makes the rollups of the periods current for a counter whose days
// are in loc: it applies the pending change marks, then builds the periods
// (and the days of months) that are not built. It returns the periods to
// read: those asked, except a month that could not be built (a day of it
// changed meanwhile), whose days stand in for it.
func Ensure(ctx context.Context, db *store.DB, counterID int64, loc *time.Location, periods []string) ([]string, error) {
	if _, err := applyMarks(ctx, db, counterID, loc); err != nil {
		return nil, err
	}
	if len(periods) == 0 {
		return nil, nil
	}
	unbuilt, err := build(ctx, db, counterID, loc, periods)
	if err != nil {
		return nil, err
	}
	if len(unbuilt) == 0 {
		return periods, nil
	}
	read := make([]string, 0, len(periods))
	for _, p := range periods {
		if unbuilt[p] {
			read = append(read, monthDays(p)...)
		} else {
			read = append(read, p)
		}
	}
	return read, nil
}

// build builds the periods (and the days of months) that are not built, and
// returns the months it could not build.
func build(ctx context.Context, db *store.DB, counterID int64, loc *time.Location, periods []string) (map[string]bool, error) {
	built, err := builtPeriods(ctx, db, counterID, periods)
	if err != nil {
		return nil, err
	}
	var days, months []string
	for _, p := range periods {
		if built[p] {
			continue
		}
		if isMonth(p) {
			months = append(months, p)
			for _, d := range monthDays(p) {
				if !built[d] {
					days = append(days, d)
				}
			}
		} else {
			days = append(days, p)
		}
	}
	for _, day := range days {
		if _, err := buildDay(ctx, db, counterID, loc, day); err != nil {
			return nil, err
		}
	}
	var unbuilt map[string]bool
	for _, month := range months {
		ok, err := buildMonth(ctx, db, counterID, month)
		if err != nil {
			return nil, err
		}
		if !ok {
			if unbuilt == nil {
				unbuilt = map[string]bool{}
			}
			unbuilt[month] = true
		}
	}
	return unbuilt, nil
}

// builtPeriods returns which of the periods (and the days of its months) are
// built.
func builtPeriods(ctx context.Context, db *store.DB, counterID int64, periods []string) (map[string]bool, error) {
	lo, hi := periods[0], periods[len(periods)-1]
	if isMonth(hi) {
		hi += "-32"
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT period FROM rollup_periods
		WHERE counter_id = $1 AND period >= $2 AND period <= $3`, counterID, lo[:7], hi)
	if err != nil {
		return nil, fmt.Errorf("rollup: built periods: %w", err)
	}
	defer rows.Close()
	built := map[string]bool{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("rollup: built periods: %w", err)
		}
		built[p] = true
	}
	return built, rows.Err()
}

// Refresh applies the pending change marks of every counter and rebuilds the
// periods they invalidated: what the background worker does, so reports
// rarely build anything themselves. zone returns a counter's time zone, nil
// for a counter that no longer exists.
func Refresh(ctx context.Context, db *store.DB, zone func(counterID int64) (*time.Location, error)) (int, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT DISTINCT counter_id FROM rollup_dirty`)
	if err != nil {
		return 0, fmt.Errorf("rollup: changed counters: %w", err)
	}
	var counters []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("rollup: changed counters: %w", err)
		}
		counters = append(counters, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("rollup: changed counters: %w", err)
	}
	n := 0
	for _, id := range counters {
		loc, err := zone(id)
		if err != nil {
			return n, err
		}
		if loc == nil { // the counter is gone
			if _, err := db.Writer().ExecContext(ctx, `DELETE FROM rollup_dirty WHERE counter_id = $1`, id); err != nil {
				return n, fmt.Errorf("rollup: drop marks of counter %d: %w", id, err)
			}
			continue
		}
		stale, err := applyMarks(ctx, db, id, loc)
		if err != nil {
			return n, err
		}
		// Days first: a month is built from its days.
		slices.SortFunc(stale, func(a, b string) int { return len(b) - len(a) })
		for _, p := range stale {
			var ok bool
			if isMonth(p) {
				ok, err = buildMonth(ctx, db, id, p)
			} else {
				ok, err = buildDay(ctx, db, id, loc, p)
			}
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
	}
	return n, nil
}

// applyMarks turns the counter's change marks (UTC days) into unbuilt
// periods: the one or two local days each UTC day overlaps, and their
// months. It returns the periods that were built and no longer are.
func applyMarks(ctx context.Context, db *store.DB, counterID int64, loc *time.Location) ([]string, error) {
	// Usually there is nothing to do: look before taking the writer.
	var one int
	err := db.Reader().QueryRowContext(ctx, `SELECT 1 FROM rollup_dirty WHERE counter_id = $1 LIMIT 1`, counterID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rollup: change marks: %w", err)
	}
	conn, tx, err := begin(ctx, db, counterID)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `DELETE FROM rollup_dirty WHERE counter_id = $1 RETURNING utc_day`, counterID)
	if err != nil {
		return nil, fmt.Errorf("rollup: take change marks: %w", err)
	}
	var periods []string
	for rows.Next() {
		var day string
		if err := rows.Scan(&day); err != nil {
			rows.Close()
			return nil, fmt.Errorf("rollup: take change marks: %w", err)
		}
		u, err := time.Parse(dayLayout, day)
		if err != nil {
			continue // not written by Mark
		}
		first := u.In(loc)
		last := u.Add(24*time.Hour - time.Nanosecond).In(loc)
		for _, t := range []time.Time{first, last} {
			for _, p := range []string{t.Format(dayLayout), t.Format("2006-01")} {
				if !slices.Contains(periods, p) {
					periods = append(periods, p)
				}
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rollup: take change marks: %w", err)
	}
	if len(periods) == 0 {
		return nil, nil
	}
	var stale []string
	for start := 0; start < len(periods); start += 500 {
		chunk := periods[start:min(start+500, len(periods))]
		args := []any{counterID}
		for _, p := range chunk {
			args = append(args, p)
		}
		rows, err := tx.QueryContext(ctx, `DELETE FROM rollup_periods WHERE counter_id = $1 AND period IN (`+db.Dialect().Params(2, len(chunk))+`)
			RETURNING period`, args...)
		if err != nil {
			return nil, fmt.Errorf("rollup: unbuild changed periods: %w", err)
		}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return nil, fmt.Errorf("rollup: unbuild changed periods: %w", err)
			}
			stale = append(stale, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("rollup: unbuild changed periods: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("rollup: commit: %w", err)
	}
	return stale, nil
}

// begin starts a transaction that holds the counter's rollup lock: builds
// of one counter take turns (on SQLite the single writer already does).
func begin(ctx context.Context, db *store.DB, counterID int64) (*sql.Conn, *sql.Tx, error) {
	conn, err := db.Writer().Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("rollup: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("rollup: begin: %w", err)
	}
	if db.Dialect() == store.Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, rollupLock, int32(counterID)); err != nil {
			tx.Rollback()
			conn.Close()
			return nil, nil, fmt.Errorf("rollup: lock counter %d: %w", counterID, err)
		}
	}
	return conn, tx, nil
}

// claim reports whether period still needs building, inside a build's
// transaction: another process may have built it while this one waited
// for the lock.
func claim(ctx context.Context, tx *sql.Tx, counterID int64, period string) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM rollup_periods WHERE counter_id = $1 AND period = $2`, counterID, period).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("rollup: is %s built: %w", period, err)
	}
	return false, nil
}

// clearPeriod deletes the period's rows before it is built again.
func clearPeriod(ctx context.Context, tx *sql.Tx, counterID int64, period string) error {
	for _, table := range []string{"rollup_traffic", "rollup_orders", "rollup_costs", "rollup_rungs"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE counter_id = $1 AND period = $2`, counterID, period); err != nil {
			return fmt.Errorf("rollup: clear %s of %s: %w", table, period, err)
		}
	}
	return nil
}

func markBuilt(ctx context.Context, tx *sql.Tx, counterID int64, period string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_periods (counter_id, period, built_at) VALUES ($1, $2, $3)`,
		counterID, period, time.Now().UTC()); err != nil {
		return fmt.Errorf("rollup: record %s built: %w", period, err)
	}
	return nil
}
