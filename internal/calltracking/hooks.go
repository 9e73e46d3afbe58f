package calltracking

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/throughline/throughline/internal/secrets"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/store"
)

// Hook is a telephony provider's connection: the webhook URL it calls
// (found by the token in it) and what checking its requests takes.
type Hook struct {
	CounterID int64      `json:"counter_id"`
	ID        string     `json:"id"`
	Provider  string     `json:"provider"`
	Name      string     `json:"name"`
	Token     string     `json:"token"`
	Path      string     `json:"path"` // /hooks/calls/{provider}/{token}: give the provider this, on your host
	HasSecret bool       `json:"has_secret"`
	Timezone  string     `json:"timezone"`
	ForwardTo string     `json:"forward_to,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`

	// Signature material: never shown by the API. Sealed as read from the
	// database; plain once opened (OpenHook).
	Secret  string `json:"-"`
	APIKey  string `json:"-"`
	APISalt string `json:"-"`
	opened  bool
}

// HookInput creates a hook.
type HookInput struct {
	Provider  string `json:"provider"`
	Name      string `json:"name"`
	Secret    string `json:"secret"`   // Zadarma API secret, Twilio auth token, generic HMAC key (optional for them)
	APIKey    string `json:"api_key"`  // Mango vpbx_api_key (required for Mango)
	APISalt   string `json:"api_salt"` // Mango vpbx_api_salt (required for Mango)
	Timezone  string `json:"timezone"` // for provider times without a zone; the counter's when empty
	ForwardTo string `json:"forward_to"`
}

var hookToken = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hookToken.EncodeToString(b)
}

// CreateHook adds a webhook for provider (one of providers).
func CreateHook(ctx context.Context, db *store.DB, box *secrets.Box, counterID int64, tz string, in HookInput, providers []string) (*Hook, error) {
	if !slices.Contains(providers, in.Provider) {
		return nil, &InvalidError{"provider", fmt.Sprintf("%q is not one of %s", in.Provider, strings.Join(providers, ", "))}
	}
	if in.Provider == "mango" && (in.APIKey == "" || in.APISalt == "") {
		return nil, &InvalidError{"api_key", "Mango signs every request: give the VPBX API key and salt (api_key, api_salt)"}
	}
	for _, f := range []struct{ name, v string }{{"name", in.Name}, {"secret", in.Secret}, {"api_key", in.APIKey}, {"api_salt", in.APISalt}, {"forward_to", in.ForwardTo}} {
		if len(f.v) > 500 || !utf8.ValidString(f.v) {
			return nil, &InvalidError{f.name, "is longer than 500 characters"}
		}
	}
	if in.Timezone == "" {
		in.Timezone = tz
	}
	if _, err := time.LoadLocation(in.Timezone); err != nil {
		return nil, &InvalidError{"timezone", fmt.Sprintf("%q is not an IANA time zone such as Europe/Moscow", in.Timezone)}
	}
	h := &Hook{CounterID: counterID, ID: randomToken(8), Provider: in.Provider, Name: strings.TrimSpace(in.Name), Token: randomToken(20),
		Secret: in.Secret, APIKey: in.APIKey, APISalt: in.APISalt, Timezone: in.Timezone, ForwardTo: strings.TrimSpace(in.ForwardTo),
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if h.Name == "" {
		h.Name = h.Provider
	}
	sealed, err := h.sealed(box)
	if err != nil {
		return nil, err
	}
	_, err = db.Writer().ExecContext(ctx, `INSERT INTO call_hooks (counter_id, id, provider, name, token, secret, api_key, api_salt, timezone, forward_to, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		counterID, h.ID, h.Provider, h.Name, h.Token, sealed[0], sealed[1], sealed[2], h.Timezone, h.ForwardTo, h.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("calltracking: create hook: %w", err)
	}
	h.fill()
	return h, nil
}

// credential is one of a hook's credentials and the purpose it is sealed
// for (internal/secrets).
type credential struct {
	purpose string
	field   *string
}

// credentials are the hook's secret, Mango key and salt, in the order of
// their columns.
func (h *Hook) credentials() [3]credential {
	return [3]credential{{"call_hooks.secret", &h.Secret}, {"call_hooks.api_key", &h.APIKey}, {"call_hooks.api_salt", &h.APISalt}}
}

// sealed returns the hook's plain credentials sealed, as they are stored.
func (h *Hook) sealed(box *secrets.Box) ([3]string, error) {
	var out [3]string
	for i, c := range h.credentials() {
		v, err := box.Seal(c.purpose, *c.field)
		if err != nil {
			return out, err
		}
		out[i] = v
	}
	return out, nil
}

// OpenHook replaces the hook's sealed credentials, as read from the
// database, with their plain values: only what verifies a provider's
// request needs them.
//
// Credentials stored before they were sealed (every Mango key, and the
// secrets and salts of the first versions) are plain in the database:
// they are sealed on the hook's first use — its next request or replay —
// and the requests the hook kept before (hook_failures) lose the Mango
// key they carry, as the ones it keeps from now on never hold it.
func OpenHook(ctx context.Context, db *store.DB, box *secrets.Box, h *Hook) error {
	if h.opened {
		return nil
	}
	plain := false
	for _, c := range h.credentials() {
		if !secrets.IsSealed(*c.field) {
			plain = plain || *c.field != ""
			continue
		}
		v, err := box.Opened(c.purpose, *c.field)
		if err != nil {
			return fmt.Errorf("calltracking: hook %s: %w", h.ID, err)
		}
		*c.field = v
	}
	h.opened = true
	if !plain {
		return nil
	}
	sealed, err := h.sealed(box)
	if err != nil {
		return err
	}
	return db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE call_hooks SET secret = $3, api_key = $4, api_salt = $5 WHERE counter_id = $1 AND id = $2`,
			h.CounterID, h.ID, sealed[0], sealed[1], sealed[2]); err != nil {
			return fmt.Errorf("calltracking: seal hook %s: %w", h.ID, err)
		}
		if h.APIKey == "" {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+failureColumns+` FROM hook_failures WHERE counter_id = $1 AND hook_id = $2`, h.CounterID, h.ID)
		if err != nil {
			return fmt.Errorf("calltracking: seal hook %s: %w", h.ID, err)
		}
		var kept []*Failure
		for rows.Next() {
			f, err := scanFailure(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("calltracking: seal hook %s: %w", h.ID, err)
			}
			kept = append(kept, f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("calltracking: seal hook %s: %w", h.ID, err)
		}
		for _, f := range kept {
			w := f.withheld(h.APIKey)
			headers, _ := json.Marshal(w.Header)
			if _, err := tx.ExecContext(ctx, `UPDATE hook_failures SET url = $3, query = $4, headers = $5, body = $6 WHERE counter_id = $1 AND id = $2`,
				h.CounterID, f.ID, w.URL, w.Query, string(headers), []byte(w.Body)); err != nil {
				return fmt.Errorf("calltracking: seal hook %s: %w", h.ID, err)
			}
		}
		return nil
	})
}

func (h *Hook) fill() {
	h.Path = "/hooks/calls/" + h.Provider + "/" + h.Token
	h.HasSecret = h.Secret != "" || h.APIKey != ""
}

// Location is the zone the hook reads zoneless provider times in.
func (h *Hook) Location() *time.Location {
	loc, err := time.LoadLocation(h.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

const hookColumns = `counter_id, id, provider, name, token, secret, api_key, api_salt, timezone, forward_to, created_at, revoked_at`

func scanHook(row interface{ Scan(...any) error }) (*Hook, error) {
	h := &Hook{}
	var revoked sql.NullTime
	if err := row.Scan(&h.CounterID, &h.ID, &h.Provider, &h.Name, &h.Token, &h.Secret, &h.APIKey, &h.APISalt,
		&h.Timezone, &h.ForwardTo, &h.CreatedAt, &revoked); err != nil {
		return nil, err
	}
	if revoked.Valid {
		h.RevokedAt = &revoked.Time
	}
	h.fill()
	return h, nil
}

// HookByToken finds the live hook of provider with token; ErrNotFound when
// there is none (whether or not the counter exists: the answer is the same).
func HookByToken(ctx context.Context, db *store.DB, provider, token string) (*Hook, error) {
	h, err := scanHook(db.Reader().QueryRowContext(ctx, `SELECT `+hookColumns+` FROM call_hooks
		WHERE token = $1 AND provider = $2 AND revoked_at IS NULL`, token, provider))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("calltracking: hook: %w", err)
	}
	return h, nil
}

// GetHook returns one of the counter's hooks.
func GetHook(ctx context.Context, db *store.DB, counterID int64, id string) (*Hook, error) {
	h, err := scanHook(db.Reader().QueryRowContext(ctx, `SELECT `+hookColumns+` FROM call_hooks WHERE counter_id = $1 AND id = $2`, counterID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("calltracking: hook %s: %w", id, err)
	}
	return h, nil
}

// Hooks returns the counter's hooks.
func Hooks(ctx context.Context, db *store.DB, counterID int64) ([]*Hook, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+hookColumns+` FROM call_hooks WHERE counter_id = $1 ORDER BY created_at, id`, counterID)
	if err != nil {
		return nil, fmt.Errorf("calltracking: hooks: %w", err)
	}
	defer rows.Close()
	out := []*Hook{}
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			return nil, fmt.Errorf("calltracking: hooks: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// RevokeHook stops a hook: its URL answers 404 from now on.
func RevokeHook(ctx context.Context, db *store.DB, counterID int64, id string) error {
	res, err := db.Writer().ExecContext(ctx, `UPDATE call_hooks SET revoked_at = $3 WHERE counter_id = $1 AND id = $2 AND revoked_at IS NULL`,
		counterID, id, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("calltracking: revoke hook: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Failure is a webhook request that could not be read, kept whole for the
// operator to inspect and replay once the cause is fixed.
type Failure struct {
	ID          int64       `json:"id"`
	HookID      string      `json:"hook_id"`
	Provider    string      `json:"provider"`
	ReceivedAt  time.Time   `json:"received_at"`
	Method      string      `json:"method"`
	Subpath     string      `json:"subpath"`
	Query       string      `json:"query"`
	URL         string      `json:"-"` // as received, with the hook's token: Twilio's signature covers it
	Header      http.Header `json:"headers"`
	Body        string      `json:"body"`
	Error       string      `json:"error"`
	Field       string      `json:"field,omitempty"`
	ReplayedAt  *time.Time  `json:"replayed_at"`
	ReplayError string      `json:"replay_error,omitempty"`
}

// MaxFailuresPerHook bounds what a hook's failures may take: anyone who
// has a hook's URL can send it junk, signed or not.
const MaxFailuresPerHook = 1000

// Mango's requests carry the connection's key (vpbx_api_key) in their
// form. A kept request holds keyWithheld in its place — made of characters
// that read the same in a form, a query and a multipart part — and a
// replay puts the hook's key back (WithKey), since the signature covers it.
const (
	mangoKeyParam = "vpbx_api_key"
	keyWithheld   = "WITHHELD-vpbx_api_key"
)

// credentialHeaders are headers no provider's request needs and that may
// carry credentials (basic auth written into a provider's URL, a proxy's
// cookie): kept requests hold none of their values.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie"}

// Masked is the failure as the API shows it: without Mango's key (even in
// a request kept before keys were withheld at rest) or credentials in its
// headers.
func (f *Failure) Masked() *Failure { return f.withheld("") }

// withheld is the failure without Mango's key and without the values of
// credential headers. The key is withheld from the URL, the query and a
// form body as the value of every vpbx_api_key parameter, however encoded;
// from a body of another kind (multipart, JSON) wherever the key itself
// (when known: "" when not) appears.
func (f *Failure) withheld(key string) *Failure {
	w := *f
	w.Query = withholdParam(f.Query)
	if base, q, ok := strings.Cut(f.URL, "?"); ok {
		w.URL = base + "?" + withholdParam(q)
	}
	switch {
	case !rawBody(f.Header):
		w.Body = withholdParam(f.Body)
	case key != "":
		w.Body = strings.ReplaceAll(f.Body, key, keyWithheld)
	}
	w.Header = f.Header.Clone()
	for _, name := range credentialHeaders {
		if vs := w.Header.Values(name); len(vs) > 0 {
			w.Header[http.CanonicalHeaderKey(name)] = slices.Repeat([]string{"xxxxx"}, len(vs))
		}
	}
	return &w
}

// rawBody reports whether a request's body is not URL-encoded: a multipart
// form or JSON, whose values are written as they are.
func rawBody(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "multipart/form-data" || mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// withholdParam replaces the value of every vpbx_api_key parameter of a
// URL-encoded form or query, however its name and value are encoded, with
// keyWithheld; every other byte stays as it was.
func withholdParam(form string) string {
	parts := strings.Split(form, "&")
	changed := false
	for i, p := range parts {
		name, _, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil && n == mangoKeyParam {
			parts[i], changed = name+"="+keyWithheld, true
		}
	}
	if !changed {
		return form
	}
	return strings.Join(parts, "&")
}

// WithKey is a kept failure as received, for a replay: the hook's Mango key
// (plain: OpenHook) back where it was withheld — URL-encoded in the URL,
// the query and a form body, as it is in another body.
func (f *Failure) WithKey(key string) *Failure {
	r := *f
	if key == "" {
		return &r
	}
	encoded := url.QueryEscape(key)
	r.URL = strings.ReplaceAll(f.URL, keyWithheld, encoded)
	r.Query = strings.ReplaceAll(f.Query, keyWithheld, encoded)
	if rawBody(f.Header) {
		r.Body = strings.ReplaceAll(f.Body, keyWithheld, key)
	} else {
		r.Body = strings.ReplaceAll(f.Body, keyWithheld, encoded)
	}
	return &r
}

// SaveFailure keeps a request that failed (the hook's oldest beyond
// MaxFailuresPerHook are dropped), without the hook's Mango key (h is
// opened: OpenHook) or credential headers: withheld.
func SaveFailure(ctx context.Context, db *store.DB, h *Hook, f *Failure) error {
	if !h.opened {
		// Its key is still sealed: it could not be withheld.
		return fmt.Errorf("calltracking: keep failed webhook: hook %s is not opened", h.ID)
	}
	kept := f.withheld(h.APIKey)
	headers, _ := json.Marshal(kept.Header)
	return db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO hook_failures (counter_id, hook_id, provider, received_at, method, subpath, url, query,
			headers, body, error, field, replay_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '') RETURNING id`,
			h.CounterID, h.ID, h.Provider, f.ReceivedAt, f.Method, f.Subpath, kept.URL, kept.Query, string(headers), []byte(kept.Body), f.Error, f.Field).Scan(&f.ID)
		if err != nil {
			return fmt.Errorf("calltracking: keep failed webhook: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM hook_failures WHERE counter_id = $1 AND hook_id = $2 AND id <= $3`,
			h.CounterID, h.ID, f.ID-MaxFailuresPerHook); err != nil {
			return fmt.Errorf("calltracking: drop old failures: %w", err)
		}
		return nil
	})
}

const failureColumns = `id, hook_id, provider, received_at, method, subpath, url, query, headers, body, error, field, replayed_at, replay_error`

func scanFailure(row interface{ Scan(...any) error }) (*Failure, error) {
	f := &Failure{}
	var headers string
	var body []byte
	var replayed sql.NullTime
	if err := row.Scan(&f.ID, &f.HookID, &f.Provider, &f.ReceivedAt, &f.Method, &f.Subpath, &f.URL, &f.Query, &headers, &body,
		&f.Error, &f.Field, &replayed, &f.ReplayError); err != nil {
		return nil, err
	}
	f.Body = string(body)
	if replayed.Valid {
		f.ReplayedAt = &replayed.Time
	}
	if err := json.Unmarshal([]byte(headers), &f.Header); err != nil {
		return nil, fmt.Errorf("failure %d: headers: %w", f.ID, err)
	}
	return f, nil
}

// Failures returns the counter's failed webhook requests, newest first.
func Failures(ctx context.Context, db *store.DB, counterID int64, limit int) ([]*Failure, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+failureColumns+` FROM hook_failures
		WHERE counter_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2`, counterID, limit)
	if err != nil {
		return nil, fmt.Errorf("calltracking: failures: %w", err)
	}
	defer rows.Close()
	out := []*Failure{}
	for rows.Next() {
		f, err := scanFailure(rows)
		if err != nil {
			return nil, fmt.Errorf("calltracking: failures: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// GetFailure returns one failed request.
func GetFailure(ctx context.Context, db *store.DB, counterID, id int64) (*Failure, error) {
	f, err := scanFailure(db.Reader().QueryRowContext(ctx, `SELECT `+failureColumns+` FROM hook_failures WHERE counter_id = $1 AND id = $2`, counterID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("calltracking: failure %d: %w", id, err)
	}
	return f, nil
}

// MarkReplayed records a replay's outcome ("" = it worked).
func MarkReplayed(ctx context.Context, db *store.DB, counterID, id int64, replayErr string) error {
	_, err := db.Writer().ExecContext(ctx, `UPDATE hook_failures SET replayed_at = $3, replay_error = $4 WHERE counter_id = $1 AND id = $2`,
		counterID, id, time.Now().UTC(), replayErr)
	if err != nil {
		return fmt.Errorf("calltracking: mark replayed: %w", err)
	}
	return nil
}
