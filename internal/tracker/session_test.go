package tracker

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

func campaignOf(t *testing.T, rawURL string) Campaign {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return ParseCampaign(u)
}

// newID returns a random (version 4) UUID, as t.js makes visitor ids.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func TestSessionRules(t *testing.T) {
	msk, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	const visitor = "0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4f"
	last := time.Date(2026, 11, 21, 23, 50, 0, 0, msk)
	direct := campaignOf(t, "https://shop.ru/")
	yandexAd := campaignOf(t, "https://shop.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign=boots&yclid=111")
	session := func(landing Campaign) *activeSession {
		return &activeSession{sid: id{1}, uuid: mustID(t, visitor), last: last.UnixNano(), campaign: campaignHash(landing), timeout: int64(30 * time.Minute)}
	}
	rules := Rules{Timeout: 30 * time.Minute, SplitOnCampaign: true}

	tests := []struct {
		name  string
		rules Rules
		s     *activeSession
		uuid  string
		at    time.Time
		c     Campaign
		want  string
	}{
		{"first visit", rules, nil, visitor, last, direct, reasonNoSession},
		{"next page within 30 minutes", rules, session(direct), visitor, last.Add(29 * time.Minute), direct, continued},
		{"exactly 30 minutes idle still continues", rules, session(direct), visitor, last.Add(30 * time.Minute), direct, continued},
		{"31 minutes idle", rules, session(direct), visitor, last.Add(31 * time.Minute), direct, reasonTimeout},
		{"midnight is not a boundary", rules, session(direct), visitor, last.Add(20 * time.Minute), direct, continued},
		{"counter's own timeout", Rules{Timeout: 10 * time.Minute, SplitOnCampaign: true}, session(direct), visitor, last.Add(11 * time.Minute), direct, reasonTimeout},
		{"new campaign", rules, session(direct), visitor, last.Add(time.Minute), yandexAd, reasonNewCampaign},
		{"same ad landing reloaded", rules, session(yandexAd), visitor, last.Add(time.Minute), yandexAd, continued},
		{"untagged page inside an ad visit", rules, session(yandexAd), visitor, last.Add(time.Minute), direct, continued},
		{"new click id, same utm", rules, session(yandexAd), visitor, last.Add(time.Minute),
			campaignOf(t, "https://shop.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign=boots&yclid=222"), reasonNewCampaign},
		{"gclid alone", rules, session(direct), visitor, last.Add(time.Minute), campaignOf(t, "https://shop.ru/?gclid=abc"), reasonNewCampaign},
		{"fbclid alone", rules, session(direct), visitor, last.Add(time.Minute), campaignOf(t, "https://shop.ru/?fbclid=IwAR0"), reasonNewCampaign},
		{"splitting switched off", Rules{Timeout: 30 * time.Minute}, session(direct), visitor, last.Add(time.Minute), yandexAd, continued},
		{"another visitor's sid", rules, session(direct), "1b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4f", last.Add(time.Minute), direct, reasonOtherUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rules.decide(tt.s, mustID(t, tt.uuid), tt.at, tt.c); got != tt.want {
				t.Errorf("decide = %q, want %q", got, tt.want)
			}
		})
	}
	// The midnight case above must really cross midnight in the counter's zone.
	if a, b := last.Day(), last.Add(20*time.Minute).Day(); a == b {
		t.Fatalf("test data does not cross midnight: %v", last)
	}
}

func mustID(t *testing.T, s string) id {
	t.Helper()
	x, ok := parseID(s)
	if !ok {
		t.Fatalf("parseID(%q) failed", s)
	}
	return x
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if !validID(id) {
			t.Fatalf("newID() = %q, which validID refuses", id)
		}
		if id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("newID() = %q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("newID() repeated %q", id)
		}
		seen[id] = true
		if back := mustID(t, id).String(); back != id {
			t.Fatalf("parseID(%q).String() = %q", id, back)
		}
	}
	prev := ""
	for i := range 1000 {
		at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
		id := newSessionID(at).String()
		if !validID(id) || id[14] != '7' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("newSessionID() = %q is not a valid version 7 UUID", id)
		}
		if id <= prev {
			t.Fatalf("session ids do not grow with time: %q after %q", id, prev)
		}
		prev = id
	}
	for _, bad := range []string{
		"",
		"0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4",      // short
		"0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4ff",    // long
		"0B8E2BD4-5B0E-4B8A-9A7E-3F0A1C2D3E4F",     // upper case
		"0b8e2bd4x5b0e-4b8a-9a7e-3f0a1c2d3e4f",     // wrong separator
		"0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4g",     // not hex
		"0b8e2bd45b0e4b8a9a7e3f0a1c2d3e4f----",     // dashes misplaced
		"' OR 1=1 --                         ",     // 36 bytes of SQL
		"0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e\u00e9", // non-ASCII
	} {
		if validID(bad) {
			t.Errorf("validID(%q) = true", bad)
		}
		if _, ok := parseID(bad); ok {
			t.Errorf("parseID(%q) succeeded", bad)
		}
	}
}

// FuzzID: parseID accepts exactly what validID accepts, and the 16 bytes
// it reads print back as the same text (the collector keeps ids as bytes
// and answers with their text).
func FuzzID(f *testing.F) {
	f.Add("0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4f")
	f.Add("01a24d95-e980-7348-a796-0eabea327b1f")
	f.Add("0B8E2BD4-5B0E-4B8A-9A7E-3F0A1C2D3E4F")
	f.Add("0b8e2bd45b0e4b8a9a7e3f0a1c2d3e4f----")
	f.Fuzz(func(t *testing.T, s string) {
		x, ok := parseID(s)
		if ok != validID(s) {
			t.Fatalf("parseID(%q) ok = %v, validID = %v", s, ok, validID(s))
		}
		if ok && x.String() != s {
			t.Fatalf("parseID(%q).String() = %q", s, x.String())
		}
	})
}
