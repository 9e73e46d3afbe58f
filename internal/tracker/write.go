package tracker

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/throughline/throughline/internal/rollup"
)

// sessionRow is a new session as it is inserted.
type sessionRow struct {
	counter                 int64
	sid, uuid               string
	started, lastActivity   time.Time
	landing, referrer       string
	campaign                Campaign
	source                  Source
	pageviews, events       int
	device, browser, os, ip string
}

func newSessionRow(h Hit, cl client) *sessionRow {
	r := &sessionRow{
		counter: h.Counter.ID, sid: newSessionID(h.At), uuid: h.UUID,
		started: h.At, lastActivity: h.At,
		landing: h.URL.String(), referrer: h.Referrer,
		campaign: h.Campaign,
		source:   Classify(h.Campaign, h.Referrer, h.URL.Hostname(), h.Counter.Domain),
		device:   cl.Device, browser: cl.Browser, os: cl.OS,
		ip: anonymizeIP(h.IP),
	}
	r.count(h.Type)
	return r
}

func (r *sessionRow) count(typ string) {
	if typ == Pageview {
		r.pageviews++
	} else {
		r.events++
	}
}

// Rows per statement: under both engines' parameter limits (SQLite 32766,
// PostgreSQL 65535), and few distinct statement texts for the statement caches.
const (
	sessionRowsPerInsert = 256
	hitRowsPerInsert     = 512
	touchRowsPerUpdate   = 512
)

// write stores a planned batch: new sessions first (hits refer to them),
// then the updated counts of continued sessions, the hits, and bot counts.
func (c *Collector) write(ctx context.Context, tx *sql.Tx, pl *plan) error {
	d := c.db.Dialect()
	for rows := range slices.Chunk(pl.newSessions, sessionRowsPerInsert) {
		args := make([]any, 0, len(rows)*22)
		for _, r := range rows {
			clicks := "{}"
			if len(r.campaign.ClickIDs) > 0 {
				b, _ := json.Marshal(r.campaign.ClickIDs) // a map of strings always marshals; keys come out sorted
				clicks = string(b)
			}
			args = append(args, r.counter, r.sid, r.uuid, r.started, r.lastActivity, r.landing, r.referrer,
				r.campaign.Source, r.campaign.Medium, r.campaign.Name, r.campaign.Content, r.campaign.Term, clicks,
				string(r.source.Type), r.source.Source, r.source.Medium, r.pageviews, r.events,
				r.device, r.browser, r.os, r.ip)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (counter_id, sid, uuid, started_at, last_activity_at,
			landing_url, referrer, utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids,
			traffic_type, source, medium, pageviews, events, device, browser, os, ip)
			VALUES `+d.Values(len(rows), 22), args...); err != nil {
			return fmt.Errorf("tracker: insert %d sessions: %w", len(rows), err)
		}
	}
	// New sessions change the report rollups of their days.
	started := map[int64][]time.Time{}
	for _, r := range pl.newSessions {
		started[r.counter] = append(started[r.counter], r.started)
	}
	for _, counterID := range slices.Sorted(maps.Keys(started)) { // in order: no deadlock with other markers
		if err := rollup.Mark(ctx, tx, d, counterID, started[counterID]...); err != nil {
			return err
		}
	}

	for keys := range slices.Chunk(pl.touchOrder, touchRowsPerUpdate) {
		args := make([]any, 0, len(keys)*5)
		for _, k := range keys {
			t := pl.touched[k]
			args = append(args, k.counter, k.sid, t.at, t.pageviews, t.events)
		}
		if _, err := tx.ExecContext(ctx, `WITH v (counter_id, sid, at, pageviews, events) AS (VALUES `+
			d.TypedValues(len(keys), "bigint", "text", "timestamptz", "integer", "integer")+`)
			UPDATE sessions SET
				last_activity_at = `+d.Greatest("sessions.last_activity_at", "v.at")+`,
				pageviews = sessions.pageviews + v.pageviews,
				events = sessions.events + v.events
			FROM v
			WHERE sessions.counter_id = v.counter_id AND sessions.sid = v.sid`, args...); err != nil {
			return fmt.Errorf("tracker: update %d sessions: %w", len(keys), err)
		}
	}

	for rows := range slices.Chunk(pl.hits, hitRowsPerInsert) {
		args := make([]any, 0, len(rows)*8)
		for _, h := range rows {
			args = append(args, h.counter, h.sid, h.at, h.typ, h.url, h.title, h.name, h.props)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO hits (counter_id, sid, at, type, url, title, name, props)
			VALUES `+d.Values(len(rows), 8), args...); err != nil {
			return fmt.Errorf("tracker: insert %d hits: %w", len(rows), err)
		}
	}

	for k, n := range pl.bots {
		if _, err := tx.ExecContext(ctx, `INSERT INTO bot_hits (counter_id, day, hits) VALUES ($1, $2, $3)
			ON CONFLICT (counter_id, day) DO UPDATE SET hits = bot_hits.hits + excluded.hits`, k.counter, k.day, n); err != nil {
			return fmt.Errorf("tracker: count bot hits: %w", err)
		}
	}
	return nil
}
