package crm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/normalize"
)

// Cell values as CRMs write them. Each parser returns an error whose text
// completes "column X: …", for the row report.

// ParseMoney reads an amount of money in major units ("1234.50", "1234,50",
// "1 234,50", "-12") and returns it in minor units (kopecks), rounded to the
// nearest one. A single comma is a decimal comma, as Russian CRMs write it;
// when both a comma and a dot appear, the last one is the decimal separator
// and the other groups thousands. Spaces (also non-breaking) group thousands.
func ParseMoney(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, " \u00a0\u202f") {
		s = strings.NewReplacer(" ", "", "\u00a0", "", "\u202f", "").Replace(s)
	}
	if s == "" {
		return 0, errors.New("is empty")
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	dec := strings.LastIndexAny(s, ".,")
	intPart, frac := s, ""
	if dec >= 0 {
		intPart, frac = s[:dec], s[dec+1:]
		sep := s[dec]
		other := byte(',')
		if sep == ',' {
			other = '.'
		}
		if strings.IndexByte(intPart, sep) >= 0 && strings.IndexByte(intPart, other) < 0 {
			// "1,234,567": commas (or dots) grouping thousands, no decimals.
			intPart, frac = strings.ReplaceAll(s, string(sep), ""), ""
		} else {
			intPart = strings.ReplaceAll(intPart, string(other), "")
		}
	}
	if intPart == "" && frac == "" || !allDigits(intPart) || !allDigits(frac) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if len(intPart) > 15 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	var units int64
	if intPart != "" {
		units, _ = strconv.ParseInt(intPart, 10, 64)
	}
	units *= 100
	// Two decimals are kopecks; a third rounds half up; the rest is noise.
	for i, mul := 0, int64(10); i < len(frac) && i < 2; i, mul = i+1, mul/10 {
		units += int64(frac[i]-'0') * mul
	}
	if len(frac) > 2 && frac[2] >= '5' {
		units++
	}
	if units >= 1e17 { // 999999999999999.995 rounds up to 16 digits
		return 0, fmt.Errorf("%q is too large", s)
	}
	if neg {
		units = -units
	}
	return units, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseCount reads a whole number that cannot be negative (items in an order).
func ParseCount(s string) (int64, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Some CRMs export counts as "3.0" or "3,00".
		if m, merr := ParseMoney(s); merr == nil && m%100 == 0 {
			n, err = m/100, nil
		}
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q is not a whole number", s)
	case n < 0:
		return 0, fmt.Errorf("%q is negative", s)
	}
	return n, nil
}

// FormatMoney writes minor units as a decimal with a dot: 123450 → "1234.50".
func FormatMoney(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// minDate: Metrica refuses dates before 1970, and so do we.
var minDate = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// ParseTime reads a CRM date or date-time in the counter's time zone loc, in
// every form Metrica's CRM upload accepts — "2006-01-02 15:04:05",
// "2006-01-02 15:04", "02.01.2006 15:04:05", "02.01.2006 15:04", the same with
// two-digit years (2000 + yy), and the dates alone — plus ISO 8601
// ("2006-01-02T15:04:05", with "Z" or an offset, which then wins over loc).
// Single-digit days and months are accepted. A date without a time means the
// end of that day (Metrica: "visits before 23:59 of that day"); dateOnly
// reports it.
func ParseTime(s string, loc *time.Location) (t time.Time, dateOnly bool, err error) {
	return parseTime(s, loc, checkMin)
}

// ParseDate is ParseTime for dates that may be before 1970 (birth dates).
func ParseDate(s string) (time.Time, error) {
	t, _, err := parseTime(s, time.UTC, func(t time.Time, s string) (time.Time, bool, error) { return t, false, nil })
	return t, err
}

func parseTime(s string, loc *time.Location, checkMin func(time.Time, string) (time.Time, bool, error)) (t time.Time, dateOnly bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return t, false, errors.New("is empty")
	}
	if strings.ContainsAny(s, "TZ+") || strings.Count(s, "-") > 2 {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return checkMin(t.UTC(), s)
		}
		if t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, loc); err == nil {
			return checkMin(t.UTC(), s)
		}
		if t, err := time.ParseInLocation("2006-01-02T15:04", s, loc); err == nil {
			return checkMin(t.UTC(), s)
		}
		return t, false, fmt.Errorf("%q is not a date and time such as 2024-01-31 15:04:05", s)
	}
	var n, width [6]int
	var seps [5]byte
	k := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if width[k] == 4 {
				return t, false, badTime(s)
			}
			n[k] = n[k]*10 + int(c-'0')
			width[k]++
		case c == '-' || c == '.' || c == ':' || c == ' ':
			if width[k] == 0 || k == 5 {
				return t, false, badTime(s)
			}
			seps[k] = c
			k++
			for c == ' ' && i+1 < len(s) && s[i+1] == ' ' {
				i++
			}
		default:
			return t, false, badTime(s)
		}
	}
	fields := k + 1
	if width[k] == 0 || (fields != 3 && fields != 5 && fields != 6) {
		return t, false, badTime(s)
	}
	for i := 3; i < fields; i++ {
		if width[i] > 2 {
			return t, false, badTime(s)
		}
	}
	var y, mo, d int
	switch {
	case seps[0] == '-' && seps[1] == '-' && width[0] == 4 && width[1] <= 2 && width[2] <= 2: // 2006-01-02
		y, mo, d = n[0], n[1], n[2]
	case seps[0] == '.' && seps[1] == '.' && width[0] <= 2 && width[1] <= 2 && (width[2] == 4 || width[2] == 2): // 02.01.2006, 02.01.06
		d, mo, y = n[0], n[1], n[2]
		if width[2] == 2 {
			y += 2000
		}
	default:
		return t, false, badTime(s)
	}
	if fields > 3 && (seps[2] != ' ' || seps[3] != ':' || (fields == 6 && seps[4] != ':')) {
		return t, false, badTime(s)
	}
	h, mi, sec := n[3], n[4], n[5]
	if fields == 3 {
		h, mi, sec, dateOnly = 23, 59, 59, true
	}
	if mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 || y < 1 {
		return t, false, fmt.Errorf("%q is not a real date", s)
	}
	t = time.Date(y, time.Month(mo), d, h, mi, sec, 0, loc)
	if t.Day() != d { // 31.02 would roll over into March
		return t, false, fmt.Errorf("%q is not a real date", s)
	}
	t, _, err = checkMin(t.UTC(), s)
	return t, dateOnly, err
}

func badTime(s string) error {
	return fmt.Errorf("%q is not a date such as 2024-01-31 15:04:05 or 31.01.2024 15:04", s)
}

func checkMin(t time.Time, s string) (time.Time, bool, error) {
	if t.Before(minDate) {
		return t, false, fmt.Errorf("%q is before 1970", s)
	}
	return t, false, nil
}

// SplitMulti splits a multi-value cell ("a@x.ru,b@x.ru"): on commas,
// items trimmed, empty items dropped.
func SplitMulti(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// MaxValues caps the values of one multi-valued field of one row (phones,
// e-mails, client ids…): a customer with a thousand e-mails is a data error,
// and a list of a million would cost a row minutes.
const MaxValues = 1000

// normalizeList normalises each value with norm and drops duplicates,
// keeping the first occurrence's place; a value norm refuses is an error
// naming it.
func normalizeList(vals []string, norm func(string) (string, error)) ([]string, error) {
	if len(vals) > MaxValues {
		return nil, fmt.Errorf("has %d values; at most %d", len(vals), MaxValues)
	}
	var l uniqueList
	for _, v := range vals {
		n, err := norm(v)
		if err != nil {
			return nil, err
		}
		l.add(n)
	}
	return l.vals, nil
}

func normalizePhones(vals []string) ([]string, error) {
	return normalizeList(vals, func(v string) (string, error) {
		p, err := normalize.Phone(v, "")
		if err != nil {
			return "", fmt.Errorf("%q is not a phone number with its country code, such as 79995551111", v)
		}
		return p, nil
	})
}

func normalizeEmails(vals []string) ([]string, error) {
	return normalizeList(vals, func(v string) (string, error) {
		e, err := normalize.Email(v)
		if err != nil {
			return "", fmt.Errorf("%q is not an e-mail address", v)
		}
		return e, nil
	})
}

func normalizeHashes(vals []string) ([]string, error) {
	return normalizeList(vals, func(v string) (string, error) {
		h, err := normalize.Hash(v)
		if err != nil {
			return "", fmt.Errorf("%q is not an md5 hash (32 hex digits)", v)
		}
		return h, nil
	})
}

// normalizeIDs trims visitor and client ids and drops duplicates.
func normalizeIDs(vals []string) ([]string, error) {
	return normalizeList(vals, func(v string) (string, error) {
		v = strings.TrimSpace(v)
		if len(v) > 255 {
			return "", fmt.Errorf("an id is longer than 255 bytes")
		}
		if err := checkText(v); err != nil { // a JSON list item that is not a string comes as its raw text
			return "", fmt.Errorf("an id %v", err)
		}
		return v, nil
	})
}

// uniqueList collects values without duplicates, in order; a set keeps it
// linear for long lists.
type uniqueList struct {
	vals []string
	seen map[string]bool
}

func (l *uniqueList) add(v string) {
	if l.seen == nil && len(l.vals) >= 16 {
		l.seen = make(map[string]bool, 2*len(l.vals))
		for _, have := range l.vals {
			l.seen[have] = true
		}
	}
	if l.seen != nil {
		if l.seen[v] {
			return
		}
		l.seen[v] = true
	} else {
		for _, have := range l.vals {
			if have == v {
				return
			}
		}
	}
	l.vals = append(l.vals, v)
}

// appendUnique adds v to a short list unless it is there.
func appendUnique(list []string, v string) []string {
	for _, have := range list {
		if have == v {
			return list
		}
	}
	return append(list, v)
}

// union is a ∪ b in order, without duplicates (merge mode APPEND).
func union(a, b []string) []string {
	var l uniqueList
	for _, v := range a {
		l.add(v)
	}
	for _, v := range b {
		l.add(v)
	}
	return l.vals
}

// maxText caps a single text cell; a CSV with a runaway quote otherwise
// swallows the rest of the file into one field.
const maxText = 64 << 10

func checkText(s string) error {
	if len(s) > maxText {
		return fmt.Errorf("is longer than %d bytes", maxText)
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8 (files must be in UTF-8; this looks like another encoding, such as Windows-1251)")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("holds a NUL byte") // PostgreSQL's text cannot store it
	}
	return nil
}
