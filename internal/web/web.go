// Package web is the cabinet: the server-rendered pages people use in a
// browser — sign-in and accounts, the counters they may see, the dashboard,
// the end-to-end report, orders with their evidence, and the journals.
//
// Pages read the domain packages directly (reports, matching, crm, …),
// never the JSON API. Templates and assets are embedded and parsed at start
// (a broken template fails New, not a request); a page renders into a
// buffer before anything is written. Every route is registered through one
// wrapper that names who may reach it (Access), so the server-side check is
// in one place and a test can walk every route with every role.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/accounts"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/store"
)

// Access says who may reach a route.
type Access int

// Access levels. Counter levels need a role on the counter in the path
// ({id}); an admin is an owner of every counter.
const (
	Public Access = iota // anyone, signed in or not
	Person               // anyone signed in
	Admin                // the instance's admins
	Viewer               // a role on the counter: viewer or more
	Editor               // editor or owner
	Owner                // owner
)

func (a Access) String() string {
	return [...]string{"public", "person", "admin", "viewer", "editor", "owner"}[a]
}

func (a Access) role() accounts.Role {
	return map[Access]accounts.Role{Viewer: accounts.Viewer, Editor: accounts.Editor, Owner: accounts.Owner}[a]
}

// Route is one of the cabinet's routes.
type Route struct {
	Pattern string // as http.ServeMux takes it: "GET /c/{id}/report"
	Access  Access
	Handler http.Handler
}

// Config is what the cabinet needs besides the database.
type Config struct {
	Logger *slog.Logger
	// PublicURL is where people reach the server (https://tl.shop.ru): its
	// scheme makes cookies Secure, its origin is trusted for forms.
	PublicURL string
	// ClientIP returns a request's client address (behind trusted proxies,
	// from X-Forwarded-For).
	ClientIP func(*http.Request) netip.Addr
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Version is shown in the footer.
	Version string
	// KickMatcher wakes the matching worker (after a change that queued
	// orders for matching).
	KickMatcher func()
}

// Cabinet serves the web pages.
type Cabinet struct {
	db       *store.DB
	log      *slog.Logger
	cfg      Config
	views    *views
	catalogs map[string]catalog
	throttle *accounts.Throttle
	csrf     *http.CrossOriginProtection
	counters *counter.Cache
	routes   []Route
	secure   bool

	missingMu sync.Mutex
	missing   map[string]bool // catalog keys asked for and absent (tests read it)
}

// New parses the templates and catalogs and builds the routes.
func New(db *store.DB, counters *counter.Cache, cfg Config) (*Cabinet, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = func(r *http.Request) netip.Addr {
			ap, _ := netip.ParseAddrPort(r.RemoteAddr)
			return ap.Addr()
		}
	}
	c := &Cabinet{db: db, log: cfg.Logger, cfg: cfg, counters: counters, throttle: &accounts.Throttle{},
		csrf: http.NewCrossOriginProtection(), missing: map[string]bool{}}
	var err error
	if c.catalogs, err = loadCatalogs(); err != nil {
		return nil, err
	}
	if c.views, err = parseViews(); err != nil {
		return nil, err
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("web: public URL %q is not a URL", cfg.PublicURL)
		}
		c.secure = u.Scheme == "https"
		if err := c.csrf.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("web: public URL: %w", err)
		}
	}
	c.csrf.SetDenyHandler(http.HandlerFunc(c.crossOrigin))
	c.register()
	return c, nil
}

// Routes returns every route of the cabinet, for the server's router.
func (c *Cabinet) Routes() []Route { return c.routes }

// handler is a page: it renders (or redirects) and returns nil, or returns
// an error that the wrapper shows as an error page.
type handler func(w http.ResponseWriter, r *http.Request, p *page) error

// route registers a page with who may reach it. Every cabinet route goes
// through here: the access check is made before the handler runs, for
// every method, and cross-origin form posts are refused.
func (c *Cabinet) route(pattern string, access Access, h handler) {
	c.routes = append(c.routes, Route{Pattern: pattern, Access: access, Handler: c.csrf.Handler(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, access, h) }))})
}

func (c *Cabinet) serve(w http.ResponseWriter, r *http.Request, access Access, h handler) {
	securityHeaders(w.Header())
	p := &page{c: c, r: r, Now: c.cfg.Now()}
	user, err := c.sessionUser(r)
	if err != nil {
		c.fail(w, r, p, err)
		return
	}
	p.User = user
	p.L = c.locale(pickLanguage(r, userLanguage(user)), nil)
	if err := c.authorize(w, r, p, access); err != nil {
		c.fail(w, r, p, err)
		return
	}
	if err := h(w, r, p); err != nil {
		c.fail(w, r, p, err)
	}
}

func userLanguage(u *accounts.User) string {
	if u == nil {
		return ""
	}
	return u.Language
}

// Errors a page turns into its status page.
var (
	errNotFound  = errors.New("web: not found")
	errForbidden = errors.New("web: forbidden")
	errSignIn    = errors.New("web: sign-in required")
)

// authorize checks access and, on a counter's route, loads the counter and
// the person's role on it. A person without a role on the counter gets 404,
// as if it did not exist; a role too weak for the route gets 403.
func (c *Cabinet) authorize(w http.ResponseWriter, r *http.Request, p *page, access Access) error {
	if access == Public {
		return nil
	}
	if p.User == nil {
		return errSignIn
	}
	switch access {
	case Person:
		return nil
	case Admin:
		if !p.User.Admin {
			return errForbidden
		}
		return nil
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return errNotFound
	}
	role, err := accounts.RoleOn(r.Context(), c.db, *p.User, id)
	if errors.Is(err, accounts.ErrNoRole) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	cn, err := c.counters.Get(r.Context(), id)
	if errors.Is(err, counter.ErrNotFound) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	p.Counter, p.Role = &cn, role
	p.L = c.locale(p.L.Lang, cn.Location())
	if !role.Allows(access.role()) {
		return errForbidden
	}
	return nil
}

const sessionCookie = "tl_session"

func (c *Cabinet) sessionUser(r *http.Request) (*accounts.User, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	u, err := accounts.SessionUser(r.Context(), c.db, ck.Value)
	if errors.Is(err, accounts.ErrNoSession) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// signIn starts a session for u and sets its cookie.
func (c *Cabinet) signIn(w http.ResponseWriter, r *http.Request, u accounts.User) error {
	ua := r.UserAgent()
	token, err := accounts.StartSession(r.Context(), c.db, u.ID, ua, c.cfg.ClientIP(r).String())
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: c.secure || r.TLS != nil, MaxAge: int(accounts.SessionIdle / time.Second)})
	return nil
}

func (c *Cabinet) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: c.secure || r.TLS != nil, MaxAge: -1})
}

// securityHeaders are sent with every page: a strict Content-Security-Policy
// (our own scripts, styles and images only; no inline script), no framing,
// no sniffing, no referrer to other sites, no caching of pages with data.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; media-src 'self' https:; "+
		"frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// crossOrigin answers a state-changing request that did not come from our
// own pages.
func (c *Cabinet) crossOrigin(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	p := &page{c: c, r: r, Now: c.cfg.Now()}
	p.L = c.locale(pickLanguage(r, ""), nil)
	c.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	c.errorPage(w, p, http.StatusForbidden, p.L.T("error.cross_origin"))
}

// fail shows err as a page: sign-in for a guest, 404, 403, a field error's
// message, or a logged 500 that reveals nothing.
func (c *Cabinet) fail(w http.ResponseWriter, r *http.Request, p *page, err error) {
	if p.L == nil {
		p.L = c.locale(pickLanguage(r, ""), nil)
	}
	var fe *fieldError
	switch {
	case errors.Is(err, errSignIn):
		target := "/signin"
		if r.Method == http.MethodGet {
			target += "?next=" + url.QueryEscape(r.URL.RequestURI())
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	case errors.Is(err, errNotFound), isNotFound(err):
		c.errorPage(w, p, http.StatusNotFound, p.L.T("error.not_found"))
	case errors.Is(err, errForbidden):
		c.errorPage(w, p, http.StatusForbidden, p.L.T("error.forbidden"))
	case errors.As(err, &fe):
		c.errorPage(w, p, http.StatusBadRequest, fe.message(p.L))
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The browser went away.
	default:
		c.log.Error("page failed", "method", r.Method, "path", r.URL.Path, "err", err)
		c.errorPage(w, p, http.StatusInternalServerError, p.L.T("error.internal"))
	}
}

func (c *Cabinet) errorPage(w http.ResponseWriter, p *page, status int, message string) {
	p.Title = p.L.T("error.title")
	p.Data = struct {
		Status  int
		Message string
	}{status, message}
	if err := c.views.render(w, p, status, "error"); err != nil {
		c.log.Error("error page failed", "err", err)
		http.Error(w, message, status)
	}
}

// localPath keeps a redirect target on this site: a path starting with one
// slash. Anything else ("https://evil", "//evil", "/\\evil") is "/".
func localPath(s string) string {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n") {
		return "/"
	}
	return s
}

func (c *Cabinet) missingKey(key string) {
	c.missingMu.Lock()
	c.missing[key] = true
	c.missingMu.Unlock()
}

// MissingKeys returns the catalog keys pages asked for that no catalog
// has (a test fails on any).
func (c *Cabinet) MissingKeys() []string {
	c.missingMu.Lock()
	defer c.missingMu.Unlock()
	var out []string
	for k := range c.missing {
		out = append(out, k)
	}
	return out
}

// prefix shortens a rejected value for a message: a page never echoes more
// than the start of what was sent.
func prefix(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
