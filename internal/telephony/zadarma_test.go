package telephony

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"mime/multipart"
	"net/url"
	"testing"
	"time"
)

const zadarmaURL = "https://tl.example/hooks/calls/zadarma/Xy7"

// The spec's NOTIFY_END example (§3.1), signed with API_SECRET test_secret.
const (
	zadarmaEndBody = "event=NOTIFY_END&call_start=2025-11-21+14%3A03%3A11&pbx_call_id=in_0b3c5d7e9f&caller_id=79161234567&called_did=74951112233&internal=100&duration=95&disposition=answered&status_code=16&is_recorded=1&call_id_with_rec=1763722991.123"
	zadarmaEndSig  = "NTQ2MjIyNGZlZDkyMjMwOWYwYWQ2ZTM4YjQ2NGVhZjU4YWFlZDI5Mg=="
)

func TestZadarmaSignatureVector(t *testing.T) {
	s := "79161234567" + "74951112233" + "2025-11-21 14:03:11"
	if got := zadarmaSignature("test_secret", s); got != zadarmaEndSig {
		t.Fatalf("zadarmaSignature = %q, want %q", got, zadarmaEndSig)
	}
}

func TestZadarmaSpecExample(t *testing.T) {
	cfg := Config{Secret: "test_secret", Location: moscow(t)}
	ev, reply := parseOne(t, Zadarma, post(zadarmaURL, "", formCT, zadarmaEndBody, "Signature", zadarmaEndSig), cfg)
	wantEvent(t, ev, Event{
		Provider: Zadarma, Kind: "NOTIFY_END", CallID: "in_0b3c5d7e9f", Direction: "in",
		Caller: "79161234567", Tracked: "74951112233",
		StartedAt:   utc("2025-11-21T11:03:11Z"), // 14:03:11 in Moscow (UTC+3)
		Answered:    ptr(true),
		TalkSeconds: ptr(95),
		Disposition: "answered", Employee: "100", Final: true,
		// is_recorded=1: the recording's id, to fetch it through Zadarma's API.
		RecordingURL: "1763722991.123",
	})
	if !reflect0(reply) {
		t.Fatalf("reply = %+v, want the zero Reply", reply)
	}
}

func reflect0(r Reply) bool { return r.Status == 0 && r.ContentType == "" && r.Body == nil }

func TestZadarmaTimeZone(t *testing.T) {
	// No zone configured: call_start is read as UTC.
	ev, _ := parseOne(t, Zadarma, post(zadarmaURL, "", formCT, zadarmaEndBody), Config{})
	if want := utc("2025-11-21T14:03:11Z"); !ev.StartedAt.Equal(want) || ev.StartedAt.Location() != time.UTC {
		t.Fatalf("StartedAt = %v, want %v", ev.StartedAt, want)
	}
	// Moscow: UTC+3 all year.
	ev, _ = parseOne(t, Zadarma, post(zadarmaURL, "", formCT, zadarmaEndBody), Config{Location: moscow(t)})
	if want := utc("2025-11-21T11:03:11Z"); !ev.StartedAt.Equal(want) || ev.StartedAt.Location() != time.UTC {
		t.Fatalf("StartedAt = %v, want %v in UTC", ev.StartedAt, want)
	}
}

func TestZadarmaEcho(t *testing.T) {
	for _, cfg := range []Config{{}, {Secret: "test_secret"}} {
		reply := parseNone(t, Zadarma, get(zadarmaURL+"?zd_echo=a1B2c3D4e5", ""), cfg)
		if reply.Status != 200 || string(reply.Body) != "a1B2c3D4e5" || reply.ContentType != "text/plain; charset=utf-8" {
			t.Fatalf("echo reply = %d %q %q", reply.Status, reply.ContentType, reply.Body)
		}
	}
	// Exactly the value, decoded.
	reply := parseNone(t, Zadarma, get(zadarmaURL+"?x=1&zd_echo=a%2Bb+c", ""), Config{})
	if string(reply.Body) != "a+b c" {
		t.Fatalf("echo body = %q", reply.Body)
	}
	// A GET without zd_echo is neither the check nor an event.
	wantFieldError(t, Zadarma, get(zadarmaURL, ""), Config{}, "zd_echo")
}

// sign signs a Zadarma form with S made of the named fields.
func zadarmaSigned(t *testing.T, secret string, form url.Values, signFields ...string) Request {
	t.Helper()
	var s string
	for _, f := range signFields {
		s += form.Get(f)
	}
	return post(zadarmaURL, "", formCT, form.Encode(), "Signature", zadarmaSignature(secret, s))
}

func TestZadarmaEvents(t *testing.T) {
	cfg := Config{Secret: "sec", Location: moscow(t)}
	start := utc("2025-11-21T11:03:11Z")
	cases := []struct {
		name string
		form url.Values
		sign []string
		want Event
	}{
		{"start", url.Values{"event": {"NOTIFY_START"}, "call_start": {"2025-11-21 14:03:11"}, "pbx_call_id": {"in_1"},
			"caller_id": {"79161234567"}, "called_did": {"74951112233"}},
			[]string{"caller_id", "called_did", "call_start"},
			Event{Provider: Zadarma, Kind: "NOTIFY_START", CallID: "in_1", Direction: "in", Caller: "79161234567", Tracked: "74951112233", StartedAt: start}},
		{"internal", url.Values{"event": {"NOTIFY_INTERNAL"}, "call_start": {"2025-11-21 14:03:11"}, "pbx_call_id": {"in_1"},
			"caller_id": {"79161234567"}, "called_did": {"74951112233"}, "internal": {"101"}},
			[]string{"caller_id", "called_did", "call_start"},
			Event{Provider: Zadarma, Kind: "NOTIFY_INTERNAL", CallID: "in_1", Direction: "in", Caller: "79161234567", Tracked: "74951112233", StartedAt: start, Employee: "101"}},
		{"answer", url.Values{"event": {"NOTIFY_ANSWER"}, "call_start": {"2025-11-21 14:03:11"}, "pbx_call_id": {"in_1"},
			"caller_id": {"79161234567"}, "destination": {"101"}},
			[]string{"caller_id", "destination", "call_start"},
			// Answered is said by the end event only.
			Event{Provider: Zadarma, Kind: "NOTIFY_ANSWER", CallID: "in_1", Direction: "in", Caller: "79161234567", StartedAt: start, Employee: "101"}},
		{"end not answered", url.Values{"event": {"NOTIFY_END"}, "call_start": {"2025-11-21 14:03:11"}, "pbx_call_id": {"in_1"},
			"caller_id": {"+79161234567"}, "called_did": {"74951112233"}, "duration": {"0"}, "disposition": {"no answer"}},
			[]string{"caller_id", "called_did", "call_start"},
			Event{Provider: Zadarma, Kind: "NOTIFY_END", CallID: "in_1", Direction: "in", Caller: "+79161234567", Tracked: "74951112233", StartedAt: start,
				Answered: ptr(false), TalkSeconds: ptr(0), Disposition: "no answer", Final: true}},
		{"out start", url.Values{"event": {"NOTIFY_OUT_START"}, "call_start": {"2025-11-21 14:03:11"}, "pbx_call_id": {"out_2"},
			"internal": {"100"}, "destination": {"79161234567"}},
			[]string{"internal", "destination", "call_start"},
			Event{Provider: Zadarma, Kind: "NOTIFY_OUT_START", CallID: "out_2", Direction: "out", Caller: "100", Tracked: "79161234567", StartedAt: start, Employee: "100"}},
		{"out end", url.Values{"event": {"NOTIFY_OUT_END"}, "call_start": {"2025-11-21 14:03:11"}, "pbx_call_id": {"out_2"},
			"internal": {"100"}, "destination": {"79161234567"}, "duration": {"42"}, "disposition": {"answered"}},
			[]string{"internal", "destination", "call_start"},
			Event{Provider: Zadarma, Kind: "NOTIFY_OUT_END", CallID: "out_2", Direction: "out", Caller: "100", Tracked: "79161234567", StartedAt: start, Employee: "100",
				Answered: ptr(true), TalkSeconds: ptr(42), Disposition: "answered", Final: true}},
		{"record", url.Values{"event": {"NOTIFY_RECORD"}, "pbx_call_id": {"in_1"}, "call_id_with_rec": {"1763722991.123"}},
			[]string{"pbx_call_id", "call_id_with_rec"},
			Event{Provider: Zadarma, Kind: "NOTIFY_RECORD", CallID: "in_1", RecordingURL: "1763722991.123"}},
		{"out end recorded", url.Values{"event": {"NOTIFY_OUT_END"}, "call_start": {"2025-11-21 14:03:11"}, "pbx_call_id": {"out_2"},
			"internal": {"100"}, "destination": {"79161234567"}, "duration": {"42"}, "disposition": {"answered"},
			"is_recorded": {"1"}, "call_id_with_rec": {"1763722991.456"}},
			[]string{"internal", "destination", "call_start"},
			Event{Provider: Zadarma, Kind: "NOTIFY_OUT_END", CallID: "out_2", Direction: "out", Caller: "100", Tracked: "79161234567", StartedAt: start, Employee: "100",
				Answered: ptr(true), TalkSeconds: ptr(42), Disposition: "answered", Final: true, RecordingURL: "1763722991.456"}},
		// is_recorded=0: whatever call_id_with_rec says, there is no file.
		{"end not recorded", url.Values{"event": {"NOTIFY_END"}, "call_start": {"2025-11-21 14:03:11"}, "pbx_call_id": {"in_1"},
			"caller_id": {"79161234567"}, "called_did": {"74951112233"}, "duration": {"0"}, "disposition": {"busy"},
			"is_recorded": {"0"}, "call_id_with_rec": {"1763722991.789"}},
			[]string{"caller_id", "called_did", "call_start"},
			Event{Provider: Zadarma, Kind: "NOTIFY_END", CallID: "in_1", Direction: "in", Caller: "79161234567", Tracked: "74951112233", StartedAt: start,
				Answered: ptr(false), TalkSeconds: ptr(0), Disposition: "busy", Final: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, _ := parseOne(t, Zadarma, zadarmaSigned(t, "sec", c.form, c.sign...), cfg)
			wantEvent(t, ev, c.want)
			// The same request signed with another secret fails.
			wantSignatureError(t, Zadarma, zadarmaSigned(t, "other", c.form, c.sign...), cfg)
		})
	}
}

func TestZadarmaSignatureFailures(t *testing.T) {
	cfg := Config{Secret: "test_secret"}
	// Missing header.
	wantSignatureError(t, Zadarma, post(zadarmaURL, "", formCT, zadarmaEndBody), cfg)
	// Wrong header.
	wantSignatureError(t, Zadarma, post(zadarmaURL, "", formCT, zadarmaEndBody, "Signature", "bm9wZQ=="), cfg)
	// Trap: base64 of the raw digest (not of its hex string) is wrong.
	mac := hmac.New(sha1.New, []byte("test_secret"))
	mac.Write([]byte("79161234567" + "74951112233" + "2025-11-21 14:03:11"))
	raw := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	wantSignatureError(t, Zadarma, post(zadarmaURL, "", formCT, zadarmaEndBody, "Signature", raw), cfg)
	// A tampered field.
	tampered := bytes.Replace([]byte(zadarmaEndBody), []byte("called_did=74951112233"), []byte("called_did=74951112234"), 1)
	wantSignatureError(t, Zadarma, post(zadarmaURL, "", formCT, string(tampered), "Signature", zadarmaEndSig), cfg)
	// Without a secret the header is not checked (Zadarma signs only when the
	// account has an API key).
	parseOne(t, Zadarma, post(zadarmaURL, "", formCT, zadarmaEndBody, "Signature", "garbage"), Config{})
}

func TestZadarmaIgnored(t *testing.T) {
	// Events without call data give no events and need no signature, even
	// with a secret set.
	for _, kind := range []string{"NOTIFY_IVR", "SPEECH_RECOGNITION", "SMS", "NOTIFY_SOMETHING_NEW"} {
		body := url.Values{"event": {kind}, "caller_id": {"79161234567"}, "pbx_call_id": {"in_1"}}.Encode()
		reply := parseNone(t, Zadarma, post(zadarmaURL, "", formCT, body), Config{Secret: "sec"})
		if !reflect0(reply) {
			t.Fatalf("%s: reply %+v", kind, reply)
		}
	}
}

func TestZadarmaFieldErrors(t *testing.T) {
	base := func() url.Values {
		v, err := url.ParseQuery(zadarmaEndBody)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		field  string
		modify func(url.Values)
	}{
		{"event", func(v url.Values) { v.Del("event") }},
		{"pbx_call_id", func(v url.Values) { v.Del("pbx_call_id") }},
		{"call_start", func(v url.Values) { v.Del("call_start") }},
		{"call_start", func(v url.Values) { v.Set("call_start", "21.11.2025 14:03") }},
		{"duration", func(v url.Values) { v.Set("duration", "ninety") }},
		{"duration", func(v url.Values) { v.Set("duration", "-5") }},
		{"caller_id", func(v url.Values) { v.Set("caller_id", "7916\xff") }},
		{"called_did", func(v url.Values) { v.Set("called_did", "7495\x00") }},
	}
	for _, c := range cases {
		v := base()
		c.modify(v)
		wantFieldError(t, Zadarma, post(zadarmaURL, "", formCT, v.Encode()), Config{}, c.field)
	}
	wantFieldError(t, Zadarma, post(zadarmaURL, "", formCT, "event=NOTIFY_END&caller_id=%zz"), Config{}, "body")
	wantFieldError(t, Zadarma, post(zadarmaURL, "", "application/json", `{"event":"NOTIFY_END"}`), Config{}, "Content-Type")
	wantFieldError(t, Zadarma, post(zadarmaURL, "", formCT, "event=NOTIFY_RECORD&call_id_with_rec=1"), Config{}, "pbx_call_id")
}

func TestZadarmaMultipart(t *testing.T) {
	v, err := url.ParseQuery(zadarmaEndBody)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k := range v {
		if err := w.WriteField(k, v.Get(k)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	ev, _ := parseOne(t, Zadarma, post(zadarmaURL, "", w.FormDataContentType(), b.String(), "Signature", zadarmaEndSig),
		Config{Secret: "test_secret", Location: moscow(t)})
	if ev.CallID != "in_0b3c5d7e9f" || ev.StartedAt != utc("2025-11-21T11:03:11Z") || *ev.TalkSeconds != 95 {
		t.Fatalf("event %s", show(ev))
	}
	// A multipart type without a boundary names the header.
	wantFieldError(t, Zadarma, post(zadarmaURL, "", "multipart/form-data", b.String()), Config{}, "Content-Type")
}
