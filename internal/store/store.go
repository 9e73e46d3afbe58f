// Package store opens Throughline's database — an embedded SQLite file by
// default, PostgreSQL in production — and keeps its schema current.
//
// Both engines are reached through database/sql, and queries are written
// once: both drivers bind $1, $2, … positionally, and both engines speak
// INSERT … ON CONFLICT and RETURNING. What differs is confined to the
// per-dialect migration files and to the few helpers on Dialect.
//
// Times are stored in UTC: timestamptz on PostgreSQL, and on SQLite text in
// one fixed layout ("2006-01-02 15:04:05.999999999+00:00"), which sorts
// lexicographically in time order so range scans and indexes work. Always
// pass times from Go; never rely on SQL-side defaults such as
// CURRENT_TIMESTAMP, whose layout differs.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dialect names the database engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// TimestampType is the column type for a point in time: timestamptz on
// PostgreSQL (plain timestamp there would drop a non-UTC input's offset), and
// timestamp on SQLite, the declared type that makes the driver scan the
// stored text back as time.Time.
func (d Dialect) TimestampType() string {
	if d == Postgres {
		return "timestamptz"
	}
	return "timestamp"
}

// DefaultFile is the SQLite file created in the data directory when no
// database URL is given.
const DefaultFile = "throughline.db"

// DB is an open database. On SQLite it holds two pools over the same file:
// one connection for writes (SQLite allows one writer at a time; serialising
// in Go avoids lock contention and SQLITE_BUSY) and a pool of read-only
// connections (WAL lets readers run beside the writer). On PostgreSQL both
// are the same pool.
type DB struct {
	dialect Dialect
	write   *sql.DB
	read    *sql.DB
	target  string // where the data lives, for logs: a file path or a redacted URL
}

// Dialect reports the engine.
func (db *DB) Dialect() Dialect { return db.dialect }

// Writer returns the pool for statements that change data. On SQLite it has
// exactly one connection.
func (db *DB) Writer() *sql.DB { return db.write }

// Reader returns the pool for read-only queries. On SQLite its connections
// refuse writes (PRAGMA query_only), so a write sent here fails loudly.
func (db *DB) Reader() *sql.DB { return db.read }

// Target describes where the data lives (a file path, or the PostgreSQL URL
// without its password), for logs and the start-up banner.
func (db *DB) Target() string { return db.target }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close closes the pools.
func (db *DB) Close() error {
	err := db.write.Close()
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	return err
}

// Tx runs fn in a write transaction, committing if fn returns nil and rolling
// back otherwise. On SQLite the transaction starts with BEGIN IMMEDIATE, so it
// holds the write lock from the start and never fails half-way on an upgrade.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// Options tune Open. The zero value is what `throughline serve` uses.
type Options struct {
	// MaxConns caps the PostgreSQL pool, and the SQLite read pool.
	// Zero means a default sized to the machine.
	MaxConns int
}

// Open connects to the database named by dsn: a postgres:// or postgresql://
// URL selects PostgreSQL; anything else is a SQLite file path (optionally
// written sqlite:PATH or file:PATH). An empty dsn means DefaultFile inside
// dataDir, which is created if missing. Open checks that the database answers
// before returning, so a bad URL fails here with a message that names it.
func Open(ctx context.Context, dsn, dataDir string, opt Options) (*DB, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn, opt)
	case strings.Contains(dsn, "://"):
		scheme, _, _ := strings.Cut(dsn, "://")
		return nil, fmt.Errorf("store: unsupported database URL scheme %q (want postgres://… or a SQLite file path)", scheme)
	}
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	if path == "" {
		if dataDir == "" {
			return nil, errors.New("store: no database given and no data directory")
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create data directory: %w", err)
		}
		path = filepath.Join(dataDir, DefaultFile)
	}
	return openSQLite(ctx, path, opt)
}

func openSQLite(ctx context.Context, path string, opt Options) (*DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: SQLite path %q must not contain '?' or '#'", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("store: SQLite file %q: directory %q does not exist", path, dir)
		}
	}
	// synchronous=FULL: a commit is on disk before it is acknowledged. The
	// collector answers a hit only after its batch commits, and that promise
	// must hold through power loss too; group commit amortises the fsync.
	params := url.Values{}
	params.Add("_pragma", "busy_timeout(10000)")
	params.Add("_pragma", "journal_mode(WAL)")
	params.Add("_pragma", "synchronous(FULL)")
	params.Add("_pragma", "foreign_keys(ON)")
	params.Set("_time_format", "sqlite")
	params.Set("_timezone", "UTC")
	params.Set("_texttotime", "1") // MAX(ts) and other expressions scan as time.Time
	base := "file:" + path + "?"

	wparams := cloneValues(params)
	wparams.Set("_txlock", "immediate")
	// The one writer keeps a 64 MiB page cache (SQLite's default is 2 MiB):
	// a group commit dirties pages all over the indexes, and a cache too small
	// for them spills to the WAL in the middle of the transaction.
	wparams.Add("_pragma", "cache_size(-65536)")
	// The writer copies the WAL back into the database after a commit that
	// leaves 250 pages in it (SQLite's default is 1,000). The commit that
	// does it answers its hits later by the copy's time; smaller, more
	// frequent copies kept the collector's p99 at 43–53 ms where 1,000 gave
	// 56–78 ms, at the same throughput (BENCHMARKS.md, issue 3).
	wparams.Add("_pragma", "wal_autocheckpoint(250)")
	write, err := sql.Open("sqlite", base+wparams.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open SQLite %q: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	// Touch the writer first so the file exists and is in WAL mode before
	// any reader opens it.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open SQLite %q: %w", path, err)
	}

	rparams := cloneValues(params)
	rparams.Add("_pragma", "query_only(1)")
	read, err := sql.Open("sqlite", base+rparams.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open SQLite %q: %w", path, err)
	}
	n := opt.MaxConns
	if n <= 0 {
		n = max(4, runtime.NumCPU())
	}
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("store: open SQLite %q: %w", path, err)
	}
	return &DB{dialect: SQLite, write: write, read: read, target: path}, nil
}

func openPostgres(ctx context.Context, dsn string, opt Options) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: PostgreSQL URL: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	target := redact(dsn)
	// Plan every execution of a prepared statement with its own parameters
	// and the table's current size. PostgreSQL otherwise settles on a generic
	// plan after five runs and keeps it: planned while a table was young (or
	// for a small counter), it scans where an index is needed later (seen: the
	// collector's visitor lookup at 80 ms a batch until autovacuum analysed
	// the table). Counters differ wildly in size, so custom plans suit us.
	if _, set := cfg.RuntimeParams["plan_cache_mode"]; !set {
		cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	// Scan timestamptz as UTC rather than the process's local zone: storage is
	// UTC everywhere, and both engines then return equal times.
	utc := stdlib.OptionAfterConnect(func(_ context.Context, c *pgx.Conn) error {
		c.TypeMap().RegisterType(&pgtype.Type{
			Name: "timestamptz", OID: pgtype.TimestamptzOID,
			Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
		})
		return nil
	})
	pool := stdlib.OpenDB(*cfg, utc)
	n := opt.MaxConns
	if n <= 0 {
		n = max(8, 4*runtime.NumCPU())
	}
	pool.SetMaxOpenConns(n)
	pool.SetMaxIdleConns(n)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to PostgreSQL %s: %w", target, rootCause(err))
	}
	return &DB{dialect: Postgres, write: pool, read: pool, target: target}, nil
}

// rootCause picks, out of pgx's multi-line connect error (one line per
// address tried), the part that says what to fix: the server's own message
// (no such database, bad password) or the network error.
func rootCause(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr
	}
	var netErr *net.OpError
	if errors.As(err, &netErr) {
		return netErr
	}
	return err
}

// redact removes the password from a database URL so it can be logged.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparseable URL)"
	}
	return u.Redacted()
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}
