package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/throughline/throughline/internal/store"
)

// Purposes of one-time links.
const (
	// LinkSetup creates the first admin. It is printed in the log when the
	// instance has no admin, and works only while there is none.
	LinkSetup = "setup"
	// LinkSignIn signs a person in once (the demo's link).
	LinkSignIn = "signin"
	// LinkPassword lets a person set a password (a new person, or a reset).
	LinkPassword = "password"
)

// How long links stay valid.
const (
	SetupLinkTTL    = time.Hour
	SignInLinkTTL   = 24 * time.Hour
	PasswordLinkTTL = 7 * 24 * time.Hour
)

// Link is an unused one-time link.
type Link struct {
	Purpose   string
	User      *User // nil for a setup link
	ExpiresAt time.Time
}

// NewSetupLink returns a new setup link's token, valid for SetupLinkTTL;
// earlier setup links stop working. It fails with a conflict once an admin
// exists.
func NewSetupLink(ctx context.Context, db *store.DB) (string, error) {
	text, hash := newSecret()
	now := time.Now().UTC().Truncate(time.Microsecond)
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var admins int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE is_admin`).Scan(&admins); err != nil {
			return fmt.Errorf("accounts: setup link: %w", err)
		}
		if admins > 0 {
			return conflict("setup", "the instance has an admin already")
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM user_links WHERE purpose = 'setup' OR expires_at < $1`, now); err != nil {
			return fmt.Errorf("accounts: setup link: %w", err)
		}
		return insertLink(ctx, tx, hash, LinkSetup, nil, now, SetupLinkTTL)
	})
	if err != nil {
		return "", err
	}
	return text, nil
}

// NewLink returns a new one-time link's token of a purpose for a person.
func NewLink(ctx context.Context, db *store.DB, purpose string, userID int64) (string, error) {
	ttl := map[string]time.Duration{LinkSignIn: SignInLinkTTL, LinkPassword: PasswordLinkTTL}[purpose]
	if ttl == 0 {
		return "", fmt.Errorf("accounts: no link purpose %q", purpose)
	}
	text, hash := newSecret()
	now := time.Now().UTC().Truncate(time.Microsecond)
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM user_links WHERE expires_at < $1`, now); err != nil {
			return fmt.Errorf("accounts: link: %w", err)
		}
		return insertLink(ctx, tx, hash, purpose, &userID, now, ttl)
	})
	if err != nil {
		return "", err
	}
	return text, nil
}

func insertLink(ctx context.Context, tx *sql.Tx, hash []byte, purpose string, userID *int64, now time.Time, ttl time.Duration) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO user_links (token_hash, purpose, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		hash, purpose, userID, now, now.Add(ttl)); err != nil {
		return fmt.Errorf("accounts: %s link: %w", purpose, err)
	}
	return nil
}

// PeekLink returns what an unused, unexpired link of the purpose is for,
// without using it (the page that asks to confirm). Anything else is
// ErrLinkInvalid.
func PeekLink(ctx context.Context, db *store.DB, token, purpose string) (Link, error) {
	if !validSecret(token) {
		return Link{}, ErrLinkInvalid
	}
	var l Link
	var userID sql.NullInt64
	err := db.Reader().QueryRowContext(ctx, `SELECT purpose, user_id, expires_at FROM user_links
		WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3`, hashSecret(token), purpose, time.Now().UTC()).
		Scan(&l.Purpose, &userID, &l.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Link{}, ErrLinkInvalid
	}
	if err != nil {
		return Link{}, fmt.Errorf("accounts: link: %w", err)
	}
	if userID.Valid {
		u, err := GetUser(ctx, db, userID.Int64)
		if errors.Is(err, ErrNotFound) {
			return Link{}, ErrLinkInvalid
		}
		if err != nil {
			return Link{}, err
		}
		l.User = &u
	} else if purpose == LinkSetup {
		if n, err := CountAdmins(ctx, db); err != nil {
			return Link{}, err
		} else if n > 0 {
			return Link{}, ErrLinkInvalid
		}
	}
	return l, nil
}

// useLink deletes the link in tx and returns its person (0 for none). A
// link that is unknown, expired or of another purpose is ErrLinkInvalid;
// two browsers using one link at once: one wins.
func useLink(ctx context.Context, tx *sql.Tx, token, purpose string) (int64, error) {
	if !validSecret(token) {
		return 0, ErrLinkInvalid
	}
	var userID sql.NullInt64
	err := tx.QueryRowContext(ctx, `DELETE FROM user_links WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3 RETURNING user_id`,
		hashSecret(token), purpose, time.Now().UTC()).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrLinkInvalid
	}
	if err != nil {
		return 0, fmt.Errorf("accounts: use %s link: %w", purpose, err)
	}
	return userID.Int64, nil
}

// SetUp uses a setup link to create the first admin. The link is used up
// only when the admin is created: a form with a bad field can be sent again.
func SetUp(ctx context.Context, db *store.DB, token string, n NewUser) (User, error) {
	if err := n.validate(); err != nil {
		return User{}, err
	}
	if n.Password == "" {
		return User{}, invalid("password", "is required")
	}
	hash := hashPassword(n.Password)
	var u User
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := useLink(ctx, tx, token, LinkSetup); err != nil {
			return err
		}
		var admins int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE is_admin`).Scan(&admins); err != nil {
			return fmt.Errorf("accounts: set up: %w", err)
		}
		if admins > 0 {
			return ErrLinkInvalid
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		// The e-mail may belong to a person already (the demo's): they
		// become the admin, with the password given here.
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, `INSERT INTO users (email, name, password_hash, is_admin, created_at, updated_at)
			VALUES ($1, $2, $3, true, $4, $4)
			ON CONFLICT (email) DO UPDATE SET name = excluded.name, password_hash = excluded.password_hash, is_admin = true,
				updated_at = excluded.updated_at
			RETURNING `+userColumns, n.Email, n.Name, hash, now))
		if err != nil {
			return fmt.Errorf("accounts: create admin: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE user_id = $1`, u.ID); err != nil {
			return fmt.Errorf("accounts: end sessions: %w", err)
		}
		return nil
	})
	return u, err
}

// SignInByLink uses a sign-in link and returns its person.
func SignInByLink(ctx context.Context, db *store.DB, token string) (User, error) {
	var id int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = useLink(ctx, tx, token, LinkSignIn)
		return err
	})
	if err != nil {
		return User{}, err
	}
	return GetUser(ctx, db, id)
}

// SetPasswordByLink uses a password link to set the person's password,
// ending their other sessions, and returns the person.
func SetPasswordByLink(ctx context.Context, db *store.DB, token, password string) (User, error) {
	if err := checkPassword(password); err != nil {
		return User{}, err
	}
	hash := hashPassword(password)
	var id int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if id, err = useLink(ctx, tx, token, LinkPassword); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1`,
			id, hash, time.Now().UTC()); err != nil {
			return fmt.Errorf("accounts: set password: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE user_id = $1`, id); err != nil {
			return fmt.Errorf("accounts: end sessions: %w", err)
		}
		return nil
	})
	if err != nil {
		return User{}, err
	}
	return GetUser(ctx, db, id)
}
