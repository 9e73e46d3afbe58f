package telephony

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Mango Office VPBX API events (spec §3.2).
//
// Mango POSTs forms with vpbx_api_key, sign and json to the configured base
// URL plus an event path (/events/call, /events/summary, /events/recording,
// …), which reaches us as Request.Subpath.
//
// Trap: sign = lowercase hex SHA-256(key + json + salt) — plain SHA-256 of
// the concatenation, no HMAC — over the json field exactly as received.
// Re-serialising the JSON (key order, spacing, escapes) would change it.
// Mango always signs, so a hook without key and salt accepts nothing.

func parseMango(req Request, cfg Config) ([]Event, Reply, error) {
	m, err := method(req)
	if err != nil {
		return nil, Reply{}, err
	}
	if cfg.Key == "" || cfg.Salt == "" {
		return nil, Reply{}, fmt.Errorf("%w: the Mango connection has no vpbx_api_key and vpbx_api_salt configured", ErrSignature)
	}
	var fs fields
	if m == "GET" {
		fs, err = queryFields(req)
	} else {
		fs, err = bodyFields(req, false)
	}
	if err != nil {
		return nil, Reply{}, err
	}
	js := fs.str("json")
	if err := verifyMango(fs, js, cfg); err != nil {
		return nil, Reply{}, err
	}
	path := strings.ToLower(strings.TrimRight(strings.TrimSpace(req.Subpath), "/"))
	switch path {
	case "/events/call", "/events/summary", "/events/recording":
	default:
		// Other event paths (DTMF, SMS, pings, …) carry nothing we use.
		return nil, Reply{}, nil
	}
	obj, err := mangoObject(js)
	if err != nil {
		return nil, Reply{}, err
	}
	var events []Event
	switch path {
	case "/events/call":
		events, err = mangoCall(obj)
	case "/events/summary":
		events, err = mangoSummary(obj)
	case "/events/recording":
		events, err = mangoRecording(obj)
	}
	if err != nil {
		return nil, Reply{}, err
	}
	return events, Reply{}, nil
}

func verifyMango(fs fields, js string, cfg Config) error {
	key, ok := fs.get("vpbx_api_key")
	if !ok || key.s == "" {
		return fmt.Errorf("%w: vpbx_api_key missing", ErrSignature)
	}
	if subtle.ConstantTimeCompare([]byte(key.s), []byte(cfg.Key)) != 1 {
		return fmt.Errorf("%w: vpbx_api_key is not this connection's key", ErrSignature)
	}
	sign := strings.TrimSpace(fs.str("sign"))
	if sign == "" {
		return fmt.Errorf("%w: sign missing", ErrSignature)
	}
	got, err := hex.DecodeString(sign) // either case: hex digits are hex digits
	if err != nil {
		return fmt.Errorf("%w: sign is not hex", ErrSignature)
	}
	want := mangoSign(cfg.Key, js, cfg.Salt)
	if subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return fmt.Errorf("%w: sign does not match", ErrSignature)
	}
	return nil
}

func mangoSign(key, js, salt string) [32]byte {
	return sha256.Sum256([]byte(key + js + salt))
}

// mangoObject decodes the json field: one JSON object, numbers kept as
// written.
func mangoObject(js string) (map[string]any, error) {
	if strings.TrimSpace(js) == "" {
		return nil, fieldErr("json", "is required")
	}
	if !utf8.ValidString(js) {
		return nil, fieldErr("json", "is not valid UTF-8")
	}
	dec := json.NewDecoder(strings.NewReader(js))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fieldErr("json", "must be a JSON object: "+err.Error())
	}
	if obj == nil {
		return nil, fieldErr("json", "must be a JSON object, not null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fieldErr("json", "unexpected data after the JSON object")
	}
	return obj, nil
}

// mangoStr reads a string member (numbers accepted: phones and ids arrive
// as either); missing or null is "".
func mangoStr(obj map[string]any, key, path string) (string, error) {
	switch v := obj[key].(type) {
	case nil:
		return "", nil
	case string:
		return text(path, v)
	case json.Number:
		return text(path, v.String())
	}
	return "", fieldErr(path, "must be a string")
}

// mangoObj reads an object member; missing or null is an empty object.
func mangoObj(obj map[string]any, key, path string) (map[string]any, error) {
	switch v := obj[key].(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return v, nil
	}
	return nil, fieldErr(path, "must be an object")
}

// mangoInt reads an integer member given as a number or a numeric string
// (the manual shows "timestamp": "1399906976"; summaries use numbers).
func mangoInt(obj map[string]any, key, path string) (n int64, ok bool, err error) {
	var s string
	switch v := obj[key].(type) {
	case nil:
		return 0, false, nil
	case json.Number:
		s = v.String()
	case string:
		s = strings.TrimSpace(v)
		if s == "" {
			return 0, false, nil
		}
	default:
		return 0, false, fieldErr(path, "must be a whole number")
	}
	n, err = strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, fieldErr(path, fmt.Sprintf("must be a whole number, not %s", quote(s)))
	}
	return n, true, nil
}

// mangoTime reads unix seconds.
func mangoTime(obj map[string]any, key, path string) (time.Time, bool, error) {
	n, ok, err := mangoInt(obj, key, path)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	if n < 0 || n >= 1e12 {
		return time.Time{}, false, fieldErr(path, "is out of range (unix seconds)")
	}
	t, err := inRange(path, time.Unix(n, 0))
	return t, err == nil, err
}

// mangoParties reads from.number, to.line_number (falling back to
// to.number) and to.extension.
func mangoParties(obj map[string]any, e *Event) error {
	from, err := mangoObj(obj, "from", "json.from")
	if err != nil {
		return err
	}
	to, err := mangoObj(obj, "to", "json.to")
	if err != nil {
		return err
	}
	if e.Caller, err = mangoStr(from, "number", "json.from.number"); err != nil {
		return err
	}
	// to.line_number is the tracked (DID) number; to.number is where the
	// call went, which for an incoming call may be an employee's phone.
	if e.Tracked, err = mangoStr(to, "line_number", "json.to.line_number"); err != nil {
		return err
	}
	if e.Employee, err = mangoStr(to, "extension", "json.to.extension"); err != nil {
		return err
	}
	return nil
}

func mangoEntry(obj map[string]any) (string, error) {
	id, err := mangoStr(obj, "entry_id", "json.entry_id")
	if err == nil && id == "" {
		err = fieldErr("json.entry_id", "is required")
	}
	return id, err
}

// mangoCall reads events/call: one per call-state change of one leg.
func mangoCall(obj map[string]any) ([]Event, error) {
	e := Event{Provider: Mango, Kind: "events/call"}
	var err error
	if e.CallID, err = mangoEntry(obj); err != nil {
		return nil, err
	}
	if err := mangoParties(obj, &e); err != nil {
		return nil, err
	}
	if e.Tracked == "" {
		to, _ := mangoObj(obj, "to", "json.to") // checked by mangoParties
		if e.Tracked, err = mangoStr(to, "number", "json.to.number"); err != nil {
			return nil, err
		}
	}
	state, err := mangoStr(obj, "call_state", "json.call_state")
	if err != nil {
		return nil, err
	}
	if state != "" {
		// Kind tells the states of one entry apart for the record.
		e.Kind += ":" + state
	}
	ts, hasTS, err := mangoTime(obj, "timestamp", "json.timestamp")
	if err != nil {
		return nil, err
	}
	seq, hasSeq, err := mangoInt(obj, "seq", "json.seq")
	if err != nil {
		return nil, err
	}
	// The event's timestamp is the call start only on the entry's first
	// event (seq grows within an entry_id); later events are state changes
	// and their time must not pass for the start.
	if hasTS && (seq == 1 || !hasSeq && strings.EqualFold(state, "Appeared")) {
		e.StartedAt = ts
	}
	if strings.EqualFold(state, "Disconnected") {
		e.Final = true
		if n, ok, err := mangoInt(obj, "disconnect_reason", "json.disconnect_reason"); err != nil {
			return nil, err
		} else if ok {
			e.Disposition = strconv.FormatInt(n, 10)
		}
	}
	return []Event{e}, nil
}

// mangoSummary reads events/summary: once per call, after it ended.
func mangoSummary(obj map[string]any) ([]Event, error) {
	e := Event{Provider: Mango, Kind: "events/summary", Final: true}
	var err error
	if e.CallID, err = mangoEntry(obj); err != nil {
		return nil, err
	}
	if err := mangoParties(obj, &e); err != nil {
		return nil, err
	}
	line, err := mangoStr(obj, "line_number", "json.line_number")
	if err != nil {
		return nil, err
	}
	if line != "" {
		e.Tracked = line
	}
	// call_direction: 0 internal, 1 incoming, 2 outgoing as Mango's manual
	// lists them (spec §3.2 marks the values "verify").
	if n, ok, err := mangoInt(obj, "call_direction", "json.call_direction"); err != nil {
		return nil, err
	} else if ok {
		e.Direction = map[int64]string{0: "internal", 1: "in", 2: "out"}[n]
	}
	// disconnect_reason is the only outcome the summary carries (numeric).
	if n, ok, err := mangoInt(obj, "disconnect_reason", "json.disconnect_reason"); err != nil {
		return nil, err
	} else if ok {
		e.Disposition = strconv.FormatInt(n, 10)
	}
	create, hasCreate, err := mangoInt(obj, "create_time", "json.create_time")
	if err != nil {
		return nil, err
	}
	talk, hasTalk, err := mangoInt(obj, "talk_time", "json.talk_time")
	if err != nil {
		return nil, err
	}
	end, hasEnd, err := mangoInt(obj, "end_time", "json.end_time")
	if err != nil {
		return nil, err
	}
	if hasCreate {
		if e.StartedAt, _, err = mangoTime(obj, "create_time", "json.create_time"); err != nil {
			return nil, err
		}
	}
	// The times are unix seconds of the call's moments; talk_time is 0 when
	// nobody answered. Differences that come out negative or absurd
	// (inconsistent clocks) are left unset rather than refusing the call.
	diff := func(a, b int64) *int {
		if d := a - b; a >= 0 && b >= 0 && d >= 0 && d <= maxSeconds {
			return ptr(int(d))
		}
		return nil
	}
	if hasTalk {
		answered := talk > 0
		e.Answered = &answered
		if answered {
			if hasEnd {
				e.TalkSeconds = diff(end, talk)
			}
			if hasCreate {
				e.WaitSeconds = diff(talk, create)
			}
		} else {
			e.TalkSeconds = ptr(0)
			// Nobody answered: the caller waited until the call ended.
			if hasEnd && hasCreate {
				e.WaitSeconds = diff(end, create)
			}
		}
	}
	return []Event{e}, nil
}

// mangoRecording reads events/recording. The manual's event names the
// recording by recording_id (fetched later through the API); some setups
// deliver a link. The link wins; otherwise recording_id is passed on as
// is. Without either there is nothing to record.
func mangoRecording(obj map[string]any) ([]Event, error) {
	var rec string
	for _, key := range []string{"recording_url", "link", "url", "recording_link", "recording_id"} {
		s, err := mangoStr(obj, key, "json."+key)
		if err != nil {
			return nil, err
		}
		if s != "" {
			rec = s
			break
		}
	}
	if rec == "" {
		return nil, nil
	}
	e := Event{Provider: Mango, Kind: "events/recording", RecordingURL: rec}
	var err error
	if e.CallID, err = mangoEntry(obj); err != nil {
		return nil, err
	}
	return []Event{e}, nil
}
