package telephony

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Generic webhook (spec §3.6): Throughline's own format for PBXs we don't
// know and for adapters (AMI sidecar, CDR pusher, Calltouch-style senders).
//
// The canonical body is JSON, but form bodies and GET query parameters are
// accepted too, and every field has aliases matched case-insensitively.
// Where a payload holds several aliases of one field, the alias listed
// first wins (the canonical name first), then the first occurrence.
//
// The spec's alias lists (caller, tracked, start, id) come first in each
// list below. The other fields and extra aliases are this package's
// decision, taken from the senders the spec itself describes:
//
//   - duration (talk seconds), answered, recording_url, direction, final
//     and wait_s, employee, event (→ Kind) as canonical names;
//   - Calltouch: status (successful = answered, else kept as Disposition),
//     successful, callerNumber, waitingConnect, manager (§2.1, §2.4);
//   - the Asterisk-to-Calltouch pusher's callerid (§2.5) and the CDR
//     pusher's calldate, billsec and disposition (§3.5 B; billsec is the
//     talk time and wins over duration, which there is the total);
//   - Throughline's UIS notification template (§3.3: call_session_id,
//     contact_phone_number, virtual_phone_number, start_time,
//     talk_time_duration, wait_time_duration, call_status,
//     employee_full_name, file_link), so that template works against this
//     endpoint unchanged.
var (
	genericID       = []string{"call_id", "external_id", "callid", "uniqueid", "call_session_id"}
	genericCaller   = []string{"caller", "callerphone", "caller_id", "from", "src", "callerid", "callernumber", "contact_phone_number"}
	genericTracked  = []string{"tracked_number", "phonenumber", "called_did", "to", "dst", "virtual_phone_number"}
	genericStart    = []string{"started_at", "calltime", "call_start", "date", "calldate", "start_time"}
	genericTalk     = []string{"talk_s", "billsec", "talk_time_duration", "duration"}
	genericWait     = []string{"wait_s", "waitingconnect", "wait_time_duration"}
	genericAnswered = []string{"answered", "successful"}
	genericStatus   = []string{"disposition", "status", "call_status"}
	genericRecord   = []string{"recording_url", "record_url", "file_link"}
	genericDir      = []string{"direction"}
	genericFinal    = []string{"final"}
	genericEmployee = []string{"employee", "manager", "employee_full_name"}
	genericKind     = []string{"event"}
)

// genericSignatureHeader carries "sha256=<hex HMAC-SHA256(secret, raw body)>".
const genericSignatureHeader = "X-Throughline-Signature"

func parseGeneric(req Request, cfg Config) ([]Event, Reply, error) {
	m, err := method(req)
	if err != nil {
		return nil, Reply{}, err
	}
	if cfg.Secret != "" {
		if err := verifyGeneric(req, cfg.Secret); err != nil {
			return nil, Reply{}, err
		}
	}
	var fs fields
	switch {
	case cfg.Secret != "":
		// Only the body is signed: reading fields from the query would let
		// anyone who saw one signed request replay its signature with
		// different query parameters.
		if len(bytes.TrimSpace(req.Body)) == 0 {
			return nil, Reply{}, fieldErr("body", "is empty: with a signing secret the payload must be in the signed body (query parameters are not signed)")
		}
		fs, err = bodyFields(req, true)
	case m == "GET" || len(bytes.TrimSpace(req.Body)) == 0:
		// Calltouch-style senders may POST with the parameters in the URL.
		fs, err = queryFields(req)
	default:
		fs, err = bodyFields(req, true)
	}
	if err != nil {
		return nil, Reply{}, err
	}
	ev, err := genericEvent(fs, cfg)
	if err != nil {
		return nil, Reply{}, err
	}
	return []Event{ev}, Reply{}, nil
}

func verifyGeneric(req Request, secret string) error {
	h := strings.TrimSpace(req.Header.Get(genericSignatureHeader))
	if h == "" {
		return fmt.Errorf("%w: %s header missing", ErrSignature, genericSignatureHeader)
	}
	algo, hexSum, ok := strings.Cut(h, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(algo), "sha256") {
		return fmt.Errorf("%w: %s must be sha256=<hex>", ErrSignature, genericSignatureHeader)
	}
	got, err := hex.DecodeString(strings.TrimSpace(hexSum))
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrSignature, genericSignatureHeader)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(req.Body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return fmt.Errorf("%w: %s does not match the body", ErrSignature, genericSignatureHeader)
	}
	return nil
}

// aliasList names a field and its aliases in messages.
func aliasList(aliases []string) string {
	return strings.Join(aliases, " | ")
}

// genericAliases is every alias, for indexing a payload.
var genericAliases = func() map[string]bool {
	m := map[string]bool{}
	for _, list := range [][]string{genericID, genericCaller, genericTracked, genericStart, genericTalk, genericWait,
		genericAnswered, genericStatus, genericRecord, genericDir, genericFinal, genericEmployee, genericKind} {
		for _, a := range list {
			m[a] = true
		}
	}
	return m
}()

// aliasIndex maps each alias present in a payload (lower-case) to its
// first usable occurrence: present, not null, not blank. Built in one pass
// so that a 1 MiB form of tiny fields costs one scan, not one per alias.
type aliasIndex map[string]field

func indexAliases(fs fields) aliasIndex {
	idx := aliasIndex{}
	for _, f := range fs {
		if len(f.name) > 32 { // longer than any alias
			continue
		}
		key := strings.ToLower(f.name)
		if !genericAliases[key] {
			continue
		}
		if _, seen := idx[key]; seen {
			continue
		}
		if f.val.kind == kNull || (f.val.kind != kComposite && strings.TrimSpace(f.val.s) == "") {
			continue
		}
		idx[key] = f
	}
	return idx
}

// lookup returns the value of the first alias present, in the list's
// order: the canonical name wins over aliases wherever they appear. name
// is the spelling found, for error messages.
func (idx aliasIndex) lookup(aliases []string) (name string, v value, ok bool) {
	for _, a := range aliases {
		if f, ok := idx[a]; ok {
			return f.name, f.val, true
		}
	}
	return "", value{}, false
}

func genericEvent(payload fields, cfg Config) (Event, error) {
	fs := indexAliases(payload)
	ev := Event{Provider: Generic, Kind: "call", Final: true}
	str := func(aliases []string) (string, error) {
		name, v, ok := fs.lookup(aliases)
		if !ok {
			return "", nil
		}
		return scalar(name, v)
	}
	required := func(aliases []string) (string, error) {
		s, err := str(aliases)
		if err == nil && s == "" {
			err = fieldErr(aliases[0], "is required ("+aliasList(aliases)+")")
		}
		return s, err
	}
	var err error
	if ev.CallID, err = required(genericID); err != nil {
		return Event{}, err
	}
	if ev.Tracked, err = required(genericTracked); err != nil {
		return Event{}, err
	}
	name, v, ok := fs.lookup(genericStart)
	if !ok {
		return Event{}, fieldErr(genericStart[0], "is required ("+aliasList(genericStart)+")")
	}
	if ev.StartedAt, err = genericTime(name, v, cfg.Location); err != nil {
		return Event{}, err
	}
	if ev.Caller, err = str(genericCaller); err != nil {
		return Event{}, err
	}
	if ev.RecordingURL, err = str(genericRecord); err != nil {
		return Event{}, err
	}
	if ev.Employee, err = str(genericEmployee); err != nil {
		return Event{}, err
	}
	if ev.Disposition, err = str(genericStatus); err != nil {
		return Event{}, err
	}
	if kind, err := str(genericKind); err != nil {
		return Event{}, err
	} else if kind != "" {
		ev.Kind = kind
	}
	if name, v, ok := fs.lookup(genericTalk); ok {
		n, err := seconds(name, v)
		if err != nil {
			return Event{}, err
		}
		ev.TalkSeconds = &n
	}
	if name, v, ok := fs.lookup(genericWait); ok {
		n, err := seconds(name, v)
		if err != nil {
			return Event{}, err
		}
		ev.WaitSeconds = &n
	}
	if name, v, ok := fs.lookup(genericAnswered); ok {
		b, err := boolish(name, v, true)
		if err != nil {
			return Event{}, err
		}
		ev.Answered = &b
	} else {
		// Calltouch-style senders say status=successful for an answered
		// call; CDR pushers send Asterisk's disposition.
		ev.Answered = answeredFromStatus(ev.Disposition)
	}
	if name, v, ok := fs.lookup(genericDir); ok {
		s, err := scalar(name, v)
		if err != nil {
			return Event{}, err
		}
		if ev.Direction, err = direction(name, s); err != nil {
			return Event{}, err
		}
	}
	if name, v, ok := fs.lookup(genericFinal); ok {
		if ev.Final, err = boolish(name, v, false); err != nil {
			return Event{}, err
		}
	}
	return ev, nil
}

// genericTime reads started_at: RFC 3339; a zoneless "2006-01-02 15:04:05"
// or "2006-01-02 15:04" in the hook's zone; or unix seconds (milliseconds
// from 13 digits on), as a string or a number.
func genericTime(name string, v value, loc *time.Location) (time.Time, error) {
	switch v.kind {
	case kNumber:
		return unixTime(name, v)
	case kBool, kComposite:
		return time.Time{}, fieldErr(name, "must be an RFC 3339 time, 2006-01-02 15:04:05 or unix seconds")
	}
	s, err := text(name, v.s)
	if err != nil {
		return time.Time{}, err
	}
	if s != "" && strings.Trim(s, "0123456789") == "" {
		return unixTime(name, value{s: s})
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return inRange(name, t)
	}
	t, err := localTime(name, s, loc)
	if err != nil {
		return time.Time{}, fieldErr(name, fmt.Sprintf("must be an RFC 3339 time, 2006-01-02 15:04:05 or unix seconds, not %s", quote(s)))
	}
	return t, nil
}

// boolish reads true/false, 1/0, yes/no (case-insensitive, string or JSON
// literal); with successful, also Calltouch's "successful" as true.
func boolish(name string, v value, successful bool) (bool, error) {
	switch v.kind {
	case kComposite, kNull:
		return false, fieldErr(name, "must be true or false")
	}
	switch strings.ToLower(strings.TrimSpace(v.s)) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	case "successful":
		if successful {
			return true, nil
		}
	}
	return false, fieldErr(name, fmt.Sprintf("must be true or false (1/0, yes/no), not %s", quote(v.s)))
}

// answeredFromStatus derives answered from a status or disposition word
// when the sender gave no answered flag; nil when the word says nothing
// (e.g. a progress state like "ringing").
func answeredFromStatus(s string) *bool {
	switch strings.ToLower(s) {
	case "successful", "answered", "answer":
		return ptr(true)
	case "unsuccessful", "no answer", "no-answer", "noanswer", "not answered", "unanswered", "missed",
		"busy", "failed", "cancel", "canceled", "cancelled", "congestion", "chanunavail":
		return ptr(false)
	}
	return nil
}

// direction maps the direction words senders use to in/out/internal. An
// unknown word is an error rather than "": an outgoing call taken for an
// incoming one would be matched to a web session.
func direction(name, s string) (string, error) {
	switch strings.ToLower(s) {
	case "":
		return "", nil
	case "in", "inbound", "incoming", "input":
		return "in", nil
	case "out", "outbound", "outgoing", "output":
		return "out", nil
	case "internal", "local":
		return "internal", nil
	}
	return "", fieldErr(name, fmt.Sprintf("must be in, out or internal, not %s", quote(s)))
}
