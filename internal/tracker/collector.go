package tracker

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/throughline/throughline/internal/store"
)

// Collector records hits durably, with group commit: a hit is answered only
// after the transaction holding it has committed, and the hits that arrive
// together share one transaction (one fsync). One goroutine — the writer —
// takes whatever is queued (up to MaxBatch), decides each hit's session,
// writes the batch, commits, and only then answers every hit in it.
//
// The writer is also the only place that decides sessions, so hits of one
// visitor that arrive at the same moment cannot race each other into two
// sessions. It keeps the recently active sessions in memory (the cache) and
// reads the database on a miss (after a restart, or for a session another
// process started).
type Collector struct {
	db    *store.DB
	log   *slog.Logger
	cfg   Config
	queue chan *pending
	ua    uaCache
	m     collectorMetrics

	mu     sync.RWMutex // guards closed, so no hit is sent on a closed queue
	closed bool
	done   chan struct{}

	// Owned by the writer goroutine.
	sessions map[sessionKey]*activeSession
	visitors map[visitorKey]*activeSession // each visitor's latest session
	swept    time.Time
}

// Config tunes the collector; zero values mean the defaults.
type Config struct {
	Logger *slog.Logger
	// MaxBatch caps the hits in one transaction.
	MaxBatch int
	// MaxDelay lets a batch wait for more hits before it commits. Zero
	// commits as soon as the writer is free; under load batches still grow,
	// because hits queue up while the previous commit runs.
	MaxDelay time.Duration
	// MaxActiveSessions caps the in-memory session cache.
	MaxActiveSessions int
	// Registerer receives the collector's metrics; nil means none.
	Registerer prometheus.Registerer
}

const (
	defaultMaxBatch          = 1000
	defaultMaxActiveSessions = 200_000
	commitTimeout            = 30 * time.Second
)

// ErrClosed is returned for hits that arrive after Close.
var ErrClosed = errors.New("tracker: collector is shutting down")

type sessionKey struct {
	counter int64
	sid     string
}

type visitorKey struct {
	counter int64
	uuid    string
}

type pending struct {
	hit    Hit
	client client
	done   chan outcome // buffered: the writer never blocks on a gone handler
}

type outcome struct {
	sid string
	err error
}

type collectorMetrics struct {
	hits     *prometheus.CounterVec
	sessions prometheus.Counter
	batch    prometheus.Histogram
	commit   prometheus.Histogram
}

// NewCollector starts the writer. Close it to flush and stop.
func NewCollector(db *store.DB, cfg Config) *Collector {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	if cfg.MaxActiveSessions <= 0 {
		cfg.MaxActiveSessions = defaultMaxActiveSessions
	}
	c := &Collector{
		db: db, log: cfg.Logger, cfg: cfg,
		queue:    make(chan *pending, 4*cfg.MaxBatch),
		done:     make(chan struct{}),
		sessions: map[sessionKey]*activeSession{},
		visitors: map[visitorKey]*activeSession{},
		swept:    time.Now(),
		m: collectorMetrics{
			hits: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "throughline_collector_hits_total",
				Help: "Hits received by the collector, by outcome: stored, bot (counted, not stored), failed (not committed).",
			}, []string{"outcome"}),
			sessions: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "throughline_collector_sessions_started_total",
				Help: "Sessions started by the collector.",
			}),
			batch: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name:    "throughline_collector_batch_hits",
				Help:    "Hits per group-commit transaction.",
				Buckets: prometheus.ExponentialBuckets(1, 2, 12),
			}),
			commit: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name:    "throughline_collector_commit_seconds",
				Help:    "Time to decide sessions for, write and commit one batch.",
				Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, 1},
			}),
		},
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(c.m.hits, c.m.sessions, c.m.batch, c.m.commit,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "throughline_collector_queue_hits",
				Help: "Hits waiting for the writer.",
			}, func() float64 { return float64(len(c.queue)) }))
	}
	go c.run()
	return c
}

// Result is what the collector tells the sender about a hit.
type Result struct {
	SID string // the session the hit belongs to; empty for a bot
	Bot bool   // the hit was counted as a robot's and not stored
}

// Collect records h and returns once it is committed (or failed). If ctx
// ends first the hit may still be committed; the caller just stops waiting.
func (c *Collector) Collect(ctx context.Context, h Hit) (Result, error) {
	p := &pending{hit: h, client: c.ua.parse(h.UserAgent), done: make(chan outcome, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return Result{}, ErrClosed
	}
	select {
	case c.queue <- p:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return Result{}, ctx.Err()
	}
	select {
	case o := <-p.done:
		return Result{SID: o.sid, Bot: p.client.Bot}, o.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Close stops taking hits, commits the ones already queued, and waits for
// the writer to finish (or for ctx to end).
func (c *Collector) Close(ctx context.Context) error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.queue)
	}
	c.mu.Unlock()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tracker: close collector: %w", ctx.Err())
	}
}

func (c *Collector) run() {
	defer close(c.done)
	batch := make([]*pending, 0, c.cfg.MaxBatch)
	for {
		p, ok := <-c.queue
		if !ok {
			return
		}
		batch = c.fill(append(batch[:0], p))
		c.commit(batch)
		clear(batch) // drop references to answered hits
	}
}

// fill adds queued hits to batch without waiting, then (with MaxDelay) waits
// up to MaxDelay for more, until MaxBatch.
func (c *Collector) fill(batch []*pending) []*pending {
	var deadline <-chan time.Time
	for len(batch) < c.cfg.MaxBatch {
		select {
		case p, ok := <-c.queue:
			if !ok {
				return batch
			}
			batch = append(batch, p)
			continue
		default:
		}
		if c.cfg.MaxDelay <= 0 {
			return batch
		}
		if deadline == nil {
			t := time.NewTimer(c.cfg.MaxDelay)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case p, ok := <-c.queue:
			if !ok {
				return batch
			}
			batch = append(batch, p)
		case <-deadline:
			return batch
		}
	}
	return batch
}

// plan is a batch worked out: what to write, and the cache as it will be
// once the write commits (an overlay over the collector's maps, so a failed
// commit leaves the cache as it was).
type plan struct {
	sids        []string // per pending hit
	newSessions []*sessionRow
	touched     map[sessionKey]*touch
	touchOrder  []sessionKey
	hits        []hitRow
	bots        map[botKey]int
	sessions    map[sessionKey]*activeSession
	visitors    map[visitorKey]*activeSession
	// What the database said about sessions and visitors the cache did not
	// know, read for the whole batch at once; nil values mean "none".
	loadedSIDs     map[sessionKey]*activeSession
	loadedVisitors map[visitorKey]*activeSession
}

type touch struct {
	at                time.Time
	pageviews, events int
}

type botKey struct {
	counter int64
	day     string
}

type hitRow struct {
	counter                      int64
	sid                          string
	at                           time.Time
	typ, url, title, name, props string
}

func (c *Collector) commit(batch []*pending) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	var pl *plan
	err := c.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if pl, err = c.plan(ctx, tx, batch); err != nil {
			return err
		}
		return c.write(ctx, tx, pl)
	})
	c.m.batch.Observe(float64(len(batch)))
	c.m.commit.Observe(time.Since(start).Seconds())
	if err != nil {
		c.log.Error("collector: batch not committed; its hits were answered with an error", "hits", len(batch), "err", err)
		c.m.hits.WithLabelValues("failed").Add(float64(len(batch)))
		for _, p := range batch {
			p.done <- outcome{err: err}
		}
		return
	}
	for k, s := range pl.sessions {
		c.sessions[k] = s
	}
	for k, s := range pl.visitors {
		c.visitors[k] = s
	}
	c.m.sessions.Add(float64(len(pl.newSessions)))
	for i, p := range batch {
		if p.client.Bot {
			c.m.hits.WithLabelValues("bot").Inc()
		} else {
			c.m.hits.WithLabelValues("stored").Inc()
		}
		p.done <- outcome{sid: pl.sids[i]}
	}
	c.sweep(time.Now())
}

// plan decides the session of every hit in the batch, in arrival order.
func (c *Collector) plan(ctx context.Context, tx *sql.Tx, batch []*pending) (*plan, error) {
	pl := &plan{
		sids:     make([]string, len(batch)),
		touched:  map[sessionKey]*touch{},
		bots:     map[botKey]int{},
		sessions: map[sessionKey]*activeSession{},
		visitors: map[visitorKey]*activeSession{},
	}
	if err := c.prefetch(ctx, tx, pl, batch); err != nil {
		return nil, err
	}
	newRows := map[sessionKey]*sessionRow{}
	for i, p := range batch {
		h := p.hit
		if p.client.Bot {
			day := h.At.In(h.Counter.Location()).Format(time.DateOnly)
			pl.bots[botKey{h.Counter.ID, day}]++
			continue
		}
		rules := RulesOf(h.Counter)
		s, err := c.candidate(ctx, tx, pl, h, rules)
		if err != nil {
			return nil, err
		}
		key := sessionKey{h.Counter.ID, ""}
		if s != nil {
			key.sid = s.sid
			// Copy on write: the cache changes only if the commit succeeds.
			s = &activeSession{sid: s.sid, uuid: s.uuid, lastActivity: maxTime(s.lastActivity, h.At),
				campaignKey: s.campaignKey, timeout: rules.Timeout}
			if row, ok := newRows[key]; ok {
				row.lastActivity = s.lastActivity
				row.count(h.Type)
			} else {
				t := pl.touched[key]
				if t == nil {
					t = &touch{}
					pl.touched[key] = t
					pl.touchOrder = append(pl.touchOrder, key)
				}
				t.at = maxTime(t.at, h.At)
				t.count(h.Type)
			}
		} else {
			row := newSessionRow(h, p.client)
			key.sid = row.sid
			newRows[key] = row
			pl.newSessions = append(pl.newSessions, row)
			s = &activeSession{sid: row.sid, uuid: h.UUID, lastActivity: h.At, campaignKey: h.Campaign.Key(), timeout: rules.Timeout}
		}
		pl.sessions[key] = s
		pl.visitors[visitorKey{h.Counter.ID, h.UUID}] = s
		pl.sids[i] = s.sid
		pl.hits = append(pl.hits, hitRow{h.Counter.ID, s.sid, h.At, h.Type, h.URL.String(), h.Title, h.Name, h.Props})
	}
	return pl, nil
}

// candidate returns the session hit h continues, or nil for a new one. It
// tries the session the browser named, then the visitor's latest session
// (the browser may have lost its sid, or sent hits before it learned it).
func (c *Collector) candidate(ctx context.Context, tx *sql.Tx, pl *plan, h Hit, rules Rules) (*activeSession, error) {
	var tried *activeSession
	if h.LastSID != "" {
		s, err := c.bySID(ctx, tx, pl, sessionKey{h.Counter.ID, h.LastSID})
		if err != nil {
			return nil, err
		}
		if rules.decide(s, h.UUID, h.At, h.Campaign) == continued {
			return s, nil
		}
		tried = s
	}
	s, err := c.byVisitor(ctx, tx, pl, visitorKey{h.Counter.ID, h.UUID})
	if err != nil || s == nil || (tried != nil && s.sid == tried.sid) {
		return nil, err
	}
	if rules.decide(s, h.UUID, h.At, h.Campaign) == continued {
		return s, nil
	}
	return nil, nil
}

func (c *Collector) bySID(ctx context.Context, tx *sql.Tx, pl *plan, k sessionKey) (*activeSession, error) {
	if s, ok := pl.sessions[k]; ok {
		return s, nil
	}
	if s, ok := c.sessions[k]; ok {
		return s, nil
	}
	if s, ok := pl.loadedSIDs[k]; ok {
		return s, nil
	}
	return scanActive(tx.QueryRowContext(ctx, `SELECT `+activeColumns+` FROM sessions WHERE counter_id = $1 AND sid = $2`, k.counter, k.sid))
}

func (c *Collector) byVisitor(ctx context.Context, tx *sql.Tx, pl *plan, k visitorKey) (*activeSession, error) {
	if s, ok := pl.visitors[k]; ok {
		return s, nil
	}
	if s, ok := c.visitors[k]; ok {
		return s, nil
	}
	if s, ok := pl.loadedVisitors[k]; ok {
		return s, nil
	}
	return scanActive(tx.QueryRowContext(ctx, `SELECT `+activeColumns+` FROM sessions
		WHERE counter_id = $1 AND uuid = $2 ORDER BY started_at DESC LIMIT 1`, k.counter, k.uuid))
}

const activeColumns = `sid, uuid, last_activity_at, utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids`

// prefetchChunk caps an IN list: one query per chunk, far under both
// engines' parameter limits.
const prefetchChunk = 500

// prefetch reads, in a few queries for the whole batch, the sessions the
// cache does not know: those the hits name by sid, and each new visitor's
// latest. One query per hit would cost a database round trip each, which on
// PostgreSQL is most of a batch's time after a restart or for new visitors.
func (c *Collector) prefetch(ctx context.Context, tx *sql.Tx, pl *plan, batch []*pending) error {
	sids := map[int64][]string{}
	uuids := map[int64][]string{}
	pl.loadedSIDs = map[sessionKey]*activeSession{}
	pl.loadedVisitors = map[visitorKey]*activeSession{}
	for _, p := range batch {
		h := p.hit
		if p.client.Bot {
			continue
		}
		if k := (sessionKey{h.Counter.ID, h.LastSID}); h.LastSID != "" {
			if _, ok := c.sessions[k]; !ok {
				if _, ok := pl.loadedSIDs[k]; !ok {
					pl.loadedSIDs[k] = nil
					sids[k.counter] = append(sids[k.counter], k.sid)
				}
			}
		}
		k := visitorKey{h.Counter.ID, h.UUID}
		if _, ok := c.visitors[k]; !ok {
			if _, ok := pl.loadedVisitors[k]; !ok {
				pl.loadedVisitors[k] = nil
				uuids[k.counter] = append(uuids[k.counter], k.uuid)
			}
		}
	}
	d := c.db.Dialect()
	for counterID, list := range sids {
		for chunk := range slices.Chunk(list, prefetchChunk) {
			query, args := sessionsBySIDQuery(d, counterID, chunk)
			found, err := queryActive(ctx, tx, query, args)
			if err != nil {
				return err
			}
			for _, s := range found {
				pl.loadedSIDs[sessionKey{counterID, s.sid}] = s
			}
		}
	}
	for counterID, list := range uuids {
		for chunk := range slices.Chunk(list, prefetchChunk) {
			query, args := latestSessionsQuery(d, counterID, chunk)
			found, err := queryActive(ctx, tx, query, args)
			if err != nil {
				return err
			}
			for _, s := range found {
				pl.loadedVisitors[visitorKey{counterID, s.uuid}] = s
			}
		}
	}
	return nil
}

// sessionsBySIDQuery reads a counter's sessions by sid. PostgreSQL takes the
// list as one array parameter, so the statement text — and its cached plan —
// is the same for every batch; SQLite has no arrays and gets an IN list.
func sessionsBySIDQuery(d store.Dialect, counterID int64, sids []string) (string, []any) {
	if d == store.Postgres {
		return `SELECT ` + activeColumns + ` FROM sessions WHERE counter_id = $1 AND sid = ANY($2)`, []any{counterID, sids}
	}
	n := len(sids)
	return `SELECT ` + activeColumns + ` FROM sessions
		WHERE sid IN (` + d.Params(1, n) + `) AND counter_id = ` + d.Param(n+1), append(anys(sids), counterID)
}

// latestSessionsQuery reads each visitor's latest session, through the
// visitor index (counter_id, uuid, started_at) on both engines.
func latestSessionsQuery(d store.Dialect, counterID int64, uuids []string) (string, []any) {
	if d == store.Postgres {
		// One index probe per visitor, whatever the table's statistics say:
		// on a young table (no statistics yet) a plain uuid = ANY($2) was
		// planned as a scan and took 80 ms a batch.
		return `SELECT ` + prefixed("s.", activeColumns) + ` FROM unnest($2::text[]) AS v (uuid)
			CROSS JOIN LATERAL (
				SELECT ` + activeColumns + ` FROM sessions
				WHERE counter_id = $1 AND uuid = v.uuid
				ORDER BY started_at DESC LIMIT 1) s`, []any{counterID, uuids}
	}
	// The sid through the index, then the row by primary key: joined on
	// uuid instead, SQLite's planner walks the primary key, not the index.
	n := len(uuids)
	return `WITH v (uuid) AS (VALUES ` + d.TypedValues(n, "text") + `)
		SELECT ` + prefixed("s.", activeColumns) + ` FROM v JOIN sessions s
		  ON s.counter_id = ` + d.Param(n+1) + ` AND s.sid = (
		     SELECT l.sid FROM sessions l
		     WHERE l.counter_id = ` + d.Param(n+2) + ` AND l.uuid = v.uuid
		     ORDER BY l.started_at DESC LIMIT 1)`, append(anys(uuids), counterID, counterID)
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// prefixed qualifies each of a comma-separated list of columns.
func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// queryActive reads the sessions a query returns.
func queryActive(ctx context.Context, tx *sql.Tx, query string, args []any) ([]*activeSession, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("tracker: read sessions: %w", err)
	}
	defer rows.Close()
	var found []*activeSession
	for rows.Next() {
		s, err := scanActive(rows)
		if err != nil {
			return nil, err
		}
		found = append(found, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tracker: read sessions: %w", err)
	}
	return found, nil
}

func scanActive(row interface{ Scan(...any) error }) (*activeSession, error) {
	var s activeSession
	var camp Campaign
	var clicks string
	err := row.Scan(&s.sid, &s.uuid, &s.lastActivity, &camp.Source, &camp.Medium, &camp.Name, &camp.Content, &camp.Term, &clicks)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tracker: read session: %w", err)
	}
	if err := json.Unmarshal([]byte(clicks), &camp.ClickIDs); err != nil {
		return nil, fmt.Errorf("tracker: session %s: click_ids: %w", s.sid, err)
	}
	s.campaignKey = camp.Key()
	return &s, nil
}

func (t *touch) count(typ string) {
	if typ == Pageview {
		t.pageviews++
	} else {
		t.events++
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sweep forgets sessions that can no longer be continued, at most once a
// minute, and starts over if the cache outgrows its cap (then the database
// answers until it warms up again).
func (c *Collector) sweep(now time.Time) {
	if now.Sub(c.swept) < time.Minute && len(c.sessions) <= c.cfg.MaxActiveSessions {
		return
	}
	c.swept = now
	if len(c.sessions) > c.cfg.MaxActiveSessions {
		c.log.Warn("collector: session cache over its cap; starting over", "sessions", len(c.sessions), "cap", c.cfg.MaxActiveSessions)
		c.sessions = map[sessionKey]*activeSession{}
		c.visitors = map[visitorKey]*activeSession{}
		return
	}
	for k, s := range c.sessions {
		if now.Sub(s.lastActivity) > s.timeout+time.Minute {
			delete(c.sessions, k)
		}
	}
	for k, s := range c.visitors {
		if now.Sub(s.lastActivity) > s.timeout+time.Minute {
			delete(c.visitors, k)
		}
	}
}
