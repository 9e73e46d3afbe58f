package telephony

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"mime/multipart"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

const genericURL = "https://tl.example/hooks/calls/generic/Xy7"

func hmacHeader(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestGenericCanonical(t *testing.T) {
	body := `{"call_id":"c-1","caller":"+7 916 123-45-67","tracked_number":"74951112233","started_at":"2025-11-21T14:03:11+03:00",
	  "duration":95,"answered":true,"recording_url":"https://pbx.example/rec/c-1.mp3","direction":"in"}`
	ev, reply := parseOne(t, Generic, post(genericURL, "", "application/json", body), Config{})
	wantEvent(t, ev, Event{
		Provider: Generic, Kind: "call", CallID: "c-1", Direction: "in",
		Caller: "+7 916 123-45-67", Tracked: "74951112233", StartedAt: utc("2025-11-21T11:03:11Z"),
		Answered: ptr(true), TalkSeconds: ptr(95), RecordingURL: "https://pbx.example/rec/c-1.mp3", Final: true,
	})
	if !reflect0(reply) {
		t.Fatalf("reply %+v", reply)
	}
	// The same without a Content-Type: sniffed as JSON.
	ev2, _ := parseOne(t, Generic, post(genericURL, "", "", "\n "+body), Config{})
	wantEvent(t, ev2, ev)
	ev2, _ = parseOne(t, Generic, post(genericURL, "", "text/plain; charset=utf-8", body), Config{})
	wantEvent(t, ev2, ev)
}

func TestGenericSignature(t *testing.T) {
	body := `{"call_id":"c-1","tracked_number":"74951112233","started_at":1763722991}`
	cfg := Config{Secret: "s3cret"}
	parseOne(t, Generic, post(genericURL, "", "application/json", body, "X-Throughline-Signature", hmacHeader("s3cret", body)), cfg)
	// Upper-case prefix and hex are the same signature.
	h := hmacHeader("s3cret", body)
	parseOne(t, Generic, post(genericURL, "", "application/json", body, "X-Throughline-Signature", "SHA256="+string(bytes.ToUpper([]byte(h[7:])))), cfg)

	for _, h := range []string{
		"",                             // missing
		hmacHeader("other", body),      // wrong secret
		hmacHeader("s3cret", body+" "), // another body
		h[7:],                          // no prefix
		"sha1=" + h[7:],                // another algorithm
		"sha256=zz",                    // not hex
		"sha256=" + h[7:len(h)-2],      // truncated
	} {
		wantSignatureError(t, Generic, post(genericURL, "", "application/json", body, "X-Throughline-Signature", h), cfg)
	}
	// No secret: any header is ignored.
	parseOne(t, Generic, post(genericURL, "", "application/json", body, "X-Throughline-Signature", "sha256=00"), Config{})

	// With a secret only the signed body counts: a GET (empty body, whose
	// signature anyone could reuse) is refused.
	req := get(genericURL+"?call_id=c-1&tracked_number=74951112233&started_at=1763722991", "")
	req.Header.Set("X-Throughline-Signature", hmacHeader("s3cret", ""))
	wantFieldError(t, Generic, req, cfg, "body")
}

func TestGenericCalltouchForm(t *testing.T) {
	// A Calltouch-style webhook (§2.4): callerphone, phonenumber, calltime,
	// status=successful; unique and the source fields are ignored.
	body := "callerphone=79161234567&phonenumber=74951112233&calltime=2025-11-21+14%3A03&status=successful&unique=true&utm_source=yandex&medium=cpc&source=yandex&callid=9876543"
	ev, _ := parseOne(t, Generic, post(genericURL, "", formCT, body), Config{Location: moscow(t)})
	wantEvent(t, ev, Event{
		Provider: Generic, Kind: "call", CallID: "9876543",
		Caller: "79161234567", Tracked: "74951112233", StartedAt: utc("2025-11-21T11:03:00Z"),
		Answered: ptr(true), Disposition: "successful", Final: true,
	})
	// Another status is not answered.
	body = "callerphone=79161234567&phonenumber=74951112233&calltime=2025-11-21+14%3A03%3A11&status=unsuccessful&callid=9876544"
	ev, _ = parseOne(t, Generic, post(genericURL, "", formCT, body), Config{Location: moscow(t)})
	if ev.Answered == nil || *ev.Answered || ev.StartedAt != utc("2025-11-21T11:03:11Z") {
		t.Fatalf("event %s", show(ev))
	}
	// Calltouch may send the same as GET parameters, or POST them in the URL.
	u := genericURL + "?callerphone=79161234567&phonenumber=74951112233&calltime=2025-11-21+14%3A03&status=successful&callid=9876543"
	ev, _ = parseOne(t, Generic, get(u, ""), Config{Location: moscow(t)})
	if ev.CallID != "9876543" || !*ev.Answered {
		t.Fatalf("GET: event %s", show(ev))
	}
	ev, _ = parseOne(t, Generic, post(u, "", "", ""), Config{Location: moscow(t)})
	if ev.CallID != "9876543" {
		t.Fatalf("POST with query: event %s", show(ev))
	}
}

func TestGenericAliases(t *testing.T) {
	cases := []struct {
		name, body string
		want       Event
	}{
		{"asterisk pusher (form)",
			"uniqueid=1763722991.42&src=79161234567&dst=74951112233&calldate=2025-11-21+14%3A03%3A11&duration=102&billsec=95&disposition=ANSWERED",
			Event{Provider: Generic, Kind: "call", CallID: "1763722991.42", Caller: "79161234567", Tracked: "74951112233",
				StartedAt: utc("2025-11-21T11:03:11Z"), Answered: ptr(true), TalkSeconds: ptr(95), Disposition: "ANSWERED", Final: true}},
		{"upper case keys",
			"CALL_ID=x1&CALLER_ID=79161234567&Called_DID=74951112233&Call_Start=2025-11-21+14%3A03%3A11&Answered=no&Final=false&Direction=Outgoing",
			Event{Provider: Generic, Kind: "call", CallID: "x1", Caller: "79161234567", Tracked: "74951112233", Direction: "out",
				StartedAt: utc("2025-11-21T11:03:11Z"), Answered: ptr(false)}},
		{"from/to/external_id/date",
			"external_id=x2&from=%2B79161234567&to=%2B74951112233&date=1763722991",
			Event{Provider: Generic, Kind: "call", CallID: "x2", Caller: "+79161234567", Tracked: "+74951112233",
				StartedAt: utc("2025-11-21T11:03:11Z"), Final: true}},
		{"canonical wins over alias, first occurrence wins",
			"to=111&tracked_number=222&TRACKED_NUMBER=333&callid=A&call_id=B&started_at=1763722991&caller=&from=444",
			Event{Provider: Generic, Kind: "call", CallID: "B", Caller: "444", Tracked: "222",
				StartedAt: utc("2025-11-21T11:03:11Z"), Final: true}},
		{"event kind and employee",
			"event=call_end&call_id=x3&tracked_number=1&started_at=1763722991000&manager=Ivan&wait_s=7",
			Event{Provider: Generic, Kind: "call_end", CallID: "x3", Tracked: "1", Employee: "Ivan", WaitSeconds: ptr(7),
				StartedAt: utc("2025-11-21T11:03:11Z"), Final: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, _ := parseOne(t, Generic, post(genericURL, "", formCT, c.body), Config{Location: moscow(t)})
			wantEvent(t, ev, c.want)
		})
	}
}

func TestGenericUISTemplate(t *testing.T) {
	// Throughline's UIS "call ended" template, rendered (spec §3.3).
	body := `{ "event": "call_end", "call_session_id": 2936455184, "notification_time": "2025-11-21 14:04:47.412",
  "start_time": "2025-11-21 14:03:11", "direction": "in", "virtual_phone_number": "74951112233",
  "contact_phone_number": "79161234567", "talk_time_duration": 95, "wait_time_duration": 7,
  "total_time_duration": 102, "call_status": "successful", "employee_full_name": "Иван Петров",
  "scenario_name": "Основной" }`
	ev, _ := parseOne(t, Generic, post(genericURL, "", "application/json", body), Config{Location: moscow(t)})
	wantEvent(t, ev, Event{
		Provider: Generic, Kind: "call_end", CallID: "2936455184", Direction: "in",
		Caller: "79161234567", Tracked: "74951112233", StartedAt: utc("2025-11-21T11:03:11Z"),
		Answered: ptr(true), TalkSeconds: ptr(95), WaitSeconds: ptr(7), Disposition: "successful",
		Employee: "Иван Петров", Final: true,
	})
}

func TestGenericTimes(t *testing.T) {
	msk := moscow(t)
	want := utc("2025-11-21T11:03:11Z")
	for _, c := range []struct {
		json string
		want time.Time
	}{
		{`"2025-11-21T11:03:11Z"`, want},
		{`"2025-11-21T14:03:11+03:00"`, want},
		{`"2025-11-21T11:03:11.250Z"`, want.Add(250 * time.Millisecond)},
		{`"2025-11-21 14:03:11"`, want},
		{`"2025-11-21 14:03:11.5"`, want.Add(500 * time.Millisecond)},
		{`"2025-11-21 14:03"`, want.Add(-11 * time.Second)},
		{`"2025-11-21T14:03:11"`, want},
		{`1763722991`, want},
		{`"1763722991"`, want},
		{`1763722991000`, want},
		{`" 1763722991 "`, want},
	} {
		body := `{"call_id":"c","tracked_number":"1","started_at":` + c.json + `}`
		ev, _ := parseOne(t, Generic, post(genericURL, "", "application/json", body), Config{Location: msk})
		if !ev.StartedAt.Equal(c.want) || ev.StartedAt.Location() != time.UTC {
			t.Errorf("started_at %s: got %v, want %v UTC", c.json, ev.StartedAt, c.want)
		}
	}
	// Zoneless without a configured zone: UTC.
	ev, _ := parseOne(t, Generic, post(genericURL, "", formCT, "call_id=c&tracked_number=1&started_at=2025-11-21+11%3A03%3A11"), Config{})
	if !ev.StartedAt.Equal(want) {
		t.Fatalf("no zone: %v", ev.StartedAt)
	}
	for _, bad := range []string{`"21/11/2025 14:03"`, `"yesterday"`, `true`, `{}`, `[]`, `-5`, `1.5`, `"1969-12-31T23:59:59Z"`,
		`"9999-12-31T23:59:59-01:00"`, `99999999999999999999`, `"2025-13-01 00:00:00"`} {
		body := `{"call_id":"c","tracked_number":"1","started_at":` + bad + `}`
		wantFieldError(t, Generic, post(genericURL, "", "application/json", body), Config{Location: msk}, "started_at")
	}
}

func TestGenericValues(t *testing.T) {
	base := `{"call_id":"c","tracked_number":"1","started_at":1763722991,`
	for _, c := range []struct {
		json     string
		answered *bool
		talk     *int
		final    bool
	}{
		{`"answered":false}`, ptr(false), nil, true},
		{`"answered":"yes"}`, ptr(true), nil, true},
		{`"answered":"No"}`, ptr(false), nil, true},
		{`"answered":1}`, ptr(true), nil, true},
		{`"answered":"0"}`, ptr(false), nil, true},
		{`"answered":"successful"}`, ptr(true), nil, true},
		{`"answered":null,"status":"ringing"}`, nil, nil, true},
		{`"status":"NO ANSWER","final":"0"}`, ptr(false), nil, false},
		{`"duration":"95","final":false}`, nil, ptr(95), false},
		{`"duration":0,"final":"true"}`, nil, ptr(0), true},
		{`"duration":"","answered":""}`, nil, nil, true},
	} {
		ev, _ := parseOne(t, Generic, post(genericURL, "", "application/json", base+c.json), Config{})
		if !reflectPtr(ev.Answered, c.answered) || !reflectPtr(ev.TalkSeconds, c.talk) || ev.Final != c.final {
			t.Errorf("%s: event %s", c.json, show(ev))
		}
	}
	for _, c := range []struct{ json, field string }{
		{`"answered":"maybe"}`, "answered"},
		{`"answered":{}}`, "answered"},
		{`"duration":"1:35"}`, "duration"},
		{`"duration":-1}`, "duration"},
		{`"duration":9.5}`, "duration"},
		{`"duration":true}`, "duration"},
		{`"duration":99999999999}`, "duration"},
		{`"final":"sure"}`, "final"},
		{`"direction":"sideways"}`, "direction"},
		{`"direction":1}`, "direction"},
		{`"caller":["1"]}`, "caller"},
		{`"caller":true}`, "caller"},
		{`"recording_url":"x\u0000y"}`, "recording_url"},
	} {
		wantFieldError(t, Generic, post(genericURL, "", "application/json", base+c.json), Config{}, c.field)
	}
	for word, want := range map[string]string{"inbound": "in", "INCOMING": "in", "out": "out", "outbound": "out", "internal": "internal", "": ""} {
		ev, _ := parseOne(t, Generic, post(genericURL, "", "application/json", base+`"direction":"`+word+`"}`), Config{})
		if ev.Direction != want {
			t.Errorf("direction %q → %q, want %q", word, ev.Direction, want)
		}
	}
	// Numbers for ids and phones.
	ev, _ := parseOne(t, Generic, post(genericURL, "", "application/json", `{"call_id":42,"tracked_number":74951112233,"caller":79161234567,"started_at":1763722991}`), Config{})
	if ev.CallID != "42" || ev.Tracked != "74951112233" || ev.Caller != "79161234567" {
		t.Fatalf("event %s", show(ev))
	}
}

func reflectPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func TestGenericRequired(t *testing.T) {
	for _, c := range []struct{ body, field string }{
		{`{"tracked_number":"1","started_at":1763722991}`, "call_id"},
		{`{"call_id":"","tracked_number":"1","started_at":1763722991}`, "call_id"},
		{`{"call_id":null,"tracked_number":"1","started_at":1763722991}`, "call_id"},
		{`{"call_id":"   ","tracked_number":"1","started_at":1763722991}`, "call_id"},
		{`{"call_id":"c","started_at":1763722991}`, "tracked_number"},
		{`{"call_id":"c","caller":"1","started_at":1763722991}`, "tracked_number"},
		{`{"call_id":"c","tracked_number":"1"}`, "started_at"},
		{`{"call_id":"c","tracked_number":"1","started_at":""}`, "started_at"},
	} {
		fe := wantFieldError(t, Generic, post(genericURL, "", "application/json", c.body), Config{}, c.field)
		if c.field == "tracked_number" && !bytes.Contains([]byte(fe.Message), []byte("phonenumber")) {
			t.Errorf("message %q does not list the aliases", fe.Message)
		}
	}
	wantFieldError(t, Generic, get(genericURL, ""), Config{}, "call_id")
	wantFieldError(t, Generic, post(genericURL, "", formCT, "callerphone=1&phonenumber=2&calltime=2025-11-21+14%3A03"), Config{}, "call_id")
}

func TestGenericMalformed(t *testing.T) {
	for _, c := range []struct{ ct, body, field string }{
		{"application/json", `[{"call_id":"c"}]`, "body"},
		{"application/json", `"call"`, "body"},
		{"application/json", `{"call_id":"c",}`, "body"},
		{"application/json", `{"call_id":"c"} {"call_id":"d"}`, "body"},
		{"application/json", `{"call_id":"c"`, "body"},
		{"application/json", "{\"call_id\":\"c\xff\"}", "body"},
		{"application/json", ``, "call_id"}, // an empty POST reads the query, which is empty
		{"", `[1]`, "body"},
		{formCT, "call_id=%zz", "body"},
		{formCT, "call_id=c&tracked_number=\xff&started_at=1763722991", "tracked_number"},
		{formCT, "call_id=c%00&tracked_number=1&started_at=1763722991", "call_id"},
		{"application/xml", "<call/>", "Content-Type"},
		{"multipart/form-data; boundary=x", "garbage", "body"},
	} {
		wantFieldError(t, Generic, post(genericURL, "", c.ct, c.body), Config{}, c.field)
	}
}

func TestGenericMultipart(t *testing.T) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	w.WriteField("call_id", "m-1")
	w.WriteField("phonenumber", "74951112233")
	w.WriteField("calltime", "2025-11-21 11:03:11")
	fw, _ := w.CreateFormFile("call_id", "evil.txt") // files are not fields
	fw.Write([]byte("not-this"))
	w.Close()
	ev, _ := parseOne(t, Generic, post(genericURL, "", w.FormDataContentType(), b.String()), Config{})
	if ev.CallID != "m-1" || ev.Tracked != "74951112233" || ev.StartedAt != utc("2025-11-21T11:03:11Z") {
		t.Fatalf("event %s", show(ev))
	}
}

func TestGenericAliasIndex(t *testing.T) {
	// indexAliases skips names longer than 32 bytes: no alias may be longer,
	// and all must be lower-case to match the index's keys.
	for a := range genericAliases {
		if len(a) > 32 || strings.ToLower(a) != a {
			t.Errorf("alias %q: longer than 32 bytes or not lower-case", a)
		}
	}
}

func TestFieldErrorMessagesClean(t *testing.T) {
	// A decoder error quoting raw input must not put bad bytes in the message.
	body := "--x\r\nContent-Disposition: form-data; name=\"a\"\r\nBad\xff\x00Header\r\n\r\nv\r\n--x--\r\n"
	fe := wantFieldError(t, Generic, post(genericURL, "", "multipart/form-data; boundary=x", body), Config{}, "body")
	if !utf8.ValidString(fe.Message) || strings.IndexByte(fe.Message, 0) >= 0 {
		t.Fatalf("message %q", fe.Message)
	}
	long := `{"call_id":"c","tracked_number":"1","started_at":"` + strings.Repeat("9x", 5000) + `"}`
	fe = wantFieldError(t, Generic, post(genericURL, "", "application/json", long), Config{}, "started_at")
	if len(fe.Message) > maxMessage+len("…") {
		t.Fatalf("message of %d bytes", len(fe.Message))
	}
}
