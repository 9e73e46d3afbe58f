package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/accounts"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/demo"
	"github.com/throughline/throughline/internal/store"
)

var ctx = context.Background()

// demoNow is the demo's "today" in the tests: its week of data ends the day
// before, in Moscow.
var demoNow = time.Date(2026, 4, 10, 9, 30, 0, 0, time.UTC)

// Every view must be rendered by some test, and every catalog key a page
// asks for must exist: checked once all tests have run.
var rendered = struct {
	sync.Mutex
	cabinets []*Cabinet
}{}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		rendered.Lock()
		seen := map[string]bool{}
		var missing []string
		for _, c := range rendered.cabinets {
			for n := range c.views.byName {
				c.views.mu.Lock()
				if c.views.executed[n] {
					seen[n] = true
				}
				c.views.mu.Unlock()
			}
			missing = append(missing, c.MissingKeys()...)
		}
		var never []string
		if len(rendered.cabinets) > 0 {
			for n := range rendered.cabinets[0].views.byName {
				if !seen[n] {
					never = append(never, n)
				}
			}
		}
		rendered.Unlock()
		sort.Strings(never)
		if len(never) > 0 && !testing.Short() && runAll() {
			fmt.Fprintf(os.Stderr, "FAIL: views no test rendered: %s\n", strings.Join(never, ", "))
			code = 1
		}
		if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: catalog keys pages asked for and no catalog has: %s\n", strings.Join(missing, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

// runAll reports whether the whole package ran (not a -run subset, which
// renders only some views).
func runAll() bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.run") {
			return false
		}
	}
	return true
}

// cabinet is a test's cabinet over a database: the demo's week in a
// counter, another counter, and people with every role.
type cabinet struct {
	db     *store.DB
	c      *Cabinet
	url    string
	demo   demo.Result
	other  counter.Counter
	people map[string]accounts.User // admin, owner, editor, viewer, outsider
	logs   *strings.Builder
	logMu  sync.Mutex
}

const password = "correct horse battery"

func newCabinet(t *testing.T, db *store.DB) *cabinet {
	t.Helper()
	res, err := demo.Generate(ctx, db, demo.Options{Seed: 1, Days: 7, Now: demoNow})
	if err != nil {
		t.Fatal(err)
	}
	f := &cabinet{db: db, demo: res, people: map[string]accounts.User{}, logs: &strings.Builder{}}
	if f.other, _, err = counter.Create(ctx, db, counter.NewCounter{Name: "Other shop", Domain: "other.example.ru"}); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"admin", "owner", "editor", "viewer", "outsider"} {
		u, err := accounts.CreateUser(ctx, db, accounts.NewUser{Email: who + "@shop.test", Password: password, Admin: who == "admin"})
		if err != nil {
			t.Fatal(err)
		}
		f.people[who] = u
		if r, err := accounts.ParseRole(who); err == nil {
			if err := accounts.Grant(ctx, db, res.CounterID, u.ID, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The outsider owns the other counter: a role, just not on the demo's.
	if err := accounts.Grant(ctx, db, f.other.ID, f.people["outsider"].ID, accounts.Owner); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		f.logMu.Lock()
		defer f.logMu.Unlock()
		return f.logs.Write(b)
	}), nil))
	f.c, err = New(db, counter.NewCache(db, time.Minute), Config{Logger: log, Version: "test",
		Now: func() time.Time { return demoNow }})
	if err != nil {
		t.Fatal(err)
	}
	rendered.Lock()
	rendered.cabinets = append(rendered.cabinets, f.c)
	rendered.Unlock()
	mux := http.NewServeMux()
	for _, rt := range f.c.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	f.url = ts.URL
	return f
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(b []byte) (int, error) { return w(b) }

// browser is a client with its own cookies that does not follow redirects,
// so tests see each 303.
type browser struct {
	t      *testing.T
	f      *cabinet
	client *http.Client
}

func (f *cabinet) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, f: f, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// as is a browser signed in as one of the people, through the sign-in form.
func (f *cabinet) as(t *testing.T, who string) *browser {
	t.Helper()
	b := f.browser(t)
	r := b.post("/signin", url.Values{"email": {f.people[who].Email}, "password": {password}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %d %s", who, r.status, r.body)
	}
	return b
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) resp {
	b.t.Helper()
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, string(body)}
}

func (b *browser) get(path string) resp {
	b.t.Helper()
	req, err := http.NewRequest("GET", b.f.url+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form as a browser does from our own page (Sec-Fetch-Site:
// same-origin).
func (b *browser) post(path string, form url.Values, header ...string) resp {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.f.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", b.f.url)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	return b.do(req)
}
