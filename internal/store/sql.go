package store

import (
	"strconv"
	"strings"
)

// Values returns a VALUES list of rows×cols numbered parameters starting at
// $1 — "($1, $2), ($3, $4)" — for multi-row INSERTs, where the target
// columns give the parameters their types.
func Values(rows, cols int) string {
	return values(rows, make([]string, cols), "")
}

// TypedValues is Values for a VALUES list that has no target columns (in a
// WITH or FROM clause). PostgreSQL cannot infer such parameters' types, so
// on PostgreSQL the first row casts each parameter to its type (the other
// rows follow it); SQLite has dynamic types and needs none — a CAST there
// would convert, e.g. turn a timestamp's text into a number.
func (d Dialect) TypedValues(rows int, types ...string) string {
	if d != Postgres {
		return values(rows, make([]string, len(types)), "")
	}
	return values(rows, types, "::")
}

func values(rows int, types []string, castOp string) string {
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
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			if r == 0 && typ != "" {
				b.WriteString(castOp + typ)
			}
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Greatest returns the SQL for the larger of two values: GREATEST on
// PostgreSQL, the two-argument MAX on SQLite.
func (d Dialect) Greatest(a, b string) string {
	if d == Postgres {
		return "GREATEST(" + a + ", " + b + ")"
	}
	return "MAX(" + a + ", " + b + ")"
}
