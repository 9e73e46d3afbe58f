// Package leads records the requests a site's visitors leave — forms,
// chats, e-mails, callback requests — with the session (and so the traffic
// source) they came from, and, for counters that opt in, the md5 of phones
// and e-mails typed into the site's forms, so that CRM orders can later be
// matched to visits by them without storing them in the clear.
package leads

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/cursor"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/rollup"
	"github.com/throughline/throughline/internal/store"
)

// Lead types.
var Types = []string{"form", "chat", "email", "callback"}

// Input is a lead as a site's server (or t.js's sendLead) sends it.
type Input struct {
	Type      string     `json:"type"`
	Subject   string     `json:"subject"`
	Name      string     `json:"name"`
	Phone     string     `json:"phone"`
	Email     string     `json:"email"`
	Comment   string     `json:"comment"`
	SID       string     `json:"sid"`
	UUID      string     `json:"uuid"`
	CreatedAt *time.Time `json:"created_at"` // when the visitor sent it; now when absent
}

// Lead is a stored lead.
type Lead struct {
	ID         int64     `json:"id"`
	Type       string    `json:"type"`
	Subject    string    `json:"subject"`
	Name       string    `json:"name"`
	Phone      string    `json:"phone"`               // normalised; "" when none or not a phone
	PhoneRaw   string    `json:"phone_raw,omitempty"` // as sent, when it could not be normalised
	PhoneValid bool      `json:"phone_valid"`
	Email      string    `json:"email"`
	Comment    string    `json:"comment"`
	SID        string    `json:"sid"`
	UUID       string    `json:"uuid"`
	Traffic    Traffic   `json:"traffic"`
	Origin     string    `json:"origin"` // api or site
	CreatedAt  time.Time `json:"created_at"`
	ReceivedAt time.Time `json:"received_at"`
}

// Traffic is the source of the lead's session.
type Traffic struct {
	Type     string `json:"type"`
	Source   string `json:"source"`
	Medium   string `json:"medium"`
	Campaign string `json:"campaign"`
}

// InvalidError names the field of a lead that is wrong.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// ErrNotFound means the counter has no such lead.
var ErrNotFound = errors.New("lead not found")

func text(field, v string, max int) (string, error) {
	v = strings.TrimSpace(v)
	if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		return "", &InvalidError{field, "is not valid UTF-8 text"}
	}
	if utf8.RuneCountInString(v) > max {
		return "", &InvalidError{field, fmt.Sprintf("is longer than %d characters", max)}
	}
	return v, nil
}

// Create stores a lead with its session's traffic source: the session named
// by sid, else the visitor's latest session started before the lead.
func Create(ctx context.Context, db *store.DB, counterID int64, in Input, origin string, now time.Time) (*Lead, error) {
	now = now.UTC().Truncate(time.Microsecond)
	l := &Lead{Origin: origin, ReceivedAt: now, CreatedAt: now}
	var err error
	if l.Type = strings.ToLower(strings.TrimSpace(in.Type)); l.Type == "" {
		l.Type = "form"
	}
	valid := false
	for _, t := range Types {
		valid = valid || t == l.Type
	}
	if !valid {
		return nil, &InvalidError{"type", fmt.Sprintf("%q is not one of %s", in.Type, strings.Join(Types, ", "))}
	}
	for _, f := range []struct {
		name string
		src  string
		dst  *string
		max  int
	}{{"subject", in.Subject, &l.Subject, 500}, {"name", in.Name, &l.Name, 500}, {"comment", in.Comment, &l.Comment, 10000},
		{"sid", in.SID, &l.SID, 64}, {"uuid", in.UUID, &l.UUID, 64}, {"phone", in.Phone, &l.PhoneRaw, 100}, {"email", in.Email, &l.Email, 254}} {
		if *f.dst, err = text(f.name, f.src, f.max); err != nil {
			return nil, err
		}
	}
	l.SID, l.UUID = strings.ToLower(l.SID), strings.ToLower(l.UUID)
	if l.PhoneRaw != "" {
		// A phone that is not one is kept as typed, flagged: it is still
		// worth showing, never worth matching.
		if p, err := normalize.Phone(l.PhoneRaw, ""); err == nil {
			l.Phone, l.PhoneRaw = p, ""
		}
	}
	l.PhoneValid = l.PhoneRaw == ""
	if l.Email != "" {
		e, err := normalize.Email(l.Email)
		if err != nil {
			return nil, &InvalidError{"email", fmt.Sprintf("%q is not an e-mail address", l.Email)}
		}
		l.Email = e
	}
	if in.CreatedAt != nil {
		t := in.CreatedAt.UTC().Truncate(time.Microsecond)
		if t.After(now.Add(10*time.Minute)) || t.Before(now.AddDate(-1, 0, 0)) {
			return nil, &InvalidError{"created_at", "must be within the last year and not in the future"}
		}
		l.CreatedAt = t
	}
	if l.SID == "" && l.UUID == "" && l.Phone == "" && l.Email == "" && l.PhoneRaw == "" {
		return nil, &InvalidError{"phone", "a lead needs a way to find its visitor or customer: sid, uuid, phone or email"}
	}
	if err := resolveSession(ctx, db, counterID, l); err != nil {
		return nil, err
	}
	md5Of := func(v string) string {
		if v == "" {
			return ""
		}
		return normalize.MD5(v)
	}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		if err := matching.LockLateData(ctx, tx, db.Dialect(), counterID); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO leads (counter_id, type, subject, name, phone, phone_raw, email, phone_md5, email_md5,
			comment, sid, uuid, traffic_type, source, medium, campaign, origin, created_at, received_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING id`,
			counterID, l.Type, l.Subject, l.Name, l.Phone, l.PhoneRaw, l.Email, md5Of(l.Phone), md5Of(l.Email), l.Comment, l.SID, l.UUID,
			l.Traffic.Type, l.Traffic.Source, l.Traffic.Medium, l.Traffic.Campaign, l.Origin, l.CreatedAt, l.ReceivedAt).Scan(&l.ID)
		if err != nil {
			return fmt.Errorf("leads: create: %w", err)
		}
		// Orders of this customer may match differently now.
		for _, k := range [][2]string{{matching.KeyPhone, l.Phone}, {matching.KeyEmail, l.Email},
			{matching.KeyPhoneMD5, md5Of(l.Phone)}, {matching.KeyEmailMD5, md5Of(l.Email)}} {
			if err := matching.EnqueueByKey(ctx, tx, counterID, k[0], k[1], now); err != nil {
				return err
			}
		}
		return rollup.Mark(ctx, tx, db.Dialect(), counterID, l.CreatedAt)
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// resolveSession fills the lead's session and traffic. A sid of another
// visitor than the lead's uuid is not trusted.
func resolveSession(ctx context.Context, db *store.DB, counterID int64, l *Lead) error {
	var sid, uuid string
	var t Traffic
	err := sql.ErrNoRows
	if l.SID != "" {
		err = db.Reader().QueryRowContext(ctx, `SELECT sid, uuid, traffic_type, source, medium, utm_campaign FROM sessions
			WHERE counter_id = $1 AND sid = $2`, counterID, l.SID).Scan(&sid, &uuid, &t.Type, &t.Source, &t.Medium, &t.Campaign)
		if err == nil && l.UUID != "" && uuid != l.UUID {
			err = sql.ErrNoRows
		}
	}
	if errors.Is(err, sql.ErrNoRows) && l.UUID != "" {
		err = db.Reader().QueryRowContext(ctx, `SELECT sid, uuid, traffic_type, source, medium, utm_campaign FROM sessions
			WHERE counter_id = $1 AND uuid = $2 AND started_at <= $3 ORDER BY started_at DESC LIMIT 1`,
			counterID, l.UUID, l.CreatedAt).Scan(&sid, &uuid, &t.Type, &t.Source, &t.Medium, &t.Campaign)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil // kept without a session: matching may still find it by phone or e-mail
	case err != nil:
		return fmt.Errorf("leads: session: %w", err)
	}
	l.SID, l.UUID, l.Traffic = sid, uuid, t
	return nil
}

const leadColumns = `id, type, subject, name, phone, phone_raw, email, comment, sid, uuid, traffic_type, source, medium, campaign, origin, created_at, received_at`

func scanLead(row interface{ Scan(...any) error }) (*Lead, error) {
	l := &Lead{}
	if err := row.Scan(&l.ID, &l.Type, &l.Subject, &l.Name, &l.Phone, &l.PhoneRaw, &l.Email, &l.Comment, &l.SID, &l.UUID,
		&l.Traffic.Type, &l.Traffic.Source, &l.Traffic.Medium, &l.Traffic.Campaign, &l.Origin, &l.CreatedAt, &l.ReceivedAt); err != nil {
		return nil, err
	}
	l.PhoneValid = l.PhoneRaw == ""
	return l, nil
}

// Query selects leads, newest first.
type Query struct {
	From, To time.Time
	Type     string
	Session  *bool // with (true) or without (false) a session
	Limit    int
	Cursor   string
}

// ErrBadCursor means a cursor this API did not issue.
var ErrBadCursor = cursor.ErrBad

// List returns a page of the counter's leads and the next page's cursor.
func List(ctx context.Context, db *store.DB, counterID int64, q Query) ([]*Lead, string, error) {
	f := store.NewFilter(counterID)
	if !q.From.IsZero() {
		f.Add("created_at >= " + f.Arg(q.From))
	}
	if !q.To.IsZero() {
		f.Add("created_at < " + f.Arg(q.To))
	}
	if q.Type != "" {
		f.Add("type = " + f.Arg(q.Type))
	}
	if q.Session != nil {
		if *q.Session {
			f.Add("sid <> ''")
		} else {
			f.Add("sid = ''")
		}
	}
	if q.Cursor != "" {
		at, id, err := cursor.Decode(q.Cursor)
		n, perr := strconv.ParseInt(id, 10, 64)
		if err != nil || perr != nil {
			return nil, "", ErrBadCursor
		}
		f.Before("created_at", "id", at, n)
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+leadColumns+` FROM leads WHERE `+f.SQL()+`
		ORDER BY created_at DESC, id DESC LIMIT `+f.Arg(q.Limit+1), f.Args...)
	if err != nil {
		return nil, "", fmt.Errorf("leads: list: %w", err)
	}
	defer rows.Close()
	out := []*Lead{}
	for rows.Next() {
		l, err := scanLead(rows)
		if err != nil {
			return nil, "", fmt.Errorf("leads: list: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("leads: list: %w", err)
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		last := out[len(out)-1]
		next = cursor.Encode(last.CreatedAt, strconv.FormatInt(last.ID, 10))
	}
	return out, next, nil
}

// Capture stores the md5 of the phones and e-mails a visitor typed into a
// form, with the session; the values themselves are not kept. Values that
// are not phones or e-mails are skipped. It returns how many were stored.
func Capture(ctx context.Context, db *store.DB, counterID int64, sid, uuid string, phones, emails []string, now time.Time) (int, error) {
	type key struct{ kind, md5 string }
	var keys []key
	for _, p := range phones {
		if n, err := normalize.Phone(p, ""); err == nil {
			keys = append(keys, key{"phone", normalize.MD5(n)})
		}
	}
	for _, e := range emails {
		if n, err := normalize.Email(e); err == nil {
			keys = append(keys, key{"email", normalize.MD5(n)})
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	now = now.UTC().Truncate(time.Microsecond)
	n := 0
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if err := matching.LockLateData(ctx, tx, db.Dialect(), counterID); err != nil {
			return err
		}
		for _, k := range keys {
			res, err := tx.ExecContext(ctx, `INSERT INTO form_captures (counter_id, md5, kind, sid, uuid, captured_at)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (counter_id, md5, sid) DO NOTHING`, counterID, k.md5, k.kind, sid, uuid, now)
			if err != nil {
				return fmt.Errorf("leads: capture: %w", err)
			}
			c, _ := res.RowsAffected()
			n += int(c)
			kind := matching.KeyPhoneMD5
			if k.kind == "email" {
				kind = matching.KeyEmailMD5
			}
			if err := matching.EnqueueByKey(ctx, tx, counterID, kind, k.md5, now); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// Captured is a hashed identifier from a form.
type Captured struct {
	MD5        string    `json:"md5"`
	Kind       string    `json:"kind"`
	SID        string    `json:"sid"`
	UUID       string    `json:"uuid"`
	CapturedAt time.Time `json:"captured_at"`
}

// Captures returns the hashed identifiers captured in a session.
func Captures(ctx context.Context, db *store.DB, counterID int64, sid string) ([]Captured, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT md5, kind, sid, uuid, captured_at FROM form_captures
		WHERE counter_id = $1 AND sid = $2 ORDER BY captured_at, md5`, counterID, sid)
	if err != nil {
		return nil, fmt.Errorf("leads: captures: %w", err)
	}
	defer rows.Close()
	out := []Captured{}
	for rows.Next() {
		var c Captured
		if err := rows.Scan(&c.MD5, &c.Kind, &c.SID, &c.UUID, &c.CapturedAt); err != nil {
			return nil, fmt.Errorf("leads: captures: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
