// Package matching finds, for every CRM order, the visits, calls and leads
// behind it — strongest evidence first, the reason kept — and splits the
// order's credit over that touch path under each attribution model.
//
// The ladder (design notes; issue 6): the order's sid → that session; its
// uuid / client ids → that visitor's sessions; its caller phone → the last
// call from that number → its session; the order's and its contact's phones
// and e-mails (or their md5) → the last lead or call with them, and hashed
// form captures → their sessions; the contact's client ids → sessions.
// Only evidence from the counter's lookback window before the order counts.
// An order with none is kept as not found.
//
// Orders are matched from a queue: an import enqueues the orders it wrote,
// and late data — a call, a lead, a contact, a form capture — enqueues the
// orders whose customer keys it carries, so matching stays incremental.
package matching

import (
	"context"
	"fmt"
	"time"

	"github.com/throughline/throughline/internal/store"
)

// Key kinds of order_keys.
const (
	KeyPhone    = "phone"
	KeyEmail    = "email"
	KeyPhoneMD5 = "phone_md5"
	KeyEmailMD5 = "email_md5"
	KeyContact  = "contact"
)

// Enqueue marks orders to be matched (again).
func Enqueue(ctx context.Context, q store.Execer, d store.Dialect, counterID int64, orderIDs []string, now time.Time) error {
	for start := 0; start < len(orderIDs); start += 1000 {
		ids := orderIDs[start:min(start+1000, len(orderIDs))]
		args := make([]any, 0, 3*len(ids))
		for _, id := range ids {
			args = append(args, counterID, id, now.UTC())
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO match_queue (counter_id, order_id, queued_at) VALUES `+d.Values(len(ids), 3)+`
			ON CONFLICT (counter_id, order_id) DO NOTHING`, args...); err != nil {
			return fmt.Errorf("matching: enqueue %d orders: %w", len(ids), err)
		}
	}
	return nil
}

// lockClass is the first key of the advisory locks below: Throughline's
// matching, in PostgreSQL's lock space.
const lockClass = 7246

// LockLateData is taken, on PostgreSQL, by a transaction that writes late
// data about a counter's customers (calls, leads, form captures, CRM
// contacts) before it writes anything. Matching a batch of the counter holds
// the same lock shared from before it reads evidence until it commits, so
// each waits for the other: otherwise a lead committed while a batch matches
// an order for the first time would find no order_keys (not committed yet)
// to re-queue, and the batch would not see the lead. SQLite's single writer
// already orders them.
func LockLateData(ctx context.Context, q store.Execer, d store.Dialect, counterID int64) error {
	if d != store.Postgres {
		return nil
	}
	if _, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, ($2 % 2147483647)::int)`, lockClass, counterID); err != nil {
		return fmt.Errorf("matching: lock counter %d: %w", counterID, err)
	}
	return nil
}

// EnqueueByKey marks the matched orders whose customer has key (kind,
// value): late data about that customer may change their match. (Orders not
// yet matched are in the queue already.)
func EnqueueByKey(ctx context.Context, q store.Execer, counterID int64, kind, value string, now time.Time) error {
	if value == "" {
		return nil
	}
	_, err := q.ExecContext(ctx, `INSERT INTO match_queue (counter_id, order_id, queued_at)
		SELECT counter_id, order_id, $4 FROM order_keys WHERE counter_id = $1 AND kind = $2 AND value = $3
		ON CONFLICT (counter_id, order_id) DO NOTHING`, counterID, kind, value, now.UTC())
	if err != nil {
		return fmt.Errorf("matching: enqueue orders of %s %s: %w", kind, value, err)
	}
	return nil
}

// EnqueueByKeys is EnqueueByKey for many values of one kind (an import's
// changed contacts), a statement per thousand.
func EnqueueByKeys(ctx context.Context, q store.Execer, d store.Dialect, counterID int64, kind string, values []string, now time.Time) error {
	for start := 0; start < len(values); start += 1000 {
		vs := values[start:min(start+1000, len(values))]
		// Arguments in the order the parameters appear: SQLite binds its
		// anonymous ones that way.
		args := []any{now.UTC(), counterID, kind}
		for _, v := range vs {
			args = append(args, v)
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO match_queue (counter_id, order_id, queued_at)
			SELECT counter_id, order_id, `+d.Param(1)+` FROM order_keys WHERE counter_id = `+d.Param(2)+` AND kind = `+d.Param(3)+`
				AND value IN (`+d.Params(4, len(vs))+`)
			ON CONFLICT (counter_id, order_id) DO NOTHING`, args...); err != nil {
			return fmt.Errorf("matching: enqueue orders of %d %s keys: %w", len(vs), kind, err)
		}
	}
	return nil
}

// EnqueueAll marks every order of the counter, for a full re-match (a
// changed lookback window, a new version of the rules).
func EnqueueAll(ctx context.Context, q store.Execer, counterID int64, now time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, `INSERT INTO match_queue (counter_id, order_id, queued_at)
		SELECT counter_id, order_id, $2 FROM crm_orders WHERE counter_id = $1
		ON CONFLICT (counter_id, order_id) DO NOTHING`, counterID, now.UTC())
	if err != nil {
		return 0, fmt.Errorf("matching: enqueue all orders: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Queued returns how many orders of the counter wait to be matched.
func Queued(ctx context.Context, db *store.DB, counterID int64) (int64, error) {
	var n int64
	if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM match_queue WHERE counter_id = $1`, counterID).Scan(&n); err != nil {
		return 0, fmt.Errorf("matching: queue: %w", err)
	}
	return n, nil
}
