package tracker

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/throughline/throughline/internal/store"
)

// Collector records hits durably, with group commit: a hit is answered only
// after the transaction holding it has committed, and the hits that arrive
// together share one transaction (one fsync).
//
// Visitors are split among a few writers (Config.Writers) by their id. Each
// writer is one goroutine that takes whatever its queue holds (up to
// MaxBatch), decides each hit's session, writes the batch, commits, and only
// then answers every hit in it. While one writer's transaction runs in the
// database, another works out its next batch: on SQLite, whose one
// connection writes, that overlaps the Go work with the database's; on
// PostgreSQL the transactions run side by side. A visitor's hits always go
// to the same writer, and a writer is the only place that decides its
// visitors' sessions, so hits of one visitor that arrive at the same moment
// cannot race each other into two sessions. Each writer keeps its recently
// active visitors' latest sessions in memory (the cache) and reads the
// database on a miss (after a restart, or for a session another process
// started).
//
// A batch only inserts: new sessions and hits. A session's last activity
// and its pageview and event counts are its hits' (see GetSession), so a
// hit that continues a session rewrites no session row.
type Collector struct {
	db      *store.DB
	log     *slog.Logger
	cfg     Config
	ua      uaCache
	m       collectorMetrics
	stmts   insertStatements
	writers []*writer

	mu     sync.RWMutex // guards closed, so no hit is sent on a closed queue
	closed bool
	done   chan struct{} // closed when every writer has finished
}

// writer is one partition of the collector's visitors, and the goroutine
// that writes their hits.
type writer struct {
	c     *Collector
	queue chan *pending

	// Owned by the writer goroutine: each visitor's latest session.
	visitors map[visitorKey]activeSession
	swept    time.Time
	cached   atomic.Int64 // len(visitors), for the metric
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
	// MaxVisitors caps the in-memory cache of visitors' latest sessions
	// (about 100 bytes each, shared out among the writers); past it the
	// longest idle are forgotten.
	MaxVisitors int
	// Writers is how many batches may be in flight at once, each for its
	// own share of the visitors.
	Writers int
	// Registerer receives the collector's metrics; nil means none.
	Registerer prometheus.Registerer
}

const (
	defaultMaxBatch    = 1000
	defaultMaxVisitors = 500_000
	defaultWriters     = 2
	commitTimeout      = 30 * time.Second
)

// ErrClosed is returned for hits that arrive after Close.
var ErrClosed = errors.New("tracker: collector is shutting down")

// ErrRefused is returned for a hit the database refused to store for what
// it holds: sending it again cannot succeed.
var ErrRefused = errors.New("tracker: the database refused the hit")

type sessionKey struct {
	counter int64
	sid     id
}

type visitorKey struct {
	counter int64
	uuid    id
}

type pending struct {
	hit           Hit
	uuid, lastSID id // parsed from hit.UUID and hit.LastSID (zero when it is empty)
	client        client
	done          chan outcome // buffered: the writer never blocks on a gone handler
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
	if cfg.MaxVisitors <= 0 {
		cfg.MaxVisitors = defaultMaxVisitors
	}
	if cfg.Writers <= 0 {
		cfg.Writers = defaultWriters
	}
	c := &Collector{
		db: db, log: cfg.Logger, cfg: cfg,
		done: make(chan struct{}),
		m: collectorMetrics{
			hits: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "throughline_collector_hits_total",
				Help: "Hits received by the collector, by outcome: stored, bot (counted, not stored), refused (by the database, for what the hit holds), failed (not committed).",
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
			}, func() float64 { return float64(c.sum(func(w *writer) int64 { return int64(len(w.queue)) })) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "throughline_collector_cached_visitors",
				Help: "Visitors whose latest session the collector keeps in memory.",
			}, func() float64 { return float64(c.sum(func(w *writer) int64 { return w.cached.Load() })) }))
	}
	var wg sync.WaitGroup
	for range cfg.Writers {
		w := &writer{c: c, queue: make(chan *pending, 4*cfg.MaxBatch), visitors: map[visitorKey]activeSession{}, swept: time.Now()}
		c.writers = append(c.writers, w)
		wg.Go(w.run)
	}
	go func() {
		wg.Wait()
		c.stmts.close()
		close(c.done)
	}()
	return c
}

func (c *Collector) sum(f func(*writer) int64) int64 {
	var n int64
	for _, w := range c.writers {
		n += f(w)
	}
	return n
}

// writerOf is the writer of a visitor: by the random bits of its id (t.js
// makes version 4 UUIDs). Robots' hits, which only count per day, all go to
// the first writer, so one transaction at a time adds to those counts.
func (c *Collector) writerOf(uuid id, bot bool) *writer {
	if bot {
		return c.writers[0]
	}
	return c.writers[binary.LittleEndian.Uint64(uuid[8:])%uint64(len(c.writers))]
}

// Result is what the collector tells the sender about a hit.
type Result struct {
	SID string // the session the hit belongs to; empty for a robot's
	// Robot is why the hit was counted as a robot's and not stored — what
	// its User-Agent says ("Headless Chrome", "HTTP library curl/8.5.0",
	// "no User-Agent"); empty for a person's.
	Robot string
}

// Collect records h and returns once it is committed (or failed). If ctx
// ends first the hit may still be committed; the caller just stops waiting.
func (c *Collector) Collect(ctx context.Context, h Hit) (Result, error) {
	uuid, ok := parseID(h.UUID)
	if !ok {
		return Result{}, &FieldError{Field: "uuid", Message: "must be a lowercase UUID"}
	}
	var lastSID id
	if h.LastSID != "" {
		if lastSID, ok = parseID(h.LastSID); !ok {
			return Result{}, &FieldError{Field: "sid", Message: "must be empty or a lowercase UUID"}
		}
	}
	p := pendings.Get().(*pending)
	*p = pending{hit: h, uuid: uuid, lastSID: lastSID, client: c.ua.parse(h.UserAgent), done: p.done}
	w := c.writerOf(uuid, p.client.Bot)
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		pendings.Put(p)
		return Result{}, ErrClosed
	}
	select {
	case w.queue <- p:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		pendings.Put(p)
		return Result{}, ctx.Err()
	}
	select {
	case o := <-p.done:
		res := Result{SID: o.sid, Robot: p.client.Robot}
		*p = pending{done: p.done}
		pendings.Put(p) // answered: the writer is done with it
		return res, o.err
	case <-ctx.Done():
		// The writer still holds p and will answer it: p is not reused.
		return Result{}, ctx.Err()
	}
}

// pendings recycles the hits' envelopes and their answer channels: the
// collector takes thousands a second.
var pendings = sync.Pool{New: func() any { return &pending{done: make(chan outcome, 1)} }}

// Close stops taking hits, commits the ones already queued, and waits for
// the writer to finish (or for ctx to end).
func (c *Collector) Close(ctx context.Context) error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		for _, w := range c.writers {
			close(w.queue)
		}
	}
	c.mu.Unlock()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tracker: close collector: %w", ctx.Err())
	}
}

func (w *writer) run() {
	batch := make([]*pending, 0, w.c.cfg.MaxBatch)
	for {
		p, ok := <-w.queue
		if !ok {
			return
		}
		batch = w.fill(append(batch[:0], p))
		w.commit(batch)
		clear(batch) // drop references to answered hits
	}
}

// fill adds queued hits to batch without waiting, then (with MaxDelay) waits
// up to MaxDelay for more, until MaxBatch.
func (w *writer) fill(batch []*pending) []*pending {
	c := w.c
	var deadline <-chan time.Time
	for len(batch) < c.cfg.MaxBatch {
		select {
		case p, ok := <-w.queue:
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
		case p, ok := <-w.queue:
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
// once the write commits (an overlay over the collector's map, so a failed
// commit leaves the cache as it was).
type plan struct {
	sids        []string // per pending hit; empty for a bot
	newSessions []sessionRow
	hits        []hitRow
	bots        map[botKey]int
	visitors    map[visitorKey]activeSession
	// What the database said about sessions the cache did not know, read
	// for the whole batch at once; a missing key means "none".
	loadedSIDs     map[sessionKey]activeSession
	loadedVisitors map[visitorKey]activeSession
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

// commit stores batch and answers its hits. A batch the database refuses
// for what a hit holds (store.RefusedData) is stored again in two halves,
// each halved again while refused, until the hits at fault are alone: they
// get ErrRefused and every other hit is stored, so no sender can fail
// another's hits. (Validation keeps out what it can see; this is for what it
// cannot, such as a robot's hit on a counter deleted while the hit was in
// flight.) Any other error — the database down, a timeout — fails the whole
// batch: its hits apart would fail the same way.
func (w *writer) commit(batch []*pending) {
	c := w.c
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	pl, err := w.store(ctx, batch)
	cancel()
	c.m.batch.Observe(float64(len(batch)))
	c.m.commit.Observe(time.Since(start).Seconds())
	refused := store.RefusedData(err)
	switch {
	case err == nil:
		w.answer(batch, pl)
	case refused && len(batch) > 1:
		c.log.Warn("collector: the database refused a batch for what a hit holds; storing its halves apart", "hits", len(batch), "err", err)
		half := len(batch) / 2
		w.commit(batch[:half]) // in arrival order: the second half's sessions follow the first's
		w.commit(batch[half:])
	case refused:
		c.log.Warn("collector: the database refused a hit", "counter", batch[0].hit.Counter.ID, "err", err)
		c.m.hits.WithLabelValues("refused").Inc()
		batch[0].done <- outcome{err: fmt.Errorf("%w: %w", ErrRefused, err)}
	default:
		c.log.Error("collector: batch not committed; its hits were answered with an error", "hits", len(batch), "err", err)
		c.m.hits.WithLabelValues("failed").Add(float64(len(batch)))
		for _, p := range batch {
			p.done <- outcome{err: err}
		}
	}
}

// answer tells the senders of a committed batch their sessions, and makes
// the batch's sessions the cache's.
func (w *writer) answer(batch []*pending, pl *plan) {
	c := w.c
	for k, s := range pl.visitors {
		w.visitors[k] = s
	}
	c.m.sessions.Add(float64(len(pl.newSessions)))
	bots := 0
	for i, p := range batch {
		if p.client.Bot {
			bots++
		}
		p.done <- outcome{sid: pl.sids[i]} // p belongs to its sender again
	}
	c.m.hits.WithLabelValues("bot").Add(float64(bots))
	c.m.hits.WithLabelValues("stored").Add(float64(len(batch) - bots))
	w.sweep(time.Now())
	w.cached.Store(int64(len(w.visitors)))
}

// store plans a batch and writes it in one transaction. The plan reads what
// it needs through the read pool, before the transaction: on SQLite the one
// writing connection is then busy only with writing, and the other writers'
// transactions run while this one plans. (A writer's own batches commit
// one after the other, so the reads see all of its earlier ones.) The
// transaction has a connection of its own: PostgreSQL's COPY needs the
// connection, not just the transaction.
func (w *writer) store(ctx context.Context, batch []*pending) (*plan, error) {
	c := w.c
	if c.db.Dialect() == store.SQLite {
		if err := c.stmts.prepare(ctx, c.db.Writer()); err != nil {
			return nil, err
		}
	}
	pl, err := w.plan(ctx, batch)
	if err != nil {
		return nil, err
	}
	conn, err := c.db.Writer().Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracker: writer connection: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("tracker: begin: %w", err)
	}
	defer tx.Rollback()
	if err := w.write(ctx, conn, tx, pl); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("tracker: commit: %w", err)
	}
	return pl, nil
}

// plan decides the session of every hit in the batch, in arrival order.
func (w *writer) plan(ctx context.Context, batch []*pending) (*plan, error) {
	pl := &plan{
		sids:     make([]string, len(batch)),
		bots:     map[botKey]int{},
		visitors: map[visitorKey]activeSession{},
		hits:     make([]hitRow, 0, len(batch)),
	}
	if err := w.prefetch(ctx, pl, batch); err != nil {
		return nil, err
	}
	for i, p := range batch {
		h := &p.hit
		if p.client.Bot {
			day := h.At.In(h.Counter.Location()).Format(time.DateOnly)
			pl.bots[botKey{h.Counter.ID, day}]++
			continue
		}
		rules := RulesOf(h.Counter)
		vk := visitorKey{h.Counter.ID, p.uuid}
		s, ok := w.candidate(pl, p, vk, rules)
		if ok {
			s.last = max(s.last, h.At.UnixNano())
			s.timeout = int64(rules.Timeout)
			sk := sessionKey{vk.counter, s.sid}
			if _, loaded := pl.loadedSIDs[sk]; loaded {
				pl.loadedSIDs[sk] = s // a later hit of the batch may name it too
			}
		} else {
			row := newSessionRow(h, p.client)
			pl.newSessions = append(pl.newSessions, row)
			s = activeSession{sid: row.sid, uuid: p.uuid, last: h.At.UnixNano(), campaign: campaignHash(h.Campaign), timeout: int64(rules.Timeout)}
		}
		pl.visitors[vk] = s
		sid := s.sid.String()
		pl.sids[i] = sid
		pl.hits = append(pl.hits, hitRow{h.Counter.ID, sid, h.At, h.Type, h.URL.String(), h.Title, h.Name, h.Props})
	}
	return pl, nil
}

// candidate returns the session hit p continues, if any. It tries the
// session the browser named, then the visitor's latest session (the
// browser may have lost its sid, or sent hits before it learned it).
func (w *writer) candidate(pl *plan, p *pending, vk visitorKey, rules Rules) (activeSession, bool) {
	h := &p.hit
	var tried *id
	if h.LastSID != "" {
		if s, ok := w.bySID(pl, vk, p.lastSID); ok {
			if rules.decide(&s, p.uuid, h.At, h.Campaign) == continued {
				return s, true
			}
			tried = &s.sid
		}
	}
	s, ok := w.byVisitor(pl, vk)
	if !ok || (tried != nil && s.sid == *tried) {
		return s, false
	}
	return s, rules.decide(&s, p.uuid, h.At, h.Campaign) == continued
}

// bySID finds the session sid, which the visitor's browser named: usually
// the visitor's latest, in memory — as this batch has left it, or as the
// cache knew it before (another tab may have moved the visitor on in this
// batch); else what prefetch read.
func (w *writer) bySID(pl *plan, vk visitorKey, sid id) (activeSession, bool) {
	if s, ok := pl.visitors[vk]; ok && s.sid == sid {
		return s, true
	}
	if s, ok := w.visitors[vk]; ok && s.sid == sid {
		return s, true
	}
	s, ok := pl.loadedSIDs[sessionKey{vk.counter, sid}]
	return s, ok
}

// byVisitor finds the visitor's latest session: as this batch has left it,
// else as the cache knows it, else what prefetch read.
func (w *writer) byVisitor(pl *plan, vk visitorKey) (activeSession, bool) {
	if s, ok := pl.visitors[vk]; ok {
		return s, true
	}
	if s, ok := w.visitors[vk]; ok {
		return s, true
	}
	s, ok := pl.loadedVisitors[vk]
	return s, ok
}

// activeColumns are what the rules need of a stored session, with its
// last activity: the time of its latest hit.
const activeColumns = `s.sid, s.uuid, s.started_at, s.utm_source, s.utm_medium, s.utm_campaign, s.utm_content, s.utm_term, s.click_ids,
	(SELECT max(h.at) FROM hits h WHERE h.counter_id = s.counter_id AND h.sid = s.sid)`

// prefetchChunk caps an IN list: one query per chunk, far under both
// engines' parameter limits.
const prefetchChunk = 500

// prefetch reads, in a few queries for the whole batch, the sessions the
// cache does not know: those the hits name by sid, and each new visitor's
// latest. One query per hit would cost a database round trip each, which on
// PostgreSQL is most of a batch's time after a restart or for new visitors.
func (w *writer) prefetch(ctx context.Context, pl *plan, batch []*pending) error {
	sids := map[int64][]string{}
	uuids := map[int64][]string{}
	pl.loadedSIDs = map[sessionKey]activeSession{}
	pl.loadedVisitors = map[visitorKey]activeSession{}
	seenSIDs := map[sessionKey]bool{}
	seenVisitors := map[visitorKey]bool{}
	for _, p := range batch {
		if p.client.Bot {
			continue
		}
		vk := visitorKey{p.hit.Counter.ID, p.uuid}
		cached, known := w.visitors[vk]
		if sk := (sessionKey{vk.counter, p.lastSID}); p.hit.LastSID != "" && (!known || cached.sid != p.lastSID) && !seenSIDs[sk] {
			seenSIDs[sk] = true
			sids[sk.counter] = append(sids[sk.counter], p.hit.LastSID)
		}
		if !known && !seenVisitors[vk] {
			seenVisitors[vk] = true
			uuids[vk.counter] = append(uuids[vk.counter], p.hit.UUID)
		}
	}
	db := w.c.db
	d := db.Dialect()
	for counterID, list := range sids {
		for chunk := range slices.Chunk(list, prefetchChunk) {
			query, args := sessionsBySIDQuery(d, counterID, chunk)
			err := queryActive(ctx, db.Reader(), query, args, func(s activeSession) {
				pl.loadedSIDs[sessionKey{counterID, s.sid}] = s
			})
			if err != nil {
				return err
			}
		}
	}
	for counterID, list := range uuids {
		for chunk := range slices.Chunk(list, prefetchChunk) {
			query, args := latestSessionsQuery(d, counterID, chunk)
			err := queryActive(ctx, db.Reader(), query, args, func(s activeSession) {
				pl.loadedVisitors[visitorKey{counterID, s.uuid}] = s
			})
			if err != nil {
				return err
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
		return `SELECT ` + activeColumns + ` FROM sessions s WHERE s.counter_id = $1 AND s.sid = ANY($2)`, []any{counterID, sids}
	}
	n := len(sids)
	return `SELECT ` + activeColumns + ` FROM sessions s
		WHERE s.sid IN (` + d.Params(1, n) + `) AND s.counter_id = ` + d.Param(n+1), append(anys(sids), counterID)
}

// latestSessionsQuery reads each visitor's latest session, through the
// visitor index (counter_id, uuid, started_at) on both engines.
func latestSessionsQuery(d store.Dialect, counterID int64, uuids []string) (string, []any) {
	if d == store.Postgres {
		// One index probe per visitor, whatever the table's statistics say:
		// on a young table (no statistics yet) a plain uuid = ANY($2) was
		// planned as a scan and took 80 ms a batch.
		return `SELECT ` + activeColumns + ` FROM unnest($2::text[]) AS v (uuid)
			CROSS JOIN LATERAL (
				SELECT * FROM sessions
				WHERE counter_id = $1 AND uuid = v.uuid
				ORDER BY started_at DESC LIMIT 1) s`, []any{counterID, uuids}
	}
	// The sid through the index, then the row by primary key: joined on
	// uuid instead, SQLite's planner walks the primary key, not the index.
	n := len(uuids)
	return `WITH v (uuid) AS (VALUES ` + d.TypedValues(n, "text") + `)
		SELECT ` + activeColumns + ` FROM v JOIN sessions s
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

// queryActive reads the sessions a query returns (activeColumns).
func queryActive(ctx context.Context, db *sql.DB, query string, args []any, each func(activeSession)) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("tracker: read sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sid, uuid, clicks string
		var started time.Time
		var last sql.Null[time.Time]
		var camp Campaign
		if err := rows.Scan(&sid, &uuid, &started, &camp.Source, &camp.Medium, &camp.Name, &camp.Content, &camp.Term, &clicks, &last); err != nil {
			return fmt.Errorf("tracker: read session: %w", err)
		}
		if err := json.Unmarshal([]byte(clicks), &camp.ClickIDs); err != nil {
			return fmt.Errorf("tracker: session %s: click_ids: %w", sid, err)
		}
		s := activeSession{last: started.UnixNano(), campaign: campaignHash(camp)}
		var ok1, ok2 bool
		s.sid, ok1 = parseID(sid)
		s.uuid, ok2 = parseID(uuid)
		if !ok1 || !ok2 {
			// Not an id this server issued or t.js made: such a session
			// cannot be continued, and a new one starts.
			continue
		}
		if last.Valid {
			s.last = max(s.last, last.V.UnixNano())
		}
		each(s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("tracker: read sessions: %w", err)
	}
	return nil
}

// sweep forgets visitors whose session can no longer be continued, at most
// once a minute, and the longest idle when the cache outgrows its cap
// (they are read from the database if they come back).
func (w *writer) sweep(now time.Time) {
	c := w.c
	limit := max(1, c.cfg.MaxVisitors/len(c.writers))
	over := len(w.visitors) > limit
	if now.Sub(w.swept) < time.Minute && !over {
		return
	}
	w.swept = now
	for k, s := range w.visitors {
		if now.UnixNano()-s.last > s.timeout+int64(time.Minute) {
			delete(w.visitors, k)
		}
	}
	if len(w.visitors) <= limit {
		return
	}
	// Keep the most recently active seven eighths of the cap, so this
	// sort runs once in a while, not on every batch.
	keep := max(1, limit-limit/8)
	lasts := make([]int64, 0, len(w.visitors))
	for _, s := range w.visitors {
		lasts = append(lasts, s.last)
	}
	slices.Sort(lasts)
	cutoff := lasts[len(lasts)-keep]
	for k, s := range w.visitors {
		if s.last < cutoff {
			delete(w.visitors, k)
		}
	}
	c.log.Info("collector: visitor cache at its cap; forgot the longest idle", "cap", limit, "kept", len(w.visitors))
}
