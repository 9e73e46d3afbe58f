package server

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/accounts"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
	"github.com/throughline/throughline/internal/web"
)

// publicRoutes are the routes anyone may call without credentials: the
// tracker's (cross-origin by design), the telephony providers' hooks
// (their token is in the path), probes, and the fallbacks. A new route is
// public only by being added here.
var publicRoutes = []string{
	"GET /healthz", "GET /metrics", "GET /api/v1/openapi.json",
	"GET /t.js", "POST /collect", "GET /collect.gif", "OPTIONS /collect",
	"POST /numbers/lease", "OPTIONS /numbers/lease", "POST /numbers/heartbeat", "OPTIONS /numbers/heartbeat",
	"POST /numbers/release", "OPTIONS /numbers/release", "POST /leads/collect", "OPTIONS /leads/collect",
	"POST /forms/capture", "OPTIONS /forms/capture",
	"GET /hooks/calls/{provider}/{token}", "POST /hooks/calls/{provider}/{token}",
	"GET /hooks/calls/{provider}/{token}/{rest...}", "POST /hooks/calls/{provider}/{token}/{rest...}",
	"/api/", "/cdp/", "/management/",
}

// TestEveryRouteIsGuarded walks the router: every route is public by the
// list above, takes a counter's token, or is a cabinet page whose access is
// then checked for every role.
func TestEveryRouteIsGuarded(t *testing.T) {
	f := newFixture(t, storetest.Open(t, store.SQLite))
	var patterns []string
	for p := range f.srv.quiet {
		patterns = append(patterns, p)
	}
	sort.Strings(patterns)
	for _, p := range patterns {
		method, path, _ := strings.Cut(p, " ")
		if path == "" {
			method, path = "GET", p
		}
		switch g := f.srv.guards[p]; g {
		case "token":
			u := fill(t, path, map[string]string{"id": strconv.FormatInt(f.a.ID, 10)}, "1")
			if r := f.do(t, method, u, "", nil); r.status != http.StatusUnauthorized {
				t.Errorf("%s without a token: %d, want 401", p, r.status)
			}
			if r := f.do(t, method, u, f.tokB, nil); r.status != http.StatusNotFound {
				t.Errorf("%s with another counter's token: %d, want 404", p, r.status)
			}
		case "cdp":
			u := fill(t, path, map[string]string{"counterId": strconv.FormatInt(f.a.ID, 10)}, "1")
			if r := f.do(t, method, u, "", nil); r.status != http.StatusUnauthorized {
				t.Errorf("%s without a token: %d, want 401", p, r.status)
			}
			if r := f.do(t, method, u, f.tokB, nil); r.status != http.StatusForbidden {
				t.Errorf("%s with another counter's token: %d, want 403", p, r.status)
			}
		case "person":
			if r := f.do(t, method, path, "", nil); r.status != http.StatusUnauthorized {
				t.Errorf("%s without a token: %d, want 401", p, r.status)
			}
			if r := f.do(t, method, path, f.tokA, nil); r.status != http.StatusForbidden {
				t.Errorf("%s with a counter's token: %d, want 403", p, r.status)
			}
		case "web":
			// Checked below, role by role.
		case "":
			if !slices.Contains(publicRoutes, p) {
				t.Errorf("%s is registered without a guard and is not in publicRoutes: register it through "+
					"counterAPI, cdp or the cabinet (web.Access), or list it as public on purpose", p)
			}
		default:
			t.Errorf("%s: unknown guard %q", p, g)
		}
	}
	testCabinetAccess(t, f)
}

// fill puts values into a pattern's wildcards (otherwise, when given, into
// the rest); a wildcard without a value fails the test, naming it.
func fill(t *testing.T, path string, values map[string]string, otherwise ...string) string {
	t.Helper()
	return regexp.MustCompile(`\{([a-zA-Z]+)(\.\.\.)?\}|\{\$\}`).ReplaceAllStringFunc(path, func(w string) string {
		if w == "{$}" {
			return ""
		}
		name := strings.Trim(w, "{}.")
		v, ok := values[name]
		if !ok && len(otherwise) > 0 {
			v, ok = otherwise[0], true
		}
		if !ok {
			t.Fatalf("%s: the route walk has no value for {%s}: add one in testCabinetAccess", path, name)
		}
		return url.PathEscape(v)
	})
}

// testCabinetAccess requests every cabinet route as a guest, a person
// without a role on the counter, a viewer, an editor, an owner and an admin,
// and checks what the route's Access promises: a guest is sent to sign in,
// a person without a role gets 404 on the counter's pages, a weaker role
// gets 403, and everyone else gets through (neither 403, nor 404, nor the
// sign-in page).
func testCabinetAccess(t *testing.T, f *fixture) {
	ctx := context.Background()
	type principal struct {
		name   string
		user   *accounts.User
		role   accounts.Role
		cookie string
	}
	var people []*principal
	for _, who := range []string{"guest", "outsider", "viewer", "editor", "owner", "admin"} {
		p := &principal{name: who}
		if who != "guest" {
			u, err := accounts.CreateUser(ctx, f.db, accounts.NewUser{Email: who + "@walk.test", Admin: who == "admin"})
			if err != nil {
				t.Fatal(err)
			}
			p.user = &u
			if r, err := accounts.ParseRole(who); err == nil {
				p.role = r
				if err := accounts.Grant(ctx, f.db, f.a.ID, u.ID, r); err != nil {
					t.Fatal(err)
				}
			}
			if who == "outsider" {
				accounts.Grant(ctx, f.db, f.b.ID, u.ID, accounts.Owner)
			}
			if who == "admin" {
				p.role = accounts.Owner
			}
		}
		people = append(people, p)
	}
	viewer := people[2].user
	for _, rt := range f.srv.web.Routes() {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		for _, p := range people {
			values := map[string]string{"id": strconv.FormatInt(f.a.ID, 10), "user": strconv.FormatInt(viewer.ID, 10),
				"token": "x", "file": "app.css"}
			var cookie *http.Cookie
			if p.user != nil {
				s, err := accounts.StartSession(ctx, f.db, p.user.ID, "walk", "")
				if err != nil {
					t.Fatal(err)
				}
				cookie = &http.Cookie{Name: "tl_session", Value: s}
				if _, tok, err := accounts.CreateToken(ctx, f.db, p.user.ID, "walk"); err == nil {
					values["token"] = strings.Split(tok, "_")[2]
				}
			}
			req, _ := http.NewRequest(method, f.url+fill(t, path, values), nil)
			if method == http.MethodPost {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Sec-Fetch-Site", "same-origin")
			}
			if cookie != nil {
				req.AddCookie(cookie)
			}
			res, err := noRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			toSignIn := res.StatusCode == http.StatusSeeOther && strings.HasPrefix(res.Header.Get("Location"), "/signin")
			want := "through"
			switch {
			case rt.Access == web.Public:
			case p.user == nil:
				want = "signin"
			case rt.Access == web.Admin && !p.user.Admin:
				want = "403"
			case rt.Access >= web.Viewer && p.role == "":
				want = "404"
			case rt.Access >= web.Viewer && !p.role.Allows(accounts.Role(rt.Access.String())):
				want = "403"
			}
			got := "through"
			switch {
			case toSignIn && rt.Access != web.Public:
				got = "signin"
			case res.StatusCode == http.StatusForbidden:
				got = "403"
			case res.StatusCode == http.StatusNotFound && rt.Pattern != "GET /static/{file}":
				got = "404"
			}
			if got != want {
				t.Errorf("%s as %s (route access %s): %d %s, want %s", rt.Pattern, p.name, rt.Access, res.StatusCode, got, want)
			}
		}
	}
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
