package calltracking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/store"
)

// HeartbeatSeconds is how often t.js renews a lease while its page is open.
const HeartbeatSeconds = 60

// firstHold is how long a new lease lasts before its page's first
// heartbeat renews it for the counter's full hold.
const firstHold = 3 * HeartbeatSeconds * time.Second

// Shown is what a session is to show instead of the site's own phone.
type Shown struct {
	Number  string `json:"number"`  // normalised
	Display string `json:"display"` // formatted for people
	LeaseID string `json:"lease_id,omitempty"`
	PoolID  int64  `json:"pool_id,omitempty"`
	Kind    string `json:"kind"` // lease, static, fallback
}

// errEmptyPool: the pool has no active numbers; the next pool is tried.
var errEmptyPool = errors.New("the pool has no numbers")

// ErrGone means a lease has ended: the page must ask for a number again.
var ErrGone = errors.New("the lease has ended")

// Assign gives session sid of visitor uuid the number it should show: the
// number it already holds; else, from the first pool whose rule its traffic
// satisfies, the number it held last (if no one else has had it since) or
// the number free longest; else, when that pool is exhausted, the pool's
// fallback number; else a static number whose rule it satisfies. It returns
// nil when the site's own number should stay.
//
// A number is lent to one visitor at a time: another visitor gets it only
// once its last lease has ended and the counter's cooldown has passed, so a
// late call still points at its last holder. Assignment is atomic on both
// engines: on PostgreSQL the chosen number's row is locked (SKIP LOCKED, so
// concurrent sessions take different numbers without waiting); on SQLite
// the one writer serialises assignments.
func Assign(ctx context.Context, db *store.DB, c counter.Counter, sid, visitor string, now time.Time) (*Shown, error) {
	now = now.UTC().Truncate(time.Microsecond)
	hold := time.Duration(c.LeaseHoldMinutes) * time.Minute
	cooldown := time.Duration(c.LeaseCooldownSeconds) * time.Second
	var shown *Shown
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		// Only a recorded session of this visitor gets a number: t.js asks
		// after its first pageview is stored, and a script that makes ids up
		// cannot drain the pool.
		traffic, owner, err := sessionTraffic(ctx, tx, c.ID, sid)
		if err != nil {
			return err
		}
		if owner != visitor {
			return nil
		}
		// The session holds a number already (another tab, a reload).
		lock := ""
		if db.Dialect() == store.Postgres {
			lock = " FOR UPDATE" // a release racing this renewal waits, and is then seen
		}
		var leaseID, number string
		var poolID int64
		err = tx.QueryRowContext(ctx, `SELECT id, number, pool_id FROM number_leases
			WHERE counter_id = $1 AND sid = $2 AND released_at IS NULL AND expires_at > $3
			ORDER BY leased_at DESC LIMIT 1`+lock, c.ID, sid, now).Scan(&leaseID, &number, &poolID)
		switch {
		case err == nil:
			err = renew(ctx, tx, c.ID, leaseID, number, now, hold)
			if err == nil {
				shown = &Shown{Number: number, Display: Display(number), LeaseID: leaseID, PoolID: poolID, Kind: "lease"}
				return nil
			}
			if !errors.Is(err, ErrGone) {
				return err
			}
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("calltracking: assign: current lease: %w", err)
		}

		pools, err := queryPoolsOnly(ctx, tx, c.ID)
		if err != nil {
			return err
		}
		for _, p := range pools {
			if !p.Rule.Matches(traffic) {
				continue
			}
			shown, err = lease(ctx, tx, db.Dialect(), c.ID, p, sid, visitor, now, hold, cooldown)
			if errors.Is(err, errEmptyPool) {
				continue // a pool without numbers serves no one
			}
			return err
		}
		shown, err = staticFor(ctx, tx, c.ID, traffic)
		return err
	})
	if err != nil {
		return nil, err
	}
	return shown, nil
}

// lease takes a number of pool p for the session, or its fallback.
func lease(ctx context.Context, tx *sql.Tx, d store.Dialect, counterID int64, p *Pool, sid, visitor string, now time.Time, hold, cooldown time.Duration) (*Shown, error) {
	lock := ""
	if d == store.Postgres {
		lock = ` FOR UPDATE SKIP LOCKED`
	}
	// Free for this visitor: its own last number once that lease ended; for
	// anyone: a number whose last lease ended a cooldown ago. Prefer the
	// visitor's own, then the one free longest.
	var number string
	err := tx.QueryRowContext(ctx, `SELECT number FROM tracked_numbers
		WHERE counter_id = $1 AND pool_id = $2 AND active
		  AND (lease_end <= $3 OR (holder_uuid = $4 AND lease_end <= $5))
		ORDER BY CASE WHEN holder_uuid = $4 THEN 0 ELSE 1 END, lease_end
		LIMIT 1`+lock, counterID, p.ID, now.Add(-cooldown), visitor, now).Scan(&number)
	if errors.Is(err, sql.ErrNoRows) {
		var any int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM tracked_numbers
			WHERE counter_id = $1 AND pool_id = $2 AND active LIMIT 1) AS n`, counterID, p.ID).Scan(&any); err != nil {
			return nil, fmt.Errorf("calltracking: pool %d: %w", p.ID, err)
		}
		if any == 0 {
			return nil, errEmptyPool
		}
		// Exhausted: count it, so the user sees the pool is too small.
		if _, err := tx.ExecContext(ctx, `UPDATE number_pools SET shortages = shortages + 1, last_shortage_at = $3
			WHERE counter_id = $1 AND id = $2`, counterID, p.ID, now); err != nil {
			return nil, fmt.Errorf("calltracking: count shortage: %w", err)
		}
		if p.FallbackNumber == "" {
			return nil, nil
		}
		return &Shown{Number: p.FallbackNumber, Display: Display(p.FallbackNumber), PoolID: p.ID, Kind: "fallback"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("calltracking: choose a number: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("calltracking: lease id: %w", err)
	}
	leaseID := id.String()
	// Until its page's first heartbeat a lease is held briefly: a page that
	// never shows (a prefetch, a script) gives its number back soon.
	first := min(hold, firstHold)
	if _, err := tx.ExecContext(ctx, `INSERT INTO number_leases (counter_id, id, pool_id, number, sid, uuid, leased_at, last_seen_at, expires_at, release_reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, '')`, counterID, leaseID, p.ID, number, sid, visitor, now, now.Add(first)); err != nil {
		return nil, fmt.Errorf("calltracking: lease %s: %w", number, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tracked_numbers SET holder_uuid = $3, lease_id = $4, lease_end = $5
		WHERE counter_id = $1 AND number = $2`, counterID, number, visitor, leaseID, now.Add(first)); err != nil {
		return nil, fmt.Errorf("calltracking: lease %s: %w", number, err)
	}
	return &Shown{Number: number, Display: Display(number), LeaseID: leaseID, PoolID: p.ID, Kind: "lease"}, nil
}

// staticFor finds a static number shown to sessions with this traffic.
func staticFor(ctx context.Context, tx *sql.Tx, counterID int64, t Traffic) (*Shown, error) {
	rows, err := tx.QueryContext(ctx, `SELECT number, rule FROM tracked_numbers
		WHERE counter_id = $1 AND pool_id IS NULL AND active AND rule <> '' ORDER BY number`, counterID)
	if err != nil {
		return nil, fmt.Errorf("calltracking: static numbers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var number, rule string
		if err := rows.Scan(&number, &rule); err != nil {
			return nil, fmt.Errorf("calltracking: static numbers: %w", err)
		}
		r, err := decodeRule(rule)
		if err != nil {
			return nil, fmt.Errorf("calltracking: number %s: rule: %w", number, err)
		}
		if r.Matches(t) {
			return &Shown{Number: number, Display: Display(number), Kind: "static"}, nil
		}
	}
	return nil, rows.Err()
}

// sessionTraffic reads a session's source and visitor; an unknown session
// has neither.
func sessionTraffic(ctx context.Context, q querier, counterID int64, sid string) (Traffic, string, error) {
	var t Traffic
	var visitor string
	err := q.QueryRowContext(ctx, `SELECT traffic_type, source, medium, utm_campaign, uuid FROM sessions WHERE counter_id = $1 AND sid = $2`,
		counterID, sid).Scan(&t.Type, &t.Source, &t.Medium, &t.Campaign, &visitor)
	if errors.Is(err, sql.ErrNoRows) {
		return Traffic{}, "", nil
	}
	if err != nil {
		return t, "", fmt.Errorf("calltracking: session %s: %w", sid, err)
	}
	return t, visitor, nil
}

// renew keeps a lease alive for another hold period — only while it is
// live and its number is still on it; else ErrGone. (A heartbeat that
// waited for the database while the lease ran out and the number went to
// someone else must not take the number back.)
func renew(ctx context.Context, tx *sql.Tx, counterID int64, leaseID, number string, now time.Time, hold time.Duration) error {
	res, err := tx.ExecContext(ctx, `UPDATE tracked_numbers SET lease_end = $4 WHERE counter_id = $1 AND number = $2 AND lease_id = $3`,
		counterID, number, leaseID, now.Add(hold))
	if err != nil {
		return fmt.Errorf("calltracking: renew lease: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrGone
	}
	res, err = tx.ExecContext(ctx, `UPDATE number_leases SET last_seen_at = $3, expires_at = $4
		WHERE counter_id = $1 AND id = $2 AND released_at IS NULL AND expires_at > $3`, counterID, leaseID, now, now.Add(hold))
	if err != nil {
		return fmt.Errorf("calltracking: renew lease: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrGone // the number's row is rolled back with the transaction
	}
	return nil
}

// Heartbeat renews a session's lease while its page is open; ErrGone when
// the lease has ended (the page then asks for a number again).
func Heartbeat(ctx context.Context, db *store.DB, c counter.Counter, leaseID, sid string, now time.Time) error {
	now = now.UTC().Truncate(time.Microsecond)
	return db.Tx(ctx, func(tx *sql.Tx) error {
		var number string
		err := tx.QueryRowContext(ctx, `SELECT number FROM number_leases
			WHERE counter_id = $1 AND id = $2 AND sid = $3 AND released_at IS NULL AND expires_at > $4`,
			c.ID, leaseID, sid, now).Scan(&number)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrGone
		}
		if err != nil {
			return fmt.Errorf("calltracking: heartbeat: %w", err)
		}
		return renew(ctx, tx, c.ID, leaseID, number, now, time.Duration(c.LeaseHoldMinutes)*time.Minute)
	})
}

// Release ends a lease now (the page was closed, or a call came). The
// number then cools down before another visitor gets it.
func Release(ctx context.Context, db *store.DB, counterID int64, leaseID, sid, reason string, at time.Time) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		return release(ctx, tx, db.Dialect(), counterID, leaseID, sid, reason, at)
	})
}

func release(ctx context.Context, tx *sql.Tx, d store.Dialect, counterID int64, leaseID, sid, reason string, at time.Time) error {
	at = at.UTC().Truncate(time.Microsecond)
	// Never before the page's last sign of life: the number was on screen
	// until then, and a call up to then must still find this session.
	var number string
	err := tx.QueryRowContext(ctx, `UPDATE number_leases SET released_at = `+d.Greatest("last_seen_at", "$4")+`, release_reason = $5
		WHERE counter_id = $1 AND id = $2 AND sid = $3 AND released_at IS NULL AND expires_at > $4
		RETURNING number`, counterID, leaseID, sid, at, reason).Scan(&number)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrGone
	}
	if err != nil {
		return fmt.Errorf("calltracking: release lease: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tracked_numbers SET lease_end = (SELECT released_at FROM number_leases WHERE counter_id = $1 AND id = $3)
		WHERE counter_id = $1 AND number = $2 AND lease_id = $3`, counterID, number, leaseID); err != nil {
		return fmt.Errorf("calltracking: release lease: %w", err)
	}
	return nil
}

// Lease is one loan of a number to a session: the evidence for matching.
type Lease struct {
	ID            string     `json:"id"`
	PoolID        int64      `json:"pool_id"`
	Number        string     `json:"number"`
	SID           string     `json:"sid"`
	UUID          string     `json:"uuid"`
	LeasedAt      time.Time  `json:"leased_at"`
	LastSeenAt    time.Time  `json:"last_seen_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	ReleasedAt    *time.Time `json:"released_at"`
	ReleaseReason string     `json:"release_reason,omitempty"`
}

// End is when the lease ended, or will unless renewed.
func (l Lease) End() time.Time {
	if l.ReleasedAt != nil {
		return *l.ReleasedAt
	}
	return l.ExpiresAt
}

const leaseColumns = `id, pool_id, number, sid, uuid, leased_at, last_seen_at, expires_at, released_at, release_reason`

func scanLease(row interface{ Scan(...any) error }) (*Lease, error) {
	l := &Lease{}
	var released sql.NullTime
	if err := row.Scan(&l.ID, &l.PoolID, &l.Number, &l.SID, &l.UUID, &l.LeasedAt, &l.LastSeenAt, &l.ExpiresAt, &released, &l.ReleaseReason); err != nil {
		return nil, err
	}
	if released.Valid {
		l.ReleasedAt = &released.Time
	}
	return l, nil
}

// Leases returns the leases of a number, newest first (limit of them).
func Leases(ctx context.Context, db *store.DB, counterID int64, number string, limit int) ([]*Lease, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+leaseColumns+` FROM number_leases
		WHERE counter_id = $1 AND number = $2 ORDER BY leased_at DESC LIMIT $3`, counterID, number, limit)
	if err != nil {
		return nil, fmt.Errorf("calltracking: leases: %w", err)
	}
	defer rows.Close()
	out := []*Lease{}
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, fmt.Errorf("calltracking: leases: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
