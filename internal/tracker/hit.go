package tracker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/counter"
)

// Limits on what one hit may carry. The whole request is capped at
// MaxBodyBytes by the HTTP layer; these keep single fields sane.
const (
	MaxBodyBytes  = 16 << 10
	maxURLBytes   = 4096
	maxTitleBytes = 1000 // longer titles are cut, not refused: pages have long titles
	maxNameBytes  = 200
	maxPropsBytes = 4096
	// A hit may carry the time it happened (a resent hit); clocks drift, so
	// a little future is forgiven, and old hits are refused: they would land
	// in sessions long closed.
	maxClockSkew = 10 * time.Minute
	maxHitAge    = 24 * time.Hour
)

// Hit types.
const (
	Pageview = "pageview"
	Event    = "event"
)

// Payload is a hit as a sender posts it to /collect (JSON) or to
// /collect.gif (the same fields in the query string).
type Payload struct {
	Counter  FlexInt         `json:"counter"`
	UUID     string          `json:"uuid"`
	SID      string          `json:"sid"`
	Type     string          `json:"type"`
	URL      string          `json:"url"`
	Referrer string          `json:"referrer"`
	Title    string          `json:"title"`
	Name     string          `json:"name"`
	Props    json.RawMessage `json:"props"`
	TS       *FlexInt        `json:"ts"` // milliseconds since the epoch, when the hit happened
}

// FlexInt is an integer sent as a JSON number or as a string of digits:
// t.js reads the counter id from an HTML attribute, and other senders differ.
type FlexInt int64

func (f *FlexInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// encoding/json adds the field's name to this error type.
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[int64]()}
	}
	*f = FlexInt(n)
	return nil
}

// FieldError says which field of a hit is wrong.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ParseJSON decodes a /collect body. Unknown fields are ignored: a newer
// t.js may send more than this server knows, and a hit must not be lost for it.
func ParseJSON(body []byte) (Payload, error) {
	var p Payload
	if len(bytes.TrimSpace(body)) == 0 {
		return p, fieldErr("body", "is empty; a JSON object is required")
	}
	if !utf8.Valid(body) {
		return p, fieldErr("body", "is not valid UTF-8")
	}
	if err := json.Unmarshal(body, &p); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field == "":
			return p, fieldErr("body", "must be a JSON object, not %s", typeErr.Value)
		case errors.As(err, &typeErr):
			return p, fieldErr(typeErr.Field, "must be %s, not %s", typeErr.Type, typeErr.Value)
		case errors.As(err, &syntaxErr):
			return p, fieldErr("body", "malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
		}
		return p, fieldErr("body", "invalid JSON: %v", err)
	}
	return p, nil
}

// ParseQuery reads a /collect.gif query string.
func ParseQuery(q url.Values) (Payload, error) {
	p := Payload{
		UUID: q.Get("uuid"), SID: q.Get("sid"), Type: q.Get("type"), URL: q.Get("url"),
		Referrer: q.Get("referrer"), Title: q.Get("title"), Name: q.Get("name"),
	}
	n, err := strconv.ParseInt(q.Get("counter"), 10, 64)
	if err != nil {
		return p, fieldErr("counter", "must be an integer")
	}
	p.Counter = FlexInt(n)
	if props := q.Get("props"); props != "" {
		p.Props = json.RawMessage(props)
	}
	if ts := q.Get("ts"); ts != "" {
		n, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return p, fieldErr("ts", "must be milliseconds since 1970 as an integer")
		}
		f := FlexInt(n)
		p.TS = &f
	}
	return p, nil
}

// Hit is a validated hit, ready to be collected.
type Hit struct {
	Counter   counter.Counter
	UUID      string // visitor id
	LastSID   string // the session id the browser had; empty on a first visit
	Type      string
	URL       *url.URL
	Referrer  string
	Title     string
	Name      string // event name
	Props     string // event properties, a JSON object
	At        time.Time
	UserAgent string
	IP        netip.Addr
	Campaign  Campaign
}

// Validate checks a payload for counter c, received at now, and returns the
// hit. Nothing about it is stored unless it is valid.
func (p Payload) Validate(c counter.Counter, now time.Time) (Hit, error) {
	h := Hit{Counter: c, At: now.UTC().Truncate(time.Microsecond)}
	if !validID(p.UUID) {
		return h, fieldErr("uuid", "must be a lowercase UUID such as 0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4f")
	}
	h.UUID = p.UUID
	if p.SID != "" && !validID(p.SID) {
		return h, fieldErr("sid", "must be empty or a lowercase UUID")
	}
	h.LastSID = p.SID

	switch p.Type {
	case "", Pageview:
		h.Type = Pageview
	case Event:
		h.Type = Event
	default:
		return h, fieldErr("type", "must be %q or %q", Pageview, Event)
	}

	u, err := validURL(p.URL)
	if err != nil {
		return h, fieldErr("url", "%v", err)
	}
	h.URL = u
	h.Campaign = ParseCampaign(u)
	if err := h.Campaign.check(); err != nil {
		return h, fieldErr("url", "%v", err)
	}

	if p.Referrer != "" {
		if err := validReferrer(p.Referrer); err != nil {
			return h, fieldErr("referrer", "%v", err)
		}
		h.Referrer = p.Referrer
	}
	if err := checkText(p.Title); err != nil {
		return h, fieldErr("title", "%v", err)
	}
	h.Title = clip(p.Title, maxTitleBytes)

	if h.Type == Event {
		if strings.TrimSpace(p.Name) == "" {
			return h, fieldErr("name", "is required for an event")
		}
		if err := checkText(p.Name); err != nil {
			return h, fieldErr("name", "%v", err)
		}
		if len(p.Name) > maxNameBytes {
			return h, fieldErr("name", "is longer than %d bytes", maxNameBytes)
		}
		h.Name = p.Name
	}
	h.Props = "{}"
	if len(p.Props) > 0 && string(p.Props) != "null" {
		var obj map[string]any
		if len(p.Props) > maxPropsBytes {
			return h, fieldErr("props", "is larger than %d bytes", maxPropsBytes)
		}
		if !utf8.Valid(p.Props) { // a query string's props are raw bytes
			return h, fieldErr("props", "is not valid UTF-8")
		}
		if err := json.Unmarshal(p.Props, &obj); err != nil {
			return h, fieldErr("props", "must be a JSON object")
		}
		if err := checkJSONText(obj); err != nil {
			return h, fieldErr("props", "%v", err)
		}
		compact := new(bytes.Buffer)
		json.Compact(compact, p.Props)
		h.Props = compact.String()
	}

	if p.TS != nil {
		at := time.UnixMilli(int64(*p.TS)).UTC()
		switch {
		case at.After(now.Add(maxClockSkew)):
			return h, fieldErr("ts", "is %s in the future", at.Sub(now).Round(time.Second))
		case at.Before(now.Add(-maxHitAge)):
			return h, fieldErr("ts", "is older than %s", maxHitAge)
		case at.Before(h.At):
			h.At = at.Truncate(time.Microsecond)
		}
	}
	return h, nil
}

func validURL(s string) (*url.URL, error) {
	switch {
	case s == "":
		return nil, errors.New("is required")
	case len(s) > maxURLBytes:
		return nil, fmt.Errorf("is longer than %d bytes", maxURLBytes)
	}
	u, err := parseURL(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("must be an http or https URL, not %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("has no host")
	}
	return u, nil
}

// validReferrer accepts web pages and Android apps (android-app://package/),
// which is how Gmail, Telegram or the Google app refer visits on phones.
func validReferrer(s string) error {
	if len(s) > maxURLBytes {
		return fmt.Errorf("is longer than %d bytes", maxURLBytes)
	}
	u, err := parseURL(s)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "http", "https", "android-app":
	default:
		return fmt.Errorf("must be an http, https or android-app URL, not %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	return nil
}

// parseURL parses a page's URL whose text and host are text a database
// can store. The host is checked decoded: url.Parse lets %C0 through in a
// host, and a referrer's host is stored as its session's source.
func parseURL(s string) (*url.URL, error) {
	if err := checkText(s); err != nil {
		return nil, err
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("is not a URL: %v", err)
	}
	if err := checkText(u.Hostname()); err != nil {
		return nil, fmt.Errorf("host %v", err)
	}
	return u, nil
}

// checkText refuses what no text column holds: a NUL, which PostgreSQL
// refuses (SQLSTATE 22021) — failing the whole group-commit transaction the
// hit would join — and bytes that are not UTF-8, which PostgreSQL refuses
// and SQLite would hand back as something else. Hits have their own limits
// on length; this is only about what text can be.
func checkText(s string) error {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Errorf("holds a NUL character (\\u0000) at byte %d", i)
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	return nil
}

// checkJSONText applies checkText to every key and string of decoded JSON.
func checkJSONText(v any) error {
	switch v := v.(type) {
	case string:
		return checkText(v)
	case []any:
		for i, e := range v {
			if err := checkJSONText(e); err != nil {
				return fmt.Errorf("[%d] %w", i, err)
			}
		}
	case map[string]any:
		for k, e := range v {
			if err := checkText(k); err != nil {
				return fmt.Errorf("key %q %w", clip(k, 40), err)
			}
			if err := checkJSONText(e); err != nil {
				return fmt.Errorf("%q: %w", clip(k, 40), err)
			}
		}
	}
	return nil
}
