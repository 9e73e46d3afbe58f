// Package accounts keeps the people who use the web cabinet: who they are
// (e-mail and an argon2id password hash), what they may do (an instance
// admin; per counter owner, editor or viewer), and their sign-in state
// (server-side sessions, one-time links, personal API tokens, throttled
// sign-in). The web pages and the API ask it; they decide nothing
// themselves.
package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/store"
)

// Role is what a person may do on a counter.
type Role string

// Roles, weakest first. An owner does everything (people included), an
// editor changes settings and imports, a viewer reads.
const (
	Viewer Role = "viewer"
	Editor Role = "editor"
	Owner  Role = "owner"
)

// Roles lists the roles, weakest first.
var Roles = []Role{Viewer, Editor, Owner}

func (r Role) rank() int {
	switch r {
	case Viewer:
		return 1
	case Editor:
		return 2
	case Owner:
		return 3
	}
	return 0
}

// Allows reports whether a person with role r may do what needs role need.
func (r Role) Allows(need Role) bool { return r.rank() > 0 && r.rank() >= need.rank() }

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if r.rank() == 0 {
		return "", invalid("role", "%q is not a role (owner, editor or viewer)", prefix(s))
	}
	return r, nil
}

// User is a person who signs in to the cabinet.
type User struct {
	ID          int64     `json:"id"`
	Email       string    `json:"email"`
	Name        string    `json:"name"`
	Admin       bool      `json:"admin"`
	Language    string    `json:"language"` // "ru", "en" or "" (the browser's)
	HasPassword bool      `json:"has_password"`
	CreatedAt   time.Time `json:"created_at"`
}

// Languages the cabinet speaks.
var Languages = []string{"ru", "en"}

// NewUser is what creating a person takes. An empty Password makes a person
// who sets theirs through a one-time link.
type NewUser struct {
	Email    string
	Name     string
	Password string
	Admin    bool
}

func (n *NewUser) validate() error {
	email, err := normalize.Email(n.Email)
	if err != nil {
		return invalid("email", "%q is not an e-mail address", prefix(n.Email))
	}
	n.Email = email
	if n.Name, err = checkName(n.Name); err != nil {
		return err
	}
	if n.Password != "" {
		return checkPassword(n.Password)
	}
	return nil
}

func checkName(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case !utf8.ValidString(s):
		return "", invalid("name", "is not valid UTF-8")
	case strings.ContainsFunc(s, unicode.IsControl):
		return "", invalid("name", "must not contain control characters")
	case utf8.RuneCountInString(s) > 200:
		return "", invalid("name", "is longer than 200 characters")
	}
	return s, nil
}

// checkPassword checks a new password's length. Any characters are allowed
// (a passphrase in Russian is fine); length is what makes it strong.
func checkPassword(p string) error {
	switch n := utf8.RuneCountInString(p); {
	case !utf8.ValidString(p):
		return invalid("password", "is not valid UTF-8")
	case strings.ContainsRune(p, 0):
		return invalid("password", "must not contain a NUL character")
	case n < MinPassword:
		return invalid("password", "must be at least %d characters long", MinPassword)
	case len(p) > MaxPassword:
		return invalid("password", "must be at most %d bytes long", MaxPassword)
	}
	return nil
}

const userColumns = `id, email, name, is_admin, language, password_hash <> '', created_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Admin, &u.Language, &u.HasPassword, &u.CreatedAt)
	return u, err
}

// CreateUser adds a person. An e-mail already taken is a conflict.
func CreateUser(ctx context.Context, db *store.DB, n NewUser) (User, error) {
	if err := n.validate(); err != nil {
		return User{}, err
	}
	hash := ""
	if n.Password != "" {
		hash = hashPassword(n.Password)
	}
	var u User
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var taken int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE email = $1`, n.Email).Scan(&taken)
		if err == nil {
			return conflict("email", "a person with this e-mail already exists")
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("accounts: create user: %w", err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		u, err = scanUser(tx.QueryRowContext(ctx, `INSERT INTO users (email, name, password_hash, is_admin, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) RETURNING `+userColumns, n.Email, n.Name, hash, n.Admin, now))
		if err != nil {
			return fmt.Errorf("accounts: create user: %w", err)
		}
		return nil
	})
	return u, err
}

// GetUser returns a person by id.
func GetUser(ctx context.Context, db *store.DB, id int64) (User, error) {
	u, err := scanUser(db.Reader().QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("accounts: user %d: %w", id, err)
	}
	return u, nil
}

// UserByEmail returns a person by e-mail (in any letter case).
func UserByEmail(ctx context.Context, db *store.DB, email string) (User, error) {
	e, err := normalize.Email(email)
	if err != nil {
		return User{}, invalid("email", "%q is not an e-mail address", prefix(email))
	}
	u, err := scanUser(db.Reader().QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, e))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("accounts: user %s: %w", e, err)
	}
	return u, nil
}

// ListUsers returns every person, by e-mail.
func ListUsers(ctx context.Context, db *store.DB) ([]User, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("accounts: list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("accounts: list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("accounts: list users: %w", err)
	}
	return out, nil
}

// CountAdmins returns how many admins the instance has.
func CountAdmins(ctx context.Context, db *store.DB) (int, error) {
	var n int
	if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM users WHERE is_admin`).Scan(&n); err != nil {
		return 0, fmt.Errorf("accounts: count admins: %w", err)
	}
	return n, nil
}

// SignIn checks an e-mail and password and returns the person. A wrong
// password and an unknown e-mail are the same ErrBadCredentials and take the
// same time, so sign-in does not tell which e-mails exist.
func SignIn(ctx context.Context, db *store.DB, email, password string) (User, error) {
	e, _ := normalize.Email(email)
	var u User
	var hash string
	err := db.Reader().QueryRowContext(ctx, `SELECT `+userColumns+`, password_hash FROM users WHERE email = $1`, e).
		Scan(&u.ID, &u.Email, &u.Name, &u.Admin, &u.Language, &u.HasPassword, &u.CreatedAt, &hash)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && hash == "") {
		hash = dummyHash
		u = User{}
	} else if err != nil {
		return User{}, fmt.Errorf("accounts: sign in: %w", err)
	}
	ok, err := verifyPassword(hash, password)
	if err != nil {
		return User{}, fmt.Errorf("accounts: sign in %s: %w", e, err)
	}
	if !ok || u.ID == 0 || len(password) > MaxPassword {
		return User{}, ErrBadCredentials
	}
	return u, nil
}

// SetPassword changes a person's password and ends every session of theirs
// (the caller starts a new one for the browser that changed it).
func SetPassword(ctx context.Context, db *store.DB, userID int64, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	hash := hashPassword(password)
	return db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1`,
			userID, hash, time.Now().UTC())
		if err != nil {
			return fmt.Errorf("accounts: set password: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE user_id = $1`, userID); err != nil {
			return fmt.Errorf("accounts: end sessions: %w", err)
		}
		return nil
	})
}

// Profile is what a person may change about themselves.
type Profile struct {
	Name     string
	Language string // "ru", "en" or "" for the browser's
}

// SetProfile changes a person's name and language.
func SetProfile(ctx context.Context, db *store.DB, userID int64, p Profile) error {
	name, err := checkName(p.Name)
	if err != nil {
		return err
	}
	if p.Language != "" && p.Language != "ru" && p.Language != "en" {
		return invalid("language", "%q is not a language (ru or en)", prefix(p.Language))
	}
	res, err := db.Writer().ExecContext(ctx, `UPDATE users SET name = $2, language = $3, updated_at = $4 WHERE id = $1`,
		userID, name, p.Language, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("accounts: set profile: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetAdmin makes a person an admin or not. The last admin cannot be
// demoted: nobody could manage people after that.
func SetAdmin(ctx context.Context, db *store.DB, userID int64, admin bool) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		if !admin {
			var others int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE is_admin AND id <> $1`, userID).Scan(&others); err != nil {
				return fmt.Errorf("accounts: set admin: %w", err)
			}
			if others == 0 {
				return conflict("admin", "this is the only admin; make someone else an admin first")
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET is_admin = $2, updated_at = $3 WHERE id = $1`, userID, admin, time.Now().UTC())
		if err != nil {
			return fmt.Errorf("accounts: set admin: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// CounterRole is a counter a person may see, with their role on it.
type CounterRole struct {
	CounterID int64
	Role      Role
}

// RoleOn returns a person's role on a counter: an admin is an owner of every
// counter; anyone else has the role granted, or none (ErrNoRole).
func RoleOn(ctx context.Context, db *store.DB, u User, counterID int64) (Role, error) {
	if u.Admin {
		var one int
		err := db.Reader().QueryRowContext(ctx, `SELECT 1 FROM counters WHERE id = $1`, counterID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return "", ErrNoRole
		}
		if err != nil {
			return "", fmt.Errorf("accounts: role on counter %d: %w", counterID, err)
		}
		return Owner, nil
	}
	var r Role
	err := db.Reader().QueryRowContext(ctx, `SELECT role FROM counter_roles WHERE counter_id = $1 AND user_id = $2`,
		counterID, u.ID).Scan(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNoRole
	}
	if err != nil {
		return "", fmt.Errorf("accounts: role on counter %d: %w", counterID, err)
	}
	return r, nil
}

// Counters returns the counters a person may see, by id: every counter for
// an admin (as owner), else those with a role.
func Counters(ctx context.Context, db *store.DB, u User) ([]CounterRole, error) {
	q, args := `SELECT counter_id, role FROM counter_roles WHERE user_id = $1 ORDER BY counter_id`, []any{u.ID}
	if u.Admin {
		q, args = `SELECT id, 'owner' FROM counters ORDER BY id`, nil
	}
	rows, err := db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("accounts: counters of %s: %w", u.Email, err)
	}
	defer rows.Close()
	var out []CounterRole
	for rows.Next() {
		var c CounterRole
		if err := rows.Scan(&c.CounterID, &c.Role); err != nil {
			return nil, fmt.Errorf("accounts: counters of %s: %w", u.Email, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Grant gives a person a role on a counter (replacing the one they had).
func Grant(ctx context.Context, db *store.DB, counterID, userID int64, role Role) error {
	if role.rank() == 0 {
		return invalid("role", "%q is not a role (owner, editor or viewer)", prefix(string(role)))
	}
	return db.Tx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM counters WHERE id = $1`, counterID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return notFound("counter")
		} else if err != nil {
			return fmt.Errorf("accounts: grant: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = $1`, userID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return notFound("person")
		} else if err != nil {
			return fmt.Errorf("accounts: grant: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO counter_roles (counter_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (counter_id, user_id) DO UPDATE SET role = excluded.role`, counterID, userID, role, time.Now().UTC()); err != nil {
			return fmt.Errorf("accounts: grant: %w", err)
		}
		return nil
	})
}

// Revoke takes a person's role on a counter away. The counter's last owner
// cannot be removed or demoted here: the counter would have nobody to
// manage its people (an admin still could).
func Revoke(ctx context.Context, db *store.DB, counterID, userID int64) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		if err := keepAnOwner(ctx, tx, counterID, userID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM counter_roles WHERE counter_id = $1 AND user_id = $2`, counterID, userID)
		if err != nil {
			return fmt.Errorf("accounts: revoke: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// ChangeRole changes the role of a person who has one on the counter,
// keeping at least one owner.
func ChangeRole(ctx context.Context, db *store.DB, counterID, userID int64, role Role) error {
	if role.rank() == 0 {
		return invalid("role", "%q is not a role (owner, editor or viewer)", prefix(string(role)))
	}
	return db.Tx(ctx, func(tx *sql.Tx) error {
		if role != Owner {
			if err := keepAnOwner(ctx, tx, counterID, userID); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE counter_roles SET role = $3 WHERE counter_id = $1 AND user_id = $2`, counterID, userID, role)
		if err != nil {
			return fmt.Errorf("accounts: change role: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

func keepAnOwner(ctx context.Context, tx *sql.Tx, counterID, userID int64) error {
	var role Role
	err := tx.QueryRowContext(ctx, `SELECT role FROM counter_roles WHERE counter_id = $1 AND user_id = $2`, counterID, userID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("accounts: role: %w", err)
	}
	if role != Owner {
		return nil
	}
	var owners int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM counter_roles WHERE counter_id = $1 AND role = 'owner'`, counterID).Scan(&owners); err != nil {
		return fmt.Errorf("accounts: owners: %w", err)
	}
	if owners <= 1 {
		return conflict("role", "this is the counter's only owner; make someone else an owner first")
	}
	return nil
}

// Member is a person with a role on a counter.
type Member struct {
	User
	Role Role
}

// Members lists the people with a role on a counter, by e-mail.
func Members(ctx context.Context, db *store.DB, counterID int64) ([]Member, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT u.id, u.email, u.name, u.is_admin, u.language, u.password_hash <> '', u.created_at, r.role
		FROM counter_roles r JOIN users u ON u.id = r.user_id WHERE r.counter_id = $1 ORDER BY u.email`, counterID)
	if err != nil {
		return nil, fmt.Errorf("accounts: members of counter %d: %w", counterID, err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.ID, &m.Email, &m.Name, &m.Admin, &m.Language, &m.HasPassword, &m.CreatedAt, &m.Role); err != nil {
			return nil, fmt.Errorf("accounts: members of counter %d: %w", counterID, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// prefix shortens a rejected value for an error message: an error never
// echoes more than a short start of what was sent.
func prefix(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
