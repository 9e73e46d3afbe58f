// Package telephony authenticates and parses the call webhooks of the
// telephony providers Throughline accepts — Zadarma, Mango Office, Twilio
// and Throughline's own generic format — into one normalised Event per
// provider event (shared/spec/telephony.md §3, §4).
//
// The package is pure: it sees one request as received (Request) and the
// hook's settings (Config) and returns events and the answer the provider
// expects (Reply). It keeps no state, touches no database and does not
// normalise phones: numbers pass through as sent, trimmed, because the
// caller normalises every phone with the one normalisation function of the
// project (internal/normalize) and its per-connection default region.
//
// Providers send several events per call (start, answer, end, recording),
// possibly twice and out of order. Every Event carries the provider's call
// id so the caller can upsert one call per (provider, CallID) and fill in
// what each event says; fields an event does not carry are zero or nil, so
// "not said" is never confused with "no" (Answered nil ≠ false).
//
// Authentication: when a provider signs its requests (Zadarma and Twilio
// when a secret is configured, Mango always, generic when a secret is
// configured) a missing or wrong signature is ErrSignature, checked before
// the payload is trusted. Malformed payloads are *FieldError naming the
// field. Parse never panics on any input (fuzzed).
//
// Every string an Event carries is valid UTF-8 without NUL characters (NUL
// is refused as a FieldError: PostgreSQL text cannot hold it), every time is
// UTC between 1970 and 9999, and durations are non-negative.
package telephony

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Providers Throughline accepts.
const (
	Generic = "generic"
	Zadarma = "zadarma"
	Mango   = "mango"
	Twilio  = "twilio"
)

// Providers lists the accepted provider names in a stable order.
var Providers = []string{Generic, Zadarma, Mango, Twilio}

// Request is one webhook request as received.
type Request struct {
	Method  string // GET or POST
	URL     string // the full URL the provider requested (scheme, host, path, query) — Twilio signs it
	Subpath string // the part of the path after /hooks/calls/{provider}/{token}, e.g. "/events/summary" for Mango, "" when none
	Header  http.Header
	Body    []byte // raw body, ≤ 1 MiB (the caller limits it)
}

// Config is one hook's settings.
type Config struct {
	// Secret is, for generic, the optional HMAC-SHA256 secret; for zadarma
	// the API secret; for twilio the auth token. Zadarma's and Twilio's
	// signatures are checked only when it is set.
	Secret string
	// Key and Salt are Mango's vpbx_api_key and vpbx_api_salt; both are
	// required for mango (Mango always signs).
	Key, Salt string
	// Location is the zone of zoneless provider times (Zadarma call_start,
	// generic "2006-01-02 15:04:05"); nil means UTC.
	Location *time.Location
	// ReceivedAt is when the request arrived: the call start for events
	// that carry none (Twilio's incoming-call request).
	ReceivedAt time.Time
	// ForwardTo, for twilio, makes the reply to an incoming-call request a
	// TwiML <Dial> forwarding the call to this number, with the action URL
	// pointing back at this hook's "/dial" subpath; when empty the reply is
	// an empty <Response/>.
	ForwardTo string
}

// Event is one call event, normalised (spec §4). Fields the event does not
// carry are zero/nil.
type Event struct {
	Provider string
	// Kind is the provider's event name, for the record: NOTIFY_START,
	// events/summary, events/call:Disconnected, completed, incoming, dial…
	Kind string
	// CallID is the provider's call id; the events of one call share it
	// (Zadarma pbx_call_id, Mango entry_id, Twilio CallSid — for the /dial
	// callback the parent CallSid —, generic call_id). Never empty.
	CallID string
	// Direction is "in", "out", "internal" or "" when unknown. Outgoing and
	// internal calls are recorded but never matched to sessions.
	Direction string
	// Caller is the calling party's number as sent; Tracked the dialled
	// number as sent (for incoming calls the tracked number). For outgoing
	// calls the roles follow the call: Caller is our side, Tracked is the
	// number dialled (the customer).
	Caller  string
	Tracked string
	// StartedAt is the call start (ring start), UTC; zero when this event
	// does not say.
	StartedAt   time.Time
	Answered    *bool
	TalkSeconds *int
	WaitSeconds *int
	Disposition string
	// RecordingURL is where the call's recording is: a link (generic,
	// Twilio, Mango when it sends one), or the provider's id of the
	// recording to ask its API for (Mango recording_id, Zadarma
	// call_id_with_rec).
	RecordingURL string
	Employee     string
	// Final means the call has ended (Zadarma NOTIFY_END/NOTIFY_OUT_END,
	// Mango summary or Disconnected, Twilio completed/busy/no-answer/failed/
	// canceled status or the /dial callback, generic unless "final": false).
	Final bool
}

// Reply is what to answer the provider. The zero Reply means 200 with
// {"ok":true}.
type Reply struct {
	Status      int
	ContentType string
	Body        []byte
}

var (
	// ErrUnknownProvider: the provider name is not one of Providers.
	ErrUnknownProvider = errors.New("telephony: unknown provider")
	// ErrSignature: the request's signature is missing or wrong where one
	// is required (the caller answers 401). Parse wraps it with the reason
	// (header missing, mismatch, key not configured…): test with errors.Is.
	ErrSignature = errors.New("telephony: missing or wrong signature")
)

// FieldError is a malformed payload: Field names the offending field (as
// the provider spells it, or "body", "json", "method", "Content-Type" for
// the request as a whole) and Message says what is wrong. The caller
// answers 400 naming Field.
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string {
	return "telephony: " + e.Field + ": " + e.Message
}

// maxMessage bounds a FieldError message: it quotes parts of the payload
// and reaches logs and the provider.
const maxMessage = 300

func fieldErr(field, msg string) *FieldError {
	// Messages may embed decoder errors that quote raw input (a multipart
	// header line, say): keep them valid UTF-8 and short.
	msg = strings.ReplaceAll(strings.ToValidUTF8(msg, "\uFFFD"), "\x00", `\x00`)
	if len(msg) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return &FieldError{Field: strings.ToValidUTF8(field, "\uFFFD"), Message: msg}
}

// Parse authenticates and parses one request. It returns the events (often
// one; none for a verification ping or an event kind Throughline ignores,
// e.g. Zadarma SMS) and the reply.
func Parse(provider string, req Request, cfg Config) ([]Event, Reply, error) {
	switch provider {
	case Generic:
		return parseGeneric(req, cfg)
	case Zadarma:
		return parseZadarma(req, cfg)
	case Mango:
		return parseMango(req, cfg)
	case Twilio:
		return parseTwilio(req, cfg)
	}
	return nil, Reply{}, ErrUnknownProvider
}

func ptr[T any](v T) *T { return &v }
