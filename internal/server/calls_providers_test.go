package server

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/reports"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// callJSON is a call as GET …/calls shows it.
type callJSON struct {
	ID            int64
	ExternalID    string `json:"external_id"`
	TrackedNumber string `json:"tracked_number"`
	Answered      *bool
	TalkSeconds   *int   `json:"talk_seconds"`
	Disposition   string `json:"disposition"`
	RecordingURL  string `json:"recording_url"`
	Ended         bool
	Match         struct{ Type string }
	Traffic       struct{ Type, Source, Medium string }
}

// calls returns the counter's calls by external id.
func (f *fixture) calls(t *testing.T) map[string]callJSON {
	t.Helper()
	r := f.api(t, "GET", "/calls", "")
	if r.status != 200 {
		t.Fatalf("GET calls: %d %s", r.status, r.body)
	}
	var page struct{ Calls []callJSON }
	decode(t, r.body, &page)
	out := map[string]callJSON{}
	for _, c := range page.Calls {
		out[c.ExternalID] = c
	}
	return out
}

// zadarmaPost sends a Zadarma notification signed as Zadarma signs it:
// Signature = base64(hex(HMAC-SHA1(API secret, the event's fields
// concatenated))).
func (f *fixture) zadarmaPost(t *testing.T, path, secret string, form url.Values, signed ...string) response {
	t.Helper()
	var s string
	for _, name := range signed {
		s += form.Get(name)
	}
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(s))
	sig := base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(m.Sum(nil))))
	return f.do(t, "POST", path, "", strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "Signature", sig)
}

// Zadarma names a call's recording in NOTIFY_END (is_recorded=1,
// call_id_with_rec) and again in NOTIFY_RECORD once the file is ready;
// the call keeps the recording's id whichever arrives first, and the
// other facts of the call are the same either way.
func TestZadarmaRecordingIsKept(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		if r := f.api(t, "POST", "/numbers", `{"number": "+7 495 111-22-33", "source": {"source": "billboard", "medium": "offline"}}`); r.status != 201 {
			t.Fatalf("number: %d %s", r.status, r.body)
		}
		r := f.api(t, "POST", "/hooks", `{"provider": "zadarma", "secret": "zd_secret"}`)
		var hook hookResp
		decode(t, r.body, &hook)
		if r.status != 201 {
			t.Fatalf("hook: %d %s", r.status, r.body)
		}
		start := func(id string) url.Values {
			return url.Values{"event": {"NOTIFY_START"}, "call_start": {"2025-11-21 14:03:11"}, "pbx_call_id": {id},
				"caller_id": {"79161234567"}, "called_did": {"74951112233"}}
		}
		end := func(id, rec string) url.Values {
			return url.Values{"event": {"NOTIFY_END"}, "call_start": {"2025-11-21 14:03:11"}, "pbx_call_id": {id},
				"caller_id": {"79161234567"}, "called_did": {"74951112233"}, "internal": {"100"}, "duration": {"95"},
				"disposition": {"answered"}, "status_code": {"16"}, "is_recorded": {"1"}, "call_id_with_rec": {rec}}
		}
		record := func(id, rec string) url.Values {
			return url.Values{"event": {"NOTIFY_RECORD"}, "pbx_call_id": {id}, "call_id_with_rec": {rec}}
		}
		send := func(form url.Values) {
			t.Helper()
			signed := []string{"caller_id", "called_did", "call_start"}
			if form.Get("event") == "NOTIFY_RECORD" {
				signed = []string{"pbx_call_id", "call_id_with_rec"}
			}
			if r := f.zadarmaPost(t, hook.Path, "zd_secret", form, signed...); r.status != 200 {
				t.Fatalf("%s: %d %s", form.Get("event"), r.status, r.body)
			}
		}
		// In the usual order: start, end, the recording ~40 s later.
		send(start("in_usual"))
		send(end("in_usual", "1763722991.123"))
		send(record("in_usual", "1763722991.123"))
		// The recording's notice first (a retried end event), then the rest.
		send(record("in_early", "1763722991.456"))
		send(start("in_early"))
		send(end("in_early", "1763722991.456"))

		calls := f.calls(t)
		for id, rec := range map[string]string{"in_usual": "1763722991.123", "in_early": "1763722991.456"} {
			c, ok := calls[id]
			if !ok {
				t.Fatalf("call %s not stored: %+v", id, calls)
			}
			if c.RecordingURL != rec || c.TrackedNumber != "74951112233" || c.Answered == nil || !*c.Answered ||
				c.TalkSeconds == nil || *c.TalkSeconds != 95 || c.Disposition != "answered" || !c.Ended || c.Match.Type != "static" {
				t.Errorf("call %s: %+v, want recording %s, answered 95 s, static", id, c, rec)
			}
		}
		if len(calls) != 2 {
			t.Errorf("%d calls, want 2: %+v", len(calls), calls)
		}
	})
}

// twilioSign is X-Twilio-Signature: base64(HMAC-SHA1(auth token, the URL
// Twilio requested + each POST parameter as name+value, sorted by name)).
func twilioSign(token, u string, form url.Values) string {
	msg := u
	names := make([]string, 0, len(form))
	for k := range form {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		vs := slices.Clone(form[k])
		slices.Sort(vs)
		for _, v := range vs {
			msg += k + v
		}
	}
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// A Twilio number whose Voice URL is Throughline's hook, configured as GET,
// forwarding to the shop's line: the <Dial action> is the hook's own /dial
// (the incoming query, caller's number included, is not copied into it)
// and its signed callback verifies; the outcome of the forwarded leg
// (DialCallStatus) is the call's disposition whether the final status
// callback (CallStatus=completed: Twilio itself answered) comes before or
// after it.
func TestTwilioDialOutcomeIsKept(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const public = "https://tl.example"
		f := newFixtureWith(t, db, Config{PublicURL: public})
		r := f.api(t, "POST", "/hooks", `{"provider": "twilio", "secret": "authtoken", "forward_to": "+74957654321"}`)
		var hook hookResp
		decode(t, r.body, &hook)
		if r.status != 201 {
			t.Fatalf("hook: %d %s", r.status, r.body)
		}
		call := func(sid string) url.Values {
			return url.Values{"AccountSid": {"AC0123456789abcdef0123456789abcdef"}, "ApiVersion": {"2010-04-01"}, "CallSid": {sid},
				"From": {"+79161234567"}, "To": {"+74951110001"}, "Direction": {"inbound"}, "FromCountry": {"RU"}, "ToCountry": {"RU"}}
		}
		voice := func(sid string) {
			t.Helper()
			q := call(sid)
			q.Set("CallStatus", "ringing")
			u := hook.Path + "?" + q.Encode()
			// GET: Twilio signs the URL with its query, nothing appended.
			r := f.do(t, "GET", u, "", nil, "X-Twilio-Signature", twilioSign("authtoken", public+u, nil))
			wantAction := `action="` + public + hook.Path + `/dial"`
			if r.status != 200 || !strings.Contains(string(r.body), wantAction) || strings.Contains(string(r.body), "79161234567") {
				t.Fatalf("Voice URL (GET): %d %s, want a <Dial> with %s and no caller's number", r.status, r.body, wantAction)
			}
		}
		post := func(path string, form url.Values) {
			t.Helper()
			r := f.do(t, "POST", path, "", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded",
				"X-Twilio-Signature", twilioSign("authtoken", public+path, form))
			if r.status != 200 {
				t.Fatalf("POST %s %v: %d %s", path, form, r.status, r.body)
			}
		}
		dial := func(sid, status, talk string) {
			t.Helper()
			form := call(sid)
			form.Set("CallStatus", "in-progress")
			form.Set("DialCallSid", "CAchild"+sid)
			form.Set("DialCallStatus", status)
			form.Set("DialCallDuration", talk)
			post(hook.Path+"/dial", form)
		}
		final := func(sid string) {
			t.Helper()
			form := call(sid)
			form.Set("CallStatus", "completed")
			form.Set("CallDuration", "32")
			form.Set("CallbackSource", "call-progress-events")
			form.Set("SequenceNumber", "0")
			form.Set("Timestamp", "Fri, 21 Nov 2025 11:04:53 +0000")
			post(hook.Path, form)
		}
		voice("CAdialfirst")
		dial("CAdialfirst", "no-answer", "0")
		final("CAdialfirst")

		voice("CAstatusfirst")
		final("CAstatusfirst")
		dial("CAstatusfirst", "no-answer", "0")

		voice("CAanswered")
		final("CAanswered")
		dial("CAanswered", "completed", "25")

		calls := f.calls(t)
		for sid, want := range map[string]struct {
			disposition string
			answered    bool
		}{"CAdialfirst": {"no-answer", false}, "CAstatusfirst": {"no-answer", false}, "CAanswered": {"completed", true}} {
			c := calls[sid]
			if c.Disposition != want.disposition || c.Answered == nil || *c.Answered != want.answered || !c.Ended {
				t.Errorf("call %s: %+v, want disposition %s, answered %v", sid, c, want.disposition, want.answered)
			}
		}
	})
}

// A static number set up as the README shows (a source and a medium, no
// type): its calls and the orders matched through them are one row of a
// report grouped by traffic type — offline/billboard/offline.
func TestStaticNumberIsOneReportRow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		r := f.api(t, "POST", "/numbers", `{"number": "+7 800 100-20-30", "source": {"source": "billboard", "medium": "offline"}}`)
		if r.status != 201 || !strings.Contains(string(r.body), `"source":{"type":"offline","source":"billboard","medium":"offline"`) {
			t.Fatalf("number: %d %s", r.status, r.body)
		}
		// A type the number's calls would not get is refused, not dropped.
		if r := f.api(t, "POST", "/numbers", `{"number": "+7 800 100-20-31", "source": {"type": "ad", "source": "billboard"}}`); r.status != 400 ||
			!strings.Contains(string(r.body), `"field":"source.type"`) {
			t.Errorf("a static number typed ad: %d %s", r.status, r.body)
		}
		r = f.api(t, "POST", "/hooks", `{"provider": "generic"}`)
		var hook hookResp
		decode(t, r.body, &hook)
		loc := f.a.Location()
		now := time.Now()
		call := fmt.Sprintf(`{"call_id": "c1", "caller": "+7 999 555-11-11", "tracked_number": "88001002030", "started_at": %q, "duration": 60, "answered": true}`,
			now.Add(-10*time.Minute).UTC().Format(time.RFC3339))
		if r := f.do(t, "POST", hook.Path, "", strings.NewReader(call), "Content-Type", "application/json"); r.status != 200 {
			t.Fatalf("call: %d %s", r.status, r.body)
		}
		if c := f.calls(t)["c1"]; c.Match.Type != "static" || c.Traffic.Type != "offline" || c.Traffic.Source != "billboard" {
			t.Fatalf("the call: %+v", c)
		}
		f.uploadSimple(t, "id,create_date_time,phones,order_status,revenue\nB-1,"+now.Add(-5*time.Minute).In(loc).Format("02.01.2006 15:04")+",+79995551111,PAID,5000\n")
		waitFor(t, func() bool {
			var path struct{ Rung string }
			decode(t, f.api(t, "GET", "/orders/B-1/path", "").body, &path)
			return path.Rung != ""
		})
		// Yesterday too: the call and the order may fall on either side of midnight.
		q := "/reports/end-to-end?group=traffic_type,source,medium&from=" + now.In(loc).AddDate(0, 0, -1).Format("2006-01-02") + "&to=" + now.In(loc).Format("2006-01-02")
		var rep struct {
			Rows []struct {
				Dims map[string]string
				reports.Metrics
			}
		}
		r = f.api(t, "GET", q, "")
		decode(t, r.body, &rep)
		var billboard []map[string]string
		for _, row := range rep.Rows {
			if row.Dims["source"] != "billboard" {
				continue
			}
			billboard = append(billboard, row.Dims)
			if row.Dims["traffic_type"] != "offline" || row.Dims["medium"] != "offline" || row.Calls != 1 || row.OrdersPaid != 1 || row.Revenue != "5000.00" {
				t.Errorf("billboard row: %+v", row)
			}
		}
		if len(billboard) != 1 {
			t.Errorf("billboard is in %d rows, want one with its call and its order: %s", len(billboard), r.body)
		}
	})
}
