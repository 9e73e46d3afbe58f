package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/store"
)

// SessionIdle is how long a web session lives after it was last used.
const SessionIdle = 14 * 24 * time.Hour

// touchEvery is how stale a session's last_seen_at may get before a request
// writes it again: one write a minute per browser, not one per request.
const touchEvery = time.Minute

// Session is a signed-in browser.
type Session struct {
	UserID     int64
	CreatedAt  time.Time
	LastSeenAt time.Time
}

// newSecret returns 256 random bits as URL-safe text and the SHA-256 that
// is stored in its place.
func newSecret() (string, []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	text := base64.RawURLEncoding.EncodeToString(b)
	return text, hashSecret(text)
}

func hashSecret(text string) []byte {
	h := sha256.Sum256([]byte(text))
	return h[:]
}

// validSecret reports whether text could be one of newSecret's: 43 base64url
// characters. Anything else is refused before it reaches the database.
func validSecret(text string) bool {
	if len(text) != 43 {
		return false
	}
	return !strings.ContainsFunc(text, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	})
}

// StartSession signs a person in: it stores a new session and returns the
// cookie's value. Expired sessions of anyone are swept on the way.
func StartSession(ctx context.Context, db *store.DB, userID int64, userAgent, address string) (string, error) {
	text, hash := newSecret()
	now := time.Now().UTC().Truncate(time.Microsecond)
	if len(userAgent) > 300 {
		userAgent = prefix(userAgent)
	}
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE last_seen_at < $1`, now.Add(-SessionIdle)); err != nil {
			return fmt.Errorf("accounts: sweep sessions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO web_sessions (id_hash, user_id, created_at, last_seen_at, user_agent, address)
			VALUES ($1, $2, $3, $3, $4, $5)`, hash, userID, now, strings.ToValidUTF8(userAgent, ""), address); err != nil {
			return fmt.Errorf("accounts: start session: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return text, nil
}

// SessionUser returns the person a session cookie signs in, and renews the
// session's idle time. An unknown, malformed or expired cookie is
// ErrNoSession.
func SessionUser(ctx context.Context, db *store.DB, cookie string) (User, error) {
	if !validSecret(cookie) {
		return User{}, ErrNoSession
	}
	hash := hashSecret(cookie)
	var u User
	var seen time.Time
	err := db.Reader().QueryRowContext(ctx, `SELECT u.id, u.email, u.name, u.is_admin, u.language, u.password_hash <> '', u.created_at, s.last_seen_at
		FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1`, hash).
		Scan(&u.ID, &u.Email, &u.Name, &u.Admin, &u.Language, &u.HasPassword, &u.CreatedAt, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNoSession
	}
	if err != nil {
		return User{}, fmt.Errorf("accounts: session: %w", err)
	}
	now := time.Now().UTC()
	if now.Sub(seen) > SessionIdle {
		if _, err := db.Writer().ExecContext(ctx, `DELETE FROM web_sessions WHERE id_hash = $1`, hash); err != nil {
			return User{}, fmt.Errorf("accounts: end expired session: %w", err)
		}
		return User{}, ErrNoSession
	}
	if now.Sub(seen) > touchEvery {
		if _, err := db.Writer().ExecContext(ctx, `UPDATE web_sessions SET last_seen_at = $2 WHERE id_hash = $1`,
			hash, now.Truncate(time.Microsecond)); err != nil {
			return User{}, fmt.Errorf("accounts: renew session: %w", err)
		}
	}
	return u, nil
}

// EndSession signs a browser out. Ending a session that is gone is not an
// error.
func EndSession(ctx context.Context, db *store.DB, cookie string) error {
	if !validSecret(cookie) {
		return nil
	}
	if _, err := db.Writer().ExecContext(ctx, `DELETE FROM web_sessions WHERE id_hash = $1`, hashSecret(cookie)); err != nil {
		return fmt.Errorf("accounts: end session: %w", err)
	}
	return nil
}

// EndSessions signs a person out everywhere.
func EndSessions(ctx context.Context, db *store.DB, userID int64) error {
	if _, err := db.Writer().ExecContext(ctx, `DELETE FROM web_sessions WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("accounts: end sessions: %w", err)
	}
	return nil
}
