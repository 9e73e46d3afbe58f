package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/store"
)

// A personal API token reads "tlu_<user id>_<key id>_<secret>": the person
// and key id find the row, only SHA-256(secret) is stored. It acts for the
// person on the instance-level API (an admin creating counters); counters'
// own machine tokens ("tl_…") stay what integrations use.
const userTokenPrefix = "tlu"

// Token is a personal API token; its text is shown once, at creation.
type Token struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// CreateToken makes a personal API token and returns it with its text.
func CreateToken(ctx context.Context, db *store.DB, userID int64, name string) (Token, string, error) {
	name, err := checkName(name)
	if err != nil {
		return Token{}, "", err
	}
	if name == "" {
		return Token{}, "", invalid("name", "is required: say what the token is for")
	}
	key := make([]byte, 8)
	secret := make([]byte, 20)
	rand.Read(key)
	rand.Read(secret)
	t := Token{ID: hex.EncodeToString(key), Name: name, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	secretText := hex.EncodeToString(secret)
	hash := sha256.Sum256([]byte(secretText))
	if _, err := db.Writer().ExecContext(ctx, `INSERT INTO user_tokens (user_id, id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		userID, t.ID, t.Name, hash[:], t.CreatedAt); err != nil {
		return Token{}, "", fmt.Errorf("accounts: create token: %w", err)
	}
	return t, userTokenPrefix + "_" + strconv.FormatInt(userID, 10) + "_" + t.ID + "_" + secretText, nil
}

// ListTokens returns a person's tokens, revoked ones too, oldest first.
func ListTokens(ctx context.Context, db *store.DB, userID int64) ([]Token, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT id, name, created_at, revoked_at FROM user_tokens
		WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("accounts: list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var revoked sql.NullTime
		if err := rows.Scan(&t.ID, &t.Name, &t.CreatedAt, &revoked); err != nil {
			return nil, fmt.Errorf("accounts: list tokens: %w", err)
		}
		if revoked.Valid {
			t.RevokedAt = &revoked.Time
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken revokes one of a person's tokens.
func RevokeToken(ctx context.Context, db *store.DB, userID int64, id string) error {
	res, err := db.Writer().ExecContext(ctx, `UPDATE user_tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE user_id = $1 AND id = $2`,
		userID, id, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("accounts: revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// IsUserToken tells a personal token's text from a counter's.
func IsUserToken(text string) bool { return strings.HasPrefix(text, userTokenPrefix+"_") }

var dummyTokenHash = sha256.Sum256([]byte("throughline"))

// TokenUser returns the person a personal token acts for, or
// ErrBadCredentials.
func TokenUser(ctx context.Context, db *store.DB, text string) (User, error) {
	parts := strings.Split(text, "_")
	if len(parts) != 4 || parts[0] != userTokenPrefix || len(parts[2]) != 16 || len(parts[3]) != 40 {
		return User{}, ErrBadCredentials
	}
	userID, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || userID <= 0 {
		return User{}, ErrBadCredentials
	}
	var stored []byte
	var revoked sql.NullTime
	err = db.Reader().QueryRowContext(ctx, `SELECT secret_hash, revoked_at FROM user_tokens WHERE user_id = $1 AND id = $2`,
		userID, parts[2]).Scan(&stored, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		stored, revoked = dummyTokenHash[:], sql.NullTime{Valid: true}
	} else if err != nil {
		return User{}, fmt.Errorf("accounts: token: %w", err)
	}
	given := sha256.Sum256([]byte(parts[3]))
	if subtle.ConstantTimeCompare(given[:], stored) != 1 || revoked.Valid {
		return User{}, ErrBadCredentials
	}
	u, err := GetUser(ctx, db, userID)
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrBadCredentials
	}
	return u, err
}
