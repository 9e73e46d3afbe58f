package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/secrets"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// A feed protected by a key in its query fails in every way a feed can —
// the server answers 404, nothing listens, the URL is not http — and the
// key appears in no API answer, no stored message and no log line.
func TestFeedKeyIsNeverShown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const key = "SECRET-k3y"
		f := newFixtureWith(t, db, Config{Imports: ImportsConfig{AllowPrivateFeeds: true, Poll: 50 * time.Millisecond}})
		feed := newFeedServer(t, "not found")
		feed.status.Store(404)
		feed.ctype.Store("text/plain")
		var answers []string
		do := func(method, path, body string) response {
			t.Helper()
			r := f.api(t, method, path, body)
			answers = append(answers, string(r.body))
			return r
		}

		// Saved active, the task runs at once (the scheduler) and fails.
		r := do("POST", "/imports", `{"name": "CRM feed", "url": "`+feed.URL+`/k50.csv?apikey=`+key+`"}`)
		var task taskResp
		decode(t, r.body, &task)
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		tpath := fmt.Sprintf("/imports/%d", task.ID)
		waitFor(t, func() bool {
			decode(t, do("GET", tpath, "").body, &task)
			return task.LastRun != nil && task.LastRun.Status == "failed"
		})
		if !strings.Contains(task.LastRun.Message, "404") || !strings.Contains(task.LastRun.Message, "/k50.csv?apikey=xxxxx") {
			t.Errorf("the failed run says %q, want the 404 and the URL with its key hidden", task.LastRun.Message)
		}
		// Run by hand (once the scheduled run has let the task go): the
		// answer says why.
		waitFor(t, func() bool {
			r = do("POST", tpath+"/run", "")
			return r.status != 409
		})
		if r.status != 422 || !strings.Contains(string(r.body), "404") {
			t.Errorf("run: %d %s", r.status, r.body)
		}
		// Nothing listens there: the network error names no URL.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := l.Addr().String()
		l.Close()
		// (Paused, so that the schedule does not run it at the same time.)
		if r := do("PATCH", tpath, `{"active": false, "url": "http://`+closed+`/k50.csv?apikey=`+key+`"}`); r.status != 200 {
			t.Fatalf("PATCH: %d %s", r.status, r.body)
		}
		if r := do("POST", tpath+"/run", ""); r.status != 422 || !strings.Contains(string(r.body), "refused") {
			t.Errorf("run against a closed port: %d %s", r.status, r.body)
		}
		// Not an http URL: refused, the key not echoed.
		if r := do("PATCH", tpath, `{"url": "ftp://feeds.example/k50.csv?apikey=`+key+`"}`); r.status != 400 || !strings.Contains(string(r.body), `"field":"url"`) {
			t.Errorf("PATCH an ftp URL: %d %s", r.status, r.body)
		}
		do("GET", tpath+"/runs", "")
		do("GET", "/imports", "")
		if r := do("GET", "/import-log", ""); !strings.Contains(string(r.body), "refused") {
			t.Errorf("import log: %s", r.body)
		}

		rows, err := db.Reader().QueryContext(context.Background(), `SELECT origin || ' ' || message FROM crm_imports WHERE counter_id = $1`, f.a.ID)
		if err != nil {
			t.Fatal(err)
		}
		var stored []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			stored = append(stored, s)
		}
		rows.Close()
		if len(stored) < 3 {
			t.Fatalf("%d imports logged, want the scheduled run and two by hand", len(stored))
		}
		for what, texts := range map[string][]string{"API answer": answers, "stored import": stored, "log": {f.logBuf.String()}} {
			for _, s := range texts {
				if strings.Contains(s, key) {
					t.Errorf("the feed's key is in a %s: %s", what, s)
				}
			}
		}
	})
}

// mangoRequest is a Mango Office event as Mango sends it: a form with
// vpbx_api_key, sign = hex(SHA-256(key + json + salt)) and json.
func mangoRequest(key, salt, js string) url.Values {
	sum := sha256.Sum256([]byte(key + js + salt))
	return url.Values{"vpbx_api_key": {key}, "sign": {hex.EncodeToString(sum[:])}, "json": {js}}
}

// Mango's vpbx_api_key is sealed at rest, never shown by the API, and kept
// out of the requests stored for replay — which still replay. A hook whose
// key was stored plain (before sealing) is sealed by its first request,
// which also takes the key out of the requests it kept before.
func TestMangoKeyIsSealedAndWithheld(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const key, salt = "dpp5wdkvmgh8+kfpc/wfpc7u5cr0a2m8zc=", "mango_salt"
		leaks := func(s string) bool {
			return strings.Contains(s, key) || strings.Contains(s, url.QueryEscape(key)) || strings.Contains(s, url.PathEscape(key))
		}
		f := newFixtureWith(t, db, Config{PublicURL: "https://tl.example"})
		r := f.api(t, "POST", "/hooks", `{"provider": "mango", "api_key": "`+key+`", "api_salt": "`+salt+`"}`)
		var hook hookResp
		decode(t, r.body, &hook)
		if r.status != 201 || leaks(string(r.body)) {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		if r := f.api(t, "GET", "/hooks", ""); r.status != 200 || leaks(string(r.body)) || !strings.Contains(string(r.body), `"has_secret":true`) {
			t.Errorf("hooks: %d %s", r.status, r.body)
		}
		storedKey := func() string {
			t.Helper()
			var s string
			if err := db.Reader().QueryRowContext(ctx, `SELECT api_key FROM call_hooks WHERE id = $1`, hook.ID).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		if s := storedKey(); !secrets.IsSealed(s) || leaks(s) {
			t.Errorf("stored api_key %q, want it sealed", s)
		}

		good := mangoRequest(key, salt, `{"entry_id":"E1","call_id":"C1","timestamp":1763722991,"seq":1,"call_state":"Appeared","location":"ivr","from":{"number":"79161234567"},"to":{"number":"74951112233","line_number":"74951112233"}}`)
		bad := mangoRequest(key, salt, `{"call_id":"C2","timestamp":1763722991,"seq":1,"call_state":"Appeared","from":{"number":"79161234567"},"to":{"line_number":"74951112233"}}`)
		post := func(form url.Values) response {
			t.Helper()
			return f.do(t, "POST", hook.Path+"/events/call", "", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
		}
		if r := post(good); r.status != 200 {
			t.Fatalf("a signed event: %d %s", r.status, r.body)
		}
		// Signed, but not readable: 400, kept — without the key — for replay.
		if r := post(bad); r.status != 400 || !strings.Contains(string(r.body), `"field":"json.entry_id"`) {
			t.Fatalf("a malformed event: %d %s", r.status, r.body)
		}
		if r := f.do(t, "GET", hook.Path+"/events/call?"+bad.Encode(), "", nil); r.status != 400 {
			t.Fatalf("a malformed event by GET: %d %s", r.status, r.body)
		}
		kept := func() []string {
			t.Helper()
			rows, err := db.Reader().QueryContext(ctx, `SELECT id, body, url, query, headers FROM hook_failures WHERE hook_id = $1 ORDER BY id`, hook.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var id int64
				var body []byte
				var u, q, h string
				if err := rows.Scan(&id, &body, &u, &q, &h); err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprint(id), string(body)+" "+u+" "+q+" "+h)
			}
			return out
		}
		stored := kept()
		if len(stored) != 4 {
			t.Fatalf("%d failures kept, want 2", len(stored)/2)
		}
		for i := 1; i < len(stored); i += 2 {
			if leaks(stored[i]) {
				t.Errorf("a kept request holds the key: %s", stored[i])
			}
		}
		if r := f.api(t, "GET", "/hook-failures", ""); r.status != 200 || leaks(string(r.body)) {
			t.Errorf("failures: %d %s", r.status, r.body)
		}
		// The replays check the signature with the hook's key put back: they
		// fail on the payload, as the first time, not on the signature.
		for i := 0; i < len(stored); i += 2 {
			r := f.api(t, "POST", "/hook-failures/"+stored[i]+"/replay", "")
			if r.status != 200 || !strings.Contains(string(r.body), `"replayed":false`) || !strings.Contains(string(r.body), "json.entry_id") {
				t.Errorf("replay %s: %d %s", stored[i], r.status, r.body)
			}
		}

		// A hook stored before keys were sealed, with a request it kept then.
		if _, err := db.Writer().ExecContext(ctx, `UPDATE call_hooks SET api_key = $1 WHERE id = $2`, key, hook.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Writer().ExecContext(ctx, `UPDATE hook_failures SET body = $1 WHERE id = $2`, []byte(bad.Encode()), stored[0]); err != nil {
			t.Fatal(err)
		}
		if r := f.api(t, "GET", "/hook-failures", ""); r.status != 200 || leaks(string(r.body)) {
			t.Errorf("failures of a hook not sealed yet: %d %s", r.status, r.body)
		}
		// Its next request verifies with the plain key and seals it.
		if r := post(good); r.status != 200 {
			t.Fatalf("a signed event to a hook not sealed yet: %d %s", r.status, r.body)
		}
		if s := storedKey(); !secrets.IsSealed(s) || leaks(s) {
			t.Errorf("stored api_key after the first request %q, want it sealed", s)
		}
		for i, s := range kept() {
			if i%2 == 1 && leaks(s) {
				t.Errorf("after the first request, a kept request still holds the key: %s", s)
			}
		}
		if r := f.api(t, "POST", "/hook-failures/"+stored[0]+"/replay", ""); r.status != 200 || !strings.Contains(string(r.body), "json.entry_id") {
			t.Errorf("replay of a request kept before sealing: %d %s", r.status, r.body)
		}
		if r := post(good); r.status != 200 {
			t.Errorf("a signed event to the sealed hook: %d %s", r.status, r.body)
		}
		// The hook's token authenticates the provider (the only proof for a
		// generic hook without a secret): the access log does not show it.
		if token := path.Base(hook.Path); strings.Contains(f.logBuf.String(), token) {
			t.Errorf("the hook's token %s is in the log:\n%s", token, f.logBuf.String())
		}
	})
}
