package tracker

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/throughline/throughline/internal/rollup"
	"github.com/throughline/throughline/internal/store"
)

// sessionRow is a new session as it is inserted.
type sessionRow struct {
	counter                 int64
	sid                     id
	uuid                    string
	started                 time.Time
	landing, referrer       string
	campaign                Campaign
	source                  Source
	device, browser, os, ip string
}

func newSessionRow(h *Hit, cl client) sessionRow {
	return sessionRow{
		counter: h.Counter.ID, sid: newSessionID(h.At), uuid: h.UUID,
		started: h.At,
		landing: h.URL.String(), referrer: h.Referrer,
		campaign: h.Campaign,
		source:   Classify(h.Campaign, h.Referrer, h.URL.Hostname(), h.Counter.Domain),
		device:   cl.Device, browser: cl.Browser, os: cl.OS,
		ip: anonymizeIP(h.IP),
	}
}

// The two tables a batch inserts into, and their columns in the order the
// rows below give them.
var (
	sessionsTable = table{name: "sessions", columns: []string{"counter_id", "sid", "uuid", "started_at",
		"landing_url", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "click_ids",
		"traffic_type", "source", "medium", "device", "browser", "os", "ip"}}
	hitsTable = table{name: "hits", columns: []string{"counter_id", "sid", "at", "type", "url", "title", "name", "props"}}
)

func (r *sessionRow) values(dst []any) []any {
	clicks := "{}"
	if len(r.campaign.ClickIDs) > 0 {
		b, _ := json.Marshal(r.campaign.ClickIDs) // a map of strings always marshals; keys come out sorted
		clicks = string(b)
	}
	return append(dst, r.counter, r.sid.String(), r.uuid, r.started,
		r.landing, r.referrer, r.campaign.Source, r.campaign.Medium, r.campaign.Name, r.campaign.Content, r.campaign.Term, clicks,
		string(r.source.Type), r.source.Source, r.source.Medium, r.device, r.browser, r.os, r.ip)
}

func (h *hitRow) values(dst []any) []any {
	return append(dst, h.counter, h.sid, h.at, h.typ, h.url, h.title, h.name, h.props)
}

// write stores a planned batch: the new sessions, the hits, the days whose
// report rollups they change, and bot counts.
func (w *writer) write(ctx context.Context, conn *sql.Conn, tx *sql.Tx, pl *plan) error {
	c := w.c
	d := c.db.Dialect()
	err := c.insert(ctx, conn, tx, &sessionsTable, len(pl.newSessions), func(i int, dst []any) []any {
		return pl.newSessions[i].values(dst)
	})
	if err != nil {
		return err
	}
	if err := c.insert(ctx, conn, tx, &hitsTable, len(pl.hits), func(i int, dst []any) []any {
		return pl.hits[i].values(dst)
	}); err != nil {
		return err
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
	for k, n := range pl.bots {
		if _, err := tx.ExecContext(ctx, `INSERT INTO bot_hits (counter_id, day, hits) VALUES ($1, $2, $3)
			ON CONFLICT (counter_id, day) DO UPDATE SET hits = bot_hits.hits + excluded.hits`, k.counter, k.day, n); err != nil {
			return fmt.Errorf("tracker: count bot hits: %w", err)
		}
	}
	return nil
}

// table is a table the collector inserts into.
type table struct {
	name    string
	columns []string
}

// insert writes n rows into t inside tx, which was begun on conn: with COPY
// on PostgreSQL, which parses and plans nothing per batch; with prepared
// multi-row INSERTs on SQLite (see insertStatements).
func (c *Collector) insert(ctx context.Context, conn *sql.Conn, tx *sql.Tx, t *table, n int, row func(i int, dst []any) []any) error {
	if n == 0 {
		return nil
	}
	if c.db.Dialect() == store.Postgres {
		buf := make([]any, 0, len(t.columns))
		i := 0
		return store.Copy(ctx, conn, t.name, t.columns, pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			i++
			return row(i-1, buf[:0]), nil
		}))
	}
	args := make([]any, 0, len(t.columns)*min(n, insertSizes[len(insertSizes)-1]))
	for i := 0; i < n; {
		size := insertSize(n - i)
		stmt := c.stmts.get(t, size)
		args = args[:0]
		for j := i; j < i+size; j++ {
			args = row(j, args)
		}
		if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("tracker: insert %d rows into %s: %w", size, t.name, err)
		}
		i += size
	}
	return nil
}

// insertSizes are the rows per prepared INSERT on SQLite: a batch of n rows
// is written by the largest that fit, so a handful of statements, each
// parsed once for the life of the process, write any batch. (Preparing a
// new multi-row INSERT for each batch's own size cost SQLite's parser a
// tenth of a commit.)
var insertSizes = []int{1, 4, 16, 64, 256}

func insertSize(n int) int {
	for i := len(insertSizes) - 1; i > 0; i-- {
		if insertSizes[i] <= n {
			return insertSizes[i]
		}
	}
	return 1
}

// insertStatements are the collector's prepared INSERTs on SQLite, one per
// table and size. They are prepared on the writer pool, whose one
// connection every transaction runs on, so Tx.StmtContext reuses them; and
// they are all prepared before a batch takes that connection (preparing one
// while a transaction holds it would wait for it forever). The writers
// share them: the first batch of any writer prepares them, under mu.
type insertStatements struct {
	mu    sync.Mutex
	stmts map[statementKey]*sql.Stmt // written once, under mu; read after prepare
}

type statementKey struct {
	table string
	rows  int
}

// prepare makes the statements on first use.
func (s *insertStatements) prepare(ctx context.Context, db *sql.DB) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stmts != nil {
		return nil
	}
	stmts := map[statementKey]*sql.Stmt{}
	for _, t := range []*table{&sessionsTable, &hitsTable} {
		for _, rows := range insertSizes {
			// OR FAIL instead of the default ABORT: on a failed constraint
			// the statement stops without undoing its earlier rows, so
			// SQLite keeps no statement journal (a copy of every page a
			// multi-row INSERT touches); the whole transaction is rolled
			// back on any error anyway.
			st, err := db.PrepareContext(ctx, `INSERT OR FAIL INTO `+t.name+` (`+strings.Join(t.columns, ", ")+`)
				VALUES `+store.SQLite.Values(rows, len(t.columns)))
			if err != nil {
				for _, st := range stmts {
					st.Close()
				}
				return fmt.Errorf("tracker: prepare insert into %s: %w", t.name, err)
			}
			stmts[statementKey{t.name, rows}] = st
		}
	}
	s.stmts = stmts
	return nil
}

// get returns a statement; only after prepare succeeded in this goroutine.
func (s *insertStatements) get(t *table, rows int) *sql.Stmt {
	return s.stmts[statementKey{t.name, rows}]
}

// close releases the prepared statements, once every writer has stopped.
func (s *insertStatements) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
}
