package telephony

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"reflect"
	"testing"
	"time"
)

const twilioURL = "https://tl.example/hooks/calls/twilio/Xy7"

// The vendor docs' vector (spec §3.4).
const (
	twilioVectorURL = "https://mycompany.com/myapp.php?foo=1&bar=2"
	twilioVectorSig = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
)

var twilioVectorParams = url.Values{
	"CallSid": {"CA1234567890ABCDE"},
	"Caller":  {"+12349013030"},
	"Digits":  {"1234"},
	"From":    {"+12349013030"},
	"To":      {"+18005551212"},
}

// twilioSign computes X-Twilio-Signature for a form POST.
func twilioSign(token, u string, params url.Values) string {
	fs, err := parseForm(params.Encode(), "body")
	if err != nil {
		panic(err)
	}
	msg := u
	for _, p := range sortedFields(fs) {
		msg += p.name + p.val.s
	}
	return base64.StdEncoding.EncodeToString(twilioSignature(token, msg))
}

func sortedFields(fs fields) fields {
	out := append(fields(nil), fs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].name < out[i].name || out[j].name == out[i].name && out[j].val.s < out[i].val.s {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestTwilioSignatureVector(t *testing.T) {
	if got := twilioSign("12345", twilioVectorURL, twilioVectorParams); got != twilioVectorSig {
		t.Fatalf("signature = %s, want %s", got, twilioVectorSig)
	}
	// Through Parse: parameters in any order in the body.
	body := "To=%2B18005551212&From=%2B12349013030&Digits=1234&Caller=%2B12349013030&CallSid=CA1234567890ABCDE"
	ev, reply := parseOne(t, Twilio, post(twilioVectorURL, "", formCT, body, "X-Twilio-Signature", twilioVectorSig), Config{Secret: "12345"})
	if ev.CallID != "CA1234567890ABCDE" || ev.Caller != "+12349013030" || ev.Tracked != "+18005551212" {
		t.Fatalf("event %s", show(ev))
	}
	if string(reply.Body) != `<?xml version="1.0" encoding="UTF-8"?>`+"\n<Response/>" {
		t.Fatalf("reply %q", reply.Body)
	}
}

func TestTwilioSignaturePorts(t *testing.T) {
	body := twilioVectorParams.Encode()
	cfg := Config{Secret: "12345"}
	// Signed without a port, received with the default port written out.
	parseOne(t, Twilio, post("https://mycompany.com:443/myapp.php?foo=1&bar=2", "", formCT, body, "X-Twilio-Signature", twilioVectorSig), cfg)
	// Signed with the port, received without.
	sig := twilioSign("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", twilioVectorParams)
	parseOne(t, Twilio, post(twilioVectorURL, "", formCT, body, "X-Twilio-Signature", sig), cfg)
	sig = twilioSign("12345", "http://mycompany.com:80/myapp.php", twilioVectorParams)
	parseOne(t, Twilio, post("http://mycompany.com/myapp.php", "", formCT, body, "X-Twilio-Signature", sig), cfg)
	// A non-default port is not dropped.
	sig = twilioSign("12345", "https://mycompany.com/myapp.php", twilioVectorParams)
	wantSignatureError(t, Twilio, post("https://mycompany.com:8443/myapp.php", "", formCT, body, "X-Twilio-Signature", sig), cfg)

	want := map[string][]string{
		"https://a.example/p?q=1":           {"https://a.example/p?q=1", "https://a.example:443/p?q=1"},
		"https://a.example:443/p":           {"https://a.example:443/p", "https://a.example/p"},
		"http://u:p@a.example":              {"http://u:p@a.example", "http://u:p@a.example:80"},
		"https://[::1]/x":                   {"https://[::1]/x", "https://[::1]:443/x"},
		"https://[::1]:443/x":               {"https://[::1]:443/x", "https://[::1]/x"},
		"https://a.example:8443/x":          {"https://a.example:8443/x"},
		"ftp://a.example/x":                 {"ftp://a.example/x"},
		"no scheme":                         {"no scheme"},
		"HTTPS://A.example?x=http://b:80/y": {"HTTPS://A.example?x=http://b:80/y", "HTTPS://A.example:443?x=http://b:80/y"},
	}
	for in, w := range want {
		if got := twilioURLs(in); !reflect.DeepEqual(got, w) {
			t.Errorf("twilioURLs(%q) = %q, want %q", in, got, w)
		}
	}
}

func TestTwilioSignatureFailures(t *testing.T) {
	body := twilioVectorParams.Encode()
	cfg := Config{Secret: "12345"}
	wantSignatureError(t, Twilio, post(twilioVectorURL, "", formCT, body), cfg)
	wantSignatureError(t, Twilio, post(twilioVectorURL, "", formCT, body, "X-Twilio-Signature", "not base64!"), cfg)
	wantSignatureError(t, Twilio, post(twilioVectorURL, "", formCT, body, "X-Twilio-Signature", "AAAA"), cfg)
	// Another URL (the signature covers it), another token, an extra parameter.
	wantSignatureError(t, Twilio, post("https://mycompany.com/myapp.php?foo=1&bar=3", "", formCT, body, "X-Twilio-Signature", twilioVectorSig), cfg)
	wantSignatureError(t, Twilio, post(twilioVectorURL, "", formCT, body, "X-Twilio-Signature", twilioVectorSig), Config{Secret: "54321"})
	wantSignatureError(t, Twilio, post(twilioVectorURL, "", formCT, body+"&CallStatus=completed", "X-Twilio-Signature", twilioVectorSig), cfg)
	// No token configured: no check.
	parseOne(t, Twilio, post(twilioVectorURL, "", formCT, body, "X-Twilio-Signature", "garbage"), Config{})
}

func TestTwilioSignatureRepeatedAndGET(t *testing.T) {
	// Repeated names: all kept, sorted by value.
	params := url.Values{"CallSid": {"CA1"}, "B": {"2", "1"}}
	sig := twilioSign("tok", twilioURL, params)
	body := "B=2&CallSid=CA1&B=1"
	parseOne(t, Twilio, post(twilioURL, "", formCT, body, "X-Twilio-Signature", sig), Config{Secret: "tok"})

	// GET: the URL alone is signed.
	u := twilioURL + "?CallSid=CA9&From=%2B79161234567&To=%2B74951112233&CallStatus=ringing&Direction=inbound"
	sig = base64.StdEncoding.EncodeToString(twilioSignature("tok", u))
	req := get(u, "")
	req.Header.Set("X-Twilio-Signature", sig)
	ev, _ := parseOne(t, Twilio, req, Config{Secret: "tok"})
	if ev.CallID != "CA9" || ev.Tracked != "+74951112233" || ev.Kind != "incoming" {
		t.Fatalf("event %s", show(ev))
	}

	// bodySHA256: the URL is signed (not the parameters), the body hashed.
	hashed := "CallSid=CA7&CallStatus=ringing"
	sum := sha256.Sum256([]byte(hashed))
	u = twilioURL + "?bodySHA256=" + hex.EncodeToString(sum[:])
	sig = base64.StdEncoding.EncodeToString(twilioSignature("tok", u))
	ev, _ = parseOne(t, Twilio, post(u, "", formCT, hashed, "X-Twilio-Signature", sig), Config{Secret: "tok"})
	if ev.CallID != "CA7" {
		t.Fatalf("event %s", show(ev))
	}
	wantSignatureError(t, Twilio, post(u, "", formCT, hashed+"&x=1", "X-Twilio-Signature", sig), Config{Secret: "tok"})
}

func TestTwilioIncoming(t *testing.T) {
	received := time.Date(2025, 11, 21, 14, 3, 11, 0, moscow(t))
	body := "AccountSid=AC0123&ApiVersion=2010-04-01&CallSid=CAa1b2&CallStatus=ringing&Direction=inbound&From=%2B79161234567&To=%2B74951112233&Caller=%2B79161234567&Called=%2B74951112233"
	ev, reply := parseOne(t, Twilio, post(twilioURL, "", formCT, body), Config{ReceivedAt: received})
	wantEvent(t, ev, Event{
		Provider: Twilio, Kind: "incoming", CallID: "CAa1b2", Direction: "in",
		Caller: "+79161234567", Tracked: "+74951112233", StartedAt: utc("2025-11-21T11:03:11Z"),
	})
	if reply.Status != 200 || reply.ContentType != "text/xml; charset=utf-8" ||
		string(reply.Body) != `<?xml version="1.0" encoding="UTF-8"?>`+"\n<Response/>" {
		t.Fatalf("reply %d %q %q", reply.Status, reply.ContentType, reply.Body)
	}

	// Forwarding: <Dial> with the hook's /dial as action.
	_, reply = parseOne(t, Twilio, post(twilioURL, "", formCT, body), Config{ReceivedAt: received, ForwardTo: "+74957654321"})
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Response><Dial action="https://tl.example/hooks/calls/twilio/Xy7/dial" timeout="30">+74957654321</Dial></Response>`
	if string(reply.Body) != want {
		t.Fatalf("reply\n got %s\nwant %s", reply.Body, want)
	}
	// The action is the hook's own path: the Voice URL's query is not
	// carried over (a GET Voice URL's query is the whole call, caller's
	// number included), and a trailing slash or a subpath of the Voice URL
	// does not double up.
	getQuery := "?" + body
	for _, c := range []struct{ method, url, subpath, action string }{
		{"POST", twilioURL + "?a=1&b=2", "", "https://tl.example/hooks/calls/twilio/Xy7/dial"},
		{"GET", twilioURL + getQuery, "", "https://tl.example/hooks/calls/twilio/Xy7/dial"},
		{"GET", twilioURL + "/voice" + getQuery + "#x", "/voice", "https://tl.example/hooks/calls/twilio/Xy7/dial"},
		{"POST", twilioURL + "/", "", "https://tl.example/hooks/calls/twilio/Xy7/dial"},
		{"POST", twilioURL + "/voice", "/voice", "https://tl.example/hooks/calls/twilio/Xy7/dial"},
	} {
		req := post(c.url, c.subpath, formCT, body)
		if c.method == "GET" {
			req = get(c.url, c.subpath)
		}
		_, reply = parseOne(t, Twilio, req, Config{ForwardTo: "+74957654321"})
		want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<Response><Dial action="` + c.action + `" timeout="30">+74957654321</Dial></Response>`
		if string(reply.Body) != want {
			t.Errorf("%s: reply\n got %s\nwant %s", c.url, reply.Body, want)
		}
	}
	// No receipt time given: no start.
	ev, _ = parseOne(t, Twilio, post(twilioURL, "", formCT, body), Config{})
	if !ev.StartedAt.IsZero() {
		t.Fatalf("StartedAt = %v", ev.StartedAt)
	}
}

func TestTwilioStatusCallback(t *testing.T) {
	// The spec's example: Timestamp is when "completed" happened; the call
	// started CallDuration earlier. Inbound "completed" says nothing about a
	// person answering.
	body := "AccountSid=AC0123456789abcdef0123456789abcdef&ApiVersion=2010-04-01&CallSid=CAa1b2c3d4e5f60718293a4b5c6d7e8f90&CallStatus=completed&CallDuration=102&Direction=inbound&From=%2B79161234567&To=%2B74951112233&FromCountry=RU&ToCountry=RU&CallbackSource=call-progress-events&SequenceNumber=0&Timestamp=Fri%2C+21+Nov+2025+11%3A04%3A53+%2B0000"
	ev, reply := parseOne(t, Twilio, post(twilioURL, "", formCT, body), Config{ForwardTo: "+74957654321"})
	wantEvent(t, ev, Event{
		Provider: Twilio, Kind: "completed", CallID: "CAa1b2c3d4e5f60718293a4b5c6d7e8f90", Direction: "in",
		Caller: "+79161234567", Tracked: "+74951112233", StartedAt: utc("2025-11-21T11:03:11Z"),
		Disposition: "completed", Final: true,
	})
	if !reflect0(reply) {
		t.Fatalf("reply %+v", reply)
	}

	// A progress callback: not final, its Timestamp is the start.
	body = "CallSid=CA2&CallStatus=ringing&Direction=inbound&From=%2B79161234567&To=%2B74951112233&CallbackSource=call-progress-events&Timestamp=Fri%2C+21+Nov+2025+14%3A03%3A11+%2B0300"
	ev, _ = parseOne(t, Twilio, post(twilioURL, "", formCT, body), Config{})
	wantEvent(t, ev, Event{
		Provider: Twilio, Kind: "ringing", CallID: "CA2", Direction: "in",
		Caller: "+79161234567", Tracked: "+74951112233", StartedAt: utc("2025-11-21T11:03:11Z"), Disposition: "ringing",
	})

	// Terminal statuses without CallbackSource are still callbacks.
	for _, st := range []string{"busy", "no-answer", "failed", "canceled"} {
		ev, _ = parseOne(t, Twilio, post(twilioURL, "", formCT, "CallSid=CA3&CallStatus="+st), Config{})
		if !ev.Final || ev.Kind != st || ev.Answered != nil {
			t.Errorf("%s: event %s", st, show(ev))
		}
	}

	// Outgoing: CallDuration counts from the callee's answer, i.e. talk.
	body = "CallSid=CA4&CallStatus=completed&CallDuration=61&Direction=outbound-api&From=%2B74951112233&To=%2B79161234567&Timestamp=Fri%2C+21+Nov+2025+11%3A04%3A53+%2B0000"
	ev, _ = parseOne(t, Twilio, post(twilioURL, "", formCT, body), Config{})
	if ev.Direction != "out" || ev.TalkSeconds == nil || *ev.TalkSeconds != 61 || ev.Answered != nil {
		t.Fatalf("event %s", show(ev))
	}
}

func TestTwilioDial(t *testing.T) {
	body := "CallSid=CAparent&CallStatus=in-progress&Direction=inbound&From=%2B79161234567&To=%2B74951112233&DialCallSid=CAchild&DialCallStatus=completed&DialCallDuration=95&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC1%2FRecordings%2FRE1"
	ev, reply := parseOne(t, Twilio, post(twilioURL+"/dial", "/dial", formCT, body), Config{ForwardTo: "+74957654321"})
	wantEvent(t, ev, Event{
		Provider: Twilio, Kind: "dial", CallID: "CAparent", Direction: "in",
		Caller: "+79161234567", Tracked: "+74951112233", Answered: ptr(true), TalkSeconds: ptr(95),
		Disposition: "completed", RecordingURL: "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", Final: true,
	})
	if string(reply.Body) != `<?xml version="1.0" encoding="UTF-8"?>`+"\n<Response/>" || reply.ContentType != "text/xml; charset=utf-8" {
		t.Fatalf("reply %q %q", reply.ContentType, reply.Body)
	}
	ev, _ = parseOne(t, Twilio, post(twilioURL+"/dial", "/dial", formCT, "CallSid=CAp&DialCallStatus=answered&DialCallDuration=3"), Config{})
	if !*ev.Answered || *ev.TalkSeconds != 3 {
		t.Fatalf("event %s", show(ev))
	}
	ev, _ = parseOne(t, Twilio, post(twilioURL+"/dial", "/dial", formCT, "CallSid=CAp&DialCallStatus=no-answer"), Config{})
	if *ev.Answered || *ev.TalkSeconds != 0 || !ev.Final {
		t.Fatalf("event %s", show(ev))
	}
}

func TestTwilioFieldErrors(t *testing.T) {
	wantFieldError(t, Twilio, post(twilioURL, "", formCT, "From=%2B79161234567"), Config{}, "CallSid")
	wantFieldError(t, Twilio, post(twilioURL, "", formCT, "CallSid=%zz"), Config{}, "body")
	wantFieldError(t, Twilio, post(twilioURL, "", formCT, "CallSid=CA1&From=%FF"), Config{}, "From")
	wantFieldError(t, Twilio, post(twilioURL, "", formCT, "CallSid=CA1&CallStatus=completed&Timestamp=yesterday"), Config{}, "Timestamp")
	wantFieldError(t, Twilio, post(twilioURL, "", formCT, "CallSid=CA1&CallStatus=completed&CallDuration=1.5"), Config{}, "CallDuration")
	wantFieldError(t, Twilio, post(twilioURL+"/dial", "/dial", formCT, "CallSid=CA1"), Config{}, "DialCallStatus")
	wantFieldError(t, Twilio, post(twilioURL+"/dial", "/dial", formCT, "CallSid=CA1&DialCallStatus=completed&DialCallDuration=x"), Config{}, "DialCallDuration")
	wantFieldError(t, Twilio, post(twilioURL, "", "application/json", `{"CallSid":"CA1"}`), Config{}, "Content-Type")
}
