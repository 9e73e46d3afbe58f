package web

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/attribution"
	"github.com/throughline/throughline/internal/reports"
)

// The URL holds a page's state. Every page of a counter's data reads the
// same parameters, so a link from one page to another (a report cell to the
// orders behind it) carries them as they are:
//
//	period, from, to                     the days (see parsePeriod)
//	traffic_type, source, medium,        a filter per traffic dimension
//	campaign, content, term
//	model                                an attribution model (attribution.Models)
//	date                                 order | visit: which date counts an order
//
// Pages add their own (group, status, rung, q, cursor…).

// maxFilterLen caps a filter's value: longer than any UTM value a site sends.
const maxFilterLen = 500

// parseDims reads the traffic dimension filters of a query. A value that is
// not text a page could have put there (invalid UTF-8, control characters,
// too long) is a field error.
func parseDims(q url.Values) (map[string]string, error) {
	var out map[string]string
	for _, d := range reports.Dimensions {
		v := q.Get(d)
		if v == "" {
			continue
		}
		if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) || len(v) > maxFilterLen {
			return nil, badParam(d, "error.filter", d)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[d] = v
	}
	return out, nil
}

// parseModel reads the attribution model ("" is the default model).
func parseModel(q url.Values) (string, error) {
	m, err := attribution.ParseModel(q.Get("model"))
	if err != nil {
		return "", badParam("model", "error.model", prefix(q.Get("model")))
	}
	return m, nil
}

// parseDateBasis reads which date counts an order: its creation (default)
// or the touch that earned it.
func parseDateBasis(q url.Values) (string, error) {
	switch d := q.Get("date"); d {
	case "":
		return reports.DateOrder, nil
	case reports.DateOrder, reports.DateVisit:
		return d, nil
	default:
		return "", badParam("date", "error.date_basis", prefix(d))
	}
}

// stateParams are the parameters a link to another page of the counter
// keeps from the current URL.
var stateParams = append([]string{"period", "from", "to", "model", "date"}, reports.Dimensions...)

// Link is a URL of another page of the counter that keeps the current
// period, model, date basis and filters, with some parameters set (pairs
// of name, value; an empty value removes one): how a report cell links to
// the orders behind it, with the cell's row as filters.
func (p *page) Link(section string, kv ...string) string {
	cur := p.r.URL.Query()
	q := url.Values{}
	for _, k := range stateParams {
		if v := cur.Get(k); v != "" {
			q.Set(k, v)
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return withQuery(p.CounterURL(section), q)
}

// RowLink is Link with a report row's dimension values as filters.
func (p *page) RowLink(section string, dims map[string]string, kv ...string) string {
	pairs := make([]string, 0, 2*len(dims)+len(kv))
	for _, d := range reports.Dimensions {
		if v, ok := dims[d]; ok {
			// An empty value is a real group ("no campaign"): it is kept
			// as the filter's "(none)" marker, which pages read as empty.
			if v == "" {
				v = noneValue
			}
			pairs = append(pairs, d, v)
		}
	}
	return p.Link(section, append(pairs, kv...)...)
}

// noneValue in a filter means the dimension is empty ("no campaign").
const noneValue = "(none)"

// filterValue is a filter as the data holds it: "(none)" is empty.
func filterValue(v string) string {
	if v == noneValue {
		return ""
	}
	return v
}

type choice struct {
	Key    string
	Active bool
}

// ModelChoices are the attribution models for a switch, the current one
// marked.
func (p *page) ModelChoices(current string) []choice {
	out := make([]choice, 0, len(attribution.Models))
	for _, m := range attribution.Models {
		out = append(out, choice{Key: m, Active: m == current})
	}
	return out
}
