package web

import (
	"net/url"
	"slices"
	"time"

	"github.com/throughline/throughline/internal/reports"
)

// Period presets of the picker, in its order.
var periodPresets = []string{"today", "yesterday", "7d", "30d", "90d", "this_month", "last_month"}

// defaultPeriod is what a page shows when the URL names no period.
const defaultPeriod = "30d"

// period is the range of days a page shows, in the counter's time zone,
// and the range just before it of the same length, to compare with.
type period struct {
	Key              string    // a preset, or "custom"
	From, To         time.Time // civil dates (midnight UTC), inclusive
	PrevFrom, PrevTo time.Time
}

// Days is the period's length.
func (p period) Days() int { return int(p.To.Sub(p.From).Hours()/24) + 1 }

// FromText and ToText are the dates as the URL writes them.
func (p period) FromText() string { return p.From.Format(time.DateOnly) }
func (p period) ToText() string   { return p.To.Format(time.DateOnly) }

// parsePeriod reads period (a preset) or from and to (YYYY-MM-DD) from a
// page's query; today is the counter's current date. Dates that are
// malformed, reversed, or span more than reports.MaxDays are a field error.
func parsePeriod(q url.Values, today time.Time) (period, error) {
	key := q.Get("period")
	if key == "" && (q.Get("from") != "" || q.Get("to") != "") {
		key = "custom"
	}
	if key == "" {
		key = defaultPeriod
	}
	p := period{Key: key}
	switch key {
	case "today":
		p.From, p.To = today, today
	case "yesterday":
		p.From, p.To = today.AddDate(0, 0, -1), today.AddDate(0, 0, -1)
	case "7d", "30d", "90d":
		n := map[string]int{"7d": 7, "30d": 30, "90d": 90}[key]
		p.From, p.To = today.AddDate(0, 0, -(n-1)), today
	case "this_month":
		p.From, p.To = time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC), today
	case "last_month":
		first := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC)
		p.From, p.To = first.AddDate(0, -1, 0), first.AddDate(0, 0, -1)
	case "custom":
		var err error
		for _, f := range []struct {
			name string
			dst  *time.Time
		}{{"from", &p.From}, {"to", &p.To}} {
			v := q.Get(f.name)
			if v == "" {
				return p, badParam(f.name, "error.date_required")
			}
			if *f.dst, err = time.Parse(time.DateOnly, v); err != nil {
				return p, badParam(f.name, "error.date", prefix(v))
			}
			if f.dst.Year() < 2000 || f.dst.Year() > 2100 {
				return p, badParam(f.name, "error.date_range", prefix(v))
			}
		}
		if p.To.Before(p.From) {
			return p, badParam("to", "error.date_order")
		}
		if p.Days() > reports.MaxDays {
			return p, badParam("to", "error.period_too_long", reports.MaxDays)
		}
	default:
		return p, badParam("period", "error.period", prefix(key))
	}
	// The period before, of the same length; last month compares with the
	// month before it.
	if key == "last_month" {
		p.PrevFrom, p.PrevTo = p.From.AddDate(0, -1, 0), p.From.AddDate(0, 0, -1)
	} else {
		p.PrevTo = p.From.AddDate(0, 0, -1)
		p.PrevFrom = p.PrevTo.AddDate(0, 0, -(p.Days() - 1))
	}
	return p, nil
}

// today is the counter's current date as a civil date.
func (p *page) today() time.Time {
	y, m, d := p.Now.In(p.L.loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// PeriodChoices are the picker's presets with the current one marked.
func (p *page) PeriodChoices(current period) []choice {
	out := make([]choice, 0, len(periodPresets)+1)
	for _, k := range append(slices.Clone(periodPresets), "custom") {
		out = append(out, choice{Key: k, Active: k == current.Key})
	}
	return out
}

type hiddenField struct{ Name, Value string }

// Hidden are the query's parameters but the named ones, as hidden inputs:
// a form that changes the period keeps the model, grouping and filters.
func (p *page) Hidden(except ...string) []hiddenField {
	var out []hiddenField
	q := p.r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		if !slices.Contains(except, k) && k != "cursor" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range q[k] {
			out = append(out, hiddenField{k, v})
		}
	}
	return out
}
