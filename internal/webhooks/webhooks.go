// Package webhooks posts order events to the URLs a counter sets: each
// newly matched or status-changed order, as JSON, signed with HMAC-SHA256,
// retried with backoff, every delivery logged.
//
// Matching queues the events (a 'pending' row of webhook_deliveries per
// active webhook, in its own transaction, so an event is never lost between
// a match and its delivery); the Sender here posts them. The payload is
// built when it is sent, from the order and its match as they are then, so
// a retry a day later does not send day-old data.
package webhooks

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/throughline/throughline/internal/secrets"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/imports"
	"github.com/throughline/throughline/internal/store"
)

// Limits on what a counter may set.
const (
	MaxURLLength   = 2000
	MinSecret      = 16  // characters: shorter keys are guessable
	MaxSecret      = 200 // characters
	MaxPerCounter  = 20  // each order event is sent to every webhook: keep the fan-out bounded
	generatedBytes = 32  // a generated secret's randomness: HMAC-SHA256's block-worth of key
)

// Webhook is a URL that receives the counter's order events.
type Webhook struct {
	CounterID int64  `json:"counter_id"`
	ID        string `json:"id"`
	URL       string `json:"url"` // without its password, query values hidden (as import feeds show theirs)
	// Secret is the HMAC key, whole only in the answer of the request that
	// set it (create, or an update that changed it); masked otherwise.
	Secret    string    `json:"secret"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	url    string // as given, for sending
	secret string
}

// Input creates or changes a webhook; nil fields are left as they are (on
// create: url is required, active defaults to true, and a secret is
// generated). An empty secret generates a new one: that is how to rotate it.
type Input struct {
	URL    *string `json:"url"`
	Secret *string `json:"secret"`
	Active *bool   `json:"active"`
}

// InvalidError names the input field that is wrong.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// ErrNotFound means the counter has no such webhook or delivery.
var ErrNotFound = errors.New("webhooks: not found")

// Guard decides which destinations webhooks may have. Unless AllowPrivate
// (serve's --allow-private-feeds, the rule import feeds follow), a URL that
// is or resolves to a loopback, private or link-local address is refused
// when saved, and every connection is checked again after its name is
// resolved — DNS can change between the two.
type Guard struct {
	AllowPrivate bool
	// Resolve looks host names up when a URL is saved; nil means
	// net.DefaultResolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// CheckURL validates a webhook URL: http or https, a host, at most
// MaxURLLength characters, and a public destination unless allowed. It
// returns the URL to store.
func (g Guard) CheckURL(ctx context.Context, text string) (string, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", &InvalidError{"url", "is required: the address order events are posted to"}
	}
	if len(text) > MaxURLLength {
		return "", &InvalidError{"url", fmt.Sprintf("is longer than %d characters", MaxURLLength)}
	}
	u, err := imports.CheckURL(text)
	if err != nil {
		return "", &InvalidError{"url", err.Error()}
	}
	u.Fragment, u.RawFragment = "", "" // never sent; keeping it would only confuse the shown URL
	if err := g.checkHost(ctx, u.Hostname()); err != nil {
		return "", &InvalidError{"url", err.Error()}
	}
	return u.String(), nil
}

// checkHost refuses, unless allowed, a host that is or resolves to a
// non-public address, so the user hears it when saving rather than in the
// delivery log (imports.CheckHost, the rule for feeds).
func (g Guard) checkHost(ctx context.Context, host string) error {
	if g.AllowPrivate {
		return nil
	}
	return imports.CheckHost(ctx, host, g.Resolve)
}

// Client returns the HTTP client deliveries are posted with: no proxy (it
// would hide the real destination from the check), every connection's
// address checked unless private ones are allowed, redirects not followed
// (a 3xx is a failed attempt: the signed request must reach the URL the
// user set, not wherever a response points), and timeout for the whole
// exchange.
func (g Guard) Client(timeout time.Duration) *http.Client {
	dialer := imports.GuardedDialer(timeout, g.AllowPrivate)
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConns:          20,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       timeout,
	}
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID is 16 random bytes in lower-case base32: URL-safe, unguessable, so
// another counter's webhook ids cannot be enumerated.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return idEncoding.EncodeToString(b)
}

// NewSecret returns a generated secret: "whsec_" and 32 random bytes in
// base64url. The HMAC key is the whole string's bytes, prefix included.
func NewSecret() string {
	b := make([]byte, generatedBytes)
	rand.Read(b)
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b)
}

func checkSecret(s string) error {
	if len(s) < MinSecret || len(s) > MaxSecret {
		return &InvalidError{"secret", fmt.Sprintf("must be %d–%d characters (or empty to generate one)", MinSecret, MaxSecret)}
	}
	for _, c := range s {
		// Printable ASCII only: receivers in every language then read the
		// key's bytes the same way, and no invisible character sneaks in.
		if c < 0x21 || c > 0x7e {
			return &InvalidError{"secret", "must be printable ASCII without spaces"}
		}
	}
	return nil
}

// mask is a secret as the API shows it after the answer that set it: its
// last four characters, enough to tell which one is configured.
func mask(s string) string {
	if len(s) < MinSecret {
		return "xxxxx"
	}
	return "xxxxx" + s[len(s)-4:]
}

// apply changes w by in; reveal says whether the answer may show the secret.
func (g Guard) apply(ctx context.Context, w *Webhook, in Input) (reveal bool, err error) {
	if in.URL != nil {
		if w.url, err = g.CheckURL(ctx, *in.URL); err != nil {
			return false, err
		}
	}
	if w.url == "" {
		return false, &InvalidError{"url", "is required: the address order events are posted to"}
	}
	if in.Secret != nil {
		w.secret, reveal = *in.Secret, true
		if w.secret == "" {
			w.secret = NewSecret()
		} else if err := checkSecret(w.secret); err != nil {
			return false, err
		}
	}
	if in.Active != nil {
		w.Active = *in.Active
	}
	return reveal, nil
}

func (w *Webhook) fill(reveal bool) {
	w.URL = imports.Redact(w.url)
	w.Secret = mask(w.secret)
	if reveal {
		w.Secret = w.secret
	}
}

// Create adds a webhook to the counter. Its answer holds the secret whole,
// once: store it in the receiver.
func Create(ctx context.Context, db *store.DB, box *secrets.Box, counterID int64, in Input, g Guard) (*Webhook, error) {
	w := &Webhook{CounterID: counterID, ID: newID(), Active: true}
	if in.Secret == nil {
		empty := ""
		in.Secret = &empty
	}
	if _, err := g.apply(ctx, w, in); err != nil {
		return nil, err
	}
	sealed, err := box.Seal(secretPurpose, w.secret)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	w.CreatedAt, w.UpdatedAt = now, now
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhooks WHERE counter_id = $1`, counterID).Scan(&n); err != nil {
			return fmt.Errorf("webhooks: create: %w", err)
		}
		if n >= MaxPerCounter {
			return &InvalidError{"url", fmt.Sprintf("a counter has at most %d webhooks; delete one first", MaxPerCounter)}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO webhooks (counter_id, id, url, secret, active, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, counterID, w.ID, w.url, sealed, w.Active, now, now)
		if err != nil {
			return fmt.Errorf("webhooks: create: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	w.fill(true)
	return w, nil
}

// Update changes a webhook. Pending deliveries go to the new URL, signed
// with the new secret: they are built and signed when sent.
func Update(ctx context.Context, db *store.DB, box *secrets.Box, counterID int64, id string, in Input, g Guard) (*Webhook, error) {
	w, err := get(ctx, db.Writer(), box, counterID, id)
	if err != nil {
		return nil, err
	}
	reveal, err := g.apply(ctx, w, in)
	if err != nil {
		return nil, err
	}
	sealed, err := box.Seal(secretPurpose, w.secret)
	if err != nil {
		return nil, err
	}
	w.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
	res, err := db.Writer().ExecContext(ctx, `UPDATE webhooks SET url = $3, secret = $4, active = $5, updated_at = $6
		WHERE counter_id = $1 AND id = $2`, counterID, id, w.url, sealed, w.Active, w.UpdatedAt)
	if err != nil {
		return nil, fmt.Errorf("webhooks: update %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrNotFound // deleted meanwhile
	}
	w.fill(reveal)
	return w, nil
}

// Delete removes a webhook and its delivery log.
func Delete(ctx context.Context, db *store.DB, counterID int64, id string) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE counter_id = $1 AND id = $2`, counterID, id)
		if err != nil {
			return fmt.Errorf("webhooks: delete %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE counter_id = $1 AND webhook_id = $2`, counterID, id); err != nil {
			return fmt.Errorf("webhooks: delete the deliveries of %s: %w", id, err)
		}
		return nil
	})
}

// Get returns one of the counter's webhooks, its secret masked.
func Get(ctx context.Context, db *store.DB, box *secrets.Box, counterID int64, id string) (*Webhook, error) {
	w, err := get(ctx, db.Reader(), box, counterID, id)
	if err != nil {
		return nil, err
	}
	w.fill(false)
	return w, nil
}

// List returns the counter's webhooks, oldest first, secrets masked.
func List(ctx context.Context, db *store.DB, box *secrets.Box, counterID int64) ([]*Webhook, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE counter_id = $1 ORDER BY created_at, id`, counterID)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list: %w", err)
	}
	defer rows.Close()
	out := []*Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows, box)
		if err != nil {
			return nil, fmt.Errorf("webhooks: list: %w", err)
		}
		w.fill(false)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: list: %w", err)
	}
	return out, nil
}

const webhookColumns = `counter_id, id, url, secret, active, created_at, updated_at`

// secretPurpose is what webhook secrets are sealed for (internal/secrets).
const secretPurpose = "webhooks.secret"

// scanWebhook reads a webhook row and opens its sealed secret. A secret
// stored before secrets were sealed (plain) is taken as it is.
func scanWebhook(row interface{ Scan(...any) error }, box *secrets.Box) (*Webhook, error) {
	w := &Webhook{}
	if err := row.Scan(&w.CounterID, &w.ID, &w.url, &w.secret, &w.Active, &w.CreatedAt, &w.UpdatedAt); err != nil {
		return nil, err
	}
	if secrets.IsSealed(w.secret) {
		plain, err := box.Opened(secretPurpose, w.secret)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: %w", w.ID, err)
		}
		w.secret = plain
	}
	return w, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// exists returns ErrNotFound unless the counter has webhook id.
func exists(ctx context.Context, q queryRower, counterID int64, id string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM webhooks WHERE counter_id = $1 AND id = $2`, counterID, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("webhooks: get %s: %w", id, err)
	}
	return nil
}

func get(ctx context.Context, q queryRower, box *secrets.Box, counterID int64, id string) (*Webhook, error) {
	w, err := scanWebhook(q.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE counter_id = $1 AND id = $2`, counterID, id), box)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: get %s: %w", id, err)
	}
	return w, nil
}
