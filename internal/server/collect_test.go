package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
	"github.com/throughline/throughline/internal/tracker"
)

const (
	visitorA = "0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4f"
	browser  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

// hitJSON is a pageview of counter id on page, as t.js sends it.
func hitJSON(counterID int64, uuid, sid, page string, extra ...string) string {
	s := fmt.Sprintf(`{"counter":"%d","uuid":%q,"sid":%q,"type":"pageview","url":%q,"referrer":"https://yandex.ru/","title":"Boots"`, counterID, uuid, sid, page)
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

func (f *fixture) sendHit(t *testing.T, body string, header ...string) response {
	t.Helper()
	return f.do(t, "POST", "/collect", "", strings.NewReader(body),
		append([]string{"Content-Type", "text/plain;charset=UTF-8", "User-Agent", browser, "Origin", "https://www.a.example.ru"}, header...)...)
}

func (f *fixture) rows(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := f.db.Reader().QueryRowContext(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCollectStoresHitsAndAnswersTheSession(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		r := f.sendHit(t, hitJSON(f.a.ID, visitorA, "", "https://www.a.example.ru/boots?utm_source=vk&utm_medium=social"), "X-Forwarded-For", "198.51.100.7")
		if r.status != http.StatusNoContent {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		sid := r.header.Get("Throughline-Sid")
		if len(sid) != 36 {
			t.Fatalf("Throughline-Sid = %q", sid)
		}
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "https://www.a.example.ru" {
			t.Errorf("Access-Control-Allow-Origin = %q", got)
		}
		if got := r.header.Get("Access-Control-Expose-Headers"); got != "Throughline-Sid, Throughline-Robot" {
			t.Errorf("Access-Control-Expose-Headers = %q; t.js could not read the sid and the robot warning", got)
		}
		if got := r.header.Get("Throughline-Robot"); got != "" {
			t.Errorf("a person's hit: Throughline-Robot = %q", got)
		}
		// A robot's hit is counted, not stored, and the answer says why.
		r = f.sendHit(t, hitJSON(f.a.ID, visitorA, "", "https://www.a.example.ru/"), "User-Agent", "curl/8.5.0")
		if r.status != http.StatusNoContent || r.header.Get("Throughline-Robot") != "HTTP library curl/8.5.0" || r.header.Get("Throughline-Sid") != "" {
			t.Errorf("robot's hit: %d, Throughline-Robot %q, Throughline-Sid %q", r.status, r.header.Get("Throughline-Robot"), r.header.Get("Throughline-Sid"))
		}

		// The same visitor's next page, through the image fallback.
		q := url.Values{"counter": {id(f.a)}, "uuid": {visitorA}, "sid": {sid}, "url": {"https://www.a.example.ru/cart"}, "title": {"Cart"}}
		r = f.do(t, "GET", "/collect.gif?"+q.Encode(), "", nil, "User-Agent", browser)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "image/gif" || !bytes.HasPrefix(r.body, []byte("GIF89a")) {
			t.Fatalf("collect.gif: status %d, %s", r.status, r.header.Get("Content-Type"))
		}
		if got := r.header.Get("Throughline-Sid"); got != sid {
			t.Errorf("second hit sid = %q, want %q", got, sid)
		}

		r = f.do(t, "GET", "/api/v1/counters/"+id(f.a)+"/sessions/"+sid, f.tokA, nil)
		if r.status != http.StatusOK {
			t.Fatalf("get session: %d %s", r.status, r.body)
		}
		var s tracker.Session
		if err := json.Unmarshal(r.body, &s); err != nil {
			t.Fatal(err)
		}
		if s.UUID != visitorA || s.Pageviews != 2 || len(s.Hits) != 2 || s.Hits[1].Title != "Cart" {
			t.Errorf("session = %+v", s)
		}
		if s.Traffic.Type != tracker.Social || s.UTM.Source != "vk" {
			t.Errorf("traffic = %+v, utm %+v", s.Traffic, s.UTM)
		}
		// X-Forwarded-For from an untrusted peer is ignored; the address is
		// the peer's, anonymised.
		if s.IP != "127.0.0.0" {
			t.Errorf("ip = %q, want the anonymised peer address 127.0.0.0", s.IP)
		}

		// Another counter's token neither lists nor reads the session.
		if r := f.do(t, "GET", "/api/v1/counters/"+id(f.a)+"/sessions/"+sid, f.tokB, nil); r.status != http.StatusNotFound {
			t.Errorf("other tenant: status %d", r.status)
		}
		if r := f.do(t, "GET", "/api/v1/counters/"+id(f.b)+"/sessions/"+sid, f.tokB, nil); r.status != http.StatusNotFound {
			t.Errorf("session through the other counter's path: status %d", r.status)
		}
		r = f.do(t, "GET", "/api/v1/counters/"+id(f.b)+"/sessions", f.tokB, nil)
		if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"sessions":[]`)) {
			t.Errorf("other counter's list: %d %s", r.status, r.body)
		}
	})
}

func TestCollectRefusesBadHitsAndStoresNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		future := fmt.Sprintf(`"ts":%d`, time.Now().Add(2*time.Hour).UnixMilli())
		tests := []struct {
			name   string
			body   string
			header []string
			status int
			code   string
			field  string
		}{
			{"unknown counter", hitJSON(999999, visitorA, "", "https://a.example.ru/"), nil, 404, "not_found", "counter"},
			{"oversized", hitJSON(f.a.ID, visitorA, "", "https://a.example.ru/?q="+strings.Repeat("x", 17<<10)), nil, 413, "payload_too_large", ""},
			{"malformed JSON", `{"counter":` + id(f.a) + `,"uuid":`, nil, 400, "bad_request", "body"},
			{"not UTF-8", "{\"counter\":" + id(f.a) + ",\"title\":\"\xc0\xc1\"}", nil, 400, "bad_request", "body"},
			{"javascript URL", hitJSON(f.a.ID, visitorA, "", "javascript:alert(1)"), nil, 400, "bad_request", "url"},
			{"sid of the wrong shape", hitJSON(f.a.ID, visitorA, "12345", "https://a.example.ru/"), nil, 400, "bad_request", "sid"},
			{"uuid of the wrong shape", hitJSON(f.a.ID, "ABC", "", "https://a.example.ru/"), nil, 400, "bad_request", "uuid"},
			{"far future", hitJSON(f.a.ID, visitorA, "", "https://a.example.ru/", future), nil, 400, "bad_request", "ts"},
			{"another site's page", hitJSON(f.a.ID, visitorA, "", "https://a.example.ru/"), []string{"Origin", "https://evil.example"}, 403, "forbidden_origin", ""},
			{"a lookalike domain", hitJSON(f.a.ID, visitorA, "", "https://a.example.ru/"), []string{"Origin", "https://nota.example.ru"}, 403, "forbidden_origin", ""},
			{"counter B's domain", hitJSON(f.a.ID, visitorA, "", "https://a.example.ru/"), []string{"Origin", "https://b.example.ru"}, 403, "forbidden_origin", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := f.sendHit(t, tt.body, tt.header...)
				if r.status != tt.status {
					t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
				}
				if code := r.errorCode(t); code != tt.code {
					t.Errorf("code %q, want %q", code, tt.code)
				}
				var e struct{ Error struct{ Field string } }
				json.Unmarshal(r.body, &e)
				if e.Error.Field != tt.field {
					t.Errorf("field %q, want %q (%s)", e.Error.Field, tt.field, r.body)
				}
				if r.header.Get("Throughline-Sid") != "" {
					t.Error("a refused hit was given a session")
				}
			})
		}
		if n := f.rows(t, "sessions") + f.rows(t, "hits"); n != 0 {
			t.Errorf("refused hits wrote %d rows", n)
		}
		// A preflight is answered for senders that post application/json.
		r := f.do(t, "OPTIONS", "/collect", "", nil, "Origin", "https://a.example.ru", "Access-Control-Request-Method", "POST")
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Methods") != "POST" {
			t.Errorf("preflight: %d %v", r.status, r.header)
		}
	})
}

func TestCollectRateLimitsOneAddress(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	f := newFixture(t, db)
	srv := New(db, Config{Logger: slog.New(slog.DiscardHandler), CollectRate: 1, CollectBurst: 3})
	t.Cleanup(func() { srv.Close(context.Background()) })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	f.url = ts.URL
	for i := range 3 {
		if r := f.sendHit(t, hitJSON(f.a.ID, visitorA, "", "https://a.example.ru/")); r.status != http.StatusNoContent {
			t.Fatalf("hit %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	r := f.sendHit(t, hitJSON(f.a.ID, visitorA, "", "https://a.example.ru/"))
	if r.status != http.StatusTooManyRequests || r.errorCode(t) != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("past the burst: %d %s", r.status, r.body)
	}
	if n := f.rows(t, "hits"); n != 3 {
		t.Errorf("%d hits stored, want the 3 admitted", n)
	}
}

// The counter's session settings, changed through the API, rule the next hits.
func TestCounterSessionSettingsApply(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		r := f.do(t, "PATCH", "/api/v1/counters/"+id(f.a), f.tokA, strings.NewReader(`{"session_timeout_minutes": 5, "new_session_on_campaign": false}`))
		if r.status != http.StatusOK {
			t.Fatalf("patch: %d %s", r.status, r.body)
		}
		tenMinutesAgo := fmt.Sprintf(`"ts":%d`, time.Now().Add(-10*time.Minute).UnixMilli())
		first := f.sendHit(t, hitJSON(f.a.ID, visitorA, "", "https://a.example.ru/", tenMinutesAgo)).header.Get("Throughline-Sid")
		second := f.sendHit(t, hitJSON(f.a.ID, visitorA, first, "https://a.example.ru/")).header.Get("Throughline-Sid")
		if first == "" || second == "" || first == second {
			t.Fatalf("10 idle minutes with a 5-minute timeout: sids %q, %q", first, second)
		}
		// With splitting on campaigns off, an ad click continues the visit.
		third := f.sendHit(t, hitJSON(f.a.ID, visitorA, second, "https://a.example.ru/?gclid=xyz")).header.Get("Throughline-Sid")
		if third != second {
			t.Errorf("gclid with new_session_on_campaign=false: sid %q, want %q", third, second)
		}
	})
}

func TestSessionsAPIRefusesBadQueries(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	f := newFixture(t, db)
	base := "/api/v1/counters/" + id(f.a) + "/sessions"
	for _, tt := range []struct{ query, field string }{
		{"?from=yesterday", "from"},
		{"?to=2026-13-01", "to"},
		{"?from=2026-11-22&to=2026-11-01", "to"},
		{"?limit=0", "limit"},
		{"?limit=5000", "limit"},
		{"?cursor=garbage", "cursor"},
	} {
		r := f.do(t, "GET", base+tt.query, f.tokA, nil)
		var e struct{ Error struct{ Field string } }
		json.Unmarshal(r.body, &e)
		if r.status != http.StatusBadRequest || e.Error.Field != tt.field {
			t.Errorf("%s: %d %s, want 400 on %s", tt.query, r.status, r.body, tt.field)
		}
	}
	if r := f.do(t, "GET", base+"/"+visitorA, f.tokA, nil); r.status != http.StatusNotFound {
		t.Errorf("unknown session: %d", r.status)
	}
	if r := f.do(t, "GET", base+"?from=2026-11-01&to=2026-11-22&limit=10", f.tokA, nil); r.status != http.StatusOK {
		t.Errorf("dates in the counter's zone: %d %s", r.status, r.body)
	}
}

func TestScriptIsSmallAndCacheable(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	f := newFixture(t, db)
	r := f.do(t, "GET", "/t.js", "", nil, "Accept-Encoding", "gzip")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("t.js: %d %s", r.status, r.header.Get("Content-Type"))
	}
	if r.header.Get("Content-Encoding") != "gzip" || len(r.body) >= 6<<10 {
		t.Errorf("t.js: encoding %q, %d bytes; want gzip under 6 KB", r.header.Get("Content-Encoding"), len(r.body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	js, err := io.ReadAll(zr)
	if err != nil || !bytes.Contains(js, []byte("getResultData")) {
		t.Errorf("t.js does not unzip to the tracker: %v", err)
	}
	etag := r.header.Get("ETag")
	if etag == "" || !strings.Contains(r.header.Get("Cache-Control"), "max-age") {
		t.Fatalf("t.js: ETag %q, Cache-Control %q", etag, r.header.Get("Cache-Control"))
	}
	if r := f.do(t, "GET", "/t.js", "", nil, "If-None-Match", etag); r.status != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", r.status)
	}
	t.Logf("t.js: %d bytes, %d gzipped", len(js), len(r.body))
}

// One sender cannot fail another's hits: a flood of hits from many senders
// at once, with hits holding what no database text can (a NUL, bytes that
// are not UTF-8) mixed in, as JSON and through /collect.gif. Every good hit
// is acknowledged and stored; every poisoned one is refused, naming its
// field.
func TestCollectPoisonedHitsCostOthersNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		page := "https://www.a.example.ru/boots"
		gif := func(q url.Values) (string, string) {
			q.Set("counter", id(f.a))
			q.Set("uuid", newVisitor())
			if !q.Has("url") {
				q.Set("url", page)
			}
			return "GET", "/collect.gif?" + q.Encode()
		}
		poisons := []struct {
			field string
			req   func() (method, path, body string)
		}{
			{"title", func() (string, string, string) {
				return "POST", "/collect", hitJSON(f.a.ID, newVisitor(), "", page, `"title":"a\u0000b"`)
			}},
			{"name", func() (string, string, string) {
				return "POST", "/collect", hitJSON(f.a.ID, newVisitor(), "", page, `"type":"event","name":"buy\u0000"`)
			}},
			{"url", func() (string, string, string) {
				return "POST", "/collect", hitJSON(f.a.ID, newVisitor(), "", page+"?utm_source=ya%00ndex")
			}},
			{"props", func() (string, string, string) {
				return "POST", "/collect", hitJSON(f.a.ID, newVisitor(), "", page, `"type":"event","name":"buy","props":{"sku":"\u0000"}`)
			}},
			{"title", func() (string, string, string) {
				m, p := gif(url.Values{"title": {"a\x00b"}})
				return m, p, ""
			}},
			{"name", func() (string, string, string) {
				m, p := gif(url.Values{"type": {"event"}, "name": {"\x00"}})
				return m, p, ""
			}},
			{"title", func() (string, string, string) {
				m, p := gif(url.Values{"title": {"\xc0\xaf"}})
				return m, p, ""
			}},
			{"referrer", func() (string, string, string) {
				m, p := gif(url.Values{"referrer": {"https://a%C0b.ru/"}})
				return m, p, ""
			}},
		}
		const senders, perSender = 32, 30
		var wg sync.WaitGroup
		var mu sync.Mutex
		good, poisoned := 0, 0
		for s := range senders {
			wg.Go(func() {
				for i := range perSender {
					method, path, body := "POST", "/collect", hitJSON(f.a.ID, newVisitor(), "", page)
					field := ""
					if (s+i)%5 == 0 {
						pz := poisons[(s*perSender+i)%len(poisons)]
						field = pz.field
						method, path, body = pz.req()
					}
					r, err := f.try(method, path, "", strings.NewReader(body),
						"Content-Type", "text/plain;charset=UTF-8", "User-Agent", browser, "Origin", "https://www.a.example.ru")
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if field == "" {
						good++
						if r.status != http.StatusNoContent {
							t.Errorf("a good hit among poisoned ones: %d %s", r.status, r.body)
						}
					} else {
						poisoned++
						var e struct {
							Error struct{ Field, Message string }
						}
						json.Unmarshal(r.body, &e)
						if r.status != http.StatusBadRequest || e.Error.Field != field {
							t.Errorf("a hit poisoned in %s: %d %s; want 400 naming the field", field, r.status, r.body)
						}
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if n := f.rows(t, "hits"); n != good {
			t.Errorf("%d hits stored; want the %d good ones", n, good)
		}
		t.Logf("%d good hits, %d poisoned", good, poisoned)
	})
}

// newVisitor is a fresh visitor id, as t.js makes them.
func newVisitor() string { return uuid.NewString() }
