package counter

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/store"
)

// A token reads "tl_<counter id>_<key id>_<secret>". The counter and key ids
// find the row by primary key; only SHA-256(secret) is stored, and it is
// compared in constant time. The secret has 160 random bits, so a plain hash
// (rather than a slow password hash) is enough: there is nothing to guess.
const (
	tokenPrefix = "tl"
	keyIDBytes  = 8  // 13 base32 characters
	secretBytes = 20 // 32 base32 characters
)

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Token describes an API token; the secret itself is shown once, at creation.
type Token struct {
	CounterID int64      `json:"counter_id"`
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// ErrUnauthorized means the token is missing, malformed, unknown or revoked.
var ErrUnauthorized = errors.New("invalid or revoked token")

// Create validates n and stores a new counter with its first API token, in
// one transaction, returning the token's text (shown once, never stored).
func Create(ctx context.Context, db *store.DB, n NewCounter) (Counter, string, error) {
	if err := n.Validate(); err != nil {
		return Counter{}, "", err
	}
	var c Counter
	var text string
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if c, err = insertCounter(ctx, tx, n); err != nil {
			return err
		}
		_, text, err = insertToken(ctx, tx, c.ID, "initial")
		return err
	})
	return c, text, err
}

// CreateToken adds an API token to a counter and returns it with its text.
func CreateToken(ctx context.Context, db *store.DB, counterID int64, name string) (Token, string, error) {
	name = strings.TrimSpace(name)
	if len(name) > 200 {
		return Token{}, "", &InvalidError{"name", "is longer than 200 characters"}
	}
	var t Token
	var text string
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM counters WHERE id = $1`, counterID).Scan(&exists)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("counter: create token: %w", err)
		}
		t, text, err = insertToken(ctx, tx, counterID, name)
		return err
	})
	return t, text, err
}

func insertToken(ctx context.Context, tx *sql.Tx, counterID int64, name string) (Token, string, error) {
	key := make([]byte, keyIDBytes)
	secret := make([]byte, secretBytes)
	rand.Read(key) // crypto/rand.Read never fails (Go ≥ 1.24)
	rand.Read(secret)
	t := Token{CounterID: counterID, ID: b32.EncodeToString(key), Name: name,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	secretText := b32.EncodeToString(secret)
	hash := sha256.Sum256([]byte(secretText))
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO api_tokens (counter_id, id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		t.CounterID, t.ID, t.Name, hash[:], t.CreatedAt); err != nil {
		return Token{}, "", fmt.Errorf("counter: create token: %w", err)
	}
	text := tokenPrefix + "_" + strconv.FormatInt(counterID, 10) + "_" + t.ID + "_" + secretText
	return t, text, nil
}

// ListTokens returns a counter's tokens (revoked ones too), oldest first.
func ListTokens(ctx context.Context, db *store.DB, counterID int64) ([]Token, error) {
	rows, err := db.Reader().QueryContext(ctx,
		`SELECT counter_id, id, name, created_at, revoked_at FROM api_tokens
		 WHERE counter_id = $1 ORDER BY created_at, id`, counterID)
	if err != nil {
		return nil, fmt.Errorf("counter: list tokens: %w", err)
	}
	defer rows.Close()
	var ts []Token
	for rows.Next() {
		var t Token
		var revoked sql.NullTime
		if err := rows.Scan(&t.CounterID, &t.ID, &t.Name, &t.CreatedAt, &revoked); err != nil {
			return nil, fmt.Errorf("counter: list tokens: %w", err)
		}
		if revoked.Valid {
			t.RevokedAt = &revoked.Time
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counter: list tokens: %w", err)
	}
	return ts, nil
}

// RevokeToken revokes a token by its key id; revoking twice is not an error.
// It returns ErrNotFound when the counter has no such token.
func RevokeToken(ctx context.Context, db *store.DB, counterID int64, id string) error {
	res, err := db.Writer().ExecContext(ctx,
		`UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE counter_id = $1 AND id = $2`,
		counterID, id, time.Now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return fmt.Errorf("counter: revoke token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("counter: revoke token: %w", err)
	} else if n == 0 {
		return ErrNotFound
	}
	return nil
}

// dummyHash is compared against when a token's row does not exist, so an
// unknown key id costs the same as a wrong secret.
var dummyHash = sha256.Sum256([]byte("throughline"))

// Authenticate returns the counter a token acts for, or ErrUnauthorized.
func Authenticate(ctx context.Context, db *store.DB, text string) (int64, error) {
	counterID, keyID, secret, ok := parseToken(text)
	if !ok {
		return 0, ErrUnauthorized
	}
	var stored []byte
	var revoked sql.NullTime
	err := db.Reader().QueryRowContext(ctx,
		`SELECT secret_hash, revoked_at FROM api_tokens WHERE counter_id = $1 AND id = $2`,
		counterID, keyID).Scan(&stored, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		stored = dummyHash[:]
		revoked = sql.NullTime{Valid: true}
	} else if err != nil {
		return 0, fmt.Errorf("counter: authenticate: %w", err)
	}
	given := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(given[:], stored) != 1 || revoked.Valid {
		return 0, ErrUnauthorized
	}
	return counterID, nil
}

// ParseTokenID returns the counter and key id that a token's text names,
// without checking the secret (for revoking a token by its text).
func ParseTokenID(text string) (counterID int64, keyID string, ok bool) {
	counterID, keyID, _, ok = parseToken(text)
	return counterID, keyID, ok
}

func parseToken(text string) (counterID int64, keyID, secret string, ok bool) {
	parts := strings.Split(text, "_")
	if len(parts) != 4 || parts[0] != tokenPrefix {
		return 0, "", "", false
	}
	id, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || id <= 0 {
		return 0, "", "", false
	}
	if len(parts[2]) != b32.EncodedLen(keyIDBytes) || len(parts[3]) != b32.EncodedLen(secretBytes) {
		return 0, "", "", false
	}
	return id, parts[2], parts[3], true
}
