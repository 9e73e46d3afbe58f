package rollup

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPeriods(t *testing.T) {
	d := func(s string) time.Time { t, _ := time.Parse(time.DateOnly, s); return t }
	summary := func(ps []string) string {
		var days, months []string
		for _, p := range ps {
			if isMonth(p) {
				months = append(months, p)
			} else {
				days = append(days, p)
			}
		}
		first, last := "", ""
		if len(days) > 0 {
			first, last = days[0], days[len(days)-1]
		}
		return strings.Join(months, ",") + " | " + first + ".." + last + " " + itoa(len(days))
	}
	for _, c := range []struct{ from, to, today, want string }{
		// Whole finished months are read as months; the rest day by day.
		{"2026-01-15", "2026-04-10", "2026-04-05", "2026-02,2026-03 | 2026-01-15..2026-04-10 27"},
		// A month is finished the day after its last day.
		{"2026-03-01", "2026-03-31", "2026-03-31", " | 2026-03-01..2026-03-31 31"},
		{"2026-03-01", "2026-03-31", "2026-04-01", "2026-03 | .. 0"},
		// A leap February.
		{"2028-02-01", "2028-02-29", "2028-03-01", "2028-02 | .. 0"},
		{"2026-03-05", "2026-03-05", "2026-11-01", " | 2026-03-05..2026-03-05 1"},
	} {
		if got := summary(Periods(d(c.from), d(c.to), d(c.today))); got != c.want {
			t.Errorf("%s..%s on %s: %s, want %s", c.from, c.to, c.today, got, c.want)
		}
	}
	if got := len(monthDays("2028-02")); got != 29 {
		t.Errorf("days of February 2028: %d", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
