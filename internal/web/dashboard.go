package web

import (
	"encoding/json"
	"math"
	"net/http"

	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/reports"
)

func (c *Cabinet) dashboardRoutes() {
	c.route("GET /c/{id}/{$}", Viewer, c.dashboardPage)
}

// card is one figure of the dashboard with its change against the period
// before.
type card struct {
	Key    string   // sessions, requests, …: the catalog's metric.<key>
	Value  string   // as shown
	Raw    float64  // the number itself (data-value)
	Change *float64 // relative change (or, for ROMI, the difference), nil when there is nothing to compare
	Points bool     // Change is a difference of percentages
	// LowerIsBetter: a cost per request going down is good news.
	LowerIsBetter bool
	Link          string
}

// Trend is "up", "down" or "" for the card's arrow.
func (c card) Trend() string {
	switch {
	case c.Change == nil || *c.Change == 0:
		return ""
	case *c.Change > 0:
		return "up"
	}
	return "down"
}

// Good reports whether the change is good news (green) or bad (red).
func (c card) Good() bool { return (c.Trend() == "up") != c.LowerIsBetter }

type dashboardData struct {
	Period  period
	Model   string
	Cards   []card
	Charts  []chart
	Days    []reports.Day
	Quality []shareSegment
	// NotFound is the period's share of orders that no evidence matched.
	NotFound shareSegment
	Orders   int64 // orders matched or not, created in the period
}

// dashboardPage is a counter's overview of a period: the figures a marketer
// checks every morning, compared with the period before, day by day, and
// how well orders were matched.
func (c *Cabinet) dashboardPage(w http.ResponseWriter, r *http.Request, p *page) error {
	q := r.URL.Query()
	per, err := parsePeriod(q, p.today())
	if err != nil {
		return err
	}
	model, err := parseModel(q)
	if err != nil {
		return err
	}
	dims, err := parseDims(q)
	if err != nil {
		return err
	}
	loc := p.Counter.Location()
	query := func(from, to period) reports.Query {
		return reports.Query{From: from.From, To: to.To, Group: []string{"traffic_type"}, Model: model, Date: reports.DateOrder, Filter: filters(dims)}
	}
	cur, err := reports.EndToEnd(r.Context(), c.db, p.Counter.ID, loc, query(per, per), p.Now)
	if err != nil {
		return err
	}
	prevPer := period{From: per.PrevFrom, To: per.PrevTo}
	prev, err := reports.EndToEnd(r.Context(), c.db, p.Counter.ID, loc, query(prevPer, prevPer), p.Now)
	if err != nil {
		return err
	}
	d := dashboardData{Period: per, Model: model}
	d.Cards = c.cards(p, cur.Totals, prev.Totals)
	if per.Days() <= reports.MaxDailyDays {
		daily, err := reports.DailySeries(r.Context(), c.db, p.Counter.ID, loc, query(per, per), p.Now)
		if err != nil {
			return err
		}
		d.Days = daily.Days
		d.Charts = dashboardCharts(p, daily.Days)
	}
	d.Quality, d.NotFound, d.Orders = quality(p, cur.Quality)
	p.Title, p.Section = p.L.T("nav.dashboard"), "dashboard"
	p.Data = d
	return c.render(w, p, "dashboard")
}

// filters turns a page's dimension filters into the report's ("(none)"
// is the empty value).
func filters(dims map[string]string) map[string]string {
	if len(dims) == 0 {
		return nil
	}
	out := make(map[string]string, len(dims))
	for k, v := range dims {
		out[k] = filterValue(v)
	}
	return out
}

func num(n json.Number) float64 {
	f, _ := n.Float64()
	return f
}

func numPtr(n *json.Number) (float64, bool) {
	if n == nil {
		return 0, false
	}
	return num(*n), true
}

// cards are the dashboard's figures; each links to what is behind it.
func (c *Cabinet) cards(p *page, cur, prev reports.Metrics) []card {
	rel := func(a, b float64, okA, okB bool) *float64 {
		if !okA || !okB || b == 0 {
			return nil
		}
		v := (a - b) / math.Abs(b)
		return &v
	}
	money := func(key string, a, b float64, okA, okB bool, lowerBetter bool, link string) card {
		k := card{Key: key, Raw: a, Value: "—", Change: rel(a, b, okA, okB), LowerIsBetter: lowerBetter, Link: link}
		if okA {
			k.Value = p.Money(a)
		}
		return k
	}
	count := func(key string, a, b float64, link string) card {
		return card{Key: key, Raw: a, Value: p.L.Num(a), Change: rel(a, b, true, true), Link: link}
	}
	cplA, okA := numPtr(cur.CPL)
	cplB, okB := numPtr(prev.CPL)
	cpoA, okC := numPtr(cur.CPO)
	cpoB, okD := numPtr(prev.CPO)
	romi := card{Key: "romi", Value: p.L.Ratio(cur.ROMI), Points: true, Link: p.Link("report")}
	if cur.ROMI != nil {
		romi.Raw = *cur.ROMI
		if prev.ROMI != nil {
			d := *cur.ROMI - *prev.ROMI
			romi.Change = &d
		}
	}
	return []card{
		count("sessions", float64(cur.Sessions), float64(prev.Sessions), p.Link("sessions")),
		count("requests", float64(cur.Requests), float64(prev.Requests), p.Link("calls")),
		count("orders", cur.Orders, prev.Orders, p.Link("orders", "status", "all")),
		money("revenue", num(cur.Revenue), num(prev.Revenue), true, true, false, p.Link("orders", "status", "paid")),
		money("cost", num(cur.Cost), num(prev.Cost), true, true, true, p.Link("report")),
		romi,
		money("cpl", cplA, cplB, okA, okB, true, p.Link("report")),
		money("cpo", cpoA, cpoB, okC, okD, true, p.Link("report")),
	}
}

// dashboardCharts draw the period day by day: revenue against cost (one
// money axis), sessions, and requests with orders.
func dashboardCharts(p *page, days []reports.Day) []chart {
	labels := make([]string, len(days))
	var sessions, requests, orders, revenue, cost []float64
	for i, d := range days {
		labels[i] = p.L.Day(d.Day)
		sessions = append(sessions, float64(d.Sessions))
		requests = append(requests, float64(d.Requests))
		orders = append(orders, d.Orders)
		revenue = append(revenue, num(d.Revenue))
		cost = append(cost, num(d.Cost))
	}
	money := func(v float64) string { return p.Money(v) }
	count := func(v float64) string { return p.L.Num(v) }
	return []chart{
		dayChart("chart-money", p.L.T("dashboard.chart_money"), labels, []seriesData{
			{p.L.T("metric.revenue"), revenue, money}, {p.L.T("metric.cost"), cost, money}}, p.L.compact, false),
		dayChart("chart-sessions", p.L.T("metric.sessions"), labels, []seriesData{
			{p.L.T("metric.sessions"), sessions, count}}, p.L.compact, true),
		dayChart("chart-requests", p.L.T("dashboard.chart_requests"), labels, []seriesData{
			{p.L.T("metric.requests"), requests, count}, {p.L.T("metric.orders"), orders, count}}, p.L.compact, false),
	}
}

// rungClasses colour the rungs; red is kept for "not found".
var rungClasses = []string{"s1", "s2", "s3", "s4", "s6", "s7", "s8"}

// quality lays the orders' rungs across a bar, "not found" called out.
func quality(p *page, rungs []reports.RungShare) ([]shareSegment, shareSegment, int64) {
	segs := make([]shareSegment, 0, len(rungs))
	var total int64
	for i, r := range rungs {
		total += r.Orders
		s := shareSegment{Key: r.Rung, Label: p.L.T("rung." + r.Rung), Count: r.Orders, Class: rungClasses[i%len(rungClasses)],
			Emphasised: r.Rung == matching.RungNotFound, Link: p.Link("orders", "rung", r.Rung)}
		segs = append(segs, s)
	}
	segs = shareBar(segs)
	var notFound shareSegment
	for i := range segs {
		share := segs[i].Share
		segs[i].Percent = p.L.Pct(&share)
		segs[i].ShareString = p.L.N("dashboard.orders_share", segs[i].Count) + " · " + segs[i].Percent
		if segs[i].Emphasised {
			notFound = segs[i]
		}
	}
	return segs, notFound, total
}

// compact is an axis label: 1 200 000 → 1,2 млн / 1.2M.
func (l *Locale) compact(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return l.T("unit.million", l.Dec(v/1e6, decimalsFor(v/1e6)))
	case a >= 1e3:
		return l.T("unit.thousand", l.Dec(v/1e3, decimalsFor(v/1e3)))
	}
	return l.Dec(v, decimalsFor(v))
}

// decimalsFor shows one decimal for small round numbers (2.5k) and none for
// whole ones.
func decimalsFor(v float64) int {
	if v == math.Trunc(v) || math.Abs(v) >= 100 {
		return 0
	}
	return 1
}
