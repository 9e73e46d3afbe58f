package web

import (
	"net/http"

	"github.com/throughline/throughline/internal/attribution"
	"github.com/throughline/throughline/internal/reports"
)

func (c *Cabinet) dashboardRoutes() {
	c.route("GET /c/{id}/{$}", Viewer, c.dashboardPage)
}

type dashboardData struct {
	Period period
	Report *reports.Report
}

// dashboardPage is a counter's overview for a period.
func (c *Cabinet) dashboardPage(w http.ResponseWriter, r *http.Request, p *page) error {
	per, err := parsePeriod(r.URL.Query(), p.today())
	if err != nil {
		return err
	}
	rep, err := reports.EndToEnd(r.Context(), c.db, p.Counter.ID, p.Counter.Location(),
		reports.Query{From: per.From, To: per.To, Group: []string{"traffic_type"}, Model: attribution.LastNonDirect, Date: reports.DateOrder}, p.Now)
	if err != nil {
		return err
	}
	p.Title, p.Section = p.L.T("nav.dashboard"), "dashboard"
	p.Data = dashboardData{Period: per, Report: rep}
	return c.render(w, p, "dashboard")
}
