package webhooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/throughline/throughline/internal/cursor"
	"github.com/throughline/throughline/internal/store"
)

// Delivery statuses.
const (
	StatusPending   = "pending"   // waiting for its next attempt
	StatusDelivered = "delivered" // the receiver answered 2xx
	StatusFailed    = "failed"    // gave up: the retry schedule ran out, or the order is gone
)

// Delivery is one order event sent (or to be sent) to one webhook: the
// delivery log's row.
type Delivery struct {
	ID        int64  `json:"id"`
	CounterID int64  `json:"counter_id"`
	WebhookID string `json:"webhook_id"`
	OrderID   string `json:"order_id"`
	Event     string `json:"event"` // matched, status
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	// NextAttemptAt is when a pending delivery is tried next; null once it
	// is delivered or failed.
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastStatus    int        `json:"last_status"` // the receiver's HTTP status of the last attempt; 0: none (not sent, or a network error)
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
}

// ErrBadCursor means a cursor this API did not issue.
var ErrBadCursor = cursor.ErrBad

const deliveryColumns = `id, counter_id, webhook_id, order_id, event, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at`

func scanDelivery(row interface{ Scan(...any) error }) (*Delivery, error) {
	d := &Delivery{}
	var next time.Time
	var delivered sql.NullTime
	if err := row.Scan(&d.ID, &d.CounterID, &d.WebhookID, &d.OrderID, &d.Event, &d.Status, &d.Attempts, &next,
		&d.LastStatus, &d.LastError, &d.CreatedAt, &delivered); err != nil {
		return nil, err
	}
	if d.Status == StatusPending {
		d.NextAttemptAt = &next
	}
	if delivered.Valid {
		d.DeliveredAt = &delivered.Time
	}
	return d, nil
}

// DefaultPageSize is ListDeliveries' page when no limit is given.
const DefaultPageSize = 100

// ListDeliveries returns a page of a webhook's deliveries, newest first,
// and the next page's cursor ("" on the last). ErrNotFound when the counter
// has no such webhook.
func ListDeliveries(ctx context.Context, db *store.DB, counterID int64, webhookID string, limit int, after string) ([]*Delivery, string, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	if err := exists(ctx, db.Reader(), counterID, webhookID); err != nil {
		return nil, "", err
	}
	f := store.NewFilter(counterID)
	f.Add("webhook_id = " + f.Arg(webhookID))
	if after != "" {
		// Pages follow the id (the order deliveries were queued in), which
		// the index (counter_id, webhook_id, id) serves without a sort; the
		// cursor's time is only the cursor format's.
		_, key, err := cursor.Decode(after)
		n, perr := strconv.ParseInt(key, 10, 64)
		if err != nil || perr != nil {
			return nil, "", ErrBadCursor
		}
		f.Add("id < " + f.Arg(n))
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE `+f.SQL()+`
		ORDER BY id DESC LIMIT `+f.Arg(limit+1), f.Args...)
	if err != nil {
		return nil, "", fmt.Errorf("webhooks: deliveries of %s: %w", webhookID, err)
	}
	defer rows.Close()
	out := []*Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, "", fmt.Errorf("webhooks: deliveries of %s: %w", webhookID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("webhooks: deliveries of %s: %w", webhookID, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[len(out)-1]
		next = cursor.Encode(last.CreatedAt, strconv.FormatInt(last.ID, 10))
	}
	return out, next, nil
}

// GetDelivery returns one delivery of the counter's webhook.
func GetDelivery(ctx context.Context, db *store.DB, counterID int64, webhookID string, id int64) (*Delivery, error) {
	return getDelivery(ctx, db.Reader(), counterID, webhookID, id)
}

func getDelivery(ctx context.Context, q queryRower, counterID int64, webhookID string, id int64) (*Delivery, error) {
	d, err := scanDelivery(q.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE counter_id = $1 AND webhook_id = $2 AND id = $3`, counterID, webhookID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: delivery %d: %w", id, err)
	}
	return d, nil
}

// Redeliver queues a delivery again, whatever became of it — for a user
// who fixed their receiver, or lost what it received: pending, due now,
// with the whole retry schedule ahead (attempts start again from 0). The
// last attempt's status and error stay until the next attempt. A delivery
// of an inactive webhook waits until the webhook is active again.
func Redeliver(ctx context.Context, db *store.DB, counterID int64, webhookID string, id int64) (*Delivery, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	res, err := db.Writer().ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $4, delivered_at = NULL
		WHERE counter_id = $1 AND webhook_id = $2 AND id = $3`, counterID, webhookID, id, now)
	if err != nil {
		return nil, fmt.Errorf("webhooks: redeliver %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrNotFound
	}
	return getDelivery(ctx, db.Writer(), counterID, webhookID, id)
}
