package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// Values returns a VALUES list of rows×cols numbered parameters starting at
// $1 — "($1, $2), ($3, $4)" — for multi-row INSERTs, where the target
// columns give the parameters their types. It works on both engines; for
// statements with thousands of parameters prefer Dialect.Values.
func Values(rows, cols int) string {
	return values(rows, make([]string, cols), "", false)
}

// Values is Values for this dialect. On SQLite it writes anonymous "?"
// parameters (bound in order, as $1… would be): SQLite looks each named
// parameter such as $123 up in a list of those seen so far, so preparing a
// statement with n of them costs O(n²) — a third of a group commit's time
// for a 256-row INSERT.
func (d Dialect) Values(rows, cols int) string {
	return values(rows, make([]string, cols), "", d == SQLite)
}

// TypedValues is Values for a VALUES list that has no target columns (in a
// WITH or FROM clause). PostgreSQL cannot infer such parameters' types, so
// on PostgreSQL the first row casts each parameter to its type (the other
// rows follow it); SQLite has dynamic types and needs none — a CAST there
// would convert, e.g. turn a timestamp's text into a number.
func (d Dialect) TypedValues(rows int, types ...string) string {
	if d != Postgres {
		return values(rows, make([]string, len(types)), "", d == SQLite)
	}
	return values(rows, types, "::", false)
}

func values(rows int, types []string, castOp string, anonymous bool) string {
	var b strings.Builder
	n := 1
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c, typ := range types {
			if c > 0 {
				b.WriteString(", ")
			}
			if anonymous {
				b.WriteByte('?')
			} else {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(n))
			}
			if r == 0 && typ != "" {
				b.WriteString(castOp + typ)
			}
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Params returns n comma-separated parameters numbered from first, for an
// IN list: "$2, $3, $4" on PostgreSQL. On SQLite they are anonymous "?" (see
// Dialect.Values), which bind by their position in the statement's text, so
// a statement that uses Params, Values or TypedValues must write all its
// parameters this way, numbered in the order they appear — with Param for
// single ones.
func (d Dialect) Params(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.Param(first + i))
	}
	return b.String()
}

// Param is parameter number n: "$n" on PostgreSQL, "?" on SQLite (see Params).
func (d Dialect) Param(n int) string {
	if d == SQLite {
		return "?"
	}
	return "$" + strconv.Itoa(n)
}

// Greatest returns the SQL for the larger of two values: GREATEST on
// PostgreSQL, the two-argument MAX on SQLite.
func (d Dialect) Greatest(a, b string) string {
	if d == Postgres {
		return "GREATEST(" + a + ", " + b + ")"
	}
	return "MAX(" + a + ", " + b + ")"
}

// Execer runs a statement: a *sql.Tx, *sql.DB or *sql.Conn — so a helper
// can write in its caller's transaction or on its own.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Filter builds the WHERE clause of a list query: conditions joined by AND,
// whose parameters are numbered $1, $2… in the order they are added (on
// both engines). Add the arguments with Arg as the conditions are written.
type Filter struct {
	conds []string
	Args  []any
}

// NewFilter starts a filter with a condition on the tenant, the first key
// of every table: "counter_id = $1".
func NewFilter(counterID int64) *Filter {
	f := &Filter{}
	f.Add("counter_id = " + f.Arg(counterID))
	return f
}

// Arg adds an argument and returns its parameter ("$3").
func (f *Filter) Arg(v any) string {
	f.Args = append(f.Args, v)
	return "$" + strconv.Itoa(len(f.Args))
}

// Add adds a condition.
func (f *Filter) Add(cond string) { f.conds = append(f.conds, cond) }

// Before adds the condition of keyset pagination in descending (col, key)
// order: rows strictly after the row (at, key) of the previous page.
func (f *Filter) Before(col, keyCol string, at, key any) {
	a := f.Arg(at)
	f.Add("(" + col + " < " + a + " OR (" + col + " = " + a + " AND " + keyCol + " < " + f.Arg(key) + "))")
}

// SQL is the conditions joined by AND.
func (f *Filter) SQL() string { return strings.Join(f.conds, " AND ") }

// Bool is the SQL literal of b: true/false on PostgreSQL, 1/0 on SQLite
// (where booleans are integers).
func (d Dialect) Bool(b bool) string {
	switch {
	case d == Postgres && b:
		return "true"
	case d == Postgres:
		return "false"
	case b:
		return "1"
	}
	return "0"
}
