// Package storetest gives tests a fresh, migrated database on each engine.
//
// SQLite always runs, in a temporary directory. PostgreSQL runs when
// THROUGHLINE_TEST_POSTGRES holds a connection URL; each test then gets its
// own schema (dropped afterwards), so tests stay independent and parallel.
// When the variable is set and the server cannot be reached, tests fail
// rather than skip: CI sets it, and a silent skip there would hide a broken
// engine.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver for the admin connection
	"github.com/throughline/throughline/internal/store"
)

// EnvPostgres names the variable holding the PostgreSQL URL for tests.
const EnvPostgres = "THROUGHLINE_TEST_POSTGRES"

// Each runs fn as a subtest once per engine: "sqlite", and "postgres" when
// THROUGHLINE_TEST_POSTGRES is set.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// Open returns a fresh migrated database of dialect d, closed (and on
// PostgreSQL dropped) when the test ends.
func Open(t testing.TB, d store.Dialect) *store.DB {
	t.Helper()
	db := OpenEmpty(t, d)
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", d, err)
	}
	return db
}

// OpenEmpty is Open without the migrations.
func OpenEmpty(t testing.TB, d store.Dialect) *store.DB {
	t.Helper()
	dsn := DSN(t, d)
	db, err := store.Open(context.Background(), dsn, t.TempDir(), store.Options{MaxConns: 8})
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// DSN returns a --db value for a fresh, empty database of dialect d: a new
// SQLite file, or a PostgreSQL URL whose search_path is a new schema.
// It skips the test for PostgreSQL when THROUGHLINE_TEST_POSTGRES is unset.
func DSN(t testing.TB, d store.Dialect) string {
	t.Helper()
	if d == store.SQLite {
		return t.TempDir() + "/" + store.DefaultFile
	}
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skipf("PostgreSQL tests need %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", EnvPostgres)
	}
	admin := adminDB(t, base)
	schema := "test_" + randomHex(8)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("PostgreSQL at %s: create schema: %v", EnvPostgres, err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

var admin struct {
	once sync.Once
	db   *sql.DB
	err  error
}

// adminDB is one connection pool per test binary for creating and dropping
// schemas. It fails the test, not skips it, when the server is unreachable.
func adminDB(t testing.TB, base string) *sql.DB {
	t.Helper()
	admin.once.Do(func() {
		admin.db, admin.err = sql.Open("pgx", base)
		if admin.err == nil {
			admin.err = admin.db.Ping()
		}
	})
	if admin.err != nil {
		t.Fatalf("%s is set but PostgreSQL is unreachable: %v", EnvPostgres, admin.err)
	}
	return admin.db
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
