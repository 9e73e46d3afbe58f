package server

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/throughline/throughline/internal/secrets"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

type fixture struct {
	db     *store.DB
	srv    *Server
	url    string
	a, b   counter.Counter
	tokA   string
	tokB   string
	logBuf *bytes.Buffer
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	return newFixtureWith(t, db, Config{})
}

// newFixtureWith is newFixture with a server configured by cfg.
// testBox seals what the tests' servers store, as serve's --secret-key does.
var testBox = func() *secrets.Box {
	b, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		panic(err)
	}
	return b
}()

func newFixtureWith(t *testing.T, db *store.DB, cfg Config) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: db, logBuf: &bytes.Buffer{}}
	var err error
	if f.a, f.tokA, err = counter.Create(ctx, db, counter.NewCounter{Name: "Shop A", Domain: "a.example.ru"}); err != nil {
		t.Fatal(err)
	}
	if f.b, f.tokB, err = counter.Create(ctx, db, counter.NewCounter{Name: "Shop B", Domain: "b.example.ru"}); err != nil {
		t.Fatal(err)
	}
	cfg.Version, cfg.Logger = "test", slog.New(slog.NewJSONHandler(f.logBuf, nil))
	if cfg.Secrets == nil {
		cfg.Secrets = testBox
	}
	f.srv = New(db, cfg)
	t.Cleanup(func() {
		if err := f.srv.Close(context.Background()); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	ts := httptest.NewServer(f.srv)
	t.Cleanup(ts.Close)
	f.url = ts.URL
	return f
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("status %d: body is not a JSON error with code and message: %s", r.status, r.body)
	}
	return e.Error.Code
}

func (f *fixture) do(t *testing.T, method, path, token string, body io.Reader, header ...string) response {
	t.Helper()
	r, err := f.try(method, path, token, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// try is do for goroutines other than the test's: it returns the error.
func (f *fixture) try(method, path, token string, body io.Reader, header ...string) (response, error) {
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		return response{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{res.StatusCode, res.Header, b}, nil
}

func id(c counter.Counter) string { return strconv.FormatInt(c.ID, 10) }

func TestCounterAPIAuthAndTenancy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		revokedTok, revokedText, err := counter.CreateToken(ctx, db, f.a.ID, "old")
		if err != nil {
			t.Fatal(err)
		}
		if err := counter.RevokeToken(ctx, db, f.a.ID, revokedTok.ID); err != nil {
			t.Fatal(err)
		}

		cases := []struct {
			name     string
			path     string
			token    string
			header   []string
			status   int
			code     string
			wantName string
		}{
			{"own token", "/api/v1/counters/" + id(f.a), f.tokA, nil, 200, "", "Shop A"},
			{"OAuth scheme as Metrica sends it", "/api/v1/counters/" + id(f.b), "", []string{"Authorization", "OAuth " + f.tokB}, 200, "", "Shop B"},
			{"other counter's token", "/api/v1/counters/" + id(f.b), f.tokA, nil, 404, "not_found", ""},
			{"other counter's token on tokens", "/api/v1/counters/" + id(f.b) + "/tokens", f.tokA, nil, 404, "not_found", ""},
			{"counter that does not exist", "/api/v1/counters/999999", f.tokA, nil, 404, "not_found", ""},
			{"id that is not a number", "/api/v1/counters/abc", f.tokA, nil, 404, "not_found", ""},
			{"no token", "/api/v1/counters/" + id(f.a), "", nil, 401, "unauthorized", ""},
			{"revoked token", "/api/v1/counters/" + id(f.a), revokedText, nil, 401, "unauthorized", ""},
			{"garbage token", "/api/v1/counters/" + id(f.a), "tl_1_x_y", nil, 401, "unauthorized", ""},
			{"unknown scheme", "/api/v1/counters/" + id(f.a), "", []string{"Authorization", "Basic " + f.tokA}, 401, "unauthorized", ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := f.do(t, "GET", c.path, c.token, nil, c.header...)
				if r.status != c.status {
					t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
				}
				if c.code != "" {
					if got := r.errorCode(t); got != c.code {
						t.Fatalf("error code %q, want %q", got, c.code)
					}
					if c.status == 401 && r.header.Get("WWW-Authenticate") == "" {
						t.Fatal("401 without WWW-Authenticate")
					}
					return
				}
				var got counter.Counter
				if err := json.Unmarshal(r.body, &got); err != nil {
					t.Fatal(err)
				}
				if got.Name != c.wantName {
					t.Fatalf("got counter %+v, want %q", got, c.wantName)
				}
			})
		}
	})
}

func TestPatchCounterValidatesAndLimitsBody(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		path := "/api/v1/counters/" + id(f.a)

		r := f.do(t, "PATCH", path, f.tokA, strings.NewReader(`{"timezone":"Asia/Yekaterinburg","domain":"https://Новый-Магазин.рф/"}`))
		if r.status != 200 {
			t.Fatalf("valid patch: %d %s", r.status, r.body)
		}
		got, err := counter.Get(context.Background(), db, f.a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Timezone != "Asia/Yekaterinburg" || got.Domain != "xn----8sbafhzhc2agjc4o.xn--p1ai" || got.Name != "Shop A" {
			t.Fatalf("after patch: %+v", got)
		}

		bad := []struct {
			name, body string
			status     int
			code       string
			field      string
		}{
			{"bad time zone", `{"timezone":"Mars/Olympus"}`, 400, "bad_request", "timezone"},
			{"empty name", `{"name":"  "}`, 400, "bad_request", "name"},
			{"no lookback", `{"lookback_days":0}`, 400, "bad_request", "lookback_days"},
			{"lookback of ten years and a day", `{"lookback_days":3651}`, 400, "bad_request", "lookback_days"},
			{"domain with path", `{"domain":"a.ru/x"}`, 400, "bad_request", "domain"},
			{"unknown field", `{"nmae":"x"}`, 400, "bad_request", "nmae"},
			{"wrong type", `{"name":5}`, 400, "bad_request", "name"},
			{"malformed", `{"name":`, 400, "bad_request", ""},
			{"two objects", `{"name":"x"}{"name":"y"}`, 400, "bad_request", ""},
			{"empty body", ``, 400, "bad_request", ""},
			{"too large", `{"name":"` + strings.Repeat("x", DefaultMaxBody) + `"}`, 413, "payload_too_large", ""},
		}
		for _, c := range bad {
			t.Run(c.name, func(t *testing.T) {
				r := f.do(t, "PATCH", path, f.tokA, strings.NewReader(c.body))
				if r.status != c.status {
					t.Fatalf("status %d, want %d: %.200s", r.status, c.status, r.body)
				}
				if code := r.errorCode(t); code != c.code {
					t.Fatalf("code %q, want %q", code, c.code)
				}
				var e struct{ Error struct{ Field string } }
				json.Unmarshal(r.body, &e)
				if e.Error.Field != c.field {
					t.Fatalf("field %q, want %q: %s", e.Error.Field, c.field, r.body)
				}
			})
		}
		r = f.do(t, "PATCH", path, f.tokA, strings.NewReader(`{"name":"x"}`), "Content-Type", "text/plain")
		if r.status != 415 {
			t.Fatalf("text/plain body: %d", r.status)
		}
		after, _ := counter.Get(context.Background(), db, f.a.ID)
		if after != got {
			t.Fatalf("a refused patch changed the counter: %+v → %+v", got, after)
		}
		// B's token cannot patch A.
		r = f.do(t, "PATCH", path, f.tokB, strings.NewReader(`{"name":"pwned"}`))
		if r.status != 404 {
			t.Fatalf("cross-tenant patch: %d", r.status)
		}
	})
}

func TestTokensAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		base := "/api/v1/counters/" + id(f.a) + "/tokens"
		r := f.do(t, "POST", base, f.tokA, strings.NewReader(`{"name":"uploader"}`))
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var created struct {
			ID, Name, Token string
		}
		json.Unmarshal(r.body, &created)
		if created.Name != "uploader" || !strings.HasPrefix(created.Token, "tl_"+id(f.a)+"_") {
			t.Fatalf("created %s", r.body)
		}
		if r := f.do(t, "GET", "/api/v1/counters/"+id(f.a), created.Token, nil); r.status != 200 {
			t.Fatalf("new token does not work: %d", r.status)
		}
		// Listing never shows a token's text.
		r = f.do(t, "GET", base, f.tokA, nil)
		if r.status != 200 || bytes.Contains(r.body, []byte(created.Token)) || !bytes.Contains(r.body, []byte(created.ID)) {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		// B cannot revoke A's token, even knowing its id.
		if r := f.do(t, "DELETE", "/api/v1/counters/"+id(f.b)+"/tokens/"+created.ID, f.tokB, nil); r.status != 404 {
			t.Fatalf("B revoking A's token: %d", r.status)
		}
		if r := f.do(t, "DELETE", base+"/"+created.ID, f.tokA, nil); r.status != 204 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if r := f.do(t, "GET", "/api/v1/counters/"+id(f.a), created.Token, nil); r.status != 401 {
			t.Fatalf("revoked token still works: %d", r.status)
		}
		if r := f.do(t, "DELETE", base+"/nosuch", f.tokA, nil); r.status != 404 {
			t.Fatalf("revoke unknown: %d", r.status)
		}
	})
}

func TestAPIFallbackAnswersJSON(t *testing.T) {
	f := newFixture(t, storetest.Open(t, store.SQLite))
	r := f.do(t, "GET", "/api/v1/nothing-here", f.tokA, nil)
	if r.status != 404 || r.errorCode(t) != "not_found" {
		t.Fatalf("unknown path: %d %s", r.status, r.body)
	}
	r = f.do(t, "DELETE", "/api/v1/counters/"+id(f.a), f.tokA, nil)
	if r.status != 405 || r.errorCode(t) != "method_not_allowed" || r.header.Get("Allow") != "GET, PATCH" {
		t.Fatalf("wrong method: %d Allow=%q %s", r.status, r.header.Get("Allow"), r.body)
	}
}

func TestHealthzFollowsTheDatabase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		if r := f.do(t, "GET", "/healthz", "", nil); r.status != 200 {
			t.Fatalf("healthz with a live database: %d %s", r.status, r.body)
		}
		db.Close()
		if r := f.do(t, "GET", "/healthz", "", nil); r.status != 503 {
			t.Fatalf("healthz with a closed database: %d %s", r.status, r.body)
		}
	})
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for range 3 {
			f.do(t, "GET", "/api/v1/counters/"+id(f.a), f.tokA, nil)
		}
		f.do(t, "GET", "/api/v1/counters/"+id(f.a), "", nil)
		r := f.do(t, "GET", "/metrics", "", nil)
		if r.status != 200 {
			t.Fatalf("metrics: %d", r.status)
		}
		body := string(r.body)
		for _, want := range []string{
			`throughline_http_requests_total{code="200",method="GET",route="GET /api/v1/counters/{id}"} 3`,
			`throughline_http_requests_total{code="401",method="GET",route="GET /api/v1/counters/{id}"} 1`,
			`throughline_http_request_duration_seconds_count{method="GET",route="GET /api/v1/counters/{id}"} 4`,
			`go_sql_max_open_connections{db_name=`,
			`throughline_build_info{engine="` + string(db.Dialect()) + `",version="test"} 1`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

func TestPanicBecomesLoggedJSON500(t *testing.T) {
	f := newFixture(t, storetest.Open(t, store.SQLite))
	f.srv.handle("GET /boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	r := f.do(t, "GET", "/boom", "", nil)
	if r.status != 500 || r.errorCode(t) != "internal" || strings.Contains(string(r.body), "kaboom") {
		t.Fatalf("panic answered %d %s", r.status, r.body)
	}
	if !strings.Contains(f.logBuf.String(), "kaboom") {
		t.Fatal("the panic is not in the log")
	}
	// The server keeps serving.
	if r := f.do(t, "GET", "/healthz", "", nil); r.status != 200 {
		t.Fatalf("after panic: %d", r.status)
	}
}

func TestIndexPage(t *testing.T) {
	f := newFixture(t, storetest.Open(t, store.SQLite))
	r := f.do(t, "GET", "/", "", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `href="/signin"`) || strings.Contains(string(r.body), "Shop A") {
		t.Fatalf("index: %d %s", r.status, r.body)
	}
}
