package telephony

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A payload is decoded into fields: name/value pairs in the order received.
// Order matters: forms and JSON objects may repeat a name (or, for the
// generic format's case-insensitive aliases, spell it twice in different
// cases), and the first occurrence must win every time — a map would make
// the choice random.
type field struct {
	name string
	val  value
}

type fields []field

// value is one payload value. s is its text: strings as decoded, JSON
// numbers as written, booleans "true"/"false". Form values are always
// strings.
type value struct {
	s    string
	kind valueKind
}

type valueKind uint8

const (
	kString valueKind = iota
	kNumber
	kBool
	kNull
	kComposite // JSON object or array: never a valid scalar field
)

// get returns the first value named exactly name.
func (fs fields) get(name string) (value, bool) {
	for _, f := range fs {
		if f.name == name {
			return f.val, true
		}
	}
	return value{}, false
}

// str returns the first value named exactly name, or "".
func (fs fields) str(name string) string {
	v, _ := fs.get(name)
	return v.s
}

// parseForm decodes an application/x-www-form-urlencoded string (a body or
// a URL query) keeping order and repeats. where names it in errors.
func parseForm(s, where string) (fields, error) {
	var fs fields
	for s != "" {
		var part string
		part, s, _ = strings.Cut(s, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return nil, fieldErr(where, "malformed URL encoding: "+err.Error())
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, fieldErr(where, fmt.Sprintf("malformed URL encoding of %q: %v", name, err))
		}
		fs = append(fs, field{name, value{s: val}})
	}
	return fs, nil
}

// maxParts bounds the parts of a multipart body; a 1 MiB body of empty
// parts would otherwise make thousands of tiny allocations for nothing.
const maxParts = 1000

// parseMultipart decodes a multipart/form-data body. File parts are
// skipped: no provider sends call data as files, and the caller keeps the
// raw body anyway.
func parseMultipart(body []byte, boundary string) (fields, error) {
	if boundary == "" {
		return nil, fieldErr("Content-Type", "multipart/form-data without a boundary")
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	var fs fields
	for n := 0; ; n++ {
		p, err := r.NextPart()
		if err == io.EOF {
			return fs, nil
		}
		if err != nil {
			return nil, fieldErr("body", "malformed multipart form: "+err.Error())
		}
		if n >= maxParts {
			return nil, fieldErr("body", fmt.Sprintf("more than %d multipart parts", maxParts))
		}
		name := p.FormName()
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, fieldErr("body", "malformed multipart form: "+err.Error())
		}
		if name == "" || p.FileName() != "" {
			continue
		}
		fs = append(fs, field{name, value{s: string(data)}})
	}
}

// parseJSONObject decodes a JSON object's top-level members in order. A
// body that is not one JSON object (an array, a scalar, trailing data) is a
// FieldError on "body".
func parseJSONObject(body []byte) (fields, error) {
	if !utf8.Valid(body) {
		// encoding/json would silently turn bad bytes into U+FFFD.
		return nil, fieldErr("body", "is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	bad := func(err error) error {
		return fieldErr("body", "malformed JSON: "+err.Error())
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, bad(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fieldErr("body", "must be a JSON object")
	}
	var fs fields
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		name, _ := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, bad(err)
		}
		v, err := jsonValue(raw)
		if err != nil {
			return nil, bad(err)
		}
		fs = append(fs, field{name, v})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, bad(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fieldErr("body", "unexpected data after the JSON object")
	}
	return fs, nil
}

// jsonValue classifies one JSON value (already validated by the decoder).
func jsonValue(raw json.RawMessage) (value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return value{}, errors.New("empty value")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return value{}, err
		}
		return value{s: s, kind: kString}, nil
	case 't', 'f':
		return value{s: string(raw), kind: kBool}, nil
	case 'n':
		return value{kind: kNull}, nil
	case '{', '[':
		return value{kind: kComposite}, nil
	}
	return value{s: string(raw), kind: kNumber}, nil
}

// method returns "GET" or "POST" (case-insensitively as given) or a
// FieldError: webhooks come only as these two.
func method(req Request) (string, error) {
	m := strings.ToUpper(strings.TrimSpace(req.Method))
	if m == "" {
		m = "POST"
	}
	if m != "GET" && m != "POST" {
		return "", fieldErr("method", fmt.Sprintf("%q is not accepted: send GET or POST", req.Method))
	}
	return m, nil
}

// rawQuery returns the query string of a URL without parsing the rest of
// it (the URL is only ever used as text: Twilio signs it byte for byte).
func rawQuery(u string) string {
	_, q, ok := strings.Cut(u, "?")
	if !ok {
		return ""
	}
	q, _, _ = strings.Cut(q, "#")
	return q
}

func queryFields(req Request) (fields, error) {
	return parseForm(rawQuery(req.URL), "query")
}

// bodyFields decodes a POST body by its Content-Type: URL-encoded or
// multipart forms, and JSON when allowJSON (only the generic format has
// JSON bodies). Without a useful Content-Type the body is sniffed: "{" or
// "[" first means JSON, anything else a URL-encoded form.
func bodyFields(req Request, allowJSON bool) (fields, error) {
	ct := strings.TrimSpace(req.Header.Get("Content-Type"))
	mt, params := "", map[string]string(nil)
	if ct != "" {
		var err error
		mt, params, err = mime.ParseMediaType(ct)
		if err != nil {
			// A parameter we cannot read must not hide a plain type.
			mt, _, _ = strings.Cut(ct, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
		}
	}
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	switch {
	case mt == "application/x-www-form-urlencoded":
	case mt == "multipart/form-data":
		return parseMultipart(req.Body, params["boundary"])
	case isJSON:
		if !allowJSON {
			return nil, fieldErr("Content-Type", fmt.Sprintf("%q is not accepted here: send a URL-encoded form", mt))
		}
		return parseJSONObject(req.Body)
	case mt == "", mt == "text/plain", mt == "application/octet-stream":
		trimmed := bytes.TrimLeft(req.Body, " \t\r\n")
		if allowJSON && len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
			return parseJSONObject(req.Body)
		}
	default:
		want := "a URL-encoded or multipart form"
		if allowJSON {
			want = "JSON, a URL-encoded or multipart form, or GET query parameters"
		}
		return nil, fieldErr("Content-Type", fmt.Sprintf("%q is not accepted: send %s", mt, want))
	}
	return parseForm(string(req.Body), "body")
}

// text cleans a value for an Event: trimmed, valid UTF-8, no NUL.
func text(name, s string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", fieldErr(name, "is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", fieldErr(name, "contains a NUL character")
	}
	return s, nil
}

// scalar is text for a payload value that must be a string or a number
// (ids and phones arrive as either from senders that fill in templates).
func scalar(name string, v value) (string, error) {
	switch v.kind {
	case kNull:
		return "", nil
	case kBool, kComposite:
		return "", fieldErr(name, "must be a string or a number")
	}
	return text(name, v.s)
}

// maxSeconds bounds durations: 68 years fits an int everywhere.
const maxSeconds = 1<<31 - 1

// seconds parses a whole, non-negative number of seconds (a string or a
// number).
func seconds(name string, v value) (int, error) {
	switch v.kind {
	case kBool, kComposite, kNull:
		return 0, fieldErr(name, "must be a whole number of seconds")
	}
	s := strings.TrimSpace(v.s)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > maxSeconds {
		return 0, fieldErr(name, fmt.Sprintf("must be a whole number of seconds, not %s", quote(s)))
	}
	return int(n), nil
}

// Times must fit what the rest of Throughline stores and prints: RFC 3339
// has four-digit years, and no call predates 1970.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func inRange(name string, t time.Time) (time.Time, error) {
	t = t.UTC()
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, fieldErr(name, "is out of range (1970–9999)")
	}
	return t, nil
}

// unixTime parses unix seconds (a string or a number). Thirteen digits or
// more are read as milliseconds: Calltouch-style senders use ms, and no
// call in seconds reaches 10¹² (year 33658).
func unixTime(name string, v value) (time.Time, error) {
	switch v.kind {
	case kBool, kComposite, kNull:
		return time.Time{}, fieldErr(name, "must be unix seconds")
	}
	s := strings.TrimSpace(v.s)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fieldErr(name, fmt.Sprintf("must be unix seconds, not %s", quote(s)))
	}
	var t time.Time
	if n >= 1e12 {
		t = time.UnixMilli(n)
	} else {
		t = time.Unix(n, 0)
	}
	return inRange(name, t)
}

// localLayouts are the zoneless layouts accepted, read in the hook's zone.
// Go accepts a fractional second after the seconds field without it being
// in the layout ("2025-11-21 14:03:11.412").
var localLayouts = []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04"}

// localTime parses a zoneless "2006-01-02 15:04:05" (or without seconds)
// in loc.
func localTime(name, s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	s = strings.TrimSpace(s)
	for _, layout := range localLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return inRange(name, t)
		}
	}
	return time.Time{}, fieldErr(name, fmt.Sprintf("must be a time like 2006-01-02 15:04:05, not %s", quote(s)))
}

// quote shows a bad value in an error message, shortened: messages reach
// logs, and a 1 MiB value would drown them.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}
