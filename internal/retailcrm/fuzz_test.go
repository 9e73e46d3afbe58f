package retailcrm

import (
	"encoding/json"
	"errors"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Fuzz tests of the JSON helpers and the answer classifier: no input may
// panic, and what they accept must keep their promises (exact money,
// payments ordered by id, dates that format back to what was sent).
//
//	go test -run XXX -fuzz '^FuzzMoney$' -fuzztime 30s ./internal/retailcrm

var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,3})?$`)

func FuzzMoney(f *testing.F) {
	for _, s := range []string{"1395.16", "-1157.1", "0", `"1395,16"`, `"1 000,25"`, "null", `""`, "10.005", "-10.005",
		"1e2", "1.5E-1", "0.005", "92233720368547758.07", "92233720368547758.08", "1e999999999", "1e-999999999",
		"0.0000000000000000000000000000005", "-0", "00012.5", ".5", "5.", "+1", `"\u0031"`, "1e", "--1", "9" + strings.Repeat("9", 30)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var m Money
		err := m.UnmarshalJSON([]byte(s))
		if err != nil {
			return
		}
		// What String writes reads back as the same amount.
		var back Money
		if err := back.UnmarshalJSON([]byte(m.String())); err != nil || back != m {
			t.Fatalf("%q → %d → %q → %d, %v", s, m, m.String(), back, err)
		}
		if !jsonNumber.MatchString(s) {
			return
		}
		// Against exact rational arithmetic: round half away from zero.
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("%q accepted but not a number", s)
		}
		r.Mul(r, big.NewRat(100, 1))
		neg := r.Sign() < 0
		r.Abs(r)
		q, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
		if new(big.Int).Mul(rem, big.NewInt(2)).Cmp(r.Denom()) >= 0 {
			q.Add(q, big.NewInt(1))
		}
		if neg {
			q.Neg(q)
		}
		if !q.IsInt64() || q.Int64() != int64(m) {
			t.Fatalf("%q → %d, want %s", s, m, q)
		}
	})
}

func FuzzFlexMap(f *testing.F) {
	for _, s := range []string{`[]`, `{}`, `null`, `{"a":1,"b":"x","c":[1,"2"],"d":true,"e":null,"f":{"g":1}}`, `["x"]`, `"s"`, `{"a":`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var m FlexMap
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return
		}
		for k := range m {
			m.String(k)
		}
		if _, ok := m.String("\x00missing"); ok {
			t.Fatal("a missing code found")
		}
	})
}

func FuzzFlexPayments(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `null`, `{"4326":{"id":4326,"status":"paid","amount":1395.16,"paidAt":"2021-02-25 14:05:06"}}`,
		`[{"id":2,"amount":"1,5"},{"id":1}]`, `{"9":{},"x":{"id":3}}`, `{"1":[]}`, `5`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var p FlexPayments
		if err := json.Unmarshal([]byte(s), &p); err != nil {
			return
		}
		if !sort.SliceIsSorted(p, func(i, j int) bool { return p[i].ID < p[j].ID }) {
			t.Fatalf("%s: not ordered by id: %+v", s, p)
		}
		p.Paid()
	})
}

func FuzzFlexErrors(f *testing.F) {
	for _, s := range []string{`{"customer":"Set one of the following fields: id, externalId"}`, `["a","b"]`, `null`, `[]`, `{}`,
		`{"a":{"b":"c"}}`, `[1,true,null]`, `"x"`, `{"a":`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var e FlexErrors
		err := json.Unmarshal([]byte(s), &e)
		var v any
		isJSON := json.Unmarshal([]byte(s), &v) == nil
		switch v.(type) {
		case map[string]any, []any:
			if isJSON && err != nil {
				t.Fatalf("%s: a JSON object or array refused: %v", s, err)
			}
		}
		if list, ok := v.([]any); ok && err == nil && len(e) != len(list) {
			t.Fatalf("%s: %d items became %d", s, len(list), len(e))
		}
	})
}

func FuzzDateTime(f *testing.F) {
	for _, s := range []string{`"2021-02-25 09:37:48"`, `"2021-02-25"`, `null`, `""`, `"2021-02-25T09:37:48+03:00"`, `"2021-13-45 99:00:00"`,
		`"2021-03-28 02:30:00"`, `"0000-01-01 00:00:00"`, `5`, `"9999-12-31 23:59:59"`} {
		f.Add(s)
	}
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d DateTime
		if err := json.Unmarshal([]byte(s), &d); err != nil || d.IsZero() {
			return
		}
		z := d.InZone(loc)
		var text string
		_ = json.Unmarshal([]byte(s), &text)
		text = strings.TrimSpace(text)
		if _, err := time.Parse(DateTimeLayout, text); err == nil {
			// A local time read in the zone formats back the same, except
			// in a gap or overlap of the zone's clock (DST changes).
			if got := FormatDateTime(z.Time, loc); got != text && z.In(loc).Format(DateTimeLayout) == z.Format(DateTimeLayout) {
				t.Fatalf("%s → %v → %s", s, z, got)
			}
		}
		// Marshalled and read back, the instant is kept.
		b, err := json.Marshal(z)
		if err != nil {
			t.Fatal(err)
		}
		var back DateTime
		if err := json.Unmarshal(b, &back); err != nil || !back.Equal(z.Time) {
			t.Fatalf("%s → %s → %v, %v", s, b, back, err)
		}
	})
}

func FuzzOrder(f *testing.F) {
	f.Add(`{"id":7141,"number":"7141C","customFields":[],"payments":{"1":{"amount":1}},"customer":{"phones":[{"number":"+7"}],"customFields":{}}}`)
	f.Add(`{"id":1,"totalSumm":"12,5","items":[{"quantity":1.5}],"createdAt":"2021-02-25 09:37:48"}`)
	f.Add(`{"customFields":{"a":["x","y"],"b":{"c":1}},"payments":[]}`)
	f.Add(`{"id":"x"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var o Order
		if err := json.Unmarshal([]byte(s), &o); err != nil {
			return
		}
		for _, p := range []string{"id", "customFields.a", "customFields.b", "customer.phones.0.number", "payments.1.amount", "items.0", "a.b.c.d"} {
			o.Field(p)
		}
		o.localize(time.UTC)
		o.ItemCount()
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var again Order
		if err := json.Unmarshal(b, &again); err != nil || again.ID != o.ID || again.TotalSumm != o.TotalSumm {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{`{"success":false,"errorMsg":"Wrong \"apiKey\" value."}`, `<html>`, ``, `{"success":false,"errors":["a"]}`,
		"\xef\xbb\xbf<html>", `{"success":false,"errorMsg":"Parameter 'order' is missing"}`, `[1]`, `{`, `plain text`} {
		for _, st := range []int{200, 400, 403, 404, 405, 500} {
			f.Add(st, s)
		}
	}
	f.Fuzz(func(t *testing.T, status int, s string) {
		e := errorFromBody("GET /x", status, []byte(s))
		if e.Class == nil || e.Error() == "" || !errors.Is(e, e.Class) {
			t.Fatalf("%d %q: %+v", status, s, e)
		}
		if d := decodeAnswer("GET /x", status, []byte(s), &struct{}{}); d != nil && d.Class == nil {
			t.Fatalf("decodeAnswer %d %q: no class", status, s)
		}
		if status >= 500 && looksHTML([]byte(s)) && errors.Is(e, ErrAccountNotFound) {
			t.Fatal("a proxy's 5xx page read as a missing account")
		}
	})
}

func FuzzTopLevel(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":"x\"y","c":[1,{"d":"]"}],"e":{"f":null},"g":true}`, `{}`, ` { "a" : -1.5e3 , "a" : 2 } `,
		`{"a":"\\"}`, `{"a":[}`, `{"a"`, `[1]`, `{"a":"b",}`, `{"\u00e9":1}`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := topLevel([]byte(s))
		var want map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &want) != nil || want == nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d fields, want %d", s, len(got), len(want))
		}
		for k, v := range want {
			if string(got[k]) != string(v) {
				t.Fatalf("%s: %q = %s, want %s", s, k, got[k], v)
			}
		}
	})
}

// plainString, the decoder's shortcut for strings, agrees with encoding/json.
func FuzzPlainString(f *testing.F) {
	for _, s := range []string{`"abc"`, `""`, `"a\"b"`, `"\u00e9"`, `"é"`, "\"\xff\"", "\"a\tb\"", `"`, `x`, `"a"b"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := plainString([]byte(s))
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal([]byte(s), &want); err != nil || got != want {
			t.Fatalf("plainString(%q) = %q; encoding/json: %q, %v", s, got, want, err)
		}
	})
}
