package calltracking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/cursor"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/rollup"
	"github.com/throughline/throughline/internal/store"
)

// Event is one provider event about a call, as a telephony adapter
// normalised it (phones still as sent).
type Event struct {
	Provider     string
	CallID       string
	Direction    string // in, out, internal, "" (unknown: treated as incoming)
	Caller       string
	Tracked      string
	StartedAt    time.Time // zero when the event does not say
	Answered     *bool
	TalkSeconds  *int
	WaitSeconds  *int
	Disposition  string
	RecordingURL string
	Employee     string
	Final        bool
}

// How a call was matched.
const (
	MatchLease         = "lease"          // the session that held the dialled number at the call's start
	MatchAfterLease    = "after_lease"    // the number's last holder, its lease ended less than a cooldown before the call
	MatchStatic        = "static"         // a static number: its source, no session
	MatchPoolExhausted = "pool_exhausted" // a pool's fallback number: the session is unknown
	MatchUnidentified  = "unidentified"
	MatchNotIncoming   = "not_incoming" // outgoing and internal calls are recorded, never matched
)

// clockSkew forgives the difference between the provider's clock and ours.
const clockSkew = 10 * time.Second

// Call is a call as stored and shown.
type Call struct {
	ID            int64     `json:"id"`
	Provider      string    `json:"provider"`
	ExternalID    string    `json:"external_id"`
	Direction     string    `json:"direction"`
	Caller        string    `json:"caller"`               // normalised; "" when it could not be
	CallerRaw     string    `json:"caller_raw,omitempty"` // as sent, when it could not be normalised
	CallerValid   bool      `json:"caller_valid"`
	TrackedNumber string    `json:"tracked_number"`
	StartedAt     time.Time `json:"started_at"`
	Answered      *bool     `json:"answered"`
	TalkSeconds   *int      `json:"talk_seconds"`
	WaitSeconds   *int      `json:"wait_seconds"`
	Disposition   string    `json:"disposition,omitempty"`
	RecordingURL  string    `json:"recording_url,omitempty"`
	Employee      string    `json:"employee,omitempty"`
	Ended         bool      `json:"ended"`
	Match         CallMatch `json:"match"`
	Traffic       Traffic   `json:"traffic"`
	Unique        bool      `json:"unique"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	callerRaw     string    // always the raw caller, for the merge
}

// CallMatch is why a call was credited where it was.
type CallMatch struct {
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	LeaseID string `json:"lease_id,omitempty"`
	SID     string `json:"sid,omitempty"`
	UUID    string `json:"uuid,omitempty"`
}

// Matched reports whether the call was tied to a session or a source.
func (c *Call) Matched() bool {
	switch c.Match.Type {
	case MatchLease, MatchAfterLease, MatchStatic:
		return true
	}
	return false
}

const callColumns = `id, provider, external_id, direction, caller, caller_raw, tracked_number, started_at,
	answered, talk_seconds, wait_seconds, disposition, recording_url, employee, ended,
	match, match_reason, lease_id, sid, uuid, traffic_type, source, medium, campaign, is_unique, created_at, updated_at`

func scanCall(row interface{ Scan(...any) error }) (*Call, error) {
	c := &Call{}
	var answered sql.NullBool
	var talk, wait sql.NullInt64
	err := row.Scan(&c.ID, &c.Provider, &c.ExternalID, &c.Direction, &c.Caller, &c.callerRaw, &c.TrackedNumber, &c.StartedAt,
		&answered, &talk, &wait, &c.Disposition, &c.RecordingURL, &c.Employee, &c.Ended,
		&c.Match.Type, &c.Match.Reason, &c.Match.LeaseID, &c.Match.SID, &c.Match.UUID,
		&c.Traffic.Type, &c.Traffic.Source, &c.Traffic.Medium, &c.Traffic.Campaign, &c.Unique, &c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return nil, err
	}
	if answered.Valid {
		c.Answered = &answered.Bool
	}
	if talk.Valid {
		n := int(talk.Int64)
		c.TalkSeconds = &n
	}
	if wait.Valid {
		n := int(wait.Int64)
		c.WaitSeconds = &n
	}
	c.CallerValid = c.Caller != "" || c.callerRaw == ""
	if !c.CallerValid {
		c.CallerRaw = c.callerRaw
	}
	return c, nil
}

func nullBool(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

func nullInt(n *int) any {
	if n == nil {
		return nil
	}
	return int64(*n)
}

// Ingest records one provider event: the call it belongs to is created or
// completed (the same call id twice updates, never duplicates) and, once
// its dialled number and start are known, matched. A call that ends while
// its session holds the lease ends the lease: the number cools down from
// the call's end.
func Ingest(ctx context.Context, db *store.DB, ctr counter.Counter, ev Event, receivedAt time.Time) (*Call, error) {
	c, err := ingest(ctx, db, ctr, ev, receivedAt)
	if errors.Is(err, errRetry) {
		c, err = ingest(ctx, db, ctr, ev, receivedAt) // the row exists now: this is an update
	}
	return c, err
}

func ingest(ctx context.Context, db *store.DB, ctr counter.Counter, ev Event, receivedAt time.Time) (*Call, error) {
	if ev.CallID == "" {
		return nil, &InvalidError{"call_id", "is required"}
	}
	now := receivedAt.UTC().Truncate(time.Microsecond)
	var out *Call
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if err := matching.LockLateData(ctx, tx, db.Dialect(), ctr.ID); err != nil {
			return err
		}
		lock := ""
		if db.Dialect() == store.Postgres {
			lock = " FOR UPDATE"
		}
		get := func() (*Call, error) {
			c, err := scanCall(tx.QueryRowContext(ctx, `SELECT `+callColumns+` FROM calls
				WHERE counter_id = $1 AND provider = $2 AND external_id = $3`+lock, ctr.ID, ev.Provider, ev.CallID))
			if errors.Is(err, sql.ErrNoRows) {
				return nil, nil
			}
			return c, err
		}
		c, err := get()
		if err != nil {
			return fmt.Errorf("calltracking: ingest: %w", err)
		}
		isNew := c == nil
		if isNew {
			if ev.StartedAt.IsZero() {
				ev.StartedAt = now // an event without a time: the call is happening now
			}
			c = &Call{Provider: ev.Provider, ExternalID: ev.CallID, StartedAt: ev.StartedAt.UTC().Truncate(time.Microsecond), CreatedAt: now}
		}
		changed := []time.Time{c.StartedAt} // report rollups of the call's day (and its old day) change
		rematch := merge(c, ev)
		changed = append(changed, c.StartedAt)
		if rematch || isNew {
			if err := matchCall(ctx, tx, ctr, c); err != nil {
				return err
			}
			if err := markUnique(ctx, tx, ctr, c); err != nil {
				return err
			}
		}
		if c.Ended && c.Match.Type == MatchLease && c.Match.LeaseID != "" {
			// The call used the number; it rests from the call's end: when
			// the provider gives the durations, start + wait + talk; else
			// this event's arrival. (release never goes before the page's
			// last heartbeat.)
			end := now
			if c.TalkSeconds != nil {
				end = c.StartedAt.Add(time.Duration(*c.TalkSeconds) * time.Second)
				if c.WaitSeconds != nil {
					end = end.Add(time.Duration(*c.WaitSeconds) * time.Second)
				}
				if end.After(now) {
					end = now
				}
			}
			if err := release(ctx, tx, db.Dialect(), ctr.ID, c.Match.LeaseID, c.Match.SID, "call", end); err != nil && !errors.Is(err, ErrGone) {
				return err
			}
		}
		if (isNew || rematch) && c.Caller != "" && c.Match.Type != MatchNotIncoming {
			// Orders of this caller may match differently now (a call that
			// arrives after the order).
			for _, k := range [][2]string{{matching.KeyPhone, c.Caller}, {matching.KeyPhoneMD5, md5Of(c.Caller)}} {
				if err := matching.EnqueueByKey(ctx, tx, ctr.ID, k[0], k[1], now); err != nil {
					return err
				}
			}
			// A caller's call stored late (a replay, a slow provider) makes
			// the caller's later calls in the window not the first.
			window := time.Duration(ctr.UniqueCallDays) * 24 * time.Hour
			rows, err := tx.QueryContext(ctx, `UPDATE calls SET is_unique = `+db.Dialect().Bool(false)+`
				WHERE counter_id = $1 AND caller = $2 AND started_at > $3 AND started_at <= $4 AND is_unique
				RETURNING started_at`,
				ctr.ID, c.Caller, c.StartedAt, c.StartedAt.Add(window))
			if err != nil {
				return fmt.Errorf("calltracking: unique calls: %w", err)
			}
			for rows.Next() {
				var at time.Time
				if err := rows.Scan(&at); err != nil {
					rows.Close()
					return fmt.Errorf("calltracking: unique calls: %w", err)
				}
				changed = append(changed, at)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("calltracking: unique calls: %w", err)
			}
		}
		c.UpdatedAt = now
		if isNew {
			err = tx.QueryRowContext(ctx, `INSERT INTO calls (counter_id, provider, external_id, direction, caller, caller_raw, caller_md5, tracked_number,
				started_at, answered, talk_seconds, wait_seconds, disposition, recording_url, employee, ended,
				match, match_reason, lease_id, sid, uuid, traffic_type, source, medium, campaign, is_unique, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $28, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)
				ON CONFLICT (counter_id, provider, external_id) DO NOTHING RETURNING id`,
				ctr.ID, c.Provider, c.ExternalID, c.Direction, c.Caller, c.callerRaw, c.TrackedNumber, c.StartedAt,
				nullBool(c.Answered), nullInt(c.TalkSeconds), nullInt(c.WaitSeconds), c.Disposition, c.RecordingURL, c.Employee, c.Ended,
				c.Match.Type, c.Match.Reason, c.Match.LeaseID, c.Match.SID, c.Match.UUID,
				c.Traffic.Type, c.Traffic.Source, c.Traffic.Medium, c.Traffic.Campaign, c.Unique, c.CreatedAt, c.UpdatedAt, md5Of(c.Caller)).Scan(&c.ID)
			if errors.Is(err, sql.ErrNoRows) {
				// Another event of the same call was stored between our read
				// and this insert (PostgreSQL): apply this event to that row.
				return errRetry
			}
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE calls SET direction = $3, caller = $4, caller_raw = $5, caller_md5 = $26, tracked_number = $6, started_at = $7,
				answered = $8, talk_seconds = $9, wait_seconds = $10, disposition = $11, recording_url = $12, employee = $13, ended = $14,
				match = $15, match_reason = $16, lease_id = $17, sid = $18, uuid = $19, traffic_type = $20, source = $21, medium = $22,
				campaign = $23, is_unique = $24, updated_at = $25
				WHERE counter_id = $1 AND id = $2`,
				ctr.ID, c.ID, c.Direction, c.Caller, c.callerRaw, c.TrackedNumber, c.StartedAt,
				nullBool(c.Answered), nullInt(c.TalkSeconds), nullInt(c.WaitSeconds), c.Disposition, c.RecordingURL, c.Employee, c.Ended,
				c.Match.Type, c.Match.Reason, c.Match.LeaseID, c.Match.SID, c.Match.UUID,
				c.Traffic.Type, c.Traffic.Source, c.Traffic.Medium, c.Traffic.Campaign, c.Unique, c.UpdatedAt, md5Of(c.Caller))
		}
		if err != nil {
			return fmt.Errorf("calltracking: store call %s: %w", c.ExternalID, err)
		}
		if err := rollup.Mark(ctx, tx, db.Dialect(), ctr.ID, changed...); err != nil {
			return err
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	c := out
	c.CallerValid = c.Caller != "" || c.callerRaw == ""
	if !c.CallerValid {
		c.CallerRaw = c.callerRaw
	}
	return c, nil
}

var errRetry = errors.New("calltracking: call stored concurrently; retry")

// md5Of is the md5 of a normalised value, "" for none.
func md5Of(v string) string {
	if v == "" {
		return ""
	}
	return normalize.MD5(v)
}

// merge applies an event to its call and reports whether the inputs of
// matching (the dialled number, the start, the direction) changed.
func merge(c *Call, ev Event) (rematch bool) {
	if ev.Direction != "" && ev.Direction != c.Direction {
		c.Direction, rematch = ev.Direction, true
	}
	if raw := strings.TrimSpace(ev.Caller); raw != "" && raw != c.callerRaw {
		c.callerRaw = raw
		c.Caller, _ = normalize.Phone(raw, "") // "" when it is not a phone: kept raw, flagged
		rematch = true                         // uniqueness depends on the caller
	}
	if raw := strings.TrimSpace(ev.Tracked); raw != "" && c.TrackedNumber == "" {
		// The first event that names the dialled number decides it: later
		// legs of a call (Mango's transfers) may name an employee's phone.
		n, err := normalize.Phone(raw, "")
		if err != nil {
			n = "?" + raw // never matches a tracked number; the reason says why
		}
		c.TrackedNumber, rematch = n, true
	}
	if !ev.StartedAt.IsZero() {
		t := ev.StartedAt.UTC().Truncate(time.Microsecond)
		// The earliest time a provider reports is the ring's start.
		if c.ID == 0 || t.Before(c.StartedAt) {
			if !t.Equal(c.StartedAt) {
				c.StartedAt, rematch = t, true
			}
		}
	}
	// The outcome of an event that says whether someone answered is the
	// more specific one: an event that does not say never replaces it,
	// whichever arrives first. (Twilio's final status callback says
	// CallStatus=completed for any inbound call whose TwiML ran — Twilio
	// answered it — while the <Dial> callback says no-answer when the
	// shop's line did not pick up.)
	if ev.Disposition != "" && (ev.Answered != nil || c.Answered == nil) {
		c.Disposition = ev.Disposition
	}
	if ev.Answered != nil {
		c.Answered = ev.Answered
	}
	if ev.TalkSeconds != nil {
		c.TalkSeconds = ev.TalkSeconds
	}
	if ev.WaitSeconds != nil {
		c.WaitSeconds = ev.WaitSeconds
	}
	if ev.RecordingURL != "" {
		c.RecordingURL = ev.RecordingURL
	}
	if ev.Employee != "" {
		c.Employee = ev.Employee
	}
	if ev.Final {
		c.Ended = true
	}
	return rematch
}

// matchCall credits the call (spec §1.4): the lease on the dialled number at
// the call's start; else its last lease if that ended less than a cooldown
// before; else the static number's source; else a fallback number (pool
// exhausted); else unidentified, with the reason.
func matchCall(ctx context.Context, tx *sql.Tx, ctr counter.Counter, c *Call) error {
	c.Match, c.Traffic = CallMatch{}, Traffic{}
	n, t := c.TrackedNumber, c.StartedAt
	switch {
	case c.Direction == "out" || c.Direction == "internal":
		c.Match = CallMatch{Type: MatchNotIncoming, Reason: c.Direction + "going call: not matched to visits"}
		if c.Direction == "internal" {
			c.Match.Reason = "internal call: not matched to visits"
		}
		return nil
	case n == "":
		c.Match = CallMatch{Type: MatchUnidentified, Reason: "the provider did not say which number was dialled"}
		return nil
	case strings.HasPrefix(n, "?"):
		c.Match = CallMatch{Type: MatchUnidentified, Reason: fmt.Sprintf("the dialled number %q is not a phone number", n[1:])}
		return nil
	}

	// The leases around the call, latest first: the one whose interval
	// holds the call's start (10 s of clock skew forgiven at its edges), else
	// the latest before it, if it ended less than a cooldown before.
	rows, err := tx.QueryContext(ctx, `SELECT `+leaseColumns+` FROM number_leases
		WHERE counter_id = $1 AND number = $2 AND leased_at <= $3 ORDER BY leased_at DESC LIMIT 3`, ctr.ID, n, t.Add(clockSkew))
	if err != nil {
		return fmt.Errorf("calltracking: match call: %w", err)
	}
	var recent []*Lease
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("calltracking: match call: %w", err)
		}
		recent = append(recent, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("calltracking: match call: %w", err)
	}
	covers := func(l *Lease, skew time.Duration) bool {
		return !t.Before(l.LeasedAt.Add(-skew)) && !t.After(l.End().Add(skew))
	}
	var l *Lease
	for _, skew := range []time.Duration{0, clockSkew} {
		for _, cand := range recent {
			if l == nil && covers(cand, skew) {
				l = cand
			}
		}
	}
	cooldown := time.Duration(ctr.LeaseCooldownSeconds) * time.Second
	switch {
	case l != nil:
		c.Match = CallMatch{Type: MatchLease, LeaseID: l.ID, SID: l.SID, UUID: l.UUID,
			Reason: fmt.Sprintf("%s was lent to session %s from %s to %s; the call started at %s",
				n, l.SID, stamp(l.LeasedAt), stamp(l.End()), stamp(t))}
	case len(recent) > 0 && recent[0].LeasedAt.Before(t) && !t.After(recent[0].End().Add(cooldown)):
		l = recent[0]
		c.Match = CallMatch{Type: MatchAfterLease, LeaseID: l.ID, SID: l.SID, UUID: l.UUID,
			Reason: fmt.Sprintf("%s was last lent to session %s until %s, %s before the call; no one had it since",
				n, l.SID, stamp(l.End()), t.Sub(l.End()).Round(time.Second))}
	}
	if c.Match.SID != "" {
		c.Traffic, _, err = sessionTraffic(ctx, tx, ctr.ID, c.Match.SID)
		return err
	}
	if len(recent) > 0 {
		l = recent[0]
	}

	var pool sql.NullInt64
	var src Traffic
	err = tx.QueryRowContext(ctx, `SELECT pool_id, source, medium, campaign FROM tracked_numbers WHERE counter_id = $1 AND number = $2`,
		ctr.ID, n).Scan(&pool, &src.Source, &src.Medium, &src.Campaign)
	switch {
	case err == nil && !pool.Valid:
		c.Match = CallMatch{Type: MatchStatic, Reason: fmt.Sprintf("%s is a static number of %s / %s", n, orDash(src.Source), orDash(src.Medium))}
		c.Traffic = StaticTraffic(src)
		return nil
	case err == nil:
		reason := fmt.Sprintf("%s is a pool number, but no session held it at %s", n, stamp(t))
		if l != nil {
			reason += fmt.Sprintf(" (its last lease ended at %s)", stamp(l.End()))
		}
		c.Match = CallMatch{Type: MatchUnidentified, Reason: reason}
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("calltracking: match call: %w", err)
	}
	var poolName string
	err = tx.QueryRowContext(ctx, `SELECT name FROM number_pools WHERE counter_id = $1 AND fallback_number = $2 LIMIT 1`, ctr.ID, n).Scan(&poolName)
	switch {
	case err == nil:
		c.Match = CallMatch{Type: MatchPoolExhausted, Reason: fmt.Sprintf("%s is the fallback number of pool %q, shown when all its numbers were taken", n, poolName)}
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("calltracking: match call: %w", err)
	}
	c.Match = CallMatch{Type: MatchUnidentified, Reason: fmt.Sprintf("%s is not one of the counter's tracked numbers", n)}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// markUnique sets whether this is the caller's first call within the
// counter's window.
func markUnique(ctx context.Context, tx *sql.Tx, ctr counter.Counter, c *Call) error {
	c.Unique = false
	if c.Caller == "" || c.Match.Type == MatchNotIncoming {
		return nil
	}
	window := time.Duration(ctr.UniqueCallDays) * 24 * time.Hour
	var n int
	// Earlier: started before it, or at the same moment and stored before it.
	id := c.ID
	if id == 0 {
		id = math.MaxInt64 // not stored yet: every stored call came first
	}
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM calls
		WHERE counter_id = $1 AND caller = $2 AND started_at >= $4 AND (started_at < $3 OR (started_at = $3 AND id < $5)) LIMIT 1) AS earlier`,
		ctr.ID, c.Caller, c.StartedAt, c.StartedAt.Add(-window), id).Scan(&n)
	if err != nil {
		return fmt.Errorf("calltracking: unique call: %w", err)
	}
	c.Unique = n == 0
	return nil
}

// CallQuery selects calls, newest first.
type CallQuery struct {
	From, To time.Time // started_at in [From, To)
	Answered *bool
	Unique   *bool
	Matched  *bool
	Limit    int
	Cursor   string
}

// ErrBadCursor means a cursor this API did not issue.
var ErrBadCursor = cursor.ErrBad

// Calls returns a page of the counter's calls and the next page's cursor.
func Calls(ctx context.Context, db *store.DB, counterID int64, q CallQuery) ([]*Call, string, error) {
	f := store.NewFilter(counterID)
	if !q.From.IsZero() {
		f.Add("started_at >= " + f.Arg(q.From))
	}
	if !q.To.IsZero() {
		f.Add("started_at < " + f.Arg(q.To))
	}
	if q.Answered != nil {
		if *q.Answered {
			f.Add("answered = " + f.Arg(true))
		} else {
			f.Add("(answered IS NULL OR answered = " + f.Arg(false) + ")")
		}
	}
	if q.Unique != nil {
		f.Add("is_unique = " + f.Arg(*q.Unique))
	}
	if q.Matched != nil {
		if *q.Matched {
			f.Add("match IN ('lease', 'after_lease', 'static')")
		} else {
			f.Add("match NOT IN ('lease', 'after_lease', 'static')")
		}
	}
	if q.Cursor != "" {
		at, id, err := cursor.Decode(q.Cursor)
		n, perr := strconv.ParseInt(id, 10, 64)
		if err != nil || perr != nil {
			return nil, "", ErrBadCursor
		}
		f.Before("started_at", "id", at, n)
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+callColumns+` FROM calls WHERE `+f.SQL()+`
		ORDER BY started_at DESC, id DESC LIMIT `+f.Arg(q.Limit+1), f.Args...)
	if err != nil {
		return nil, "", fmt.Errorf("calltracking: calls: %w", err)
	}
	defer rows.Close()
	out := []*Call{}
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			return nil, "", fmt.Errorf("calltracking: calls: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("calltracking: calls: %w", err)
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		last := out[len(out)-1]
		next = cursor.Encode(last.StartedAt, strconv.FormatInt(last.ID, 10))
	}
	return out, next, nil
}

// GetCall returns one call.
func GetCall(ctx context.Context, db *store.DB, counterID, id int64) (*Call, error) {
	c, err := scanCall(db.Reader().QueryRowContext(ctx, `SELECT `+callColumns+` FROM calls WHERE counter_id = $1 AND id = $2`, counterID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("calltracking: get call %d: %w", id, err)
	}
	return c, nil
}
