package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Copy writes rows into table with PostgreSQL's COPY, on conn — inside the
// transaction begun on it, if there is one. (COPY needs the connection, which
// database/sql's Tx does not give.)
func Copy(ctx context.Context, conn *sql.Conn, table string, cols []string, rows pgx.CopyFromSource) error {
	err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("not a pgx connection: %T", dc)
		}
		_, err := c.Conn().CopyFrom(ctx, pgx.Identifier{table}, cols, rows)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: copy into %s: %w", table, err)
	}
	return nil
}

// Insert writes rows into table inside the transaction tx, which was begun
// on conn: with COPY on PostgreSQL (the fastest way in), with multi-row
// INSERTs on SQLite. Every row has one value per column.
func (d Dialect) Insert(ctx context.Context, conn *sql.Conn, tx *sql.Tx, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if d == Postgres {
		return Copy(ctx, conn, table, cols, pgx.CopyFromRows(rows))
	}
	// SQLite's limit is 32,766 parameters a statement.
	per := max(1, 30000/len(cols))
	list := ""
	for i, c := range cols {
		if i > 0 {
			list += ", "
		}
		list += c
	}
	for start := 0; start < len(rows); start += per {
		end := min(start+per, len(rows))
		args := make([]any, 0, (end-start)*len(cols))
		for _, r := range rows[start:end] {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (`+list+`) VALUES `+d.Values(end-start, len(cols)), args...); err != nil {
			return fmt.Errorf("store: insert %d rows into %s: %w", end-start, table, err)
		}
	}
	return nil
}
