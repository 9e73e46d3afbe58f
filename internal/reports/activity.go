package reports

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/throughline/throughline/internal/store"
)

// Activity is what a counter received since a moment (the start of its
// day), and when each stream last brought something: what the counters
// list shows, so a stream that stopped is seen.
type Activity struct {
	Sessions, Calls, Leads, Orders int64
	LastHit, LastCall, LastLead    time.Time // zero: never
	LastImport                     time.Time // the last upload or import run's start
	LastImportFailed               bool
}

// RecentActivity counts the counter's sessions, calls, leads and orders
// since the given moment and finds the latest of each stream. Each query
// reads an index's end, so it costs the same for a year of data as for a
// day.
func RecentActivity(ctx context.Context, db *store.DB, counterID int64, since time.Time) (Activity, error) {
	var a Activity
	rd := db.Reader()
	for _, q := range []struct {
		what string
		sql  string
		dest *int64
	}{
		{"sessions", `SELECT count(*) FROM sessions WHERE counter_id = $1 AND started_at >= $2`, &a.Sessions},
		{"calls", `SELECT count(*) FROM calls WHERE counter_id = $1 AND started_at >= $2 AND direction NOT IN ('out', 'internal')`, &a.Calls},
		{"leads", `SELECT count(*) FROM leads WHERE counter_id = $1 AND created_at >= $2`, &a.Leads},
		{"orders", `SELECT count(*) FROM crm_orders WHERE counter_id = $1 AND created_at >= $2`, &a.Orders},
	} {
		if err := rd.QueryRowContext(ctx, q.sql, counterID, since).Scan(q.dest); err != nil {
			return a, fmt.Errorf("reports: %s since %s: %w", q.what, since.Format(time.RFC3339), err)
		}
	}
	for _, q := range []struct {
		what string
		sql  string
		dest *time.Time
	}{
		{"last hit", `SELECT at FROM hits WHERE counter_id = $1 ORDER BY id DESC LIMIT 1`, &a.LastHit},
		{"last call", `SELECT started_at FROM calls WHERE counter_id = $1 ORDER BY started_at DESC LIMIT 1`, &a.LastCall},
		{"last lead", `SELECT created_at FROM leads WHERE counter_id = $1 ORDER BY created_at DESC LIMIT 1`, &a.LastLead},
	} {
		if err := rd.QueryRowContext(ctx, q.sql, counterID).Scan(q.dest); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return a, fmt.Errorf("reports: %s: %w", q.what, err)
		}
	}
	// Imports' ids are time-ordered UUIDs: the primary key's end is the
	// latest.
	var status string
	err := rd.QueryRowContext(ctx, `SELECT started_at, status FROM crm_imports WHERE counter_id = $1 ORDER BY id DESC LIMIT 1`,
		counterID).Scan(&a.LastImport, &status)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("reports: last import: %w", err)
	}
	a.LastImportFailed = status == "failed"
	return a, nil
}
