package telephony

import (
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Fuzz tests: Parse must never panic on any request, must fail only with
// the documented errors, and every event it accepts must satisfy what the
// caller relies on (provider and call id set, UTF-8 text without NUL, UTC
// times in range, non-negative durations).
//
//	go test -run XXX -fuzz '^FuzzParse$' -fuzztime 60s -fuzzminimizetime 5s ./internal/telephony
//	go test -run XXX -fuzz '^FuzzGeneric$' -fuzztime 60s -fuzzminimizetime 5s ./internal/telephony

const fuzzURL = "https://tl.example/hooks/calls/x/tok"

// FuzzParse drives every provider. provider selects the provider by its low
// bits (one value past the list is an unknown provider); for Mango its top
// bit wraps the body as a correctly signed json field, so the fuzzer reaches
// the JSON parsing behind the signature; for generic it signs the body with
// a secret. For GET the body is used as the URL's query string.
func FuzzParse(f *testing.F) {
	seeds := []struct {
		provider            byte
		method, subpath, ct string
		body                string
	}{
		{0, "POST", "", "application/json", `{"call_id":"c-1","caller":"79161234567","tracked_number":"74951112233","started_at":"2025-11-21T14:03:11+03:00","duration":95,"answered":true,"final":false,"direction":"in"}`},
		{0x40, "POST", "", "", `{"call_id":1,"to":2,"date":1763722991000,"status":"successful"}`},
		{0, "POST", "", formCT, "callerphone=79161234567&phonenumber=74951112233&calltime=2025-11-21+14%3A03&status=successful&unique=true&callid=1"},
		{0, "GET", "", "", "call_id=c&tracked_number=1&started_at=2025-11-21+14%3A03%3A11&answered=yes"},
		{0, "POST", "", "multipart/form-data; boundary=xyz", "--xyz\r\nContent-Disposition: form-data; name=\"call_id\"\r\n\r\nc\r\n--xyz\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\n1\r\n--xyz\r\nContent-Disposition: form-data; name=\"date\"\r\n\r\n1763722991\r\n--xyz--\r\n"},
		{1, "GET", "", "", "zd_echo=abc"},
		{1, "POST", "", formCT, zadarmaEndBody},
		{1, "POST", "", formCT, "event=NOTIFY_OUT_END&call_start=2025-11-21+14%3A03%3A11&pbx_call_id=out_1&internal=100&destination=79161234567&duration=5&disposition=busy"},
		{1, "POST", "", formCT, "event=NOTIFY_RECORD&pbx_call_id=in_1&call_id_with_rec=1.2"},
		{1, "POST", "", formCT, "event=SMS&caller_id=1"},
		{0x82, "POST", "/events/call", formCT, mangoVectorJSON},
		{0x82, "POST", "/events/summary", formCT, `{"entry_id":"E","call_direction":1,"from":{"number":"1"},"to":{"extension":"101","line_number":"2"},"line_number":"2","create_time":1763722991,"talk_time":1763722998,"end_time":1763723093,"disconnect_reason":1110}`},
		{0x82, "POST", "/events/recording", formCT, `{"entry_id":"E","recording_id":"R"}`},
		{0x82, "POST", "/events/call", formCT, `{"entry_id":"E","timestamp":"1399906976","seq":"1","call_state":"Disconnected","disconnect_reason":"1100"}`},
		{2, "POST", "/events/call", formCT, "vpbx_api_key=k&sign=00&json=%7B%7D"},
		{3, "POST", "", formCT, "CallSid=CA1&From=%2B79161234567&To=%2B74951112233&CallStatus=ringing&Direction=inbound"},
		{3, "POST", "", formCT, "CallSid=CA1&CallStatus=completed&CallDuration=102&Direction=inbound&Timestamp=Fri%2C+21+Nov+2025+11%3A04%3A53+%2B0000"},
		{3, "POST", "/dial", formCT, "CallSid=CA1&DialCallStatus=completed&DialCallDuration=95&RecordingUrl=https%3A%2F%2Fx"},
		{3, "GET", "", "", "CallSid=CA1&CallStatus=ringing"},
		{4, "POST", "", formCT, "a=b"},
		{0, "PUT", "", "text/plain", "x"},
	}
	for _, s := range seeds {
		f.Add(s.provider, s.method, s.subpath, s.ct, []byte(s.body))
	}
	msk, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, provider byte, method, subpath, contentType string, body []byte) {
		name := "nonesuch"
		if i := int(provider & 0x0f); i < len(Providers) {
			name = Providers[i]
		}
		cfg := Config{Location: msk, ReceivedAt: time.Unix(1763722991, 0), ForwardTo: "+74957654321"}
		req := Request{Method: method, URL: fuzzURL + "?x=1", Subpath: subpath, Header: http.Header{}, Body: body}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if strings.EqualFold(strings.TrimSpace(method), "GET") {
			req.URL = fuzzURL + "?" + string(body)
		}
		switch {
		case name == Mango:
			cfg.Key, cfg.Salt = "k", "s"
			if provider&0x80 != 0 {
				sum := mangoSign("k", string(body), "s")
				req.Body = []byte(url.Values{"vpbx_api_key": {"k"}, "sign": {hex.EncodeToString(sum[:])}, "json": {string(body)}}.Encode())
				req.Header.Set("Content-Type", formCT)
				req.Method = "POST"
			}
		case name == Generic && provider&0x40 != 0:
			cfg.Secret = "s3cret"
			req.Header.Set(genericSignatureHeader, hmacHeader("s3cret", string(body)))
		}
		evs, reply, err := Parse(name, req, cfg)
		checkResult(t, name, evs, reply, err)
	})
}

// FuzzGeneric fuzzes the generic format's body alone (sniffed: JSON or a
// form).
func FuzzGeneric(f *testing.F) {
	for _, s := range []string{
		`{"call_id":"c-1","caller":"79161234567","tracked_number":"74951112233","started_at":"2025-11-21T14:03:11+03:00","duration":95,"answered":true}`,
		`{"CallId":7,"Phonenumber":74951112233,"CallTime":"2025-11-21 14:03","Status":"successful","final":"0"}`,
		`{"uniqueid":"1.2","src":"1","dst":"2","calldate":"2025-11-21 14:03:11","billsec":"9","disposition":"NO ANSWER","direction":"outbound"}`,
		`{"call_session_id":2936455184,"start_time":"2025-11-21 14:03:11","virtual_phone_number":"74951112233","talk_time_duration":95}`,
		"callerphone=79161234567&phonenumber=74951112233&calltime=2025-11-21+14%3A03&status=successful&callid=1",
		"call_id=c&to=1&date=1763722991000&answered=no&final=false&recording_url=https%3A%2F%2Fx",
		`{"call_id":"c","to":"1","date":"2025-11-21T11:03:11.5Z","answered":"yes","wait_s":3}`,
		`[1]`, `{"a":{"b":[1,{"c":null}]}}`, "a=%zz", "",
	} {
		f.Add([]byte(s))
	}
	msk, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := Request{Method: "POST", URL: fuzzURL, Header: http.Header{}, Body: body}
		evs, reply, err := Parse(Generic, req, Config{Location: msk})
		checkResult(t, Generic, evs, reply, err)
		if err == nil {
			if len(evs) != 1 {
				t.Fatalf("generic gave %d events", len(evs))
			}
			if evs[0].Tracked == "" || evs[0].StartedAt.IsZero() {
				t.Fatalf("generic event without a required field: %s", show(evs[0]))
			}
		}
	})
}

// checkResult asserts what every Parse result must satisfy.
func checkResult(t *testing.T, provider string, evs []Event, reply Reply, err error) {
	t.Helper()
	if err != nil {
		var fe *FieldError
		switch {
		case errors.Is(err, ErrSignature), errors.Is(err, ErrUnknownProvider):
		case errors.As(err, &fe):
			if fe.Field == "" || fe.Message == "" {
				t.Fatalf("FieldError without field or message: %#v", fe)
			}
		default:
			t.Fatalf("undocumented error %T: %v", err, err)
		}
		if !utf8.ValidString(err.Error()) || strings.IndexByte(err.Error(), 0) >= 0 || len(err.Error()) > 2*maxMessage {
			t.Fatalf("error message not clean UTF-8 or too long: %q", err.Error())
		}
		if evs != nil {
			t.Fatalf("events with an error: %+v", evs)
		}
		return
	}
	if reply.Status != 0 && reply.Status != 200 {
		t.Fatalf("reply status %d", reply.Status)
	}
	for _, e := range evs {
		if e.Provider != provider {
			t.Fatalf("Provider = %q, want %q", e.Provider, provider)
		}
		if e.CallID == "" {
			t.Fatalf("event without CallID: %s", show(e))
		}
		for _, s := range []string{e.Kind, e.CallID, e.Direction, e.Caller, e.Tracked, e.Disposition, e.RecordingURL, e.Employee} {
			if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 || s != strings.TrimSpace(s) {
				t.Fatalf("event string %q not clean UTF-8: %s", s, show(e))
			}
		}
		switch e.Direction {
		case "", "in", "out", "internal":
		default:
			t.Fatalf("Direction %q", e.Direction)
		}
		if !e.StartedAt.IsZero() {
			if e.StartedAt.Location() != time.UTC || e.StartedAt.Before(minTime) || !e.StartedAt.Before(maxTime) {
				t.Fatalf("StartedAt %v not UTC in range", e.StartedAt)
			}
			if _, err := e.StartedAt.MarshalJSON(); err != nil {
				t.Fatalf("StartedAt %v: %v", e.StartedAt, err)
			}
		}
		for _, p := range []*int{e.TalkSeconds, e.WaitSeconds} {
			if p != nil && (*p < 0 || *p > maxSeconds) {
				t.Fatalf("duration %d out of range: %s", *p, show(e))
			}
		}
	}
}
