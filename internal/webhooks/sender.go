package webhooks

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/throughline/throughline/internal/secrets"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/throughline/throughline/internal/imports"
	"github.com/throughline/throughline/internal/store"
)

// Backoff is the retry schedule: after the nth failed attempt the next one
// is Backoff[n-1] later; after the last, the delivery is failed. That is 8
// attempts over about 45 hours — long enough to ride out a receiver's
// weekend outage, short enough that a dead URL stops being tried.
var Backoff = []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// Sender defaults.
const (
	DefaultPoll        = 5 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultBatch       = 50
	DefaultConcurrency = 4
	// maxResponse is how much of a receiver's answer is read (and thrown
	// away) so that the connection can be reused; the rest is cut off.
	maxResponse = 64 << 10
	maxError    = 500 // characters of last_error
)

// Sender posts due deliveries. Several processes may run one each on the
// same database: a delivery is claimed by moving its next_attempt_at past
// the time sending the batch can take (a lease, committed before anything
// is sent, so no transaction stays open across HTTP calls), and its outcome
// is written only while that lease is still its own. A process that stops
// mid-batch leaves its deliveries to be claimed again when the lease ends.
// Delivery is at least once: a receiver should drop repeats by the
// X-Throughline-Delivery header.
type Sender struct {
	DB  *store.DB
	Log *slog.Logger
	// Guard decides which destinations may be reached (see Guard.Client).
	Guard Guard
	// Box opens the webhooks' sealed secrets.
	Box *secrets.Box
	// Now is the clock (time.Now when nil): tests move it instead of sleeping.
	Now func() time.Time
	// Timeout bounds one attempt, connection to the last byte read
	// (DefaultTimeout when 0).
	Timeout time.Duration
	// Batch is how many deliveries are claimed at once, Concurrency how
	// many are sent at the same time (the defaults when 0).
	Batch, Concurrency int

	once   sync.Once
	client *http.Client
}

func (s *Sender) init() {
	s.once.Do(func() {
		if s.Log == nil {
			s.Log = slog.Default()
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.Timeout <= 0 {
			s.Timeout = DefaultTimeout
		}
		if s.Batch <= 0 {
			s.Batch = DefaultBatch
		}
		if s.Concurrency <= 0 {
			s.Concurrency = DefaultConcurrency
		}
		s.client = s.Guard.Client(s.Timeout)
	})
}

func (s *Sender) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// lease is how long a claimed batch is kept from other processes: twice the
// longest the batch can take to send, and a minute for the database.
func (s *Sender) lease() time.Duration {
	rounds := (s.Batch + s.Concurrency - 1) / s.Concurrency
	return 2*time.Duration(rounds)*s.Timeout + time.Minute
}

// Run sends due deliveries until ctx ends: whenever a batch was full at
// once, otherwise every poll (DefaultPoll when 0). Failures are logged; what
// was not sent stays due.
func (s *Sender) Run(ctx context.Context, poll time.Duration) {
	s.init()
	if poll <= 0 {
		poll = DefaultPoll
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := s.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				s.Log.Error("webhooks: sending failed; will retry", "err", err)
			}
			if err != nil || n < s.Batch {
				break
			}
		}
		t.Reset(poll)
	}
}

type hookKey struct {
	counter int64
	id      string
}

// RunOnce claims up to Batch due deliveries of active webhooks and makes
// one attempt at each, Concurrency at a time. It returns how many it
// attempted, whatever their outcome.
func (s *Sender) RunOnce(ctx context.Context) (int, error) {
	s.init()
	now := s.now()
	// Look on a reader first: an idle poll then never takes SQLite's one
	// write connection from the collector.
	var one int
	err := s.DB.Reader().QueryRowContext(ctx, `SELECT 1 FROM webhook_deliveries d WHERE `+dueSQL+` LIMIT 1`, now).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("webhooks: look for due deliveries: %w", err)
	}
	ds, lease, err := s.claim(ctx, now)
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	hooks := map[hookKey]*Webhook{}
	for _, d := range ds {
		k := hookKey{d.CounterID, d.WebhookID}
		if _, ok := hooks[k]; ok {
			continue
		}
		w, err := get(ctx, s.DB.Reader(), s.Box, d.CounterID, d.WebhookID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return 0, err // the lease ends and they are claimed again
		}
		hooks[k] = w // nil: deleted since the claim, with its deliveries
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, s.Concurrency)
	for _, d := range ds {
		w := hooks[hookKey{d.CounterID, d.WebhookID}]
		if w == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.attempt(ctx, w, d, lease); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return len(ds), errors.Join(errs...)
}

// dueSQL selects deliveries d that are due at $1 and whose webhook is
// active; the status literal lets the partial index webhook_deliveries_due
// serve it. Deliveries of an inactive webhook wait, and go out once it is
// active again (built from the order as it is then).
const dueSQL = `d.status = 'pending' AND d.next_attempt_at <= $1
	AND EXISTS (SELECT 1 FROM webhooks w WHERE w.counter_id = d.counter_id AND w.id = d.webhook_id AND w.active)`

// claim takes due deliveries for this process by moving their
// next_attempt_at to the end of a lease. On PostgreSQL, SKIP LOCKED lets
// two processes claim at once without waiting on, or taking, each other's
// rows; SQLite's one writer makes the statement exclusive anyway.
func (s *Sender) claim(ctx context.Context, now time.Time) ([]*Delivery, time.Time, error) {
	lease := now.Add(s.lease())
	lock := ""
	if s.DB.Dialect() == store.Postgres {
		lock = " FOR UPDATE OF d SKIP LOCKED"
	}
	rows, err := s.DB.Writer().QueryContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = $2
		WHERE (counter_id, id) IN (
			SELECT d.counter_id, d.id FROM webhook_deliveries d
			WHERE `+dueSQL+`
			ORDER BY d.next_attempt_at, d.id
			LIMIT $3`+lock+`)
		RETURNING id, counter_id, webhook_id, order_id, event, attempts`, now, lease, s.Batch)
	if err != nil {
		return nil, lease, fmt.Errorf("webhooks: claim due deliveries: %w", err)
	}
	defer rows.Close()
	var ds []*Delivery
	for rows.Next() {
		d := &Delivery{Status: StatusPending}
		if err := rows.Scan(&d.ID, &d.CounterID, &d.WebhookID, &d.OrderID, &d.Event, &d.Attempts); err != nil {
			return nil, lease, fmt.Errorf("webhooks: claim due deliveries: %w", err)
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, lease, fmt.Errorf("webhooks: claim due deliveries: %w", err)
	}
	return ds, lease, nil
}

// outcome is what an attempt did to a delivery.
type outcome struct {
	status     string
	attempts   int
	next       time.Time
	httpStatus int
	err        string
	delivered  *time.Time
}

// attempt builds, signs and posts one delivery and records the outcome.
func (s *Sender) attempt(ctx context.Context, w *Webhook, d *Delivery, lease time.Time) error {
	start := time.Now()
	now := s.now()
	body, err := buildPayload(ctx, s.DB, d, now)
	var gone *goneError
	if errors.As(err, &gone) {
		o := outcome{status: StatusFailed, attempts: d.Attempts, next: now, err: gone.msg}
		s.logAttempt(w, d, o, time.Since(start))
		return s.record(ctx, d, lease, o)
	}
	if err != nil {
		return err // the lease ends and it is claimed again
	}
	code, sendErr := s.post(ctx, w, d, now, body)
	if sendErr != nil && ctx.Err() != nil {
		// Shutting down: not the receiver's fault, and not an attempt.
		s.release(d, lease)
		return nil
	}
	done := s.now()
	o := outcome{attempts: d.Attempts + 1, httpStatus: code}
	switch {
	case sendErr == nil && code >= 200 && code < 300:
		o.status, o.next, o.delivered = StatusDelivered, done, &done
	default:
		o.err = truncate(describe(sendErr, code, s.Timeout), maxError)
		if o.attempts > len(Backoff) {
			o.status, o.next = StatusFailed, done
		} else {
			o.status, o.next = StatusPending, done.Add(Backoff[o.attempts-1])
		}
	}
	s.logAttempt(w, d, o, time.Since(start))
	return s.record(ctx, d, lease, o)
}

// httpError is a receiver's answer other than 2xx.
type httpError struct {
	status   string
	location string // of a redirect
}

// post sends body to the webhook's URL and returns the receiver's status.
func (s *Sender) post(ctx context.Context, w *Webhook, d *Delivery, now time.Time, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderEvent, d.Event)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(d.ID, 10))
	req.Header.Set(HeaderSignature, Sign(w.secret, now, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// The answer's status is the outcome; a body cut off or slow to come
	// changes nothing (the receiver has the request), so its error is moot.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return resp.StatusCode, &httpError{status: resp.Status, location: resp.Header.Get("Location")}
	}
	return resp.StatusCode, nil
}

func (e *httpError) Error() string { return "the receiver answered " + e.status }

// describe says what went wrong with an attempt, for the delivery log.
// Network errors are shown without the URL (its query may hold a key).
func describe(err error, code int, timeout time.Duration) string {
	var he *httpError
	var ue *url.Error
	switch {
	case errors.As(err, &he) && code >= 300 && code < 400:
		msg := he.Error()
		if he.location != "" {
			msg += " redirecting to " + imports.Redact(he.location)
		}
		return msg + "; redirects are not followed: set the webhook's URL to the final address"
	case errors.As(err, &he):
		return he.Error()
	case errors.Is(err, imports.ErrPrivateAddress):
		return "refused: " + imports.ErrPrivateAddress.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ue) && ue.Timeout():
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the receiver closed the connection without answering"
	case err != nil:
		return imports.WithoutURL(err)
	}
	return fmt.Sprintf("the receiver answered %d", code)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 { // do not cut a UTF-8 character in two
		n--
	}
	return s[:n] + "…"
}

// record writes an attempt's outcome, if the delivery is still this
// process's claim: redelivered (or claimed by another process after the
// lease ran out) meanwhile, it is left to its new owner.
func (s *Sender) record(ctx context.Context, d *Delivery, lease time.Time, o outcome) error {
	var delivered any
	if o.delivered != nil {
		delivered = *o.delivered
	}
	// A shutdown must not lose an outcome that happened: write it anyway.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	res, err := s.DB.Writer().ExecContext(ctx, `UPDATE webhook_deliveries
		SET status = $3, attempts = $4, next_attempt_at = $5, last_status = $6, last_error = $7, delivered_at = $8
		WHERE counter_id = $1 AND id = $2 AND status = 'pending' AND next_attempt_at = $9`,
		d.CounterID, d.ID, o.status, o.attempts, o.next, o.httpStatus, o.err, delivered, lease)
	if err != nil {
		return fmt.Errorf("webhooks: record delivery %d: %w", d.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		s.Log.Info("webhooks: delivery changed while it was sent (redelivered or deleted); its outcome is not recorded",
			"counter", d.CounterID, "webhook", d.WebhookID, "delivery", d.ID)
	}
	return nil
}

// release gives a claimed delivery back, due now, when the process stops
// before it was sent.
func (s *Sender) release(d *Delivery, lease time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.DB.Writer().ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = $3
		WHERE counter_id = $1 AND id = $2 AND status = 'pending' AND next_attempt_at = $4`, d.CounterID, d.ID, s.now(), lease)
	if err != nil {
		s.Log.Warn("webhooks: could not release a delivery; it is retried when its lease ends", "delivery", d.ID, "err", err)
	}
}

func (s *Sender) logAttempt(w *Webhook, d *Delivery, o outcome, took time.Duration) {
	level := slog.LevelInfo
	if o.status != StatusDelivered {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.Int64("counter", d.CounterID), slog.String("webhook", d.WebhookID), slog.Int64("delivery", d.ID),
		slog.String("order", d.OrderID), slog.String("event", d.Event), slog.String("url", imports.Redact(w.url)),
		slog.String("outcome", o.status), slog.Int("attempt", o.attempts), slog.Int("http_status", o.httpStatus),
		slog.Duration("took", took.Round(time.Millisecond)),
	}
	if o.err != "" {
		attrs = append(attrs, slog.String("err", o.err))
	}
	if o.status == StatusPending {
		attrs = append(attrs, slog.Time("next_attempt_at", o.next))
	}
	s.Log.LogAttrs(context.Background(), level, "webhook delivery", attrs...)
}
