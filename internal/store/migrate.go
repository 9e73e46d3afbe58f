package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migrations live in migrations/<dialect>/NNNN_name.sql. Each file runs in its
// own transaction and is recorded in schema_migrations; the same number must
// exist for both dialects (a test checks this).
//
//go:embed migrations
var migrationFS embed.FS

// Migration is one schema step.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// ErrSchemaTooNew means the database was migrated by a newer Throughline.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// Migrations returns the dialect's migrations in order.
func Migrations(d Dialect) ([]Migration, error) {
	dir := path.Join("migrations", string(d))
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration file %s: name must be NNNN_description.sql", name)
		}
		body, err := fs.ReadFile(migrationFS, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("store: read migration %s: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: rest, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	// Numbers may have gaps: engineers working side by side reserve numbers,
	// and a later number can land first. Migrate applies each one that has
	// not run, so the missing one runs when it arrives.
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("store: %s migrations: version %d twice (%s, %s)", d, ms[i].Version, ms[i-1].Name, ms[i].Name)
		}
	}
	return ms, nil
}

// MigrateResult says what Migrate did.
type MigrateResult struct {
	From, To int // schema version before and after
}

// Migrate applies the pending migrations. It is safe to run from several
// processes at once: on PostgreSQL they queue on an advisory lock, on SQLite
// on the database's write lock. A database whose schema is newer than this
// binary is refused with ErrSchemaTooNew and left untouched.
func (db *DB) Migrate(ctx context.Context) (MigrateResult, error) {
	ms, err := Migrations(db.dialect)
	if err != nil {
		return MigrateResult{}, err
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return MigrateResult{}, fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()

	if db.dialect == Postgres {
		// Any constant works; it only has to be the same for every process.
		const lockID = 0x7468726f756768 // "through"
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
			return MigrateResult{}, fmt.Errorf("store: migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockID)
	}

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at `+db.dialect.TimestampType()+` NOT NULL
	)`); err != nil {
		return MigrateResult{}, fmt.Errorf("store: migrate: create schema_migrations: %w", err)
	}
	applied, current, err := appliedVersions(ctx, conn)
	if err != nil {
		return MigrateResult{}, err
	}
	res := MigrateResult{From: current, To: current}
	known := map[int]bool{}
	for _, m := range ms {
		known[m.Version] = true
	}
	for v := range applied {
		if !known[v] {
			return res, fmt.Errorf("store: %w: database has migration %d, which this binary does not know; run a newer throughline", ErrSchemaTooNew, v)
		}
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if err := applyMigration(ctx, conn, m); err != nil {
			return res, err
		}
		res.To = max(res.To, m.Version)
	}
	return res, nil
}

// appliedVersions reads which migrations have run, and the highest.
func appliedVersions(ctx context.Context, conn *sql.Conn) (map[int]bool, int, error) {
	rows, err := conn.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, 0, fmt.Errorf("store: migrate: read versions: %w", err)
	}
	defer rows.Close()
	applied, current := map[int]bool{}, 0
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, 0, fmt.Errorf("store: migrate: read versions: %w", err)
		}
		applied[v], current = true, max(current, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: migrate: read versions: %w", err)
	}
	return applied, current, nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, m Migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migration %04d_%s: begin: %w", m.Version, m.Name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("store: migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		m.Version, m.Name, time.Now().UTC()); err != nil {
		return fmt.Errorf("store: migration %04d_%s: record: %w", m.Version, m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migration %04d_%s: commit: %w", m.Version, m.Name, err)
	}
	return nil
}

// Version returns the schema version the database is at (0 when empty).
func (db *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := db.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}
