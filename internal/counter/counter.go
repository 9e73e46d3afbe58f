// Package counter manages counters — one tracked site each, the tenant that
// owns all other data — and the API tokens that act for them.
package counter

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/store"
)

// Counter is one tracked site.
type Counter struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Domain   string `json:"domain"`   // ASCII (punycode) host, lowercase, without scheme or port
	Timezone string `json:"timezone"` // IANA name; CRM dates without a zone are read in it

	// Session rules for the visit tracker: a visit ends after this many
	// minutes without activity, and (when NewSessionOnCampaign) a visit that
	// arrives with a different campaign or ad click starts a new one.
	SessionTimeoutMinutes int  `json:"session_timeout_minutes"`
	NewSessionOnCampaign  bool `json:"new_session_on_campaign"`

	// Call tracking: what t.js replaces with a tracked number (elements
	// matching DNISelector, and/or the site's own phone DNIPhone wherever it
	// is written), how long a number stays with a session after its last
	// sign of life, how long it then rests before another visitor gets it,
	// and the window in which a caller's first call counts as unique.
	DNISelector          string `json:"dni_selector"`
	DNIPhone             string `json:"dni_phone"`
	LeaseHoldMinutes     int    `json:"lease_hold_minutes"`
	LeaseCooldownSeconds int    `json:"lease_cooldown_seconds"`
	UniqueCallDays       int    `json:"unique_call_days"`
	// CaptureForms: t.js sends the phones and e-mails typed into the site's
	// forms, and only their md5 is stored.
	CaptureForms bool `json:"capture_forms"`

	// LookbackDays: matching counts a visit, call or lead as evidence for
	// an order only this many days before it (seed 000: 12 months).
	LookbackDays int `json:"lookback_days"`

	// Currency is how the counter's money is shown (ISO 4217; RUB unless
	// set): report figures are in it.
	Currency string `json:"currency"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Defaults for the session rules, as in Metrica and Google Analytics, and
// for call tracking (shared/spec/telephony.md §1.3, §1.6).
const (
	DefaultSessionTimeoutMinutes = 30
	MaxSessionTimeoutMinutes     = 24 * 60
	DefaultLeaseHoldMinutes      = 15
	DefaultLeaseCooldownSeconds  = 300
	DefaultUniqueCallDays        = 30
	DefaultLookbackDays          = 365
)

// Location returns the counter's time zone.
func (c Counter) Location() *time.Location {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil { // validated on write; only a hand-edited row gets here
		return time.UTC
	}
	return loc
}

// DefaultTimezone is used when a counter is created without one: most sites
// we are built for sell in Moscow time.
const DefaultTimezone = "Europe/Moscow"

// ErrNotFound means no such counter (or no such token of this counter).
var ErrNotFound = errors.New("not found")

// InvalidError names a field that failed validation.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// NewCounter is what a user supplies to create a counter.
type NewCounter struct {
	Name     string
	Domain   string
	Timezone string
}

// Validate checks and normalises the fields in place.
func (n *NewCounter) Validate() error {
	var err error
	if n.Name, err = normalizeName(n.Name); err != nil {
		return err
	}
	if n.Domain, err = NormalizeDomain(n.Domain); err != nil {
		return &InvalidError{"domain", err.Error()}
	}
	if n.Timezone == "" {
		n.Timezone = DefaultTimezone
	}
	return validateTimezone(n.Timezone)
}

func normalizeName(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", &InvalidError{"name", "is required"}
	case !utf8.ValidString(s):
		return "", &InvalidError{"name", "is not valid UTF-8"}
	case utf8.RuneCountInString(s) > 200:
		return "", &InvalidError{"name", "is longer than 200 characters"}
	}
	return s, nil
}

func validateTimezone(tz string) error {
	if _, err := time.LoadLocation(tz); err != nil || tz == "" || tz == "Local" {
		return &InvalidError{"timezone", fmt.Sprintf("%q is not an IANA time zone name such as Europe/Moscow", tz)}
	}
	return nil
}

// NormalizeDomain turns what a user types for their site ("Shop.ru",
// "https://www.shop.ru/", "магазин.рф") into the host a browser sends in its
// Origin header: lowercase ASCII, internationalised names in punycode. The
// scheme and a trailing slash are forgiven; a path, port or user info is not,
// because it would never match an Origin.
func NormalizeDomain(s string) (string, error) {
	s = strings.TrimSpace(s)
	for _, p := range []string{"https://", "http://"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			s = s[len(p):]
		}
	}
	s = strings.TrimSuffix(s, "/")
	if s == "" {
		return "", errors.New("is required")
	}
	if strings.ContainsAny(s, "/:@?# ") {
		return "", fmt.Errorf("%q is not a bare host name like shop.example.ru", s)
	}
	host, err := idna.Lookup.ToASCII(strings.ToLower(s))
	if err != nil {
		return "", fmt.Errorf("%q is not a valid host name: %v", s, err)
	}
	if !strings.Contains(host, ".") && host != "localhost" {
		return "", fmt.Errorf("%q is not a full host name (expected something like shop.example.ru)", s)
	}
	return host, nil
}

func insertCounter(ctx context.Context, tx *sql.Tx, n NewCounter) (Counter, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	c := Counter{Name: n.Name, Domain: n.Domain, Timezone: n.Timezone, CreatedAt: now, UpdatedAt: now,
		SessionTimeoutMinutes: DefaultSessionTimeoutMinutes, NewSessionOnCampaign: true,
		LeaseHoldMinutes: DefaultLeaseHoldMinutes, LeaseCooldownSeconds: DefaultLeaseCooldownSeconds, UniqueCallDays: DefaultUniqueCallDays,
		LookbackDays: DefaultLookbackDays, Currency: "RUB"}
	err := tx.QueryRowContext(ctx,
		`INSERT INTO counters (name, domain, timezone, session_timeout_minutes, new_session_on_campaign, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		c.Name, c.Domain, c.Timezone, c.SessionTimeoutMinutes, c.NewSessionOnCampaign, c.CreatedAt, c.UpdatedAt).Scan(&c.ID)
	if err != nil {
		return Counter{}, fmt.Errorf("counter: create: %w", err)
	}
	return c, nil
}

const counterColumns = `id, name, domain, timezone, session_timeout_minutes, new_session_on_campaign,
	dni_selector, dni_phone, lease_hold_minutes, lease_cooldown_seconds, unique_call_days, capture_forms, lookback_days, currency, created_at, updated_at`

func scanCounter(row interface{ Scan(...any) error }) (Counter, error) {
	var c Counter
	err := row.Scan(&c.ID, &c.Name, &c.Domain, &c.Timezone, &c.SessionTimeoutMinutes, &c.NewSessionOnCampaign,
		&c.DNISelector, &c.DNIPhone, &c.LeaseHoldMinutes, &c.LeaseCooldownSeconds, &c.UniqueCallDays, &c.CaptureForms,
		&c.LookbackDays, &c.Currency, &c.CreatedAt, &c.UpdatedAt)
	return c, err
}

// Get returns the counter with the given id, or ErrNotFound.
func Get(ctx context.Context, db *store.DB, id int64) (Counter, error) {
	c, err := scanCounter(db.Reader().QueryRowContext(ctx,
		`SELECT `+counterColumns+` FROM counters WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Counter{}, ErrNotFound
	}
	if err != nil {
		return Counter{}, fmt.Errorf("counter: get %d: %w", id, err)
	}
	return c, nil
}

// Patch changes some of a counter's fields; nil fields stay as they are.
type Patch struct {
	Name                  *string `json:"name"`
	Domain                *string `json:"domain"`
	Timezone              *string `json:"timezone"`
	SessionTimeoutMinutes *int    `json:"session_timeout_minutes"`
	NewSessionOnCampaign  *bool   `json:"new_session_on_campaign"`
	DNISelector           *string `json:"dni_selector"`
	DNIPhone              *string `json:"dni_phone"`
	LeaseHoldMinutes      *int    `json:"lease_hold_minutes"`
	LeaseCooldownSeconds  *int    `json:"lease_cooldown_seconds"`
	UniqueCallDays        *int    `json:"unique_call_days"`
	CaptureForms          *bool   `json:"capture_forms"`
	LookbackDays          *int    `json:"lookback_days"`
}

// Update applies p to counter id and returns the result, or ErrNotFound.
// Each field is validated on its own, so one UPDATE does it, with no
// read-modify-write race between concurrent patches of different fields.
func Update(ctx context.Context, db *store.DB, id int64, p Patch) (Counter, error) {
	return UpdateThen(ctx, db, id, p, nil)
}

// UpdateThen is Update that runs then, in the same transaction, with the
// counter before and after: what a change implies (matching every order
// again for a new lookback window) is done with it or not at all.
func UpdateThen(ctx context.Context, db *store.DB, id int64, p Patch, then func(tx *sql.Tx, old, updated Counter) error) (Counter, error) {
	var name, domain, tz *string
	if p.Name != nil {
		v, err := normalizeName(*p.Name)
		if err != nil {
			return Counter{}, err
		}
		name = &v
	}
	if p.Domain != nil {
		v, err := NormalizeDomain(*p.Domain)
		if err != nil {
			return Counter{}, &InvalidError{"domain", err.Error()}
		}
		domain = &v
	}
	if p.Timezone != nil {
		if err := validateTimezone(*p.Timezone); err != nil {
			return Counter{}, err
		}
		tz = p.Timezone
	}
	if t := p.SessionTimeoutMinutes; t != nil && (*t < 1 || *t > MaxSessionTimeoutMinutes) {
		return Counter{}, &InvalidError{"session_timeout_minutes", fmt.Sprintf("must be between 1 and %d", MaxSessionTimeoutMinutes)}
	}
	for _, r := range []struct {
		field    string
		v        *int
		min, max int
	}{
		{"lease_hold_minutes", p.LeaseHoldMinutes, 1, 24 * 60},
		// At least 30 s: a call is matched with 10 s of clock skew forgiven
		// at a lease's edges, and the next holder must not be within reach.
		{"lease_cooldown_seconds", p.LeaseCooldownSeconds, 30, 24 * 3600},
		{"unique_call_days", p.UniqueCallDays, 1, 3650},
		{"lookback_days", p.LookbackDays, 1, 3650},
	} {
		if r.v != nil && (*r.v < r.min || *r.v > r.max) {
			return Counter{}, &InvalidError{r.field, fmt.Sprintf("must be between %d and %d", r.min, r.max)}
		}
	}
	if p.DNISelector != nil {
		v := strings.TrimSpace(*p.DNISelector)
		if len(v) > 500 || !utf8.ValidString(v) {
			return Counter{}, &InvalidError{"dni_selector", "must be a CSS selector of up to 500 characters"}
		}
		p.DNISelector = &v
	}
	if p.DNIPhone != nil && strings.TrimSpace(*p.DNIPhone) != "" {
		v, err := normalize.Phone(*p.DNIPhone, "")
		if err != nil {
			return Counter{}, &InvalidError{"dni_phone", fmt.Sprintf("%q is not a phone number", *p.DNIPhone)}
		}
		p.DNIPhone = &v
	}
	var c Counter
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		lock := ""
		if db.Dialect() == store.Postgres {
			lock = " FOR UPDATE"
		}
		old, err := scanCounter(tx.QueryRowContext(ctx, `SELECT `+counterColumns+` FROM counters WHERE id = $1`+lock, id))
		if err != nil {
			return err
		}
		if c, err = update(ctx, tx, id, p, name, domain, tz); err != nil {
			return err
		}
		if then != nil {
			return then(tx, old, c)
		}
		return nil
	})
	if errors.Is(err, sql.ErrNoRows) {
		return Counter{}, ErrNotFound
	}
	if err != nil {
		return Counter{}, fmt.Errorf("counter: update %d: %w", id, err)
	}
	return c, nil
}

func update(ctx context.Context, tx *sql.Tx, id int64, p Patch, name, domain, tz *string) (Counter, error) {
	return scanCounter(tx.QueryRowContext(ctx,
		`UPDATE counters SET name = COALESCE($2, name), domain = COALESCE($3, domain),
		        timezone = COALESCE($4, timezone),
		        session_timeout_minutes = COALESCE($5, session_timeout_minutes),
		        new_session_on_campaign = COALESCE($6, new_session_on_campaign),
		        dni_selector = COALESCE($8, dni_selector), dni_phone = COALESCE($9, dni_phone),
		        lease_hold_minutes = COALESCE($10, lease_hold_minutes),
		        lease_cooldown_seconds = COALESCE($11, lease_cooldown_seconds),
		        unique_call_days = COALESCE($12, unique_call_days), capture_forms = COALESCE($13, capture_forms),
		        lookback_days = COALESCE($14, lookback_days), updated_at = $7
		 WHERE id = $1 RETURNING `+counterColumns,
		id, name, domain, tz, p.SessionTimeoutMinutes, p.NewSessionOnCampaign, time.Now().UTC().Truncate(time.Microsecond),
		p.DNISelector, p.DNIPhone, p.LeaseHoldMinutes, p.LeaseCooldownSeconds, p.UniqueCallDays, p.CaptureForms, p.LookbackDays))
}

// List returns all counters, oldest first.
func List(ctx context.Context, db *store.DB) ([]Counter, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+counterColumns+` FROM counters ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("counter: list: %w", err)
	}
	defer rows.Close()
	var cs []Counter
	for rows.Next() {
		c, err := scanCounter(rows)
		if err != nil {
			return nil, fmt.Errorf("counter: list: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counter: list: %w", err)
	}
	return cs, nil
}
