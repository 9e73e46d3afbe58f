package tracker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/counter"
)

const testUUID = "0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4f"

var testCounter = counter.Counter{ID: 7, Domain: "shop.ru", Timezone: "Europe/Moscow", SessionTimeoutMinutes: 30, NewSessionOnCampaign: true}

func TestValidateRefusesBadHits(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		body, field string
	}{
		{``, "body"},
		{`   `, "body"},
		{`{"counter":7,`, "body"},
		{`[1,2]`, "body"},
		{"{\"counter\":7,\"uuid\":\"\xff\"}", "body"},
		{`{"counter":"seven","uuid":"` + testUUID + `","url":"https://shop.ru/"}`, "counter"},
		{`{"counter":7,"uuid":"","url":"https://shop.ru/"}`, "uuid"},
		{`{"counter":7,"uuid":"not-a-uuid","url":"https://shop.ru/"}`, "uuid"},
		{`{"counter":7,"uuid":"` + testUUID + `","sid":"123","url":"https://shop.ru/"}`, "sid"},
		{`{"counter":7,"uuid":"` + testUUID + `","type":"click","url":"https://shop.ru/"}`, "type"},
		{`{"counter":7,"uuid":"` + testUUID + `"}`, "url"},
		{`{"counter":7,"uuid":"` + testUUID + `","url":"javascript:alert(1)"}`, "url"},
		{`{"counter":7,"uuid":"` + testUUID + `","url":"ftp://shop.ru/file"}`, "url"},
		{`{"counter":7,"uuid":"` + testUUID + `","url":"https:///path"}`, "url"},
		{`{"counter":7,"uuid":"` + testUUID + `","url":"https://shop.ru/` + strings.Repeat("a", 5000) + `"}`, "url"},
		{`{"counter":7,"uuid":"` + testUUID + `","url":"https://shop.ru/","referrer":"file:///etc/passwd"}`, "referrer"},
		{`{"counter":7,"uuid":"` + testUUID + `","url":"https://shop.ru/","type":"event"}`, "name"},
		{`{"counter":7,"uuid":"` + testUUID + `","url":"https://shop.ru/","type":"event","name":"buy","props":[1]}`, "props"},
		{`{"counter":7,"uuid":"` + testUUID + `","url":"https://shop.ru/","ts":` + fmt.Sprint(now.Add(time.Hour).UnixMilli()) + `}`, "ts"},
		{`{"counter":7,"uuid":"` + testUUID + `","url":"https://shop.ru/","ts":` + fmt.Sprint(now.Add(-25*time.Hour).UnixMilli()) + `}`, "ts"},
		{`{"counter":7,"uuid":"` + testUUID + `","url":"https://shop.ru/","ts":"soon"}`, "ts"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			p, err := ParseJSON([]byte(tt.body))
			if err == nil {
				_, err = p.Validate(testCounter, now)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("body %.80q: err = %v, want a FieldError", tt.body, err)
			}
			if fe.Field != tt.field {
				t.Errorf("body %.80q: field = %q (%v), want %q", tt.body, fe.Field, fe, tt.field)
			}
		})
	}
}

func TestValidateAcceptsRealHits(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	body := `{"counter":"7","uuid":"` + testUUID + `","sid":"","type":"event","name":"add_to_cart",
		"props":{ "sku" : "A-1", "price": 990 },"url":"https://www.shop.ru/boots?utm_source=yandex&utm_medium=cpc&yclid=42",
		"referrer":"android-app://org.telegram.messenger/","title":"Сапоги","ts":` + fmt.Sprint(now.Add(-2*time.Minute).UnixMilli()) + `,
		"future_field":"ignored"}`
	p, err := ParseJSON([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.Validate(testCounter, now)
	if err != nil {
		t.Fatal(err)
	}
	if h.Counter.ID != 7 || h.UUID != testUUID || h.Type != Event || h.Name != "add_to_cart" || h.Title != "Сапоги" {
		t.Errorf("hit = %+v", h)
	}
	if h.Props != `{"sku":"A-1","price":990}` {
		t.Errorf("props = %s, want compact JSON", h.Props)
	}
	if !h.At.Equal(now.Add(-2 * time.Minute)) {
		t.Errorf("at = %v, want the hit's own ts", h.At)
	}
	if h.Campaign.Source != "yandex" || h.Campaign.ClickIDs["yclid"] != "42" {
		t.Errorf("campaign = %+v", h.Campaign)
	}

	// A ts slightly in the future (clock skew) is forgiven, and the server's
	// clock wins: a hit cannot be recorded after it was received.
	p.TS = new(FlexInt(now.Add(5 * time.Minute).UnixMilli()))
	if h, err = p.Validate(testCounter, now); err != nil || !h.At.Equal(now) {
		t.Errorf("skewed ts: at = %v, err = %v; want %v", h.At, err, now)
	}

	// Long titles are cut on a rune boundary, not refused.
	p.TS, p.Title = nil, strings.Repeat("я", 800)
	if h, err = p.Validate(testCounter, now); err != nil || len(h.Title) > maxTitleBytes || !json.Valid([]byte(`"`+h.Title+`"`)) {
		t.Errorf("long title: %d bytes, err %v", len(h.Title), err)
	}
}

func TestParseQuery(t *testing.T) {
	q, _ := url.ParseQuery("counter=7&uuid=" + testUUID + "&url=https%3A%2F%2Fshop.ru%2F&title=Home&ts=1700000000000")
	p, err := ParseQuery(q)
	if err != nil || p.Counter != 7 || p.UUID != testUUID || p.URL != "https://shop.ru/" || p.TS == nil || *p.TS != 1700000000000 {
		t.Fatalf("ParseQuery = %+v, %v", p, err)
	}
	q.Set("counter", "x")
	var fe *FieldError
	if _, err := ParseQuery(q); !errors.As(err, &fe) || fe.Field != "counter" {
		t.Errorf("bad counter: err = %v", err)
	}
}

// FuzzHit feeds arbitrary bodies to the parser and validator: neither may
// panic, and whatever they accept must be safe to store.
func FuzzHit(f *testing.F) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.Add(`{"counter":7,"uuid":"` + testUUID + `","url":"https://shop.ru/?utm_source=vk&fbclid=1","referrer":"https://yandex.ru/"}`)
	f.Add(`{"counter":"7","uuid":"` + testUUID + `","type":"event","name":"x","props":{"a":[1,{"b":null}]}}`)
	f.Add(`{"counter":7,"uuid":"` + testUUID + `","url":"https://xn--80ak6aa92e.xn--p1ai/","ts":1763812800000}`)
	f.Add(`{"counter":1e400}`)
	f.Fuzz(func(t *testing.T, body string) {
		p, err := ParseJSON([]byte(body))
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("ParseJSON error without a field: %v", err)
			}
			return
		}
		h, err := p.Validate(testCounter, now)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("Validate error without a field: %v", err)
			}
			return
		}
		if !validID(h.UUID) || (h.LastSID != "" && !validID(h.LastSID)) {
			t.Fatalf("accepted bad ids: %q %q", h.UUID, h.LastSID)
		}
		if h.URL.Scheme != "http" && h.URL.Scheme != "https" {
			t.Fatalf("accepted URL %q", h.URL)
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(h.Props), &obj); err != nil {
			t.Fatalf("accepted props %q: %v", h.Props, err)
		}
		if h.At.After(now) || h.At.Before(now.Add(-maxHitAge)) {
			t.Fatalf("accepted time %v", h.At)
		}
		if len(h.Title) > maxTitleBytes || len(h.URL.String()) > 3*maxURLBytes {
			t.Fatalf("accepted oversized fields")
		}
		src := Classify(h.Campaign, h.Referrer, h.URL.Hostname(), testCounter.Domain)
		texts := []string{h.URL.String(), h.Referrer, h.Title, h.Name, h.Props, src.Source, src.Medium,
			h.Campaign.Source, h.Campaign.Medium, h.Campaign.Name, h.Campaign.Content, h.Campaign.Term}
		for _, v := range h.Campaign.ClickIDs {
			texts = append(texts, v)
		}
		for _, s := range texts {
			if checkText(s) != nil {
				t.Fatalf("accepted text no database column holds: %q", s)
			}
		}
	})
}

// What no text column can hold — NUL, bytes that are not UTF-8 — is refused
// in every text field a hit stores, from JSON and from a query string, and
// named for what it is: a NUL is not "invalid UTF-8".
func TestValidateRefusesNULAndBadUTF8(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	hit := func(fields string) string {
		return `{"counter":7,"uuid":"` + testUUID + `",` + fields + `}`
	}
	const page = `"url":"https://shop.ru/"`
	tests := []struct {
		name, body, query string // one of body (JSON) or query (/collect.gif)
		field, says       string
	}{
		{name: "title NUL", body: hit(page + `,"title":"a\u0000b"`), field: "title", says: "NUL"},
		{name: "event name NUL", body: hit(page + `,"type":"event","name":"buy\u0000"`), field: "name", says: "NUL"},
		{name: "url NUL", body: hit(`"url":"https://shop.ru/\u0000"`), field: "url", says: "NUL"},
		{name: "utm_source NUL", body: hit(`"url":"https://shop.ru/?utm_source=a%00b"`), field: "url", says: "utm_source"},
		{name: "utm_campaign not UTF-8", body: hit(`"url":"https://shop.ru/?utm_campaign=%C0%AF"`), field: "url", says: "UTF-8"},
		{name: "click id NUL", body: hit(`"url":"https://shop.ru/?gclid=%00"`), field: "url", says: "gclid"},
		{name: "url host not UTF-8", body: hit(`"url":"https://sh%C0p.ru/"`), field: "url", says: "UTF-8"},
		{name: "referrer NUL", body: hit(page + `,"referrer":"https://ya.ru/\u0000"`), field: "referrer", says: "NUL"},
		{name: "referrer host not UTF-8", body: hit(page + `,"referrer":"https://a%C0b.ru/"`), field: "referrer", says: "UTF-8"},
		{name: "props key NUL", body: hit(page + `,"type":"event","name":"buy","props":{"a\u0000":1}`), field: "props", says: "NUL"},
		{name: "props nested value NUL", body: hit(page + `,"type":"event","name":"buy","props":{"a":[{"b":"x\u0000"}]}`), field: "props", says: "NUL"},
		{name: "gif title NUL", query: "title=a%00b", field: "title", says: "NUL"},
		{name: "gif title not UTF-8", query: "title=%C0", field: "title", says: "UTF-8"},
		{name: "gif event name NUL", query: "type=event&name=%00", field: "name", says: "NUL"},
		{name: "gif url NUL", query: "url=https%3A%2F%2Fshop.ru%2F%00", field: "url", says: "NUL"},
		{name: "gif referrer NUL", query: "referrer=https%3A%2F%2Fya.ru%2F%00", field: "referrer", says: "NUL"},
		{name: "gif props not UTF-8", query: "type=event&name=buy&props=%7B%22a%22%3A%22%C0%22%7D", field: "props", says: "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Payload
			var err error
			if tt.query != "" {
				q := url.Values{"counter": {"7"}, "uuid": {testUUID}, "url": {"https://shop.ru/"}}
				more, perr := url.ParseQuery(tt.query)
				if perr != nil {
					t.Fatal(perr)
				}
				for k, v := range more {
					q[k] = v
				}
				p, err = ParseQuery(q)
			} else {
				p, err = ParseJSON([]byte(tt.body))
			}
			if err == nil {
				_, err = p.Validate(testCounter, now)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FieldError on %s", err, tt.field)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Error(), tt.says) {
				t.Errorf("error %q on field %q; want field %q saying %q", fe, fe.Field, tt.field, tt.says)
			}
		})
	}
}
