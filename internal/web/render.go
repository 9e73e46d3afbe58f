package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/throughline/throughline/internal/accounts"
	"github.com/throughline/throughline/internal/counter"
)

// Templates: a layout, partials, and one file per view defining "main".
// All are parsed at start.
//
//go:embed templates
var templateFS embed.FS

type views struct {
	byName map[string]*template.Template

	mu       sync.Mutex
	executed map[string]bool
}

func parseViews() (*views, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/views/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	v := &views{byName: map[string]*template.Template{}, executed: map[string]bool{}}
	for _, n := range names {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", n, err)
		}
		v.byName[strings.TrimSuffix(path.Base(n), ".html")] = t
	}
	return v, nil
}

// render executes a view in the layout into a buffer, then writes it: a
// template error is a 500 page, never half a page.
func (v *views) render(w http.ResponseWriter, p *page, status int, name string) error {
	t := v.byName[name]
	if t == nil {
		return fmt.Errorf("web: no view %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	v.mu.Lock()
	v.executed[name] = true
	v.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// Unexecuted lists the views no request has rendered yet (a test fails on
// any: a view nobody renders is dead or untested).
func (c *Cabinet) Unexecuted() []string {
	c.views.mu.Lock()
	defer c.views.mu.Unlock()
	var out []string
	for n := range c.views.byName {
		if !c.views.executed[n] {
			out = append(out, n)
		}
	}
	return out
}

var funcs = template.FuncMap{
	"asset": assetURL,
	"add":   func(a, b int) int { return a + b },
	// mul100 turns a difference of ratios into percentage points.
	"mul100": func(v *float64) float64 { return *v * 100 },
	"join":   strings.Join,
	"dict": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
}

// page is what every template gets: who is looking, in which language, at
// which counter, and the view's own data.
type page struct {
	c *Cabinet
	r *http.Request

	L       *Locale
	User    *accounts.User
	Counter *counter.Counter
	Role    accounts.Role
	Now     time.Time

	Title   string
	Section string // the navigation entry to highlight
	Data    any
	Form    *form
	Notice  string // a confirmation after a redirect (?done=…)
}

// Can reports whether the person's role on the page's counter allows what
// needs role ("viewer", "editor", "owner").
func (p *page) Can(role string) bool { return p.Role.Allows(accounts.Role(role)) }

// CounterURL is a path within the page's counter: CounterURL "report" →
// /c/7/report.
func (p *page) CounterURL(rest ...string) string {
	if p.Counter == nil {
		return "/"
	}
	return "/c/" + strconv.FormatInt(p.Counter.ID, 10) + "/" + strings.Join(rest, "/")
}

// Path is the request's path.
func (p *page) Path() string { return p.r.URL.Path }

// Query is a query parameter of the request.
func (p *page) Query(name string) string { return p.r.URL.Query().Get(name) }

// With is the current URL with some query parameters replaced (pairs of
// name, value; an empty value removes the parameter) — how links keep the
// period, model and filters while changing one thing.
func (p *page) With(kv ...string) string {
	q := p.r.URL.Query()
	q.Del("cursor")
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return withQuery(p.r.URL.Path, q)
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// Currency is the page's counter's currency (RUB outside a counter).
func (p *page) Currency() string {
	if p.Counter == nil || p.Counter.Currency == "" {
		return "RUB"
	}
	return p.Counter.Currency
}

// Money formats an amount in major units in the counter's currency.
func (p *page) Money(v any) string { return p.L.Money(v, p.Currency()) }

// Version is the server's version, for the footer.
func (p *page) Version() string { return p.c.cfg.Version }

// form is a submitted form being shown again: what was typed and the
// message beside each field that was wrong.
type form struct {
	Values  url.Values
	Errors  map[string]string
	Message string // about the form as a whole
}

func newForm(r *http.Request) *form {
	r.ParseForm() // a malformed body leaves the fields empty; they are checked
	return &form{Values: r.PostForm, Errors: map[string]string{}}
}

// V is a field's submitted value.
func (f *form) V(name string) string {
	if f == nil {
		return ""
	}
	return f.Values.Get(name)
}

// Err is the message beside a field.
func (f *form) Err(name string) string {
	if f == nil {
		return ""
	}
	return f.Errors[name]
}

// fieldError is a wrong input on a page, shown with its message: a catalog
// key (translated) or, for messages of the domain packages, their text.
type fieldError struct {
	Field string
	Key   string
	Args  []any
	Text  string
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Key + e.Text }

func (e *fieldError) message(l *Locale) string {
	if e.Key != "" {
		return l.T(e.Key, e.Args...)
	}
	return e.Field + ": " + e.Text
}

func badParam(field, key string, args ...any) error {
	return &fieldError{Field: field, Key: key, Args: args}
}

// render shows a view with status 200.
func (c *Cabinet) render(w http.ResponseWriter, p *page, view string) error {
	return c.views.render(w, p, http.StatusOK, view)
}

// redirect answers a form post: 303 to a GET of target.
func redirect(w http.ResponseWriter, r *http.Request, target string) error {
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

type navItem struct {
	Key, URL string
	Active   bool
}

// counterSections are the counter's pages in the navigation, with the role
// each needs.
var counterSections = []struct {
	section, path string
	need          Access
}{
	{"dashboard", "", Viewer}, {"report", "report", Viewer}, {"models", "models", Viewer}, {"orders", "orders", Viewer},
	{"sessions", "sessions", Viewer}, {"calls", "calls", Viewer}, {"leads", "leads", Viewer},
	{"settings", "settings", Editor}, {"access", "access", Owner},
}

// Nav is the counter's navigation: the sections the person's role may open.
func (p *page) Nav() []navItem {
	var out []navItem
	for _, s := range counterSections {
		if p.Role.Allows(s.need.role()) {
			out = append(out, navItem{Key: "nav." + s.section, URL: p.CounterURL(s.path), Active: p.Section == s.section})
		}
	}
	return out
}
