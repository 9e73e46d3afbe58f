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
		_ = Classify(h.Campaign, h.Referrer, h.URL.Hostname(), testCounter.Domain)
	})
}
