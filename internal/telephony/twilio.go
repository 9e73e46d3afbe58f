package telephony

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"time"
)

// Twilio voice webhooks (spec §3.4). One hook URL may receive three kinds
// of request:
//
//   - the incoming-call request (the number's Voice URL), which must be
//     answered with TwiML and carries no time: the call start is the
//     receipt time;
//   - status callbacks, which carry Timestamp and, on the final one,
//     CallDuration;
//   - the <Dial action> callback on the "/dial" subpath, sent when the
//     forwarded leg ends.
//
// Trap: for an inbound call Twilio itself answers as soon as TwiML runs, so
// CallStatus=completed does not mean a person answered, and CallDuration
// includes the ringing of the forwarded leg. Answered and talk time come
// from the <Dial> callback (DialCallStatus, DialCallDuration); status
// callbacks leave Answered nil.

const twilioSignatureHeader = "X-Twilio-Signature"

// twilioFinal are the CallStatus values that end a call.
var twilioFinal = map[string]bool{"completed": true, "busy": true, "no-answer": true, "failed": true, "canceled": true}

func parseTwilio(req Request, cfg Config) ([]Event, Reply, error) {
	m, err := method(req)
	if err != nil {
		return nil, Reply{}, err
	}
	var params fields
	if m == "GET" {
		// For GET the parameters are in the URL, which is signed as is.
		params, err = queryFields(req)
	} else {
		params, err = bodyFields(req, false)
	}
	if err != nil {
		return nil, Reply{}, err
	}
	if cfg.Secret != "" {
		var signed fields // GET: nothing beyond the URL
		if m == "POST" {
			signed = params
		}
		if err := verifyTwilio(req, signed, cfg.Secret); err != nil {
			return nil, Reply{}, err
		}
	}
	get := func(name string) (string, error) { return text(name, params.str(name)) }
	e := Event{Provider: Twilio}
	if e.CallID, err = get("CallSid"); err != nil {
		return nil, Reply{}, err
	}
	if e.CallID == "" {
		return nil, Reply{}, fieldErr("CallSid", "is required")
	}
	if e.Caller, err = get("From"); err != nil {
		return nil, Reply{}, err
	}
	if e.Tracked, err = get("To"); err != nil {
		return nil, Reply{}, err
	}
	if e.RecordingURL, err = get("RecordingUrl"); err != nil {
		return nil, Reply{}, err
	}
	dir, err := get("Direction")
	if err != nil {
		return nil, Reply{}, err
	}
	// inbound; outbound-api and outbound-dial (the leg <Dial> creates).
	switch {
	case strings.EqualFold(dir, "inbound"):
		e.Direction = "in"
	case strings.HasPrefix(strings.ToLower(dir), "outbound"):
		e.Direction = "out"
	}
	status, err := get("CallStatus")
	if err != nil {
		return nil, Reply{}, err
	}
	status = strings.ToLower(status)

	if strings.EqualFold(strings.TrimRight(req.Subpath, "/"), "/dial") {
		if err := twilioDial(params, &e); err != nil {
			return nil, Reply{}, err
		}
		// Twilio runs the TwiML the action URL returns: an empty
		// <Response/> ends the call, which is what follows a finished dial.
		return []Event{e}, twiml(""), nil
	}

	callbackSource, err := get("CallbackSource")
	if err != nil {
		return nil, Reply{}, err
	}
	stamp, err := get("Timestamp")
	if err != nil {
		return nil, Reply{}, err
	}
	durText, err := get("CallDuration")
	if err != nil {
		return nil, Reply{}, err
	}
	if callbackSource == "" && stamp == "" && durText == "" && !twilioFinal[status] {
		// The incoming-call request (CallStatus ringing, sometimes
		// in-progress or queued): no time of its own, and Twilio waits for
		// TwiML.
		e.Kind = "incoming"
		if !cfg.ReceivedAt.IsZero() {
			if e.StartedAt, err = inRange("ReceivedAt", cfg.ReceivedAt); err != nil {
				return nil, Reply{}, err
			}
		}
		return []Event{e}, twiml(twilioForward(req, cfg.ForwardTo)), nil
	}

	// A status callback.
	e.Kind = status
	if e.Kind == "" {
		e.Kind = "status"
	}
	e.Disposition = status
	e.Final = twilioFinal[status]
	var dur *int
	if durText != "" {
		n, err := seconds("CallDuration", value{s: durText})
		if err != nil {
			return nil, Reply{}, err
		}
		dur = &n
	}
	if stamp != "" {
		t, err := mail.ParseDate(stamp) // RFC 2822 (RFC 1123Z and kin)
		if err != nil {
			return nil, Reply{}, fieldErr("Timestamp", fmt.Sprintf("must be an RFC 2822 date like Fri, 21 Nov 2025 11:04:53 +0000, not %s", quote(stamp)))
		}
		// Timestamp is when this status happened: on the final callback
		// that is the end, and CallDuration (from Twilio's own answer,
		// i.e. ring start for an inbound call) leads back to the start.
		if dur != nil {
			t = t.Add(-time.Duration(*dur) * time.Second)
		}
		if e.StartedAt, err = inRange("Timestamp", t); err != nil {
			return nil, Reply{}, err
		}
	}
	// For an outgoing call Twilio's CallDuration starts when the callee
	// answers: it is the talk time. For an inbound one it is not (see the
	// trap above) and the /dial callback gives the real figure.
	if e.Direction == "out" && status == "completed" && dur != nil {
		e.TalkSeconds = dur
	}
	return []Event{e}, Reply{}, nil
}

// twilioDial reads the <Dial action> callback into e. CallSid there is the
// parent (inbound) call's, so the event joins the call's other events.
func twilioDial(params fields, e *Event) error {
	e.Kind = "dial"
	e.Final = true
	st, err := text("DialCallStatus", params.str("DialCallStatus"))
	if err != nil {
		return err
	}
	if st == "" {
		return fieldErr("DialCallStatus", "is required on the /dial callback")
	}
	e.Disposition = st
	answered := strings.EqualFold(st, "completed") || strings.EqualFold(st, "answered")
	e.Answered = &answered
	if v, ok := params.get("DialCallDuration"); ok && strings.TrimSpace(v.s) != "" {
		n, err := seconds("DialCallDuration", v)
		if err != nil {
			return err
		}
		e.TalkSeconds = &n
	} else if !answered {
		e.TalkSeconds = ptr(0)
	}
	return nil
}

// verifyTwilio checks X-Twilio-Signature = base64(HMAC-SHA1(auth token,
// URL + every signed parameter as name+value, sorted by name, then value)).
// The URL is tried as given and with the default port added or removed, as
// Twilio's SDKs do: what Twilio signed depends on how the URL was written
// in its console, which a proxy in front of us may not preserve.
func verifyTwilio(req Request, params fields, token string) error {
	h := strings.TrimSpace(req.Header.Get(twilioSignatureHeader))
	if h == "" {
		return fmt.Errorf("%w: %s header missing", ErrSignature, twilioSignatureHeader)
	}
	got, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return fmt.Errorf("%w: %s is not base64", ErrSignature, twilioSignatureHeader)
	}
	// JSON-bodied webhooks sign the URL only and put the body's SHA-256 in
	// the query as bodySHA256.
	q, _ := parseForm(rawQuery(req.URL), "query") // the caller parsed it already
	if sum, ok := q.get("bodySHA256"); ok {
		want := sha256.Sum256(req.Body)
		have, err := hex.DecodeString(strings.TrimSpace(sum.s))
		if err != nil || !hmac.Equal(have, want[:]) {
			return fmt.Errorf("%w: bodySHA256 does not match the body", ErrSignature)
		}
		params = nil
	}
	sorted := append(fields(nil), params...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].name != sorted[j].name {
			return sorted[i].name < sorted[j].name
		}
		return sorted[i].val.s < sorted[j].val.s
	})
	var tail strings.Builder
	for _, p := range sorted {
		tail.WriteString(p.name)
		tail.WriteString(p.val.s)
	}
	for _, u := range twilioURLs(req.URL) {
		if hmac.Equal(got, twilioSignature(token, u+tail.String())) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s does not match", ErrSignature, twilioSignatureHeader)
}

func twilioSignature(token, msg string) []byte {
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

// twilioURLs returns u and, for http and https, u with the default port
// removed (when explicit) or added (when absent). Only the authority
// changes; the rest stays byte for byte.
func twilioURLs(u string) []string {
	urls := []string{u}
	i := strings.Index(u, "://")
	if i < 0 {
		return urls
	}
	var port string
	switch strings.ToLower(u[:i]) {
	case "https":
		port = "443"
	case "http":
		port = "80"
	default:
		return urls
	}
	start := i + 3
	end := len(u)
	if j := strings.IndexAny(u[start:], "/?#"); j >= 0 {
		end = start + j
	}
	authority := u[start:end]
	host := authority[strings.LastIndex(authority, "@")+1:]
	hostEnd := start + len(authority) // host is the authority's tail
	switch {
	case strings.HasSuffix(host, ":"+port):
		urls = append(urls, u[:hostEnd-len(port)-1]+u[hostEnd:])
	case !hasPort(host):
		urls = append(urls, u[:hostEnd]+":"+port+u[hostEnd:])
	}
	return urls
}

// hasPort reports whether host ("example.com", "[::1]:8443") has a port.
func hasPort(host string) bool {
	i := strings.LastIndexByte(host, ':')
	return i >= 0 && i > strings.LastIndexByte(host, ']')
}

// twilioForward returns the <Dial> that forwards an incoming call to
// forwardTo, or "" when there is none. Its action URL is this hook's own
// URL — scheme, host and path, no query — with "/dial" appended, so the
// dialled leg's outcome comes back as the /dial callback of the same hook.
// The Voice URL's query is left behind: configured as GET, it is the whole
// incoming call (the caller's number included), which has no business in
// another URL. Twilio signs the action URL as written here and POSTs the
// callback's parameters in the body (<Dial method> defaults to POST), so
// the callback's signature still verifies.
func twilioForward(req Request, forwardTo string) string {
	forwardTo = strings.TrimSpace(forwardTo)
	if forwardTo == "" {
		return ""
	}
	base := req.URL
	if i := strings.IndexAny(base, "?#"); i >= 0 {
		base = base[:i]
	}
	// If the Voice URL itself has a subpath, the action still goes to the
	// hook's own /dial.
	if sub := strings.TrimRight(req.Subpath, "/"); sub != "" {
		base = strings.TrimSuffix(strings.TrimRight(base, "/"), sub)
	}
	action := strings.TrimRight(base, "/") + "/dial"
	return `<Dial action="` + xmlEscape(action) + `" timeout="30">` + xmlEscape(forwardTo) + `</Dial>`
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s)) // writes to a buffer: cannot fail
	return b.String()
}

// twiml wraps verbs in a TwiML document; no verbs gives <Response/>, which
// Twilio reads as "nothing to do" (an incoming call is then hung up).
func twiml(verbs string) Reply {
	body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	if verbs == "" {
		body += "<Response/>"
	} else {
		body += "<Response>" + verbs + "</Response>"
	}
	return Reply{Status: 200, ContentType: "text/xml; charset=utf-8", Body: []byte(body)}
}

// ForwardReply is what to answer a Twilio Voice URL request that could not
// be processed (a database error, a bad signature, a malformed body): the
// call is still put through to the shop's line — only its tracking is lost.
// ok is false when the request is not Twilio's incoming-call request or the
// hook forwards nowhere.
func ForwardReply(provider string, req Request, cfg Config) (Reply, bool) {
	if provider != Twilio || strings.Trim(req.Subpath, "/") != "" {
		return Reply{}, false
	}
	v := twilioForward(req, cfg.ForwardTo)
	if v == "" {
		return Reply{}, false
	}
	return twiml(v), true
}
