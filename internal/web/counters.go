package web

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/throughline/throughline/internal/accounts"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/reports"
)

// staleAfter is how long a stream may be silent before the counters list
// flags it: a day without a hit means the snippet is gone or the site is
// down; two days without an import means the CRM feed stopped.
const (
	hitsStaleAfter   = 24 * time.Hour
	importStaleAfter = 48 * time.Hour
)

type counterRow struct {
	Counter  counter.Counter
	Role     accounts.Role
	Activity reports.Activity
	Requests int64
	// Stale flags: nothing arrived for too long (or ever).
	HitsStale, ImportStale bool
}

func (c *Cabinet) countersPage(w http.ResponseWriter, r *http.Request, p *page) error {
	roles, err := accounts.Counters(r.Context(), c.db, *p.User)
	if err != nil {
		return err
	}
	rows := make([]counterRow, 0, len(roles))
	for _, cr := range roles {
		cn, err := c.counters.Get(r.Context(), cr.CounterID)
		if errors.Is(err, counter.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		loc := cn.Location()
		y, m, d := p.Now.In(loc).Date()
		act, err := reports.RecentActivity(r.Context(), c.db, cn.ID, time.Date(y, m, d, 0, 0, 0, 0, loc))
		if err != nil {
			return err
		}
		rows = append(rows, counterRow{Counter: cn, Role: cr.Role, Activity: act, Requests: act.Calls + act.Leads,
			HitsStale:   act.LastHit.IsZero() || p.Now.Sub(act.LastHit) > hitsStaleAfter,
			ImportStale: act.LastImportFailed || (!act.LastImport.IsZero() && p.Now.Sub(act.LastImport) > importStaleAfter)})
	}
	p.Title = p.L.T("counters.title")
	p.Data = rows
	return c.render(w, p, "counters")
}

func (c *Cabinet) counterNewPage(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Title = p.L.T("counters.new_title")
	p.Form = &form{Values: map[string][]string{"timezone": {counter.DefaultTimezone}}, Errors: map[string]string{}}
	return c.render(w, p, "counter_new")
}

// counterNewPost creates a counter, makes its creator its owner, and shows
// the counter's first API token once with the snippet to install.
func (c *Cabinet) counterNewPost(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Title = p.L.T("counters.new_title")
	p.Form = newForm(r)
	cn, token, err := counter.Create(r.Context(), c.db, counter.NewCounter{Name: r.PostFormValue("name"),
		Domain: r.PostFormValue("domain"), Timezone: r.PostFormValue("timezone")})
	if c.counterFieldError(p, err) {
		return c.views.render(w, p, http.StatusBadRequest, "counter_new")
	}
	if err != nil {
		return err
	}
	if err := accounts.Grant(r.Context(), c.db, cn.ID, p.User.ID, accounts.Owner); err != nil {
		return err
	}
	c.log.Info("counter created", "counter", cn.ID, "by", p.User.Email)
	p.Counter, p.Role = &cn, accounts.Owner
	p.Title = p.L.T("counters.created_title")
	p.Data = struct {
		Token, Snippet string
	}{token, snippet(r, c.cfg.PublicURL, cn.ID)}
	return c.render(w, p, "counter_created")
}

// counterFieldError shows a counter's validation error beside its field.
func (c *Cabinet) counterFieldError(p *page, err error) bool {
	var ie *counter.InvalidError
	if errors.As(err, &ie) {
		p.Form.Errors[ie.Field] = ie.Message
		return true
	}
	return false
}

// snippet is the tracker's tag for a counter, pointing at this server.
func snippet(r *http.Request, publicURL string, id int64) string {
	return `<script async src="` + baseURL(r, publicURL) + `/t.js" data-counter="` + strconv.FormatInt(id, 10) + `"></script>`
}

// baseURL is where browsers reach this server: the public URL when set,
// else the request's own scheme and host.
func baseURL(r *http.Request, publicURL string) string {
	if publicURL != "" {
		return publicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
