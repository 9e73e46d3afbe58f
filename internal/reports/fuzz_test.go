package reports_test

import (
	"errors"
	"net/url"
	"slices"
	"testing"

	"github.com/throughline/throughline/internal/attribution"
	"github.com/throughline/throughline/internal/reports"
)

// FuzzParseQuery: any query string is either refused with a named field or
// read into a query the report can run.
func FuzzParseQuery(f *testing.F) {
	f.Add("from=2026-03-01&to=2026-03-31")
	f.Add("from=2026-03-01&to=2026-03-31&group=campaign,term&model=LINEAR&date=visit&source=yandex")
	f.Add("from=2026-02-30&to=2026-03-01&group=,&model=")
	f.Add("from=0001-01-01&to=9999-12-31")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := reports.ParseQuery(v.Get)
		if err != nil {
			var invalid *reports.InvalidError
			if !errors.As(err, &invalid) || invalid.Field == "" {
				t.Fatalf("%q: %v is not an InvalidError naming a field", raw, err)
			}
			return
		}
		if q.To.Before(q.From) || int(q.To.Sub(q.From).Hours()/24)+1 > reports.MaxDays {
			t.Fatalf("%q: range %v..%v accepted", raw, q.From, q.To)
		}
		if !slices.Contains(attribution.Models, q.Model) || (q.Date != reports.DateOrder && q.Date != reports.DateVisit) || len(q.Group) == 0 {
			t.Fatalf("%q: %+v", raw, q)
		}
		for i, g := range q.Group {
			if !slices.Contains(reports.Dimensions, g) || slices.Contains(q.Group[:i], g) {
				t.Fatalf("%q: group %v", raw, q.Group)
			}
		}
	})
}
