// Package retailsync is the two-way integration of a counter with a
// RetailCRM account, as Calltouch does it (shared/seeds/004_*, spec
// shared/spec/retailcrm.md §12):
//
//   - Connect stores the account URL and the API key (sealed); a Worker then
//     sets the connection up in the background — checks the key's access,
//     creates the order custom fields it writes (§12.1), loads stores,
//     statuses and status groups — and the state (setting_up, active,
//     failed with the reason) is what Get shows.
//   - Push: every call and lead (web request, chat) that arrives after the
//     connection goes into an outbox and, a minute later, to RetailCRM: the
//     customer is found by phone (or e-mail) or created, and the customer's
//     newest order is marked with the lead's fields once — or a new order is
//     created when there is none or it is closed (§12.2).
//   - Pull: every 30 minutes the orders whose status changed come back as
//     deals, through crm.Import, so they reach matching and the reports like
//     any other intake; each new deal is linked once to a lead by phone or
//     e-mail (calls first, then requests, within 12 months) or marked "Lead
//     not found" (§12.3).
package retailsync

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/throughline/throughline/internal/retailcrm"
	"github.com/throughline/throughline/internal/secrets"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/webhooks"
)

// States of a connection.
const (
	StateSettingUp = "setting_up"
	StateActive    = "active"
	StateFailed    = "failed"
)

// keyPurpose binds the sealed API key to its column.
const keyPurpose = "retailcrm.integration.api_key"

// Order custom fields the integration writes (spec §12.1). FieldSiteID is the
// once-only marker: an open order that has it is not updated again.
const (
	FieldSiteID = "tl_site_id"
	FieldLeadID = "tl_lead_id"
)

// customFields are the order fields setup makes sure exist, in the order
// RetailCRM shows them.
var customFields = []retailcrm.CustomField{
	{Code: FieldSiteID, Name: "Throughline site ID"},
	{Code: FieldLeadID, Name: "Throughline lead ID"},
	{Code: "utm_source", Name: "Source (utm_source)"},
	{Code: "utm_medium", Name: "Channel (utm_medium)"},
	{Code: "utm_campaign", Name: "Campaign (utm_campaign)"},
	{Code: "utm_content", Name: "Ad (utm_content)"},
	{Code: "utm_term", Name: "Keyword (utm_term)"},
}

// ErrNotFound means the counter has no RetailCRM connection.
var ErrNotFound = errors.New("retailsync: the counter is not connected to RetailCRM")

// InvalidError names the input field that is wrong.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// Input is what connecting asks for.
type Input struct {
	URL    string `json:"url"`
	APIKey string `json:"api_key"`
	// Names is the language of the names given to the customers the
	// integration creates: "ru" (the seed's «Звонок от …», the default) or
	// "en" ("Call from …").
	Names string `json:"names"`
}

// Integration is a counter's connection as the API shows it. The API key is
// never shown.
type Integration struct {
	URL            string     `json:"url"`
	Names          string     `json:"names"`
	State          string     `json:"state"`
	Error          string     `json:"error,omitempty"`
	SetupAttempts  int        `json:"setup_attempts"`
	Site           string     `json:"site,omitempty"` // where new orders are created
	Sites          []string   `json:"sites"`
	ClosedStatuses []string   `json:"closed_statuses"`
	Timezone       string     `json:"timezone,omitempty"`
	Note           string     `json:"note,omitempty"` // a warning from setup: the connection works, but check this
	ConnectedAt    time.Time  `json:"connected_at"`
	LastPullAt     *time.Time `json:"last_pull_at"`
	NextPullAt     *time.Time `json:"next_pull_at"`
	PullError      string     `json:"pull_error,omitempty"`
	Pushes         Counts     `json:"pushes"`

	counterID     int64
	sealedKey     string
	pullFrom      *time.Time
	historyCursor int64
}

// Counts are how many pushes are in each status.
type Counts struct {
	Pending int `json:"pending"`
	Done    int `json:"done"`
	Failed  int `json:"failed"`
}

// Connect saves the counter's connection (replacing one it had) and leaves it
// to be set up by the Worker. Calls and leads that arrived before the first
// connection are not pushed; reconnecting (a new key) keeps that moment, so
// what arrived while the connection was failing is pushed once it works.
// Connecting to another account URL starts the pull over (all its orders)
// and forgets the deal links of the old account; the deals already pulled
// stay.
func Connect(ctx context.Context, db *store.DB, box *secrets.Box, guard webhooks.Guard, counterID int64, in Input, now time.Time) (*Integration, error) {
	if in.Names == "" {
		in.Names = "ru"
	}
	if _, ok := templates[in.Names]; !ok {
		return nil, &InvalidError{"names", `must be "ru" or "en"`}
	}
	if in.APIKey == "" {
		return nil, &InvalidError{"api_key", "is required: copy it from RetailCRM, Administration → Integration → API access keys"}
	}
	if len(in.APIKey) > 200 {
		return nil, &InvalidError{"api_key", "is longer than 200 characters"}
	}
	base, err := retailcrm.NormalizeBaseURL(in.URL, guard.AllowPrivate)
	if err != nil {
		return nil, &InvalidError{"url", err.Error()}
	}
	// The same check as webhook destinations: no loopback or private
	// addresses unless the operator allows them.
	if _, err := guard.CheckURL(ctx, base); err != nil {
		var inv *webhooks.InvalidError
		if errors.As(err, &inv) {
			return nil, &InvalidError{"url", inv.Message}
		}
		return nil, err
	}
	sealed, err := box.Seal(keyPurpose, in.APIKey)
	if err != nil {
		return nil, fmt.Errorf("retailsync: connect: %w", err)
	}
	now = now.UTC().Truncate(time.Microsecond)
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		// Another account: its order ids mean other orders, so the pull
		// starts over and the old account's deal links go.
		var old string
		err := tx.QueryRowContext(ctx, `SELECT url FROM retailcrm_integrations WHERE counter_id = $1`, counterID).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err == nil && old != base {
			if _, err := tx.ExecContext(ctx, `DELETE FROM retailcrm_deals WHERE counter_id = $1`, counterID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE retailcrm_integrations SET pull_cursor = NULL, history_cursor = 0,
					next_pull_at = NULL, last_pull_at = NULL, pull_error = '', push_after = NULL WHERE counter_id = $1`, counterID); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO retailcrm_integrations (counter_id, url, api_key, names, state, error,
				setup_attempts, next_setup_at, site, sites, closed_statuses, timezone, connected_at, scanned_to,
				pull_cursor, next_pull_at, last_pull_at, pull_error, lease_until, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, '', 0, $6, '', '[]', '[]', '', $6, $6, NULL, NULL, NULL, '', NULL, $6, $6)
			ON CONFLICT (counter_id) DO UPDATE SET url = excluded.url, api_key = excluded.api_key, names = excluded.names,
				state = excluded.state, error = '', setup_attempts = 0, next_setup_at = excluded.next_setup_at,
				lease_until = NULL, updated_at = excluded.updated_at`,
			counterID, base, sealed, in.Names, StateSettingUp, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("retailsync: connect: %w", err)
	}
	return Get(ctx, db, counterID)
}

// Get returns the counter's connection.
func Get(ctx context.Context, db *store.DB, counterID int64) (*Integration, error) {
	in, err := get(ctx, db.Reader(), counterID)
	if err != nil {
		return nil, err
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT status, count(*) FROM retailcrm_pushes WHERE counter_id = $1 GROUP BY status`, counterID)
	if err != nil {
		return nil, fmt.Errorf("retailsync: count pushes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("retailsync: count pushes: %w", err)
		}
		switch status {
		case statusPending:
			in.Pushes.Pending = n
		case statusDone:
			in.Pushes.Done = n
		case statusFailed:
			in.Pushes.Failed = n
		}
	}
	return in, rows.Err()
}

const integrationColumns = `counter_id, url, api_key, names, state, error, setup_attempts, site, sites, closed_statuses,
	timezone, connected_at, pull_cursor, next_pull_at, last_pull_at, pull_error, history_cursor, note`

func scanIntegration(row interface{ Scan(...any) error }) (*Integration, error) {
	in := &Integration{}
	var sites, closed string
	var pullFrom, nextPull, lastPull sql.Null[time.Time]
	err := row.Scan(&in.counterID, &in.URL, &in.sealedKey, &in.Names, &in.State, &in.Error, &in.SetupAttempts, &in.Site,
		&sites, &closed, &in.Timezone, &in.ConnectedAt, &pullFrom, &nextPull, &lastPull, &in.PullError, &in.historyCursor, &in.Note)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(sites), &in.Sites); err != nil {
		return nil, fmt.Errorf("retailsync: stored sites: %w", err)
	}
	if err := json.Unmarshal([]byte(closed), &in.ClosedStatuses); err != nil {
		return nil, fmt.Errorf("retailsync: stored closed statuses: %w", err)
	}
	in.ConnectedAt = in.ConnectedAt.UTC()
	in.pullFrom, in.NextPullAt, in.LastPullAt = utcPtr(pullFrom), utcPtr(nextPull), utcPtr(lastPull)
	return in, nil
}

// rowQuerier is a *sql.DB or *sql.Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func utcPtr(t sql.Null[time.Time]) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.V.UTC()
	return &u
}

func get(ctx context.Context, q rowQuerier, counterID int64) (*Integration, error) {
	in, err := scanIntegration(q.QueryRowContext(ctx, `SELECT `+integrationColumns+` FROM retailcrm_integrations WHERE counter_id = $1`, counterID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("retailsync: get connection: %w", err)
	}
	return in, nil
}

// Disconnect removes the counter's connection. Pushes still waiting are
// failed with the reason; the push log and the deals' links stay (a lead
// pushed once is never pushed again, a deal is never re-linked), and so do
// the orders pulled.
func Disconnect(ctx context.Context, db *store.DB, counterID int64, now time.Time) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM retailcrm_integrations WHERE counter_id = $1`, counterID)
		if err != nil {
			return fmt.Errorf("retailsync: disconnect: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `UPDATE retailcrm_pushes SET status = 'failed', error = 'the RetailCRM connection was removed', updated_at = $2
			WHERE counter_id = $1 AND status = 'pending'`, counterID, now.UTC())
		if err != nil {
			return fmt.Errorf("retailsync: disconnect: %w", err)
		}
		return nil
	})
}

// Push is one call or lead in the push log.
type Push struct {
	Kind            string     `json:"kind"` // call, lead
	LeadID          int64      `json:"lead_id"`
	LeadType        string     `json:"lead_type"` // call, form, chat, email, callback
	ArrivedAt       time.Time  `json:"arrived_at"`
	Status          string     `json:"status"` // pending, done, failed
	Attempts        int        `json:"attempts"`
	NextAttemptAt   *time.Time `json:"next_attempt_at"` // pending only
	Outcome         string     `json:"outcome,omitempty"`
	CustomerID      *int64     `json:"customer_id"`
	CustomerCreated bool       `json:"customer_created"`
	OrderID         *int64     `json:"order_id"`
	Error           string     `json:"error,omitempty"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// MaxPushes caps one page of the push log.
const MaxPushes = 1000

// ListPushes returns the counter's latest pushes (by arrival, newest first),
// of one status if status is not "".
func ListPushes(ctx context.Context, db *store.DB, counterID int64, status string, limit int) ([]Push, error) {
	switch status {
	case "", statusPending, statusDone, statusFailed:
	default:
		return nil, &InvalidError{"status", `must be "pending", "done" or "failed"`}
	}
	if limit <= 0 || limit > MaxPushes {
		limit = 100
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT kind, lead_id, lead_type, arrived_at, status, attempts, due_at, outcome,
			customer_id, customer_created, order_id, error, updated_at
		FROM retailcrm_pushes WHERE counter_id = $1 AND ($2 = '' OR status = $2)
		ORDER BY arrived_at DESC, kind, lead_id DESC LIMIT $3`, counterID, status, limit)
	if err != nil {
		return nil, fmt.Errorf("retailsync: list pushes: %w", err)
	}
	defer rows.Close()
	out := []Push{}
	for rows.Next() {
		var p Push
		var due time.Time
		var customer, order sql.Null[int64]
		if err := rows.Scan(&p.Kind, &p.LeadID, &p.LeadType, &p.ArrivedAt, &p.Status, &p.Attempts, &due, &p.Outcome,
			&customer, &p.CustomerCreated, &order, &p.Error, &p.UpdatedAt); err != nil {
			return nil, fmt.Errorf("retailsync: list pushes: %w", err)
		}
		p.ArrivedAt, p.UpdatedAt = p.ArrivedAt.UTC(), p.UpdatedAt.UTC()
		if p.Status == statusPending {
			due = due.UTC()
			p.NextAttemptAt = &due
		}
		if customer.Valid {
			p.CustomerID = &customer.V
		}
		if order.Valid {
			p.OrderID = &order.V
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
