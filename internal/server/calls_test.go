package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/leads"
	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

const (
	visitorB = "1c9f3ae5-6c1f-4c9b-8b8f-4a1b2c3d4e5f"
)

// site posts a t.js request (JSON as text/plain from the shop's pages).
func (f *fixture) site(t *testing.T, path, body string, header ...string) response {
	t.Helper()
	return f.do(t, "POST", path, "", strings.NewReader(body),
		append([]string{"Content-Type", "text/plain;charset=UTF-8", "Origin", "https://www.a.example.ru"}, header...)...)
}

// visit records a pageview and returns its session id.
func (f *fixture) visit(t *testing.T, uuid, page string) string {
	t.Helper()
	r := f.sendHit(t, hitJSON(f.a.ID, uuid, "", page), "X-Forwarded-For", "198.51.100.7")
	if r.status != 204 {
		t.Fatalf("hit: %d %s", r.status, r.body)
	}
	return r.header.Get("Throughline-Sid")
}

func (f *fixture) api(t *testing.T, method, path, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return f.do(t, method, "/api/v1/counters/"+id(f.a)+path, f.tokA, rd)
}

type leaseResp struct {
	DNI    *struct{ Selector, Phone string }
	Number *struct {
		Number, Display, Kind string
		LeaseID               string `json:"lease_id"`
	}
	HeartbeatS   int  `json:"heartbeat_s"`
	CaptureForms bool `json:"capture_forms"`
}

func TestNumberInsertionEndpoints(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		sid := f.visit(t, visitorA, "https://www.a.example.ru/?utm_source=yandex&utm_medium=cpc")
		lease := func(sid, uuid string) (response, leaseResp) {
			r := f.site(t, "/numbers/lease", fmt.Sprintf(`{"counter": %d, "sid": %q, "uuid": %q}`, f.a.ID, sid, uuid))
			var lr leaseResp
			if r.status == 200 {
				decode(t, r.body, &lr)
			}
			return r, lr
		}
		// A counter that does not replace its phone: nothing to do.
		if r, lr := lease(sid, visitorA); r.status != 200 || lr.DNI != nil || lr.Number != nil {
			t.Fatalf("no DNI: %d %s", r.status, r.body)
		}
		// Configure: the site's phone, a pool for paid traffic.
		if r := f.api(t, "PATCH", "", `{"dni_phone": "8 (800) 555-35-35", "dni_selector": ".phone"}`); r.status != 200 || !strings.Contains(string(r.body), `"dni_phone":"78005553535"`) {
			t.Fatalf("PATCH counter: %d %s", r.status, r.body)
		}
		r := f.api(t, "POST", "/pools", `{"name": "Paid", "rule": {"medium": "cpc"}, "fallback_number": "+7 495 000-00-00"}`)
		var pool struct{ ID int64 }
		decode(t, r.body, &pool)
		if r.status != 201 {
			t.Fatalf("pool: %d %s", r.status, r.body)
		}
		if r := f.api(t, "POST", "/numbers", fmt.Sprintf(`{"number": "8 495 111-00-01", "pool_id": %d}`, pool.ID)); r.status != 201 || !strings.Contains(string(r.body), `"number":"74951110001"`) {
			t.Fatalf("number: %d %s", r.status, r.body)
		}
		r, lr := lease(sid, visitorA)
		if r.status != 200 || lr.DNI == nil || lr.DNI.Phone != "78005553535" || lr.Number == nil || lr.Number.Number != "74951110001" ||
			lr.Number.Kind != "lease" || lr.Number.LeaseID == "" || lr.HeartbeatS <= 0 || r.header.Get("Access-Control-Allow-Origin") == "" {
			t.Fatalf("lease: %d %s", r.status, r.body)
		}
		hb := func(lease, sid string) int {
			return f.site(t, "/numbers/heartbeat", fmt.Sprintf(`{"counter": %d, "sid": %q, "lease_id": %q}`, f.a.ID, sid, lease)).status
		}
		if s := hb(lr.Number.LeaseID, sid); s != 204 {
			t.Errorf("heartbeat: %d", s)
		}
		if s := hb("nope", sid); s != 410 {
			t.Errorf("heartbeat of an unknown lease: %d", s)
		}
		// Another visitor finds the one number taken: the fallback.
		other := f.visit(t, visitorB, "https://www.a.example.ru/?utm_source=google&utm_medium=cpc")
		if _, lb := lease(other, visitorB); lb.Number == nil || lb.Number.Kind != "fallback" || lb.Number.Number != "74950000000" {
			t.Errorf("second visitor: %+v", lb.Number)
		}
		if r := f.site(t, "/numbers/release", fmt.Sprintf(`{"counter": %d, "sid": %q, "lease_id": %q}`, f.a.ID, sid, lr.Number.LeaseID)); r.status != 204 {
			t.Errorf("release: %d %s", r.status, r.body)
		}
		if s := hb(lr.Number.LeaseID, sid); s != 410 {
			t.Errorf("heartbeat after release: %d", s)
		}
		// Bad requests.
		for _, c := range []struct {
			body   string
			header []string
			status int
		}{
			{fmt.Sprintf(`{"counter": %d, "sid": "x", "uuid": %q}`, f.a.ID, visitorA), nil, 400},
			{`{"counter": 999999, "sid": "` + sid + `"}`, nil, 404},
			{fmt.Sprintf(`{"counter": %d, "sid": %q, "uuid": %q}`, f.a.ID, sid, visitorA), []string{"Origin", "https://evil.example"}, 403},
			{`{"counter": `, nil, 400},
		} {
			if r := f.site(t, "/numbers/lease", c.body, c.header...); r.status != c.status {
				t.Errorf("%s %v: %d %s, want %d", c.body, c.header, r.status, r.body, c.status)
			}
		}
		if r := f.api(t, "POST", "/numbers", `{"number": "12"}`); r.status != 400 || !strings.Contains(string(r.body), `"field":"number"`) {
			t.Errorf("bad number: %d %s", r.status, r.body)
		}
		if r := f.do(t, "GET", "/api/v1/counters/"+id(f.a)+"/pools", f.tokB, nil); r.status != 404 {
			t.Errorf("B reads A's pools: %d", r.status)
		}
		if r := f.api(t, "GET", "/numbers/74951110001/leases", ""); r.status != 200 || !strings.Contains(string(r.body), `"release_reason":"page closed"`) {
			t.Errorf("lease history: %d %s", r.status, r.body)
		}
	})
}

type hookResp struct {
	ID   string
	Path string
}

func TestCallWebhooks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.api(t, "PATCH", "", `{"dni_phone": "78005553535"}`)
		r := f.api(t, "POST", "/pools", `{"name": "All"}`)
		var pool struct{ ID int64 }
		decode(t, r.body, &pool)
		f.api(t, "POST", "/numbers", fmt.Sprintf(`{"number": "74951110001", "pool_id": %d}`, pool.ID))
		sid := f.visit(t, visitorA, "https://www.a.example.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign=boots")
		f.site(t, "/numbers/lease", fmt.Sprintf(`{"counter": %d, "sid": %q, "uuid": %q}`, f.a.ID, sid, visitorA))

		r = f.api(t, "POST", "/hooks", `{"provider": "generic", "name": "PBX", "secret": "s3cret"}`)
		var hook hookResp
		decode(t, r.body, &hook)
		if r.status != 201 || !strings.HasPrefix(hook.Path, "/hooks/calls/generic/") || strings.Contains(string(r.body), "s3cret") {
			t.Fatalf("hook: %d %s", r.status, r.body)
		}
		// Stored sealed: the database alone does not give the secret.
		var stored string
		if err := db.Reader().QueryRow(`SELECT secret FROM call_hooks WHERE token = $1`, path.Base(hook.Path)).Scan(&stored); err != nil ||
			stored == "" || strings.Contains(stored, "s3cret") {
			t.Errorf("stored secret %q (%v), want it sealed", stored, err)
		}
		sign := func(body string) string {
			m := hmac.New(sha256.New, []byte("s3cret"))
			m.Write([]byte(body))
			return "sha256=" + hex.EncodeToString(m.Sum(nil))
		}
		call := fmt.Sprintf(`{"call_id": "pbx-1", "caller": "+7 916 123-45-67", "tracked_number": "74951110001", "started_at": %q, "duration": 42, "answered": true}`,
			time.Now().UTC().Format(time.RFC3339))
		r = f.do(t, "POST", hook.Path, "", strings.NewReader(call), "Content-Type", "application/json", "X-Throughline-Signature", sign(call))
		if r.status != 200 {
			t.Fatalf("webhook: %d %s", r.status, r.body)
		}
		// The same call again (a provider retrying) updates, never duplicates.
		r = f.do(t, "POST", hook.Path, "", strings.NewReader(call), "Content-Type", "application/json", "X-Throughline-Signature", sign(call))
		if r.status != 200 {
			t.Fatalf("webhook again: %d %s", r.status, r.body)
		}
		r = f.api(t, "GET", "/calls?matched=true", "")
		var journal struct {
			Calls []struct {
				ID      int64
				Caller  string
				Match   struct{ Type, SID, Reason string }
				Traffic struct{ Source, Medium, Campaign string }
				Unique  bool
			}
		}
		decode(t, r.body, &journal)
		if len(journal.Calls) != 1 {
			t.Fatalf("calls: %s", r.body)
		}
		c := journal.Calls[0]
		if c.Caller != "79161234567" || c.Match.Type != "lease" || c.Match.SID != sid || c.Traffic.Source != "yandex" || c.Traffic.Campaign != "boots" || !c.Unique {
			t.Errorf("the call: %+v", c)
		}
		if r := f.api(t, "GET", fmt.Sprint("/calls/", c.ID), ""); r.status != 200 || !strings.Contains(string(r.body), `"talk_seconds":42`) {
			t.Errorf("GET call: %d %s", r.status, r.body)
		}

		// An unknown token says nothing of the counter; a bad signature is 401.
		if r := f.do(t, "POST", "/hooks/calls/generic/nosuchtoken", "", strings.NewReader(call)); r.status != 404 {
			t.Errorf("unknown token: %d", r.status)
		}
		if r := f.do(t, "POST", strings.Replace(hook.Path, "generic", "zadarma", 1), "", strings.NewReader(call)); r.status != 404 {
			t.Errorf("another provider's path: %d", r.status)
		}
		if r := f.do(t, "POST", hook.Path, "", strings.NewReader(call), "X-Throughline-Signature", "sha256=00"); r.status != 401 {
			t.Errorf("bad signature: %d %s", r.status, r.body)
		}
		// A malformed payload: 400 naming the field, and kept for replay.
		bad := `{"call_id": "pbx-2", "caller": "79161234567", "started_at": "yesterday"}`
		r = f.do(t, "POST", hook.Path, "", strings.NewReader(bad), "Content-Type", "application/json", "X-Throughline-Signature", sign(bad))
		if r.status != 400 || r.errorCode(t) != "bad_request" {
			t.Fatalf("malformed: %d %s", r.status, r.body)
		}
		r = f.api(t, "GET", "/hook-failures", "")
		var failures struct {
			Failures []struct {
				ID    int64
				Body  string
				Error string
				Field string
			}
		}
		decode(t, r.body, &failures)
		if len(failures.Failures) != 1 || failures.Failures[0].Body != bad || failures.Failures[0].Field == "" {
			t.Fatalf("failures: %s", r.body)
		}
		r = f.api(t, "POST", fmt.Sprintf("/hook-failures/%d/replay", failures.Failures[0].ID), "")
		if r.status != 200 || !strings.Contains(string(r.body), `"replayed":false`) {
			t.Errorf("replay: %d %s", r.status, r.body)
		}
		if r := f.do(t, "GET", "/api/v1/counters/"+id(f.a)+"/hook-failures", f.tokB, nil); r.status != 404 {
			t.Errorf("B reads A's failures: %d", r.status)
		}
		// Revoked hooks answer 404.
		if r := f.api(t, "DELETE", "/hooks/"+hook.ID, ""); r.status != 204 {
			t.Errorf("revoke: %d", r.status)
		}
		if r := f.do(t, "POST", hook.Path, "", strings.NewReader(call), "X-Throughline-Signature", sign(call)); r.status != 404 {
			t.Errorf("revoked hook: %d", r.status)
		}
		// Zadarma checks a URL by asking it to echo a value.
		r = f.api(t, "POST", "/hooks", `{"provider": "zadarma"}`)
		decode(t, r.body, &hook)
		if r := f.do(t, "GET", hook.Path+"?zd_echo=Kx93", "", nil); r.status != 200 || string(r.body) != "Kx93" {
			t.Errorf("zd_echo: %d %q", r.status, r.body)
		}
		if r := f.api(t, "POST", "/hooks", `{"provider": "mango"}`); r.status != 400 {
			t.Errorf("mango without key and salt: %d", r.status)
		}
		if r := f.api(t, "POST", "/hooks", `{"provider": "skype"}`); r.status != 400 {
			t.Errorf("unknown provider: %d", r.status)
		}
	})
}

func TestLeadsAndFormCapture(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		sid := f.visit(t, visitorA, "https://www.a.example.ru/?utm_source=vk&utm_medium=social")
		// From the site (throughline.sendLead).
		r := f.site(t, "/leads/collect", fmt.Sprintf(`{"counter": %d, "sid": %q, "uuid": %q, "type": "callback", "subject": "Call me", "name": "Ann", "phone": "8 999 555-11-11"}`,
			f.a.ID, sid, visitorA))
		if r.status != 201 {
			t.Fatalf("site lead: %d %s", r.status, r.body)
		}
		// From the site's server, with only the visitor id; a phone that is not one.
		r = f.api(t, "POST", "/leads", fmt.Sprintf(`{"type": "form", "name": "Bob", "phone": "call me maybe", "email": "Bob@Example.com", "uuid": %q}`, visitorA))
		if r.status != 201 || !strings.Contains(string(r.body), `"phone_valid":false`) || !strings.Contains(string(r.body), `"phone_raw":"call me maybe"`) ||
			!strings.Contains(string(r.body), `"email":"bob@example.com"`) || !strings.Contains(string(r.body), `"sid":"`+sid+`"`) {
			t.Fatalf("API lead: %d %s", r.status, r.body)
		}
		for _, bad := range []string{`{"type": "fax", "phone": "79995551111"}`, `{"email": "not-an-email"}`, `{"name": "nobody"}`, `{"phone": "79995551111", "created_at": "2099-01-01T00:00:00Z"}`} {
			if r := f.api(t, "POST", "/leads", bad); r.status != 400 {
				t.Errorf("%s: %d %s", bad, r.status, r.body)
			}
		}
		r = f.api(t, "GET", "/leads?type=callback", "")
		var list struct {
			Leads []struct {
				Phone   string
				SID     string
				Traffic struct{ Type, Source string }
				Origin  string
			}
		}
		decode(t, r.body, &list)
		if len(list.Leads) != 1 || list.Leads[0].Phone != "79995551111" || list.Leads[0].SID != sid || list.Leads[0].Traffic.Source != "vk" || list.Leads[0].Origin != "site" {
			t.Errorf("leads: %s", r.body)
		}
		if r := f.do(t, "GET", "/api/v1/counters/"+id(f.a)+"/leads", f.tokB, nil); r.status != 404 {
			t.Errorf("B reads A's leads: %d", r.status)
		}

		// Form capture is opt-in, and keeps only md5s.
		capture := fmt.Sprintf(`{"counter": %d, "sid": %q, "uuid": %q, "phones": ["+7 (999) 555-11-11", "nope"], "emails": ["Mail@Yandex.ru"]}`, f.a.ID, sid, visitorA)
		if r := f.site(t, "/forms/capture", capture); r.status != 403 {
			t.Errorf("capture while off: %d", r.status)
		}
		f.api(t, "PATCH", "", `{"capture_forms": true}`)
		if r := f.site(t, "/forms/capture", capture); r.status != 204 {
			t.Fatalf("capture: %d %s", r.status, r.body)
		}
		got, err := leads.Captures(context.Background(), db, f.a.ID, sid)
		if err != nil || len(got) != 2 || got[0].MD5 == "" {
			t.Fatalf("captures: %v %+v", err, got)
		}
		want := map[string]bool{normalize.MD5("79995551111"): true, "3c56ff8fef0f6c65b36b2d25720fe276": true}
		for _, c := range got {
			if !want[c.MD5] {
				t.Errorf("captured %+v", c)
			}
		}
		var plain int
		db.Reader().QueryRow(`SELECT count(*) FROM form_captures WHERE md5 LIKE '%@%' OR md5 LIKE '7999%'`).Scan(&plain)
		if plain != 0 {
			t.Error("a plain value was stored")
		}
	})
}

// Twilio signs the URL it called: behind a proxy the server rebuilds it from
// --public-url. Its Voice URL is answered with TwiML that puts the call
// through even when the request cannot be used (here: a bad signature).
func TestTwilioVoiceURLBehindAProxy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixtureWith(t, db, Config{PublicURL: "https://tl.example"})
		r := f.api(t, "POST", "/hooks", `{"provider": "twilio", "secret": "authtoken", "forward_to": "+74957654321"}`)
		var hook hookResp
		decode(t, r.body, &hook)
		form := "CallSid=CA1&From=%2B79161234567&To=%2B74951110001&CallStatus=ringing&Direction=inbound&AccountSid=AC1"
		sign := func(url string) string {
			params := []string{"AccountSidAC1", "CallSidCA1", "CallStatusringing", "Directioninbound", "From+79161234567", "To+74951110001"}
			m := hmac.New(sha1.New, []byte("authtoken"))
			m.Write([]byte(url + strings.Join(params, "")))
			return base64.StdEncoding.EncodeToString(m.Sum(nil))
		}
		signed := sign("https://tl.example" + hook.Path)
		r = f.do(t, "POST", hook.Path, "", strings.NewReader(form), "Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", signed)
		if r.status != 200 || !strings.Contains(string(r.body), "<Dial") || !strings.Contains(string(r.body), "+74957654321") ||
			!strings.Contains(string(r.body), `action="https://tl.example`+hook.Path+`/dial"`) {
			t.Fatalf("signed incoming call: %d %s", r.status, r.body)
		}
		if r := f.api(t, "GET", "/calls", ""); !strings.Contains(string(r.body), `"external_id":"CA1"`) {
			t.Errorf("the call was not recorded: %s", r.body)
		}
		r = f.do(t, "POST", hook.Path, "", strings.NewReader(strings.Replace(form, "CA1", "CA2", 1)), "Content-Type", "application/x-www-form-urlencoded",
			"X-Twilio-Signature", signed)
		if r.status != 200 || !strings.Contains(string(r.body), "<Dial") {
			t.Errorf("a bad signature on the Voice URL still forwards the call: %d %s", r.status, r.body)
		}
		if r := f.api(t, "GET", "/calls", ""); strings.Contains(string(r.body), `"external_id":"CA2"`) {
			t.Errorf("an unsigned call was recorded: %s", r.body)
		}
	})
}

// A page asks for a number once per visit: one address cannot drain a pool.
func TestNumberLeaseRateLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		limited := false
		for range 40 {
			r := f.site(t, "/numbers/lease", fmt.Sprintf(`{"counter": %d, "sid": %q, "uuid": %q}`, f.a.ID, visitorA, visitorA), "X-Forwarded-For", "203.0.113.9")
			if r.status == 429 {
				limited = true
				break
			}
		}
		if !limited {
			t.Error("40 lease requests a moment from one address were all served")
		}
	})
}
