package tracker

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/throughline/throughline/internal/cursor"
	"github.com/throughline/throughline/internal/store"
)

// Session is a stored session as the API shows it. Its last activity and
// its pageview and event counts are its hits': the collector only inserts.
type Session struct {
	SID            string            `json:"sid"`
	UUID           string            `json:"uuid"`
	StartedAt      time.Time         `json:"started_at"`
	LastActivityAt time.Time         `json:"last_activity_at"`
	LandingURL     string            `json:"landing_url"`
	Referrer       string            `json:"referrer"`
	UTM            UTM               `json:"utm"`
	ClickIDs       map[string]string `json:"click_ids"`
	Traffic        Source            `json:"traffic"`
	Pageviews      int               `json:"pageviews"`
	Events         int               `json:"events"`
	Device         string            `json:"device"`
	Browser        string            `json:"browser"`
	OS             string            `json:"os"`
	IP             string            `json:"ip"` // anonymised
	Hits           []StoredHit       `json:"hits,omitempty"`
}

// UTM are a session's campaign tags.
type UTM struct {
	Source   string `json:"source"`
	Medium   string `json:"medium"`
	Campaign string `json:"campaign"`
	Content  string `json:"content"`
	Term     string `json:"term"`
}

// StoredHit is a pageview or event of a session.
type StoredHit struct {
	At    time.Time       `json:"at"`
	Type  string          `json:"type"`
	URL   string          `json:"url"`
	Title string          `json:"title"`
	Name  string          `json:"name,omitempty"`
	Props json.RawMessage `json:"props,omitempty"`
}

// ErrNotFound means the counter has no such session.
var ErrNotFound = errors.New("session not found")

// ErrBadCursor means a cursor that this server did not issue.
var ErrBadCursor = cursor.ErrBad

const sessionColumns = `sid, uuid, started_at, landing_url, referrer,
	utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids,
	traffic_type, source, medium, device, browser, os, ip`

func scanSession(row interface{ Scan(...any) error }) (Session, error) {
	var s Session
	var clicks, typ string
	err := row.Scan(&s.SID, &s.UUID, &s.StartedAt, &s.LandingURL, &s.Referrer,
		&s.UTM.Source, &s.UTM.Medium, &s.UTM.Campaign, &s.UTM.Content, &s.UTM.Term, &clicks,
		&typ, &s.Traffic.Source, &s.Traffic.Medium, &s.Device, &s.Browser, &s.OS, &s.IP)
	if err != nil {
		return s, err
	}
	s.LastActivityAt = s.StartedAt
	s.Traffic.Type = TrafficType(typ)
	s.ClickIDs = map[string]string{}
	if err := json.Unmarshal([]byte(clicks), &s.ClickIDs); err != nil {
		return s, fmt.Errorf("session %s: click_ids: %w", s.SID, err)
	}
	return s, nil
}

// ListQuery selects sessions by start time, newest first.
type ListQuery struct {
	From, To time.Time // started_at in [From, To); zero means unbounded
	Limit    int
	Cursor   string // from the previous page's next cursor
}

// ListSessions returns a page of a counter's sessions and the cursor of the
// next page ("" when this is the last).
func ListSessions(ctx context.Context, db *store.DB, counterID int64, q ListQuery) ([]Session, string, error) {
	f := store.NewFilter(counterID)
	if !q.From.IsZero() {
		f.Add("started_at >= " + f.Arg(q.From))
	}
	if !q.To.IsZero() {
		f.Add("started_at < " + f.Arg(q.To))
	}
	if q.Cursor != "" {
		at, sid, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		f.Add("(started_at, sid) < (" + f.Arg(at) + ", " + f.Arg(sid) + ")")
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE `+f.SQL()+`
		ORDER BY started_at DESC, sid DESC LIMIT `+f.Arg(q.Limit+1), f.Args...)
	if err != nil {
		return nil, "", fmt.Errorf("tracker: list sessions: %w", err)
	}
	defer rows.Close()
	sessions := []Session{}
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, "", fmt.Errorf("tracker: list sessions: %w", err)
		}
		sessions = append(sessions, s)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("tracker: list sessions: %w", err)
	}
	rows.Close()
	next := ""
	if len(sessions) > q.Limit {
		sessions = sessions[:q.Limit]
		last := sessions[len(sessions)-1]
		next = cursor.Encode(last.StartedAt, last.SID)
	}
	if err := addActivity(ctx, db, counterID, sessions); err != nil {
		return nil, "", err
	}
	return sessions, next, nil
}

// addActivity fills in the sessions' last activity and pageview and event
// counts from their hits, in one query through the hits_session index.
func addActivity(ctx context.Context, db *store.DB, counterID int64, sessions []Session) error {
	if len(sessions) == 0 {
		return nil
	}
	d := db.Dialect()
	bySID := make(map[string]*Session, len(sessions))
	args := make([]any, 0, len(sessions)+1)
	for i := range sessions {
		bySID[sessions[i].SID] = &sessions[i]
		args = append(args, sessions[i].SID)
	}
	args = append(args, counterID)
	rows, err := db.Reader().QueryContext(ctx, `SELECT sid, max(at),
			sum(CASE WHEN type = 'pageview' THEN 1 ELSE 0 END), sum(CASE WHEN type = 'pageview' THEN 0 ELSE 1 END)
		FROM hits WHERE sid IN (`+d.Params(1, len(sessions))+`) AND counter_id = `+d.Param(len(sessions)+1)+`
		GROUP BY sid`, args...)
	if err != nil {
		return fmt.Errorf("tracker: sessions' hits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sid string
		var last time.Time
		var pageviews, events int
		if err := rows.Scan(&sid, &last, &pageviews, &events); err != nil {
			return fmt.Errorf("tracker: sessions' hits: %w", err)
		}
		if s := bySID[sid]; s != nil {
			s.Pageviews, s.Events = pageviews, events
			if last.After(s.LastActivityAt) {
				s.LastActivityAt = last
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("tracker: sessions' hits: %w", err)
	}
	return nil
}

// GetSession returns one session with its hits in order.
func GetSession(ctx context.Context, db *store.DB, counterID int64, sid string) (Session, error) {
	s, err := scanSession(db.Reader().QueryRowContext(ctx,
		`SELECT `+sessionColumns+` FROM sessions WHERE counter_id = $1 AND sid = $2`, counterID, sid))
	if errors.Is(err, sql.ErrNoRows) {
		return s, ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("tracker: get session %s: %w", sid, err)
	}
	rows, err := db.Reader().QueryContext(ctx,
		`SELECT at, type, url, title, name, props FROM hits WHERE counter_id = $1 AND sid = $2 ORDER BY at, id`, counterID, sid)
	if err != nil {
		return s, fmt.Errorf("tracker: get session %s hits: %w", sid, err)
	}
	defer rows.Close()
	for rows.Next() {
		var h StoredHit
		var props string
		if err := rows.Scan(&h.At, &h.Type, &h.URL, &h.Title, &h.Name, &props); err != nil {
			return s, fmt.Errorf("tracker: get session %s hits: %w", sid, err)
		}
		if props != "{}" {
			h.Props = json.RawMessage(props)
		}
		if h.Type == Pageview {
			s.Pageviews++
		} else {
			s.Events++
		}
		if h.At.After(s.LastActivityAt) {
			s.LastActivityAt = h.At
		}
		s.Hits = append(s.Hits, h)
	}
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("tracker: get session %s hits: %w", sid, err)
	}
	return s, nil
}

// decodeCursor reads a sessions cursor: (started_at, sid) of a page's last session.
func decodeCursor(c string) (time.Time, string, error) {
	at, sid, err := cursor.Decode(c)
	if err != nil || !validID(sid) {
		return time.Time{}, "", ErrBadCursor
	}
	return at, sid, nil
}
