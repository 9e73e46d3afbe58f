package store

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// RefusedData reports whether err is the database refusing a statement for
// the values it carried — a constraint they break, a value a column cannot
// hold — rather than failing to run it: the same values would be refused
// again, while other values in the same transaction would not. PostgreSQL
// says so with SQLSTATE classes 22 (data exception) and 23 (integrity
// constraint violation), SQLite with its CONSTRAINT, TOOBIG and MISMATCH
// result codes.
func RefusedData(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() & 0xff { // the primary code of an extended one
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH:
			return true
		}
	}
	return false
}
