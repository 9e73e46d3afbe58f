// Package costs holds ad costs: what each day of each campaign cost, with
// its clicks and impressions. A cost row is keyed by day × source × medium ×
// campaign × content × term — the UTM tags sessions carry — so reports can
// set costs beside the sessions and orders of the same campaign.
//
// Costs arrive as a CSV file (Import) or a JSON list (ImportRows). Either way
// the whole upload is checked first, bad rows are reported with their line
// and column, and the rows are applied in one transaction: an upload is
// applied whole or not at all, and re-sending it changes nothing (a row
// replaces the stored row of its key).
package costs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/crm"
)

// Row is the cost of one day of one ad key. Source and medium are stored
// lower-cased (UTM keys compare case-insensitively); campaign, content and
// term as given, trimmed; each is empty when absent.
type Row struct {
	Day         string `json:"day"` // YYYY-MM-DD, the counter's local day
	Source      string `json:"source"`
	Medium      string `json:"medium"`
	Campaign    string `json:"campaign"`
	Content     string `json:"content"`
	Term        string `json:"term"`
	Cost        int64  `json:"cost"` // minor units (kopecks); in JSON an exact decimal in major units, "1234.50"
	Clicks      int64  `json:"clicks"`
	Impressions int64  `json:"impressions"`
	Currency    string `json:"currency"` // ISO 4217; RUB when not given

	// costErr is why UnmarshalJSON could not read "cost": it is reported
	// with the row's index by ImportRows, like any other bad field.
	costErr error
}

// DefaultCurrency is the currency of a row that names none.
const DefaultCurrency = "RUB"

// MaxKeyBytes caps source, medium, campaign, content and term: sessions keep
// UTM tags up to this length, so a longer value could never meet a session.
const MaxKeyBytes = 500

// RowError is a rejected row: its line in the file (or its index in a JSON
// list, from 1), the column or field at fault, and why.
type RowError = crm.RowError

// InvalidError names a parameter that is wrong (List's from and to).
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// rowJSON is a row as the API writes it.
type rowJSON struct {
	Day         string      `json:"day"`
	Source      string      `json:"source"`
	Medium      string      `json:"medium"`
	Campaign    string      `json:"campaign"`
	Content     string      `json:"content"`
	Term        string      `json:"term"`
	Cost        json.Number `json:"cost"`
	Clicks      int64       `json:"clicks"`
	Impressions int64       `json:"impressions"`
	Currency    string      `json:"currency"`
}

// MarshalJSON writes the cost in major units as an exact decimal.
func (r Row) MarshalJSON() ([]byte, error) {
	return json.Marshal(rowJSON{Day: r.Day, Source: r.Source, Medium: r.Medium, Campaign: r.Campaign,
		Content: r.Content, Term: r.Term, Cost: json.Number(crm.FormatMoney(r.Cost)),
		Clicks: r.Clicks, Impressions: r.Impressions, Currency: r.Currency})
}

// UnmarshalJSON reads a row as the API takes it: the cost in major units as
// a number (1234.5) or a string ("1234,50"); unknown fields are refused. A
// cost that cannot be read is not an error here: ImportRows reports it with
// the row's index.
func (r *Row) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] != '{' && !bytes.Equal(b, []byte("null")) {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[Row]()}
	}
	var in struct {
		Day         string          `json:"day"`
		Source      string          `json:"source"`
		Medium      string          `json:"medium"`
		Campaign    string          `json:"campaign"`
		Content     string          `json:"content"`
		Term        string          `json:"term"`
		Cost        json.RawMessage `json:"cost"`
		Clicks      int64           `json:"clicks"`
		Impressions int64           `json:"impressions"`
		Currency    string          `json:"currency"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return err
	}
	*r = Row{Day: in.Day, Source: in.Source, Medium: in.Medium, Campaign: in.Campaign, Content: in.Content,
		Term: in.Term, Clicks: in.Clicks, Impressions: in.Impressions, Currency: in.Currency}
	r.Cost, r.costErr = jsonCost(in.Cost)
	return nil
}

func jsonKind(b []byte) string {
	switch b[0] {
	case '"':
		return "string"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "number"
}

// jsonCost reads the cost of a JSON row: a number or a string, in major units.
func jsonCost(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, errors.New("is required: the cost in major units, such as 1234.50")
	}
	text := string(raw)
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, errors.New("is not a valid JSON string")
		}
	case '{', '[', 't', 'f':
		return 0, errors.New("must be a number in major units, such as 1234.50")
	}
	return crm.ParseMoney(text)
}

// normalize checks a row and brings it to its stored form: the day as
// YYYY-MM-DD, the keys trimmed (source and medium lower-cased), the currency
// upper-cased (RUB when empty). It returns the field at fault ("day",
// "source", …, "cost") and why.
func (r *Row) normalize() (string, error) {
	day, err := ParseDay(r.Day)
	if err != nil {
		return "day", err
	}
	r.Day = day
	for _, k := range []struct {
		field string
		v     *string
		lower bool
	}{{"source", &r.Source, true}, {"medium", &r.Medium, true}, {"campaign", &r.Campaign, false},
		{"content", &r.Content, false}, {"term", &r.Term, false}} {
		if err := checkText(*k.v); err != nil {
			return k.field, err
		}
		*k.v = strings.TrimSpace(*k.v)
		if k.lower {
			*k.v = strings.ToLower(*k.v)
		}
		if len(*k.v) > MaxKeyBytes {
			return k.field, fmt.Errorf("is longer than %d bytes", MaxKeyBytes)
		}
	}
	if r.Source == "" {
		return "source", errors.New("is empty: every cost row needs a source (utm_source)")
	}
	switch {
	case r.costErr != nil:
		return "cost", r.costErr
	case r.Cost < 0:
		return "cost", fmt.Errorf("%q is negative", crm.FormatMoney(r.Cost))
	case r.Clicks < 0:
		return "clicks", fmt.Errorf("%d is negative", r.Clicks)
	case r.Impressions < 0:
		return "impressions", fmt.Errorf("%d is negative", r.Impressions)
	}
	cur := strings.ToUpper(strings.TrimSpace(r.Currency))
	if cur == "" {
		cur = DefaultCurrency
	}
	if !isCurrency(cur) {
		return "currency", fmt.Errorf("%q is not an ISO 4217 currency code such as RUB, USD or EUR", r.Currency)
	}
	r.Currency = cur
	return "", nil
}

func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// checkText refuses what cannot be stored as text: invalid UTF-8 (a file in
// another encoding) and NUL bytes (PostgreSQL's text cannot hold them).
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8 (files must be in UTF-8; this looks like another encoding, such as Windows-1251)")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("holds a NUL byte")
	}
	return nil
}

// ParseDay reads a day as cost files write it — 2024-03-01, 01.03.2024 (also
// 1.3.2024 and 01.03.24), or a date and time whose date part is taken as
// written ("2024-03-01 10:00:00", "2024-03-01T10:00:00+03:00": the 1st of
// March, whatever the offset) — and returns it as YYYY-MM-DD.
func ParseDay(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("is empty: a date such as 2024-03-01 is required")
	}
	date := s
	if i := strings.IndexAny(s, " T"); i > 0 {
		date = s[:i]
		// The time must be one too: "2024-03-01 garbage" is not a date.
		if _, _, err := crm.ParseTime(s, time.UTC); err != nil {
			return "", err
		}
	}
	t, dateOnly, err := crm.ParseTime(date, time.UTC)
	if err != nil {
		return "", err
	}
	if !dateOnly {
		return "", fmt.Errorf("%q is not a date such as 2024-03-01 or 01.03.2024", s)
	}
	return t.Format(time.DateOnly), nil
}
