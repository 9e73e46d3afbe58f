package retailcrm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The JSON helpers of spec §9: RetailCRM answers the same field in several
// shapes, so each such field gets a type that accepts all of them.

// isNull reports whether data is JSON null (or nothing, which a missing
// value decodes from in our own calls).
func isNull(data []byte) bool {
	data = bytes.TrimSpace(data)
	return len(data) == 0 || string(data) == "null"
}

// ---------------------------------------------------------------- FlexMap

// FlexMap is a customFields object: code → raw JSON value (string, number,
// bool or array for multiselects). RetailCRM sends `[]` instead of `{}` when
// there are none; null, `{}` and `[]` all decode to an empty map. A
// non-empty array (never seen) keeps its elements under keys "0", "1", …
// rather than failing the whole order.
type FlexMap map[string]json.RawMessage

func (m *FlexMap) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case isNull(data):
		*m = nil
		return nil
	case string(data) == "[]" || string(data) == "{}": // most orders have none
		*m = FlexMap{}
		return nil
	case data[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(data, &list); err != nil {
			return fmt.Errorf("customFields: %w", err)
		}
		out := make(FlexMap, len(list))
		for i, v := range list {
			out[strconv.Itoa(i)] = v
		}
		*m = out
		return nil
	case data[0] == '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(data, &obj); err != nil {
			return fmt.Errorf("customFields: %w", err)
		}
		*m = obj
		return nil
	}
	return fmt.Errorf("customFields: want an object or an array, got %.20s", data)
}

// String returns the value of code as text (see Order.Field for the rules);
// ok is false when the field is missing, null or empty.
func (m FlexMap) String(code string) (string, bool) {
	raw, ok := m[code]
	if !ok {
		return "", false
	}
	return valueText(raw)
}

// valueText is a raw JSON value as Field reports it (see text).
func valueText(raw []byte) (string, bool) {
	if s, ok := plainString(raw); ok {
		return s, s != "" // most values: no need for the decoder
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // keep numbers as sent: "1395.16", not 1395.1599999
	if d.Decode(&v) != nil {
		return "", false
	}
	return text(v)
}

// plainString returns the text of a JSON string that has no escapes and is
// valid UTF-8 — what encoding/json would decode it to — and ok; ok is false
// for anything else, which is left to encoding/json.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

// ---------------------------------------------------------------- FlexErrors

// FlexErrors is the `errors` of an error body: field → message. RetailCRM
// sends an object or an array of strings; array items are keyed "0", "1", …
// (as the official Go client does). Values that are not strings (nested
// objects) are kept as their compact JSON.
type FlexErrors map[string]string

func (e *FlexErrors) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if isNull(data) {
		*e = nil
		return nil
	}
	out := FlexErrors{}
	switch data[0] {
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(data, &list); err != nil {
			return fmt.Errorf("errors: %w", err)
		}
		for i, v := range list {
			out[strconv.Itoa(i)] = rawText(v)
		}
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(data, &obj); err != nil {
			return fmt.Errorf("errors: %w", err)
		}
		for k, v := range obj {
			out[k] = rawText(v)
		}
	default:
		// A bare string or number: keep it rather than lose the message.
		out["0"] = rawText(data)
	}
	*e = out
	return nil
}

// rawText is a JSON value as text: a string unquoted, anything else compact.
func rawText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}

// ---------------------------------------------------------------- payments

// Payment is one payment of an order.
type Payment struct {
	ID         int64    `json:"id"`
	Type       string   `json:"type"`
	Status     string   `json:"status"`
	Amount     Money    `json:"amount"`
	PaidAt     DateTime `json:"paidAt"`
	ExternalID string   `json:"externalId"`
	Comment    string   `json:"comment"`
}

// FlexPayments is an order's payments. RetailCRM sends an object keyed by
// payment id, `{}`, `[]` or an array; all decode to a list ordered by id
// (object key order is not kept by Go, and ids grow with time).
type FlexPayments []Payment

func (p *FlexPayments) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch string(data) {
	case "null", "{}": // as an empty object decodes below
		*p = nil
		return nil
	case "[]":
		*p = FlexPayments{}
		return nil
	}
	if isNull(data) {
		*p = nil
		return nil
	}
	var list []Payment
	switch data[0] {
	case '[':
		if err := json.Unmarshal(data, &list); err != nil {
			return fmt.Errorf("payments: %w", err)
		}
	case '{':
		var obj map[string]Payment
		if err := json.Unmarshal(data, &obj); err != nil {
			return fmt.Errorf("payments: %w", err)
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			pay := obj[k]
			if pay.ID == 0 {
				pay.ID, _ = strconv.ParseInt(k, 10, 64)
			}
			list = append(list, pay)
		}
	default:
		return fmt.Errorf("payments: want an object or an array, got %.20s", data)
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	*p = list
	return nil
}

// Paid is the sum of the payments with status "paid".
func (p FlexPayments) Paid() Money {
	var sum Money
	for _, x := range p {
		if x.Status == "paid" {
			sum += x.Amount
		}
	}
	return sum
}

// ---------------------------------------------------------------- Money

// Money is an amount in minor units (kopecks), as Throughline stores money.
// RetailCRM sends a JSON number with a fraction (1395.16, -1157.1); strings
// ("1395.16", "1395,16") and null are accepted too. The decimal text is
// converted exactly — never through a float — and rounded half away from
// zero to two places.
type Money int64

// ErrMoneyRange is an amount too large for Money.
var ErrMoneyRange = errors.New("amount out of range")

func (m *Money) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if isNull(data) {
		*m = 0
		return nil
	}
	if data[0] != '"' {
		v, err := parseMoney(data, false) // a number: no copy of it to a string
		if err != nil {
			return fmt.Errorf("amount %q: %w", data, err)
		}
		*m = v
		return nil
	}
	s, ok := plainString(data)
	if !ok {
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("amount: %w", err)
		}
	}
	// Text amounts may be written for people: "1 000,25".
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, " \u00a0\u202f") {
		s = amountSpaces.Replace(s)
	}
	if s == "" {
		*m = 0
		return nil
	}
	v, err := ParseMoney(s, true)
	if err != nil {
		return fmt.Errorf("amount %q: %w", s, err)
	}
	*m = v
	return nil
}

// amountSpaces removes the spaces that group digits in a text amount.
var amountSpaces = strings.NewReplacer(" ", "", "\u00a0", "", "\u202f", "")

func (m Money) MarshalJSON() ([]byte, error) { return []byte(m.String()), nil }

// String formats the amount as a decimal: 139516 → "1395.16", 150 → "1.5",
// -5 → "-0.05".
func (m Money) String() string {
	u := uint64(m)
	sign := ""
	if m < 0 {
		sign, u = "-", uint64(-m) // -MinInt64 wraps to itself, and as uint64 is right
	}
	switch cents := u % 100; {
	case cents == 0:
		return fmt.Sprintf("%s%d", sign, u/100)
	case cents%10 == 0:
		return fmt.Sprintf("%s%d.%d", sign, u/100, cents/10)
	default:
		return fmt.Sprintf("%s%d.%02d", sign, u/100, cents)
	}
}

// ParseMoney converts a decimal number (optionally signed, with a fraction
// and an exponent: "1395.16", "-1e3") to minor units. With decimalComma a
// "," is accepted as the decimal point.
func ParseMoney(s string, decimalComma bool) (Money, error) { return parseMoney(s, decimalComma) }

func parseMoney[T string | []byte](s T, decimalComma bool) (Money, error) {
	i, neg := 0, false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	var buf [24]byte
	digits := buf[:0] // significant digits, leading zeros dropped
	frac, seenDigit, seenPoint := 0, false, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			seenDigit = true
			if seenPoint {
				frac++
			}
			if c != '0' || len(digits) > 0 {
				digits = append(digits, c)
			}
			continue
		case (c == '.' || (decimalComma && c == ',')) && !seenPoint:
			seenPoint = true
			continue
		}
		break
	}
	if !seenDigit {
		return 0, errors.New("not a number")
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			eneg = s[i] == '-'
			i++
		}
		start := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if exp < 100000 { // beyond this the value is 0 or out of range anyway
				exp = exp*10 + int(s[i]-'0')
			}
		}
		if i == start {
			return 0, errors.New("not a number")
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return 0, errors.New("not a number")
	}
	// value = digits × 10^(exp − frac), in minor units × 10^2. Leading zeros
	// after the point were not kept in digits but were counted in frac.
	scale := exp - frac + 2
	if len(digits) == 0 {
		return 0, nil
	}
	keep := len(digits) + scale // how many digits are above the minor unit
	var u uint64
	switch {
	case keep > 19:
		return 0, ErrMoneyRange
	case keep <= 0:
		if keep == 0 && digits[0] >= '5' {
			u = 1
		}
	default:
		for j := 0; j < keep; j++ {
			d := uint64('0')
			if j < len(digits) {
				d = uint64(digits[j])
			}
			if u > (1<<63-1-(d-'0'))/10 {
				return 0, ErrMoneyRange
			}
			u = u*10 + d - '0'
		}
		if keep < len(digits) && digits[keep] >= '5' {
			u++
		}
	}
	if u > 1<<63-1 {
		return 0, ErrMoneyRange
	}
	if neg {
		return -Money(u), nil
	}
	return Money(u), nil
}

// ---------------------------------------------------------------- dates

// Layouts of RetailCRM dates: they carry no zone and are in the account's
// time zone (spec §8.5).
const (
	DateTimeLayout = "2006-01-02 15:04:05"
	DateLayout     = "2006-01-02"
)

// wallClock marks a DateTime whose zone is not known yet: decoded from the
// API, before the client placed it in the account's zone.
var wallClock = time.FixedZone("wall-clock", 0)

// DateTime is a RetailCRM date-time. The API sends "2006-01-02 15:04:05"
// (or a bare date) without a zone; the Client places every DateTime it
// decodes in the account's time zone, so the embedded time.Time is the real
// instant (use .UTC() for storage). A DateTime decoded by json.Unmarshal
// alone is wall-clock time in a zone named "wall-clock" until InZone. Null,
// "", "0000-00-00 00:00:00", year 0 and a missing field are the zero time;
// other text that is not a date is an error.
type DateTime struct{ time.Time }

// ParseDateTime parses a RetailCRM date-time or date in loc. RFC 3339 text,
// which carries its own zone, is accepted too.
func ParseDateTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{DateTimeLayout, DateLayout, "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("date %q: want YYYY-MM-DD HH:MM:SS", s)
}

// FormatDateTime formats t in loc the way RetailCRM filters want it.
func FormatDateTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format(DateTimeLayout)
}

func (d *DateTime) UnmarshalJSON(data []byte) error {
	if isNull(data) {
		d.Time = time.Time{}
		return nil
	}
	s, ok := plainString(data)
	if !ok {
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("date: want a string, got %.30s", data)
		}
	}
	// "0000-00-00 00:00:00" is how PHP and MySQL write "no date".
	if s = strings.TrimSpace(s); s == "" || strings.HasPrefix(s, "0000-00-00") {
		d.Time = time.Time{}
		return nil
	}
	t, err := ParseDateTime(s, wallClock)
	if err != nil {
		return err
	}
	if t.Year() < 1 { // year 0: no real date, and not representable in RFC 3339 in every zone
		t = time.Time{}
	}
	d.Time = t
	return nil
}

// MarshalJSON writes RFC 3339 in UTC once the zone is known (exact even for
// historic zone offsets with seconds) and the API's own zoneless form before.
func (d DateTime) MarshalJSON() ([]byte, error) {
	if d.IsZero() {
		return []byte("null"), nil
	}
	if d.Location() == wallClock {
		return json.Marshal(d.Format(DateTimeLayout))
	}
	return json.Marshal(d.UTC().Format(time.RFC3339Nano))
}

// InZone places a wall-clock DateTime in loc; a DateTime whose zone is
// already known is returned as it is.
func (d DateTime) InZone(loc *time.Location) DateTime {
	if d.IsZero() || d.Location() != wallClock || loc == nil {
		return d
	}
	y, mo, day := d.Date()
	h, mi, s := d.Clock()
	return DateTime{time.Date(y, mo, day, h, mi, s, d.Nanosecond(), loc)}
}

// ---------------------------------------------------------------- raw fields

// rawDoc is the raw JSON of an order or customer. Its top level is split
// into fields once, on the first Field call (an import reads a dozen fields
// of each of many orders); a path then decodes only the value it goes into.
type rawDoc struct {
	raw  json.RawMessage
	once sync.Once
	top  map[string]json.RawMessage
}

func newRawDoc(raw []byte) *rawDoc { return &rawDoc{raw: append(json.RawMessage(nil), raw...)} }

func (r *rawDoc) field(path string) (string, bool) {
	if r == nil || path == "" {
		return "", false
	}
	r.once.Do(func() { r.top = topLevel(r.raw) })
	head, rest, nested := strings.Cut(path, ".")
	raw, ok := r.top[head]
	if !ok {
		return "", false
	}
	if !nested {
		return valueText(raw)
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // keep numbers as sent: "1395.16", not 1395.1599999
	if d.Decode(&v) != nil {
		return "", false
	}
	return lookup(v, rest)
}

// topLevel splits a JSON object into its fields without decoding them: a
// scan for where each value ends, much cheaper than encoding/json on the
// 2 KB of an order. It stops at the first thing that is not well-formed;
// json.Unmarshal has validated what the client decoded.
func topLevel(raw []byte) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return out
	}
	i++
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] != '"' {
			return out
		}
		end := skipValue(raw, i)
		if end < 0 {
			return out
		}
		key := string(raw[i+1 : end-1])
		if bytes.IndexByte(raw[i:end], '\\') >= 0 || !utf8.ValidString(key) { // let encoding/json read escapes
			if json.Unmarshal(raw[i:end], &key) != nil {
				return out
			}
		}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return out
		}
		i = skipSpace(raw, i+1)
		end = skipValue(raw, i)
		if end < 0 {
			return out
		}
		out[key] = raw[i:end]
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ',' {
			return out
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at i, or
// -1 if it does not end.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return -1
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			case '"':
				end := skipValue(b, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			}
		}
		return -1
	}
	// A number, true, false or null: up to the next delimiter.
	start := i
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	if i == start {
		return -1
	}
	return i
}

// lookup follows a dot path through objects (by key) and arrays (by index).
func lookup(v any, path string) (string, bool) {
	for _, seg := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[seg]; !ok {
				return "", false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return "", false
			}
			v = x[i]
		default:
			return "", false
		}
	}
	return text(v)
}

// text renders a decoded JSON value for Field: strings as they are, numbers
// as sent, booleans "true"/"false", arrays of scalars (multiselect custom
// fields) joined with ",", objects and other arrays as compact JSON.
// Null and "" are reported as missing: the API sends both for "no value".
func text(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, x != ""
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			switch e.(type) {
			case map[string]any, []any:
				b, _ := json.Marshal(x)
				return string(b), len(x) > 0
			}
			if s, ok := text(e); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ","), len(parts) > 0
	default:
		b, _ := json.Marshal(x)
		return string(b), true
	}
}
