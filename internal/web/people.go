package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/throughline/throughline/internal/accounts"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/matching"
)

type peopleData struct {
	People []accounts.User
	// Link is a one-time password link just made, shown once with whose
	// it is.
	Link, LinkEmail string
}

func (c *Cabinet) peoplePage(w http.ResponseWriter, r *http.Request, p *page) error {
	return c.renderPeople(w, r, p, http.StatusOK, peopleData{})
}

func (c *Cabinet) renderPeople(w http.ResponseWriter, r *http.Request, p *page, status int, d peopleData) error {
	var err error
	if d.People, err = accounts.ListUsers(r.Context(), c.db); err != nil {
		return err
	}
	p.Title = p.L.T("people.title")
	if done := r.URL.Query().Get("done"); done != "" && p.L.has("done."+done) {
		p.Notice = p.L.T("done." + done)
	}
	p.Data = d
	return c.views.render(w, p, status, "people")
}

// peopleCreate adds a person without a password and shows the one-time
// link with which they set theirs (the admin passes it on).
func (c *Cabinet) peopleCreate(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Form = newForm(r)
	u, err := accounts.CreateUser(r.Context(), c.db, accounts.NewUser{Email: r.PostFormValue("email"), Name: r.PostFormValue("name"),
		Admin: r.PostFormValue("admin") == "on"})
	if c.formError(p, err) {
		return c.renderPeople(w, r, p, http.StatusBadRequest, peopleData{})
	}
	if err != nil {
		return err
	}
	c.log.Info("person created", "user", u.ID, "email", u.Email, "admin", u.Admin, "by", p.User.Email)
	return c.showPasswordLink(w, r, p, u)
}

func (c *Cabinet) showPasswordLink(w http.ResponseWriter, r *http.Request, p *page, u accounts.User) error {
	token, err := accounts.NewLink(r.Context(), c.db, accounts.LinkPassword, u.ID)
	if err != nil {
		return err
	}
	p.Form = nil
	return c.renderPeople(w, r, p, http.StatusOK, peopleData{Link: baseURL(r, c.cfg.PublicURL) + "/password/" + token, LinkEmail: u.Email})
}

func (c *Cabinet) personInPath(r *http.Request) (accounts.User, error) {
	id, err := strconv.ParseInt(r.PathValue("user"), 10, 64)
	if err != nil {
		return accounts.User{}, errNotFound
	}
	u, err := accounts.GetUser(r.Context(), c.db, id)
	if errors.Is(err, accounts.ErrNotFound) {
		return accounts.User{}, errNotFound
	}
	return u, err
}

// peopleLink makes a new password link for a person (a forgotten
// password); their password stays until they use it.
func (c *Cabinet) peopleLink(w http.ResponseWriter, r *http.Request, p *page) error {
	u, err := c.personInPath(r)
	if err != nil {
		return err
	}
	c.log.Info("password link made", "user", u.ID, "by", p.User.Email)
	return c.showPasswordLink(w, r, p, u)
}

func (c *Cabinet) peopleAdmin(w http.ResponseWriter, r *http.Request, p *page) error {
	u, err := c.personInPath(r)
	if err != nil {
		return err
	}
	admin := r.PostFormValue("admin") == "on"
	if err := accounts.SetAdmin(r.Context(), c.db, u.ID, admin); err != nil {
		var fe *accounts.FieldError
		if errors.As(err, &fe) {
			p.Form = &form{Errors: map[string]string{}, Message: fe.Message}
			return c.renderPeople(w, r, p, http.StatusConflict, peopleData{})
		}
		return err
	}
	c.log.Info("admin changed", "user", u.ID, "admin", admin, "by", p.User.Email)
	return redirect(w, r, "/people?done=saved")
}

type accessData struct {
	Members         []accounts.Member
	Roles           []accounts.Role
	Link, LinkEmail string
}

func (c *Cabinet) accessPage(w http.ResponseWriter, r *http.Request, p *page) error {
	return c.renderAccess(w, r, p, http.StatusOK, accessData{})
}

func (c *Cabinet) renderAccess(w http.ResponseWriter, r *http.Request, p *page, status int, d accessData) error {
	var err error
	if d.Members, err = accounts.Members(r.Context(), c.db, p.Counter.ID); err != nil {
		return err
	}
	d.Roles = accounts.Roles
	p.Title, p.Section = p.L.T("access.title"), "access"
	if done := r.URL.Query().Get("done"); done != "" && p.L.has("done."+done) {
		p.Notice = p.L.T("done." + done)
	}
	p.Data = d
	return c.views.render(w, p, status, "access")
}

// accessAdd gives a person a role on the counter. A person the instance
// does not know yet is created without a password, and the owner gets the
// one-time link to pass on.
func (c *Cabinet) accessAdd(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Form = newForm(r)
	role, err := accounts.ParseRole(r.PostFormValue("role"))
	if c.formError(p, err) {
		return c.renderAccess(w, r, p, http.StatusBadRequest, accessData{})
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	u, err := accounts.UserByEmail(r.Context(), c.db, email)
	created := false
	if errors.Is(err, accounts.ErrNotFound) {
		u, err = accounts.CreateUser(r.Context(), c.db, accounts.NewUser{Email: email})
		created = err == nil
	}
	if c.formError(p, err) {
		return c.renderAccess(w, r, p, http.StatusBadRequest, accessData{})
	}
	if err != nil {
		return err
	}
	if err := accounts.Grant(r.Context(), c.db, p.Counter.ID, u.ID, role); err != nil {
		return err
	}
	c.log.Info("role granted", "counter", p.Counter.ID, "user", u.ID, "role", role, "by", p.User.Email)
	if !created {
		return redirect(w, r, p.CounterURL("access")+"?done=saved")
	}
	token, err := accounts.NewLink(r.Context(), c.db, accounts.LinkPassword, u.ID)
	if err != nil {
		return err
	}
	p.Form = nil
	return c.renderAccess(w, r, p, http.StatusOK, accessData{Link: baseURL(r, c.cfg.PublicURL) + "/password/" + token, LinkEmail: u.Email})
}

// accessChange changes a member's role, or removes them ("remove").
func (c *Cabinet) accessChange(w http.ResponseWriter, r *http.Request, p *page) error {
	u, err := c.personInPath(r)
	if err != nil {
		return err
	}
	if r.PostFormValue("action") == "remove" {
		err = accounts.Revoke(r.Context(), c.db, p.Counter.ID, u.ID)
	} else {
		var role accounts.Role
		if role, err = accounts.ParseRole(r.PostFormValue("role")); err == nil {
			err = accounts.ChangeRole(r.Context(), c.db, p.Counter.ID, u.ID, role)
		}
	}
	if errors.Is(err, accounts.ErrNotFound) {
		return errNotFound
	}
	var fe *accounts.FieldError
	if errors.As(err, &fe) {
		p.Form = &form{Errors: map[string]string{}, Message: fe.Message}
		return c.renderAccess(w, r, p, http.StatusConflict, accessData{})
	}
	if err != nil {
		return err
	}
	c.log.Info("role changed", "counter", p.Counter.ID, "user", u.ID, "action", r.PostFormValue("action"), "by", p.User.Email)
	return redirect(w, r, p.CounterURL("access")+"?done=saved")
}

// settingsPage shows the counter's settings (editors and owners change
// them; the integrations' own pages come with them).
func (c *Cabinet) settingsPage(w http.ResponseWriter, r *http.Request, p *page) error {
	cn := p.Counter
	p.Form = &form{Values: map[string][]string{
		"name": {cn.Name}, "domain": {cn.Domain}, "timezone": {cn.Timezone},
		"session_timeout_minutes": {strconv.Itoa(cn.SessionTimeoutMinutes)},
		"lookback_days":           {strconv.Itoa(cn.LookbackDays)},
	}, Errors: map[string]string{}}
	if done := r.URL.Query().Get("done"); done != "" && p.L.has("done."+done) {
		p.Notice = p.L.T("done." + done)
	}
	return c.renderSettings(w, p, http.StatusOK)
}

func (c *Cabinet) renderSettings(w http.ResponseWriter, p *page, status int) error {
	p.Title, p.Section = p.L.T("settings.title"), "settings"
	return c.views.render(w, p, status, "settings")
}

func (c *Cabinet) settingsPost(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Form = newForm(r)
	var patch counter.Patch
	for _, f := range []struct {
		name string
		dst  **string
	}{{"name", &patch.Name}, {"domain", &patch.Domain}, {"timezone", &patch.Timezone}} {
		if v, ok := r.PostForm[f.name]; ok {
			*f.dst = &v[0]
		}
	}
	for _, f := range []struct {
		name string
		dst  **int
	}{{"session_timeout_minutes", &patch.SessionTimeoutMinutes}, {"lookback_days", &patch.LookbackDays}} {
		if v := strings.TrimSpace(r.PostFormValue(f.name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				p.Form.Errors[f.name] = p.L.T("error.not_a_number")
				return c.renderSettings(w, p, http.StatusBadRequest)
			}
			*f.dst = &n
		}
	}
	ch, err := matching.UpdateCounter(r.Context(), c.db, p.Counter.ID, patch)
	c.counters.Forget(p.Counter.ID)
	if c.counterFieldError(p, err) {
		return c.renderSettings(w, p, http.StatusBadRequest)
	}
	if err != nil {
		return err
	}
	c.log.Info("counter settings changed", "counter", p.Counter.ID, "by", p.User.Email)
	if ch.Requeued > 0 && c.cfg.KickMatcher != nil {
		c.cfg.KickMatcher()
	}
	return redirect(w, r, p.CounterURL("settings")+"?done=saved")
}
