package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/throughline/throughline/internal/accounts"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// The OpenAPI description (openapi.json) is checked three ways: it is a
// valid OpenAPI 3.1 document (kin-openapi, whose JSON Schema 2020-12
// validator is santhosh-tekuri/jsonschema); it documents exactly the routes
// the server registers; and the responses of real requests — successes and
// the errors of every kind — match the schemas it gives for them.

// loadOpenAPI parses and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDoc)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	return doc
}

// specRoute is a route as openapi.json spells it: the method in lower case
// and the path with {name} for every wildcard ({rest...} becomes {rest}, as
// OpenAPI has no multi-segment parameter; {$} is dropped).
func specRoute(pattern string) (method, path string, ok bool) {
	method, path, ok = strings.Cut(pattern, " ")
	if !ok {
		return "", "", false // a catch-all of every method: a fallback, not an operation
	}
	path = strings.ReplaceAll(path, "...}", "}")
	path = strings.TrimSuffix(path, "{$}")
	return strings.ToLower(method), path, true
}

// Every route the server registers is documented, and every documented
// operation is served by the route of the same method and path. Routes are
// read from the registry handleLimited keeps of every pattern (s.quiet);
// the cabinet's pages (guard "web") are not the API, and the catch-alls
// without a method (/api/, /cdp/, /management/) answer errors only and are
// described in the document's info.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	f := newFixture(t, storetest.Open(t, store.SQLite))

	registered := map[string]string{} // "get /path" → the pattern
	for pattern := range f.srv.quiet {
		if f.srv.guards[pattern] == "web" {
			continue // a page of the cabinet, for people in a browser: not the API
		}
		if m, p, ok := specRoute(pattern); ok {
			registered[m+" "+p] = pattern
		}
	}
	if len(registered) < 90 {
		t.Fatalf("read only %d routes from the server: %v", len(registered), registered)
	}
	var missing []string
	for route, pattern := range registered {
		m, p, _ := strings.Cut(route, " ")
		if item := doc.Paths.Value(p); item == nil || item.GetOperation(strings.ToUpper(m)) == nil {
			missing = append(missing, fmt.Sprintf("route %q is registered, but internal/server/openapi.json has no %q operation under paths → %q: document it (request, responses, errors) in the same change", pattern, m, p))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Error(m)
	}

	// Each documented operation, asked of the server's router with a value
	// in each of its path parameters, reaches the route of that method and
	// path — not a catch-all, and not another route.
	param := regexp.MustCompile(`\{[^}]+\}`)
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			want := strings.ToLower(method) + " " + path
			req := httptest.NewRequest(method, param.ReplaceAllString(path, "1"), nil)
			_, pattern := f.srv.mux.Handler(req)
			got := "(none)"
			if m, p, ok := specRoute(pattern); ok {
				got = m + " " + p
			}
			if got != want || registered[want] == "" {
				t.Errorf("openapi.json documents %s %s, but the server routes it to %q: register the route, or remove the operation from openapi.json", method, path, pattern)
			}
		}
	}
}

// GET /api/v1/openapi.json serves the document to anyone, as JSON, and
// answers 304 to a client that has it.
func TestOpenAPIServed(t *testing.T) {
	loadOpenAPI(t)
	f := newFixture(t, storetest.Open(t, store.SQLite))
	r := f.do(t, "GET", "/api/v1/openapi.json", "", nil)
	if r.status != 200 || !bytes.Equal(r.body, openAPIDoc) || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") ||
		r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("ETag") == "" {
		t.Fatalf("GET /api/v1/openapi.json: %d %v, %d bytes", r.status, r.header, len(r.body))
	}
	r = f.do(t, "GET", "/api/v1/openapi.json", "", nil, "If-None-Match", r.header.Get("ETag"))
	if r.status != 304 || len(r.body) != 0 {
		t.Errorf("with If-None-Match: %d %q", r.status, r.body)
	}
	if r := f.do(t, "POST", "/api/v1/openapi.json", "", nil); r.status != 405 || r.errorCode(t) != "method_not_allowed" {
		t.Errorf("POST: %d %s", r.status, r.body)
	}
}

// specChecker sits between the test's client and the server and checks
// each exchange against openapi.json: the response's status and content
// type must be documented for the route, a JSON body must match the schema
// (the error shape included), and a JSON request the server accepted must
// be one the document allows.
type specChecker struct {
	t    *testing.T
	doc  *openapi3.T
	srv  *Server
	mu   sync.Mutex
	errs []string
	seen map[string]bool // "get /path 200": what the checks covered
}

func (c *specChecker) failf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

func (c *specChecker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqBody, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	rec := httptest.NewRecorder()
	c.srv.ServeHTTP(rec, r) // the router sets r.Pattern
	res := rec.Result()
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	w.Write(rec.Body.Bytes())
	c.check(r, reqBody, res.StatusCode, res.Header, rec.Body.Bytes())
}

func (c *specChecker) check(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) {
	what := fmt.Sprintf("%s %s → %d %s", r.Method, r.URL.RequestURI(), status, clip(body))
	ct, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	method, path, ok := specRoute(r.Pattern)
	if !ok {
		// A catch-all: an error in the API's shape, or Metrica's under /cdp/.
		name := "Error"
		if strings.HasPrefix(r.URL.Path, "/cdp/") || strings.HasPrefix(r.URL.Path, "/management/") {
			name = "MetricaError"
		}
		c.checkSchema(what, name, body)
		c.note(strings.TrimSpace(r.Pattern) + " (catch-all)")
		return
	}
	item := c.doc.Paths.Value(path)
	var op *openapi3.Operation
	if item != nil {
		op = item.GetOperation(strings.ToUpper(method))
	}
	if op == nil {
		c.failf("%s: route %q is not in openapi.json", what, r.Pattern)
		return
	}
	c.note(fmt.Sprintf("%s %s %d", method, path, status))
	resp := op.Responses.Status(status)
	if resp == nil && status >= 500 {
		resp = op.Responses.Default()
	}
	if resp == nil || resp.Value == nil {
		c.failf("%s: openapi.json does not document status %d for %s %s", what, status, method, path)
		return
	}
	if len(body) == 0 && status == http.StatusNoContent || status == http.StatusNotModified {
		return
	}
	if resp.Value.Content.Get(ct) == nil {
		c.failf("%s: openapi.json does not document Content-Type %q for %s %s %d", what, ct, method, path, status)
		return
	}
	route := &routers.Route{Spec: c.doc, Path: path, PathItem: item, Method: strings.ToUpper(method), Operation: op}
	params := map[string]string{}
	for _, p := range op.Parameters {
		if p.Value != nil && p.Value.In == "path" {
			params[p.Value.Name] = r.PathValue(p.Value.Name)
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if ct == "application/json" {
		err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: status, Header: header, Body: io.NopCloser(bytes.NewReader(body)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		})
		if err != nil {
			c.failf("%s: the response does not match openapi.json: %v", what, err)
		}
	}
	// A JSON request the server took is one the document allows.
	reqCT, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if status < 300 && (reqCT == "application/json" || len(reqBody) == 0) {
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.failf("%s: the server accepted a request that openapi.json does not allow: %v", what, err)
		}
	}
}

func (c *specChecker) checkSchema(what, name string, body []byte) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		c.failf("%s: not JSON: %v", what, err)
		return
	}
	if err := c.doc.Components.Schemas[name].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		c.failf("%s: not the %s shape of openapi.json: %v", what, name, err)
	}
}

func (c *specChecker) note(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[s] = true
}

func clip(b []byte) string {
	if !utf8.Valid(b) {
		return fmt.Sprintf("(%d bytes)", len(b))
	}
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// Real requests to most operations, through the checker: what the server
// answers — lists empty and full, successes, and each kind of error — is
// what openapi.json says it answers.
func TestOpenAPIResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixtureWith(t, db, Config{Imports: ImportsConfig{AllowPrivateFeeds: true}})
		c := &specChecker{t: t, doc: doc, srv: f.srv, seen: map[string]bool{}}
		ts := httptest.NewServer(c)
		t.Cleanup(ts.Close)
		f.url = ts.URL
		api := "/api/v1/counters/" + id(f.a)
		tok := f.tokA
		js := func(s string) io.Reader { return strings.NewReader(s) }
		want := func(r response, status int, what string) response {
			t.Helper()
			if r.status != status {
				t.Fatalf("%s: %d %s, want %d", what, r.status, r.body, status)
			}
			return r
		}
		field := func(r response, key string) string {
			t.Helper()
			var m map[string]any
			if err := json.Unmarshal(r.body, &m); err != nil {
				t.Fatalf("%s: %v", r.body, err)
			}
			return fmt.Sprint(m[key])
		}
		jsonCT := []string{"Content-Type", "application/json"}
		origin := []string{"Origin", "https://a.example.ru", "User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"}

		// A person's routes: an admin's personal token creates a counter.
		admin, err := accounts.CreateUser(context.Background(), db, accounts.NewUser{Email: "admin@shop.test", Admin: true})
		if err != nil {
			t.Fatal(err)
		}
		_, adminTok, err := accounts.CreateToken(context.Background(), db, admin.ID, "script")
		if err != nil {
			t.Fatal(err)
		}
		want(f.do(t, "POST", "/api/v1/counters", adminTok, js(`{"name": "New shop", "domain": "new.example.ru"}`), jsonCT...), 201, "a counter")
		want(f.do(t, "POST", "/api/v1/counters", adminTok, js(`{"name": "", "domain": "x"}`), jsonCT...), 400, "a bad counter")
		want(f.do(t, "GET", "/api/v1/counters", adminTok, nil), 200, "the person's counters")
		want(f.do(t, "GET", "/api/v1/counters", tok, nil), 403, "the person's counters with a counter's token")
		want(f.do(t, "GET", "/api/v1/counters", "", nil), 401, "the person's counters without a token")

		// Empty lists first: what a new counter answers.
		for _, p := range []string{"", "/tokens", "/sessions", "/orders", "/order-statuses", "/import-log", "/imports", "/calls", "/pools",
			"/numbers", "/hooks", "/hook-failures", "/leads", "/costs", "/webhooks", "/integrations/retailcrm/pushes"} {
			f.do(t, "GET", api+p, tok, nil)
		}
		want(f.do(t, "GET", api+"/integrations/retailcrm", tok, nil), 404, "retailcrm before connecting")

		// The errors, of every kind the API answers.
		want(f.do(t, "GET", api, "", nil), 401, "no token")
		want(f.do(t, "GET", api, "tl_nonsense", nil), 401, "a bad token")
		want(f.do(t, "GET", "/api/v1/counters/"+id(f.b), tok, nil), 404, "another counter")
		want(f.do(t, "GET", api+"/orders/nope", tok, nil), 404, "no such order")
		want(f.do(t, "GET", "/api/v1/nothing-here", tok, nil), 404, "no such endpoint")
		want(f.do(t, "PUT", api, tok, nil), 405, "a wrong method")
		want(f.do(t, "GET", api+"/sessions?limit=0", tok, nil), 400, "a bad limit")
		want(f.do(t, "GET", api+"/reports/end-to-end?from=2026-01-01", tok, nil), 400, "a report without to")
		if r := want(f.do(t, "PATCH", api, tok, js(`{"timezone": "Mars/Olympus"}`), jsonCT...), 400, "a bad field"); !strings.Contains(string(r.body), `"field":"timezone"`) {
			t.Errorf("a bad field: %s", r.body)
		}
		want(f.do(t, "PATCH", api, tok, js(`{"nme": "x"}`), jsonCT...), 400, "an unknown field")
		want(f.do(t, "PATCH", api, tok, js(`{"name": 5}`), jsonCT...), 400, "a wrong type")
		want(f.do(t, "PATCH", api, tok, js(`name=x`), "Content-Type", "application/x-www-form-urlencoded"), 415, "a form body")
		want(f.do(t, "PATCH", api, tok, js(`{"name": "`+strings.Repeat("x", DefaultMaxBody)+`"}`), jsonCT...), 413, "a body too large")
		want(f.do(t, "POST", "/collect", "", js(`{"counter": 1, "uuid": "nope"}`)), 400, "a bad hit")
		want(f.do(t, "POST", "/collect", "", js(`{"counter": 999999, "uuid": "0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4f", "url": "https://a.example.ru/"}`)), 404, "a hit for no counter")
		want(f.do(t, "POST", "/collect", "", js(`{"counter": `+id(f.a)+`, "uuid": "0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4f", "url": "https://a.example.ru/"}`), "Origin", "https://evil.example"), 403, "a hit from another site")
		want(f.do(t, "POST", "/collect", "", js(strings.Repeat(" ", 20<<10))), 413, "a hit too large")
		want(f.do(t, "POST", "/hooks/calls/generic/nope", "", js(`{}`), jsonCT...), 404, "a hook of no such token")

		// The tracker: a hit, the number, a lead and a form from the page.
		uuid := "0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4f"
		hit := `{"counter": ` + id(f.a) + `, "uuid": "` + uuid + `", "url": "https://a.example.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign=sofas", "title": "Home"}`
		r := want(f.do(t, "POST", "/collect", "", js(hit), append([]string{"Content-Type", "text/plain"}, origin...)...), 204, "a hit")
		sid := r.header.Get("Throughline-Sid")
		want(f.do(t, "GET", "/collect.gif?counter="+id(f.a)+"&uuid="+uuid+"&sid="+sid+"&type=event&name=click&url="+url.QueryEscape("https://a.example.ru/x"), "", nil, origin...), 200, "a hit as an image")
		want(f.do(t, "OPTIONS", "/collect", "", nil, origin...), 204, "a preflight")
		want(f.do(t, "PATCH", api, tok, js(`{"dni_phone": "+7 495 000-00-00", "capture_forms": true}`), jsonCT...), 200, "call tracking on")
		want(f.do(t, "POST", api+"/pools", tok, js(`{"name": "All", "rule": {}, "fallback_number": "+7 495 000-00-01"}`), jsonCT...), 201, "a pool")
		pools := want(f.do(t, "GET", api+"/pools", tok, nil), 200, "pools")
		var pl struct{ Pools []struct{ ID int64 } }
		json.Unmarshal(pools.body, &pl)
		pool := fmt.Sprint(pl.Pools[0].ID)
		want(f.do(t, "POST", api+"/numbers", tok, js(`{"number": "+7 495 111-22-33", "pool_id": `+pool+`}`), jsonCT...), 201, "a pool number")
		want(f.do(t, "POST", api+"/numbers", tok, js(`{"number": "+7 800 100-20-30", "source": {"source": "radio", "medium": "offline"}}`), jsonCT...), 201, "a static number")
		want(f.do(t, "GET", api+"/pools/"+pool, tok, nil), 200, "a pool")
		want(f.do(t, "PATCH", api+"/pools/"+pool, tok, js(`{"priority": 2}`), jsonCT...), 200, "a pool changed")
		site := `{"counter": ` + id(f.a) + `, "sid": "` + sid + `", "uuid": "` + uuid + `"`
		lease := want(f.do(t, "POST", "/numbers/lease", "", js(site+`}`), origin...), 200, "a number")
		var ls struct {
			Number struct {
				LeaseID string `json:"lease_id"`
			}
		}
		json.Unmarshal(lease.body, &ls)
		want(f.do(t, "POST", "/numbers/heartbeat", "", js(site+`, "lease_id": "`+ls.Number.LeaseID+`"}`), origin...), 204, "a heartbeat")
		want(f.do(t, "POST", "/numbers/heartbeat", "", js(site+`, "lease_id": "nope"}`), origin...), 410, "a heartbeat of no lease")
		want(f.do(t, "POST", "/leads/collect", "", js(site+`, "type": "callback", "phone": "+7 916 123-45-67", "name": "Anna"}`), origin...), 201, "a lead from the page")
		want(f.do(t, "POST", "/forms/capture", "", js(site+`, "phones": ["+7 916 765-43-21"], "emails": ["a@example.ru"]}`), origin...), 204, "a form")
		want(f.do(t, "POST", "/numbers/release", "", js(site+`, "lease_id": "`+ls.Number.LeaseID+`"}`), origin...), 204, "a release")
		want(f.do(t, "GET", api+"/numbers/74951112233/leases", tok, nil), 200, "leases")
		want(f.do(t, "PATCH", api+"/numbers/78001002030", tok, js(`{"active": true}`), jsonCT...), 200, "a number changed")
		want(f.do(t, "GET", api+"/sessions/"+sid, tok, nil), 200, "a session")

		// Telephony: a hook, a call through it, a payload it cannot read.
		hook := want(f.do(t, "POST", api+"/hooks", tok, js(`{"provider": "generic", "name": "PBX"}`), jsonCT...), 201, "a hook")
		hookPath := field(hook, "path")
		want(f.do(t, "POST", hookPath, "", js(`{"call_id": "c1", "caller": "+7 916 123-45-67", "tracked_number": "+7 495 111-22-33", "started_at": "`+
			time.Now().UTC().Format(time.RFC3339)+`", "answered": true, "duration": 60, "final": true}`), jsonCT...), 200, "a call")
		want(f.do(t, "POST", hookPath+"/extra/path", "", js(`{"call_id": "c2"}`), jsonCT...), 400, "a call without a caller")
		want(f.do(t, "GET", hookPath+"?call_id=c1&caller=79161234567&tracked_number=74951112233&answered=true&started_at="+url.QueryEscape(time.Now().UTC().Format(time.RFC3339)), "", nil), 200, "a call as a GET")
		want(f.do(t, "GET", hookPath+"/status?call_id=c1", "", nil), 400, "a GET call without a caller")
		calls := want(f.do(t, "GET", api+"/calls?answered=true", tok, nil), 200, "calls")
		var cl struct{ Calls []struct{ ID int64 } }
		json.Unmarshal(calls.body, &cl)
		if len(cl.Calls) == 1 {
			want(f.do(t, "GET", api+"/calls/"+fmt.Sprint(cl.Calls[0].ID), tok, nil), 200, "a call")
		}
		failures := want(f.do(t, "GET", api+"/hook-failures", tok, nil), 200, "hook failures")
		var fl struct{ Failures []struct{ ID int64 } }
		json.Unmarshal(failures.body, &fl)
		if len(fl.Failures) > 0 {
			want(f.do(t, "POST", api+"/hook-failures/"+fmt.Sprint(fl.Failures[0].ID)+"/replay", tok, nil), 200, "a replay")
		}
		want(f.do(t, "POST", api+"/leads", tok, js(`{"type": "form", "email": "b@example.ru", "sid": "`+sid+`"}`), jsonCT...), 201, "a lead")
		want(f.do(t, "GET", api+"/leads?type=form", tok, nil), 200, "leads")

		// The CRM: orders through Metrica's API, their statuses, paths.
		cdp := "/cdp/api/v1/counter/" + id(f.a)
		orders := "id,create_date_time,client_ids,phones,order_status,revenue,cost\n" +
			"o1," + time.Now().Format("02.01.2006 15:04") + "," + uuid + ",,PAID,54990,30000\n" +
			"o2," + time.Now().Format("02.01.2006 15:04") + ",,+7 916 123-45-67,new,1490,\n"
		want(f.do(t, "POST", cdp+"/data/simple_orders?merge_mode=SAVE", tok, js(orders), "Content-Type", "text/csv"), 200, "orders")
		want(f.do(t, "POST", cdp+"/data/orders/json?merge_mode=APPEND", tok, js(`{"orders": [{"id": "o3", "client_uniq_id": "c1", "client_type": "CONTACT", "order_status": "new",
			"create_date_time": "2024-09-21 09:48:23", "revenue": 5000}]}`), jsonCT...), 200, "orders as JSON")
		want(f.do(t, "POST", cdp+"/data/contacts/json?merge_mode=SAVE", tok, js(`{"contacts": [{"uniq_id": "c1", "name": "Anna", "phones": ["+79161234567"]}]}`), jsonCT...), 200, "contacts")
		want(f.do(t, "POST", cdp+"/data/orders/csv", tok, js(orders), "Content-Type", "text/csv"), 400, "no merge_mode")
		want(f.do(t, "POST", cdp+"/data/simple_orders/csv?merge_mode=UPDATE", tok, js(orders), "Content-Type", "text/csv"), 200, "orders to /csv")
		want(f.do(t, "POST", cdp+"/data/orders?merge_mode=SAVE", tok, js("id,client_uniq_id,client_type,create_date_time,order_status,revenue\nx1,c1,CONTACT,2024-09-21 09:48:23,PAID,100\n"), "Content-Type", "text/csv"), 200, "orders as CSV")
		var form bytes.Buffer
		mw := multipart.NewWriter(&form)
		part, _ := mw.CreateFormFile("file", "contacts.csv")
		part.Write([]byte("uniq_id,name,phones\nc2,Boris,+79160000000\n"))
		mw.Close()
		want(f.do(t, "POST", cdp+"/data/contacts?merge_mode=SAVE", tok, bytes.NewReader(form.Bytes()), "Content-Type", mw.FormDataContentType()), 200, "contacts as a multipart CSV")
		want(f.do(t, "POST", cdp+"/data/contacts/csv?merge_mode=SAVE", tok, js("uniq_id,name\nc3,Vera\n"), "Content-Type", "text/csv"), 200, "contacts to /csv")
		want(f.do(t, "GET", cdp+"/schema/order_statuses", "", nil), 401, "Metrica without a token")
		want(f.do(t, "GET", cdp+"/schema/order_statuses", "tl_nonsense", nil), 403, "Metrica with a bad token")
		want(f.do(t, "GET", "/cdp/api/v1/counter/"+id(f.b)+"/schema/order_statuses", tok, nil), 403, "Metrica, another counter")
		want(f.do(t, "GET", "/cdp/api/v1/counter/"+id(f.a)+"/offline_conversions", tok, nil), 404, "Metrica, not served")
		up := want(f.do(t, "GET", cdp+"/last_uploadings?limit=5", tok, nil), 200, "uploadings")
		var ul struct {
			Uploadings []struct {
				ID string `json:"uploading_id"`
			}
		}
		json.Unmarshal(up.body, &ul)
		want(f.do(t, "GET", cdp+"/uploading/"+ul.Uploadings[0].ID, tok, nil), 200, "an uploading")
		want(f.do(t, "GET", cdp+"/uploadings/nope", tok, nil), 404, "no such uploading")
		want(f.do(t, "POST", cdp+"/schema/order_statuses", tok, js(`{"order_statuses": [{"id": "new", "type": "IN_PROGRESS", "goal_action_ids": "g1"}]}`), jsonCT...), 200, "Metrica statuses")
		want(f.do(t, "GET", cdp+"/schema/order_statuses", tok, nil), 200, "Metrica statuses")
		want(f.do(t, "GET", cdp+"/schema/attributes?entity_type=ORDER", tok, nil), 200, "attributes")
		want(f.do(t, "POST", cdp+"/schema/attributes?entity_type=CONTACT", tok, js(`{"attributes": [{"name": "age", "type_name": "numeric", "multivalued": false}]}`), jsonCT...), 200, "an attribute")
		want(f.do(t, "POST", cdp+"/schema/products", tok, js(`{"items": [{"name": "sofa", "humanized": "Sofa"}]}`), jsonCT...), 200, "products")
		want(f.do(t, "GET", cdp+"/schema/types", tok, nil), 200, "types")
		want(f.do(t, "GET", cdp+"/schema/predefined_types", tok, nil), 200, "predefined types")
		want(f.do(t, "PUT", api+"/order-statuses", tok, js(`{"order_statuses": [{"id": "PAID", "type": "PAID"}, {"id": "new", "type": "IN_PROGRESS", "humanized": "New"}]}`), jsonCT...), 200, "the mapping")
		want(f.do(t, "GET", api+"/order-statuses", tok, nil), 200, "the mapping")
		want(f.do(t, "GET", api+"/orders/o1/path", tok, nil), 200, "a path (queued)")
		f.srv.matcher.Kick()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && !strings.Contains(string(f.do(t, "GET", api+"/orders/o1/path", tok, nil).body), `"queued":false`) {
			time.Sleep(50 * time.Millisecond)
		}
		want(f.do(t, "GET", api+"/orders?status_type=PAID&matched=true", tok, nil), 200, "orders")
		want(f.do(t, "GET", api+"/orders?format=csv", tok, nil), 200, "orders as CSV")
		want(f.do(t, "GET", api+"/orders?status_type=NOPE", tok, nil), 400, "a bad status_type")
		want(f.do(t, "GET", api+"/orders/o1", tok, nil), 200, "an order")
		want(f.do(t, "GET", api+"/contacts/c1", tok, nil), 200, "a contact")
		want(f.do(t, "GET", api+"/import-log?limit=10", tok, nil), 200, "the import log")

		// Costs, reports, exports.
		day := time.Now().Format(time.DateOnly)
		want(f.do(t, "POST", api+"/costs", tok, js(`{"costs": [{"day": "`+day+`", "source": "yandex", "medium": "cpc", "campaign": "sofas", "cost": "1234,50", "clicks": 10}]}`), jsonCT...), 200, "costs")
		want(f.do(t, "POST", api+"/costs", tok, js("day,source,medium,campaign,cost\n"+day+",vk,cpc,x,10\n"), "Content-Type", "text/csv"), 200, "costs as CSV")
		want(f.do(t, "POST", api+"/costs", tok, js(`{"costs": [{"day": "yesterday", "source": "yandex", "cost": 1}]}`), jsonCT...), 400, "bad cost rows")
		want(f.do(t, "POST", api+"/costs", tok, js(`x`), "Content-Type", "image/png"), 415, "costs as an image")
		want(f.do(t, "GET", api+"/costs?from="+day+"&to="+day, tok, nil), 200, "costs")
		want(f.do(t, "GET", api+"/reports/end-to-end?from="+day+"&to="+day+"&group=traffic_type,source", tok, nil), 200, "a report")
		want(f.do(t, "GET", api+"/reports/daily?from="+day+"&to="+day+"&source=yandex", tok, nil), 200, "a daily report")
		want(f.do(t, "GET", api+"/orders/o1/path", tok, nil), 200, "a path")
		want(f.do(t, "GET", api+"/exports/metrica-offline-conversions?goal=created", tok, nil), 200, "an export")
		want(f.do(t, "GET", api+"/exports/metrica-offline-conversions?goal=nope", tok, nil), 400, "an export of no goal")

		// Import tasks, tokens, webhooks, RetailCRM.
		feed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "gone", 404) }))
		t.Cleanup(feed.Close)
		task := want(f.do(t, "POST", api+"/imports", tok, js(`{"name": "Feed", "type": "csv_feed", "url": "`+feed.URL+`/orders.csv", "active": false}`), jsonCT...), 201, "a task")
		tp := api + "/imports/" + field(task, "id")
		want(f.do(t, "PATCH", tp, tok, js(`{"frequency_hours": 6}`), jsonCT...), 200, "a task changed")
		want(f.do(t, "GET", tp, tok, nil), 200, "a task")
		want(f.do(t, "POST", tp+"/run", tok, nil), 422, "a failed run")
		want(f.do(t, "GET", tp+"/runs", tok, nil), 200, "runs")
		want(f.do(t, "GET", tp+"/statuses", tok, nil), 400, "statuses of a csv_feed task")
		want(f.do(t, "POST", tp+"/statuses", tok, nil), 400, "statuses of a csv_feed task")
		want(f.do(t, "DELETE", tp, tok, nil), 204, "a task deleted")
		tk := want(f.do(t, "POST", api+"/tokens", tok, js(`{"name": "ci"}`), jsonCT...), 201, "a token")
		want(f.do(t, "DELETE", api+"/tokens/"+field(tk, "id"), tok, nil), 204, "a token revoked")
		wh := want(f.do(t, "POST", api+"/webhooks", tok, js(`{"url": "`+feed.URL+`/hook"}`), jsonCT...), 201, "a webhook")
		wp := api + "/webhooks/" + field(wh, "id")
		want(f.do(t, "PATCH", wp, tok, js(`{"active": false}`), jsonCT...), 200, "a webhook changed")
		want(f.do(t, "GET", wp, tok, nil), 200, "a webhook")
		want(f.do(t, "GET", wp+"/deliveries?limit=5", tok, nil), 200, "deliveries")
		want(f.do(t, "POST", wp+"/deliveries/1/redeliver", tok, nil), 404, "no such delivery")
		want(f.do(t, "DELETE", wp, tok, nil), 204, "a webhook deleted")
		want(f.do(t, "PUT", api+"/integrations/retailcrm", tok, js(`{"url": "`+feed.URL+`", "api_key": "key"}`), jsonCT...), 202, "RetailCRM")
		want(f.do(t, "GET", api+"/integrations/retailcrm", tok, nil), 200, "RetailCRM")
		want(f.do(t, "GET", api+"/integrations/retailcrm/pushes?status=failed&limit=10", tok, nil), 200, "pushes")
		want(f.do(t, "DELETE", api+"/integrations/retailcrm", tok, nil), 204, "RetailCRM disconnected")
		want(f.do(t, "DELETE", api+"/hooks/"+field(hook, "id"), tok, nil), 204, "a hook revoked")
		want(f.do(t, "DELETE", api+"/numbers/78001002030", tok, nil), 204, "a number deleted")
		want(f.do(t, "DELETE", api+"/pools/"+pool, tok, nil), 204, "a pool deleted")
		want(f.do(t, "GET", "/healthz", "", nil), 200, "health")
		want(f.do(t, "GET", "/metrics", "", nil), 200, "metrics")
		want(f.do(t, "GET", "/t.js", "", nil), 200, "the tracker")
		for _, p := range []string{"/numbers/lease", "/numbers/heartbeat", "/numbers/release", "/leads/collect", "/forms/capture"} {
			want(f.do(t, "OPTIONS", p, "", nil, origin...), 204, "a preflight of "+p)
		}
		want(f.do(t, "GET", "/api/v1/openapi.json", "", nil), 200, "the document")

		// Full lists, after all that.
		for _, p := range []string{"/tokens", "/sessions", "/imports", "/calls", "/pools", "/numbers", "/hooks", "/leads", "/webhooks"} {
			f.do(t, "GET", api+p, tok, nil)
		}

		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.errs {
			t.Error(e)
		}
		// The walk reaches most of the documented operations.
		ops := map[string]bool{}
		for s := range c.seen {
			if f := strings.Fields(s); len(f) == 3 {
				ops[f[0]+" "+f[1]] = true
			}
		}
		var all []string
		for path, item := range doc.Paths.Map() {
			for method := range item.Operations() {
				all = append(all, strings.ToLower(method)+" "+path)
			}
		}
		var notSeen []string
		for _, o := range all {
			if !ops[o] {
				notSeen = append(notSeen, o)
			}
		}
		slices.Sort(notSeen)
		t.Logf("checked %d exchanges covering %d of %d operations; not exercised: %v", len(c.seen), len(ops), len(all), notSeen)
		if len(ops) < len(all)*9/10 {
			t.Errorf("the walk exercised only %d of %d operations", len(ops), len(all))
		}
	})
}
