package telephony

import (
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
)

const mangoURL = "https://tl.example/hooks/calls/mango/Xy7"

// The spec's computed signature example (§3.2).
const (
	mangoVectorJSON = `{"entry_id":"MjM0NTY3ODk6MTA=","call_id":"MToxMDA1NzU5Mzo1MDI6NjI1ODM4MzQ=","timestamp":1763722991,"seq":1,"call_state":"Appeared","location":"ivr","from":{"number":"79161234567"},"to":{"number":"74951112233","line_number":"74951112233"}}`
	mangoVectorSign = "744b9c35ec01e32172aefafc353f5d4f32e591a0e3eb8627063aac4a5bcb9859"
)

var mangoCfg = Config{Key: "test_key", Salt: "test_salt"}

// mangoForm is a Mango request with the json field signed by key and salt.
func mangoForm(subpath, key, salt, js string) Request {
	sum := mangoSign(key, js, salt)
	body := url.Values{"vpbx_api_key": {key}, "sign": {hex.EncodeToString(sum[:])}, "json": {js}}.Encode()
	return post(mangoURL+subpath, subpath, formCT, body)
}

func TestMangoSignatureVector(t *testing.T) {
	sum := mangoSign("test_key", mangoVectorJSON, "test_salt")
	if got := hex.EncodeToString(sum[:]); got != mangoVectorSign {
		t.Fatalf("sign = %s, want %s", got, mangoVectorSign)
	}
	// Through Parse, with the sign as given in the spec.
	body := "vpbx_api_key=test_key&sign=" + mangoVectorSign + "&json=" + url.QueryEscape(mangoVectorJSON)
	ev, reply := parseOne(t, Mango, post(mangoURL+"/events/call", "/events/call", formCT, body), mangoCfg)
	wantEvent(t, ev, Event{
		Provider: Mango, Kind: "events/call:Appeared", CallID: "MjM0NTY3ODk6MTA=",
		Caller: "79161234567", Tracked: "74951112233", StartedAt: utc("2025-11-21T11:03:11Z"),
	})
	if !reflect0(reply) {
		t.Fatalf("reply %+v", reply)
	}
	// Upper-case hex is the same signature.
	body = "vpbx_api_key=test_key&sign=" + strings.ToUpper(mangoVectorSign) + "&json=" + url.QueryEscape(mangoVectorJSON)
	parseOne(t, Mango, post(mangoURL+"/events/call", "/events/call", formCT, body), mangoCfg)
}

func TestMangoSignatureFailures(t *testing.T) {
	req := mangoForm("/events/call", "test_key", "test_salt", mangoVectorJSON)
	// Mango always signs: a connection without key or salt accepts nothing.
	wantSignatureError(t, Mango, req, Config{})
	wantSignatureError(t, Mango, req, Config{Key: "test_key"})
	wantSignatureError(t, Mango, req, Config{Salt: "test_salt"})
	// Another connection's key, signed correctly with it.
	wantSignatureError(t, Mango, mangoForm("/events/call", "other_key", "test_salt", mangoVectorJSON), mangoCfg)
	// Wrong salt.
	wantSignatureError(t, Mango, mangoForm("/events/call", "test_key", "other_salt", mangoVectorJSON), mangoCfg)
	// Missing and malformed sign.
	for _, body := range []string{
		"vpbx_api_key=test_key&json=" + url.QueryEscape(mangoVectorJSON),
		"vpbx_api_key=test_key&sign=zz&json=" + url.QueryEscape(mangoVectorJSON),
		"sign=" + mangoVectorSign + "&json=" + url.QueryEscape(mangoVectorJSON),
	} {
		wantSignatureError(t, Mango, post(mangoURL, "/events/call", formCT, body), mangoCfg)
	}
	// Trap: the sign covers the json field exactly as received. The same
	// object re-serialised with spaces no longer matches the vector's sign.
	spaced := strings.ReplaceAll(mangoVectorJSON, `":`, `": `)
	body := "vpbx_api_key=test_key&sign=" + mangoVectorSign + "&json=" + url.QueryEscape(spaced)
	wantSignatureError(t, Mango, post(mangoURL, "/events/call", formCT, body), mangoCfg)
	// …and signed as received it is accepted.
	parseOne(t, Mango, mangoForm("/events/call", "test_key", "test_salt", spaced), mangoCfg)
}

func TestMangoCallEvents(t *testing.T) {
	cases := []struct {
		name, js string
		want     Event
	}{
		{
			// The manual's example: timestamp and seq as strings.
			"manual example",
			`{ "entry_id": "232wc3e3w3s222", "call_id": "100:500:256", "timestamp": "1399906976", "seq": "1",
			  "call_state": "Appeared", "location": "ivr",
			  "from": { "number": "79000000000" },
			  "to": { "number": "7800123456789", "line_number": "7800123456789" } }`,
			Event{Provider: Mango, Kind: "events/call:Appeared", CallID: "232wc3e3w3s222", Caller: "79000000000",
				Tracked: "7800123456789", StartedAt: utc("2014-05-12T15:02:56Z")},
		},
		{
			// A later event: its timestamp is not the call start.
			"connected",
			`{"entry_id":"E1","call_id":"c2","timestamp":1763722998,"seq":3,"call_state":"Connected","location":"abonent",
			  "from":{"number":"79161234567"},"to":{"extension":"101","number":"79990001122","line_number":"74951112233"}}`,
			Event{Provider: Mango, Kind: "events/call:Connected", CallID: "E1", Caller: "79161234567", Tracked: "74951112233", Employee: "101"},
		},
		{
			"disconnected",
			`{"entry_id":"E1","call_id":"c2","timestamp":1763723093,"seq":4,"call_state":"Disconnected","location":"abonent",
			  "from":{"number":"79161234567"},"to":{"extension":"101","line_number":"74951112233"},"disconnect_reason":1110}`,
			Event{Provider: Mango, Kind: "events/call:Disconnected", CallID: "E1", Caller: "79161234567", Tracked: "74951112233",
				Employee: "101", Disposition: "1110", Final: true},
		},
		{
			// No line_number: to.number stands in; no seq: Appeared is first.
			"fallback to.number",
			`{"entry_id":"E2","timestamp":1763722991,"call_state":"Appeared","from":{"number":79161234567},"to":{"number":"74951112233"}}`,
			Event{Provider: Mango, Kind: "events/call:Appeared", CallID: "E2", Caller: "79161234567", Tracked: "74951112233",
				StartedAt: utc("2025-11-21T11:03:11Z")},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, _ := parseOne(t, Mango, mangoForm("/events/call", "test_key", "test_salt", c.js), mangoCfg)
			wantEvent(t, ev, c.want)
		})
	}
}

func TestMangoSummary(t *testing.T) {
	// The spec's example (§3.2).
	js := `{ "entry_id": "MjM0NTY3ODk6MTA=", "call_direction": 1,
  "from": { "number": "79161234567" },
  "to": { "extension": "101", "number": "74951112233", "line_number": "74951112233", "acd_group": "" },
  "line_number": "74951112233",
  "create_time": 1763722991, "forward_time": 1763722993, "talk_time": 1763722998, "end_time": 1763723093,
  "entry_result": 1, "disconnect_reason": 1110 }`
	ev, _ := parseOne(t, Mango, mangoForm("/events/summary", "test_key", "test_salt", js), mangoCfg)
	wantEvent(t, ev, Event{
		Provider: Mango, Kind: "events/summary", CallID: "MjM0NTY3ODk6MTA=", Direction: "in",
		Caller: "79161234567", Tracked: "74951112233", StartedAt: utc("2025-11-21T11:03:11Z"),
		Answered: ptr(true), TalkSeconds: ptr(95), WaitSeconds: ptr(7),
		Disposition: "1110", Employee: "101", Final: true,
	})

	// Not answered: talk_time 0; the caller waited until the end. Times as
	// strings; the tracked number only under to.
	js = `{"entry_id":"E3","call_direction":"1","from":{"number":"79161234567"},"to":{"line_number":"74951112233"},
	  "create_time":"1763722991","talk_time":"0","end_time":"1763723021","disconnect_reason":1100}`
	ev, _ = parseOne(t, Mango, mangoForm("/events/summary", "test_key", "test_salt", js), mangoCfg)
	wantEvent(t, ev, Event{
		Provider: Mango, Kind: "events/summary", CallID: "E3", Direction: "in",
		Caller: "79161234567", Tracked: "74951112233", StartedAt: utc("2025-11-21T11:03:11Z"),
		Answered: ptr(false), TalkSeconds: ptr(0), WaitSeconds: ptr(30), Disposition: "1100", Final: true,
	})

	// Outgoing; inconsistent times leave the durations unset.
	js = `{"entry_id":"E4","call_direction":2,"talk_time":1763722998,"end_time":1763722990,"create_time":1763723000}`
	ev, _ = parseOne(t, Mango, mangoForm("/events/summary/", "test_key", "test_salt", js), mangoCfg)
	wantEvent(t, ev, Event{
		Provider: Mango, Kind: "events/summary", CallID: "E4", Direction: "out",
		StartedAt: utc("2025-11-21T11:03:20Z"), Answered: ptr(true), Final: true,
	})
}

func TestMangoRecording(t *testing.T) {
	js := `{"entry_id":"E1","recording_id":"MToxMDA1NzU5Mzo1MDI6NjI1ODM4MzQ6MQ==","recording_state":"Completed","seq":7,"timestamp":1763723100}`
	ev, _ := parseOne(t, Mango, mangoForm("/events/recording", "test_key", "test_salt", js), mangoCfg)
	wantEvent(t, ev, Event{Provider: Mango, Kind: "events/recording", CallID: "E1", RecordingURL: "MToxMDA1NzU5Mzo1MDI6NjI1ODM4MzQ6MQ=="})

	js = `{"entry_id":"E1","recording_id":"R1","link":"https://rec.example/R1.mp3"}`
	ev, _ = parseOne(t, Mango, mangoForm("/events/recording", "test_key", "test_salt", js), mangoCfg)
	if ev.RecordingURL != "https://rec.example/R1.mp3" {
		t.Fatalf("RecordingURL = %q", ev.RecordingURL)
	}

	js = `{"entry_id":"E1","recording_state":"Started"}`
	parseNone(t, Mango, mangoForm("/events/recording", "test_key", "test_salt", js), mangoCfg)
}

func TestMangoSubpaths(t *testing.T) {
	for _, sub := range []string{"", "/", "/events/dtmf", "/events/sms", "/ping", "/events"} {
		parseNone(t, Mango, mangoForm(sub, "test_key", "test_salt", mangoVectorJSON), mangoCfg)
	}
	// Unknown paths are still authenticated.
	wantSignatureError(t, Mango, mangoForm("/events/dtmf", "test_key", "bad", mangoVectorJSON), mangoCfg)
	// Trailing slash and case do not matter.
	parseOne(t, Mango, mangoForm("/Events/Call/", "test_key", "test_salt", mangoVectorJSON), mangoCfg)
}

func TestMangoFieldErrors(t *testing.T) {
	cases := []struct{ subpath, js, field string }{
		{"/events/call", ``, "json"},
		{"/events/call", `not json`, "json"},
		{"/events/call", `[1,2]`, "json"},
		{"/events/call", `null`, "json"},
		{"/events/call", `{"entry_id":"E1"} {}`, "json"},
		{"/events/call", "{\"entry_id\":\"E\xff\"}", "json"},
		{"/events/call", `{"seq":1}`, "json.entry_id"},
		{"/events/call", `{"entry_id":""}`, "json.entry_id"},
		{"/events/call", `{"entry_id":true}`, "json.entry_id"},
		{"/events/call", `{"entry_id":"E1","from":"79161234567"}`, "json.from"},
		{"/events/call", `{"entry_id":"E1","to":{"line_number":["7495"]}}`, "json.to.line_number"},
		{"/events/call", `{"entry_id":"E1","from":{"number":"7916\u0000"}}`, "json.from.number"},
		{"/events/call", `{"entry_id":"E1","timestamp":"yesterday","seq":1}`, "json.timestamp"},
		{"/events/call", `{"entry_id":"E1","timestamp":-5,"seq":1}`, "json.timestamp"},
		{"/events/call", `{"entry_id":"E1","timestamp":1763722991,"seq":1.5}`, "json.seq"},
		{"/events/summary", `{"create_time":1763722991}`, "json.entry_id"},
		{"/events/summary", `{"entry_id":"E1","talk_time":"soon"}`, "json.talk_time"},
		{"/events/summary", `{"entry_id":"E1","create_time":99999999999999}`, "json.create_time"},
		{"/events/summary", `{"entry_id":"E1","call_direction":{}}`, "json.call_direction"},
		{"/events/recording", `{"recording_id":"R1"}`, "json.entry_id"},
	}
	for _, c := range cases {
		wantFieldError(t, Mango, mangoForm(c.subpath, "test_key", "test_salt", c.js), mangoCfg, c.field)
	}
	// A body that is not a form.
	wantFieldError(t, Mango, post(mangoURL, "/events/call", formCT, "json=%zz"), mangoCfg, "body")
}
