package telephony

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Zadarma PBX notifications (spec §3.1; official code zadarma/user-api-v1).
//
// Zadarma checks the URL with GET ?zd_echo=X and expects X back verbatim.
// Events are POSTed as forms with field event. The Signature header is sent
// only when the account has an API key, so it is verified only when the
// hook has a secret — and then a missing header is a failure.
//
// Trap: Signature is base64 of the lowercase *hex string* of the HMAC-SHA1
// (PHP base64_encode(hash_hmac('sha1', …))), not of the raw digest.

// zadarmaEvent says how to read one Zadarma event kind.
type zadarmaEvent struct {
	sign      [3]string // the fields concatenated into the signed string
	direction string
	final     bool
}

var zadarmaEvents = map[string]zadarmaEvent{
	"NOTIFY_START":     {sign: [3]string{"caller_id", "called_did", "call_start"}, direction: "in"},
	"NOTIFY_INTERNAL":  {sign: [3]string{"caller_id", "called_did", "call_start"}, direction: "in"},
	"NOTIFY_ANSWER":    {sign: [3]string{"caller_id", "destination", "call_start"}, direction: "in"},
	"NOTIFY_END":       {sign: [3]string{"caller_id", "called_did", "call_start"}, direction: "in", final: true},
	"NOTIFY_OUT_START": {sign: [3]string{"internal", "destination", "call_start"}, direction: "out"},
	"NOTIFY_OUT_END":   {sign: [3]string{"internal", "destination", "call_start"}, direction: "out", final: true},
	"NOTIFY_RECORD":    {sign: [3]string{"pbx_call_id", "call_id_with_rec"}},
}

func parseZadarma(req Request, cfg Config) ([]Event, Reply, error) {
	m, err := method(req)
	if err != nil {
		return nil, Reply{}, err
	}
	q, err := queryFields(req)
	if err != nil {
		return nil, Reply{}, err
	}
	// The URL check: answered before anything else (it is unsigned), on
	// any method, as the official example does (isset($_GET['zd_echo'])).
	if echo, ok := q.get("zd_echo"); ok {
		return nil, Reply{Status: 200, ContentType: "text/plain; charset=utf-8", Body: []byte(echo.s)}, nil
	}
	var fs fields
	if m == "GET" {
		fs = q
	} else if fs, err = bodyFields(req, false); err != nil {
		return nil, Reply{}, err
	}
	ev, ok := fs.get("event")
	if !ok || strings.TrimSpace(ev.s) == "" {
		if m == "GET" {
			return nil, Reply{}, fieldErr("zd_echo", "is required on GET (Zadarma's URL check); call events are POSTed with an event field")
		}
		return nil, Reply{}, fieldErr("event", "is required")
	}
	kind, err := text("event", ev.s)
	if err != nil {
		return nil, Reply{}, err
	}
	spec, known := zadarmaEvents[strings.ToUpper(kind)]
	if !known {
		// NOTIFY_IVR, SPEECH_RECOGNITION, SMS and kinds Zadarma may add
		// later carry no call data we use; answering 200 keeps Zadarma from
		// retrying or disabling the hook. Nothing is accepted from them, so
		// their signature needs no check.
		return nil, Reply{}, nil
	}
	if cfg.Secret != "" {
		if err := verifyZadarma(req, fs, spec, cfg.Secret); err != nil {
			return nil, Reply{}, err
		}
	}
	e, err := zadarmaCall(fs, kind, spec, cfg)
	if err != nil {
		return nil, Reply{}, err
	}
	return []Event{e}, Reply{}, nil
}

func verifyZadarma(req Request, fs fields, spec zadarmaEvent, secret string) error {
	got := strings.TrimSpace(req.Header.Get("Signature"))
	if got == "" {
		return fmt.Errorf("%w: Signature header missing", ErrSignature)
	}
	// The signed string is made of the values as received, untrimmed.
	var msg strings.Builder
	for _, name := range spec.sign {
		if name != "" {
			msg.WriteString(fs.str(name))
		}
	}
	want := zadarmaSignature(secret, msg.String())
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return fmt.Errorf("%w: Signature does not match", ErrSignature)
	}
	return nil
}

// zadarmaSignature is base64(lowercase hex(HMAC-SHA1(secret, msg))).
func zadarmaSignature(secret, msg string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(mac.Sum(nil))))
}

func zadarmaCall(fs fields, kind string, spec zadarmaEvent, cfg Config) (Event, error) {
	get := func(name string) (string, error) { return text(name, fs.str(name)) }
	e := Event{Provider: Zadarma, Kind: kind, Direction: spec.direction, Final: spec.final}
	var err error
	if e.CallID, err = get("pbx_call_id"); err != nil {
		return Event{}, err
	}
	if e.CallID == "" {
		return Event{}, fieldErr("pbx_call_id", "is required")
	}
	// The recording is not in the notification: Zadarma's API gives a link
	// to it by call_id_with_rec (GET /v1/pbx/record/request/?call_id=…).
	// NOTIFY_END (and NOTIFY_OUT_END) name it when is_recorded=1, and
	// NOTIFY_RECORD when the file is ready (about 40 s later); either may
	// come first, so both carry it.
	rec, err := get("call_id_with_rec")
	if err != nil {
		return Event{}, err
	}
	if strings.EqualFold(kind, "NOTIFY_RECORD") {
		e.RecordingURL = rec
		return e, nil
	}
	start, err := get("call_start")
	if err != nil {
		return Event{}, err
	}
	if start == "" {
		return Event{}, fieldErr("call_start", "is required")
	}
	// call_start is the PBX's local time without a zone: the hook's zone.
	if e.StartedAt, err = localTime("call_start", start, cfg.Location); err != nil {
		return Event{}, err
	}
	callerID, err := get("caller_id")
	if err != nil {
		return Event{}, err
	}
	calledDID, err := get("called_did")
	if err != nil {
		return Event{}, err
	}
	internal, err := get("internal")
	if err != nil {
		return Event{}, err
	}
	destination, err := get("destination")
	if err != nil {
		return Event{}, err
	}
	e.Employee = internal
	if spec.direction == "out" {
		// An outgoing call: the extension dials destination. caller_id,
		// when Zadarma sends it, is the number presented to the callee.
		e.Caller, e.Tracked = callerID, destination
		if e.Caller == "" {
			e.Caller = internal
		}
	} else {
		e.Caller, e.Tracked = callerID, calledDID
		if e.Employee == "" && strings.EqualFold(kind, "NOTIFY_ANSWER") {
			e.Employee = destination // who picked up
		}
	}
	if !spec.final {
		return e, nil
	}
	// End events: duration is the call's seconds (talk or total is not
	// documented — spec §4 says verify) and disposition the outcome; only
	// these say whether the call was answered.
	if e.Disposition, err = get("disposition"); err != nil {
		return Event{}, err
	}
	if e.Disposition != "" {
		e.Answered = ptr(strings.EqualFold(e.Disposition, "answered"))
	}
	if strings.TrimSpace(fs.str("is_recorded")) != "0" {
		// 1, or absent while call_id_with_rec is there: a recording.
		e.RecordingURL = rec
	}
	if v, ok := fs.get("duration"); ok && strings.TrimSpace(v.s) != "" {
		n, err := seconds("duration", v)
		if err != nil {
			return Event{}, err
		}
		e.TalkSeconds = &n
	}
	return e, nil
}
