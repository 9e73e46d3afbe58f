package costs

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/rollup"
	"github.com/throughline/throughline/internal/store"
)

// Options tune an import.
type Options struct {
	// SkipBadRows applies the good rows of an upload that has bad ones.
	// Without it (strict, the default) one bad row refuses the whole upload
	// and nothing is applied.
	SkipBadRows bool
	// TempDir holds a CSV upload's checked rows between the two passes
	// (os.TempDir() when empty).
	TempDir string
}

// Result says what an import did. Read counts every row (blank lines
// aside); each ends up inserted, updated, unchanged, rejected, or a
// duplicate: a row whose key a later row of the same upload repeats (the
// later row wins).
type Result struct {
	Read       int        `json:"rows_read"`
	Inserted   int        `json:"inserted"`
	Updated    int        `json:"updated"`
	Unchanged  int        `json:"unchanged"`
	Duplicates int        `json:"duplicates"`
	Rejected   int        `json:"rejected"`
	Errors     []RowError `json:"errors"` // the first crm.MaxReportedErrors rejected rows
}

func (r *Result) reject(e *RowError) {
	r.Rejected++
	if len(r.Errors) < crm.MaxReportedErrors {
		r.Errors = append(r.Errors, *e)
	}
}

// Import reads a cost CSV and applies it to the counter's costs: strict
// unless skipBadRows. See ImportWith.
func Import(ctx context.Context, db *store.DB, counterID int64, r io.Reader, skipBadRows bool) (*Result, error) {
	return ImportWith(ctx, db, counterID, r, Options{SkipBadRows: skipBadRows})
}

// ImportWith reads a cost CSV and applies it to the counter's costs. It
// checks every row first, spooling the good ones to a temporary file — the
// database is not touched while a slow upload arrives — then applies them in
// one transaction. The returned Result counts what was read and done; the
// error says why nothing was applied: *crm.FileError (the file as a whole
// cannot be read: no header, a missing column, not UTF-8),
// *crm.RejectedError (bad rows in a strict import), or a read or database
// error. On error nothing was applied, and the Result's Inserted, Updated,
// Unchanged and Duplicates are zero.
func ImportWith(ctx context.Context, db *store.DB, counterID int64, r io.Reader, opt Options) (*Result, error) {
	res := &Result{Errors: []RowError{}}
	cr, err := newReader(r)
	if err != nil {
		return res, err
	}
	sp, err := newSpool(opt.TempDir)
	if err != nil {
		return res, err
	}
	defer sp.remove()
	for {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("costs: import stopped: %w", err)
		}
		row, _, err := cr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *RowError
		if errors.As(err, &re) {
			res.Read++
			res.reject(re)
			continue
		}
		if err != nil {
			return res, err
		}
		res.Read++
		if err := sp.put(&row); err != nil {
			return res, err
		}
	}
	if res.Rejected > 0 && !opt.SkipBadRows {
		return res, &crm.RejectedError{Rejected: res.Rejected, First: res.Errors}
	}
	src, err := sp.reader()
	if err != nil {
		return res, err
	}
	return res, apply(ctx, db, counterID, src, res)
}

// ImportRows applies a list of rows (the JSON API's) to the counter's costs,
// strictly: see ImportRowsWith.
func ImportRows(ctx context.Context, db *store.DB, counterID int64, rows []Row) (*Result, error) {
	return ImportRowsWith(ctx, db, counterID, rows, Options{})
}

// ImportRowsWith checks and applies rows as ImportWith does a file: a bad
// row is reported with its index in the list (from 1) as its line and the
// JSON field at fault as its column. The rows are normalised in place.
func ImportRowsWith(ctx context.Context, db *store.DB, counterID int64, rows []Row, opt Options) (*Result, error) {
	res := &Result{Errors: []RowError{}}
	good := make([]Row, 0, len(rows))
	for i := range rows {
		res.Read++
		if field, err := rows[i].normalize(); err != nil {
			res.reject(&RowError{Line: i + 1, Column: field, Message: err.Error()})
			continue
		}
		good = append(good, rows[i])
	}
	if res.Rejected > 0 && !opt.SkipBadRows {
		return res, &crm.RejectedError{Rejected: res.Rejected, First: res.Errors}
	}
	return res, apply(ctx, db, counterID, &sliceSource{rows: good}, res)
}

// rowSource yields checked rows to apply; io.EOF ends them.
type rowSource interface {
	next() (Row, error)
}

type sliceSource struct {
	rows []Row
	i    int
}

func (s *sliceSource) next() (Row, error) {
	if s.i == len(s.rows) {
		return Row{}, io.EOF
	}
	s.i++
	return s.rows[s.i-1], nil
}

// costKey is what identifies a cost row within a counter.
type costKey struct{ day, source, medium, campaign, content, term string }

func keyOf(r *Row) costKey {
	return costKey{r.Day, r.Source, r.Medium, r.Campaign, r.Content, r.Term}
}

// stageRows is how many rows one statement stages (10 parameters each, far
// under SQLite's limit of 32,766).
const stageRows = 500

// costsLock is the first key of the PostgreSQL advisory lock that serialises
// cost imports into one counter (the second is the counter id), so each
// import's counts describe what it did.
const costsLock = 0x636f7374 // "cost"

// analyzeAfterRows is how many changed rows make an import refresh the
// table's statistics on PostgreSQL: reports read them next.
const analyzeAfterRows = 50_000

// apply writes the rows in one transaction. They are first gathered in a
// temporary table keyed like ad_costs, where a later row replaces an
// earlier one of the same key; then one statement upserts them all,
// skipping rows whose values are what is stored. Memory stays flat however
// large the upload, and re-applying the same rows writes nothing.
func apply(ctx context.Context, db *store.DB, counterID int64, src rowSource, res *Result) error {
	d := db.Dialect()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var sent, total, inserted, updated int
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if d == store.Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, costsLock, int32(counterID)); err != nil {
				return fmt.Errorf("costs: lock: %w", err)
			}
		}
		if err := createStage(ctx, tx, d); err != nil {
			return err
		}
		var full *sql.Stmt // the statement of a full batch, prepared once
		closeFull := func() {
			if full != nil {
				full.Close()
				full = nil
			}
		}
		defer closeFull()
		batch := make([]Row, 0, stageRows)
		at := make(map[costKey]int, stageRows) // key → its row in batch
		args := make([]any, 0, stageRows*10)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			args = args[:0]
			for i := range batch {
				r := &batch[i]
				args = append(args, r.Day, r.Source, r.Medium, r.Campaign, r.Content, r.Term, r.Cost, r.Clicks, r.Impressions, r.Currency)
			}
			var err error
			if len(batch) == stageRows {
				if full == nil {
					if full, err = tx.PrepareContext(ctx, stageSQL(d, stageRows)); err != nil {
						return fmt.Errorf("costs: stage: %w", err)
					}
				}
				_, err = full.ExecContext(ctx, args...)
			} else {
				_, err = tx.ExecContext(ctx, stageSQL(d, len(batch)), args...)
			}
			if err != nil {
				return fmt.Errorf("costs: stage %d rows: %w", len(batch), err)
			}
			batch = batch[:0]
			clear(at)
			return nil
		}
		for {
			row, err := src.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			sent++
			k := keyOf(&row)
			if i, ok := at[k]; ok {
				batch[i] = row // the later row wins (one statement cannot upsert a key twice)
				continue
			}
			if len(batch) == stageRows {
				if err := flush(); err != nil {
					return err
				}
			}
			at[k] = len(batch)
			batch = append(batch, row)
		}
		if err := flush(); err != nil {
			return err
		}
		closeFull()
		if d == store.Postgres && sent > 1000 {
			// Temporary tables have no statistics until analysed, and the
			// join below is planned from them.
			if _, err := tx.ExecContext(ctx, `ANALYZE ad_costs_stage`); err != nil {
				return fmt.Errorf("costs: analyze stage: %w", err)
			}
		}
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*),
				COALESCE(SUM(CASE WHEN a.day IS NULL THEN 1 ELSE 0 END), 0),
				COALESCE(SUM(CASE WHEN a.day IS NOT NULL AND (`+changed("a", "s")+`) THEN 1 ELSE 0 END), 0)
			FROM ad_costs_stage s LEFT JOIN ad_costs a ON a.counter_id = $1 AND a.day = s.day
				AND a.source = s.source AND a.medium = s.medium AND a.campaign = s.campaign
				AND a.content = s.content AND a.term = s.term`, counterID).Scan(&total, &inserted, &updated)
		if err != nil {
			return fmt.Errorf("costs: compare: %w", err)
		}
		if inserted+updated > 0 {
			// WHERE true: without it SQLite would read ON CONFLICT as a
			// join's ON clause.
			if _, err := tx.ExecContext(ctx, `INSERT INTO ad_costs (counter_id, day, source, medium, campaign, content, term,
					cost, clicks, impressions, currency, imported_at)
				SELECT `+typed(d, 1, "bigint")+`, day, source, medium, campaign, content, term,
					cost, clicks, impressions, currency, `+typed(d, 2, "timestamptz")+`
				FROM ad_costs_stage WHERE true
				ON CONFLICT (counter_id, day, source, medium, campaign, content, term) DO UPDATE SET
					cost = excluded.cost, clicks = excluded.clicks, impressions = excluded.impressions,
					currency = excluded.currency, imported_at = excluded.imported_at
				WHERE `+changed("ad_costs", "excluded"), counterID, now); err != nil {
				return fmt.Errorf("costs: apply: %w", err)
			}
			// The reports' sums of these days change.
			if err := rollup.MarkDays(ctx, tx, counterID, `SELECT day FROM ad_costs_stage`); err != nil {
				return err
			}
		}
		if d == store.SQLite {
			// A temporary table lives as long as the connection; PostgreSQL
			// drops it at commit.
			if _, err := tx.ExecContext(ctx, `DROP TABLE temp.ad_costs_stage`); err != nil {
				return fmt.Errorf("costs: drop stage: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	res.Inserted, res.Updated = inserted, updated
	res.Unchanged = total - inserted - updated
	res.Duplicates = sent - total
	if d == store.Postgres && inserted+updated >= analyzeAfterRows {
		// Best effort: the import has committed, and autovacuum will
		// analyse the table anyway.
		db.Writer().ExecContext(context.WithoutCancel(ctx), `ANALYZE ad_costs`)
	}
	return nil
}

// createStage creates the transaction's temporary table of rows to apply.
func createStage(ctx context.Context, tx *sql.Tx, d store.Dialect) error {
	const cols = `(
		day text NOT NULL, source text NOT NULL, medium text NOT NULL, campaign text NOT NULL,
		content text NOT NULL, term text NOT NULL,
		cost bigint NOT NULL, clicks bigint NOT NULL, impressions bigint NOT NULL, currency text NOT NULL,
		PRIMARY KEY (day, source, medium, campaign, content, term))`
	stmt := `CREATE TEMP TABLE ad_costs_stage ` + cols + ` ON COMMIT DROP`
	if d == store.SQLite {
		// One left behind (it cannot be: it is dropped before commit, and a
		// rollback undoes its creation) would only be replaced.
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS temp.ad_costs_stage`); err != nil {
			return fmt.Errorf("costs: stage: %w", err)
		}
		stmt = `CREATE TEMP TABLE ad_costs_stage ` + cols + ` WITHOUT ROWID`
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("costs: stage: %w", err)
	}
	return nil
}

func stageSQL(d store.Dialect, n int) string {
	return `INSERT INTO ad_costs_stage (day, source, medium, campaign, content, term, cost, clicks, impressions, currency)
		VALUES ` + d.Values(n, 10) + `
		ON CONFLICT (day, source, medium, campaign, content, term) DO UPDATE SET
			cost = excluded.cost, clicks = excluded.clicks, impressions = excluded.impressions, currency = excluded.currency`
}

// changed is the SQL condition that a row's values (cost, clicks,
// impressions, currency) differ between tables a and b.
func changed(a, b string) string {
	return a + `.cost <> ` + b + `.cost OR ` + a + `.clicks <> ` + b + `.clicks OR ` +
		a + `.impressions <> ` + b + `.impressions OR ` + a + `.currency <> ` + b + `.currency`
}

// typed is parameter n where nothing gives it a type: PostgreSQL needs the
// cast; on SQLite a CAST would convert the value (a time's text to a number).
func typed(d store.Dialect, n int, typ string) string {
	if d == store.Postgres {
		return "$" + strconv.Itoa(n) + "::" + typ
	}
	return "$" + strconv.Itoa(n)
}

// spool keeps the checked rows of a CSV upload on disk between the passes.
type spool struct {
	f   *os.File
	w   *bufio.Writer
	enc *gob.Encoder
}

func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, "throughline-costs-*.spool")
	if err != nil {
		return nil, fmt.Errorf("costs: spool: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	return &spool{f: f, w: w, enc: gob.NewEncoder(w)}, nil
}

func (s *spool) put(r *Row) error {
	if err := s.enc.Encode(r); err != nil {
		return fmt.Errorf("costs: spool: %w", err)
	}
	return nil
}

// reader returns the spooled rows from the start.
func (s *spool) reader() (rowSource, error) {
	if err := s.w.Flush(); err != nil {
		return nil, fmt.Errorf("costs: spool: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("costs: spool: %w", err)
	}
	return &spoolSource{dec: gob.NewDecoder(bufio.NewReaderSize(s.f, 64<<10))}, nil
}

func (s *spool) remove() {
	s.f.Close()
	os.Remove(s.f.Name())
}

type spoolSource struct{ dec *gob.Decoder }

func (s *spoolSource) next() (Row, error) {
	var r Row
	if err := s.dec.Decode(&r); err != nil {
		if errors.Is(err, io.EOF) {
			return Row{}, io.EOF
		}
		return Row{}, fmt.Errorf("costs: read spool: %w", err)
	}
	return r, nil
}

// List returns the counter's costs from day from to day to, both included
// ("" leaves that end open), by day and key.
func List(ctx context.Context, db *store.DB, counterID int64, from, to string) ([]Row, error) {
	f := store.NewFilter(counterID)
	for _, b := range []struct {
		field, v, op string
	}{{"from", from, ">="}, {"to", to, "<="}} {
		if b.v == "" {
			continue
		}
		day, err := ParseDay(b.v)
		if err != nil {
			return nil, &InvalidError{b.field, err.Error()}
		}
		f.Add("day " + b.op + " " + f.Arg(day))
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT day, source, medium, campaign, content, term, cost, clicks, impressions, currency
		FROM ad_costs WHERE `+f.SQL()+` ORDER BY day, source, medium, campaign, content, term`, f.Args...)
	if err != nil {
		return nil, fmt.Errorf("costs: list: %w", err)
	}
	defer rows.Close()
	out := []Row{}
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.Day, &r.Source, &r.Medium, &r.Campaign, &r.Content, &r.Term, &r.Cost, &r.Clicks, &r.Impressions, &r.Currency); err != nil {
			return nil, fmt.Errorf("costs: list: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("costs: list: %w", err)
	}
	return out, nil
}
