package telephony

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "time/tzdata" // Europe/Moscow on machines without a zoneinfo database
)

const formCT = "application/x-www-form-urlencoded"

func moscow(tb testing.TB) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// post builds a POST request; headers are name, value pairs.
func post(url, subpath, contentType, body string, headers ...string) Request {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	return Request{Method: "POST", URL: url, Subpath: subpath, Header: h, Body: []byte(body)}
}

func get(url, subpath string) Request {
	return Request{Method: "GET", URL: url, Subpath: subpath, Header: http.Header{}}
}

// parseOne parses a request that must give exactly one event.
func parseOne(t *testing.T, provider string, req Request, cfg Config) (Event, Reply) {
	t.Helper()
	evs, reply, err := Parse(provider, req, cfg)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(evs) != 1 {
		t.Fatalf("Parse: %d events, want 1: %+v", len(evs), evs)
	}
	return evs[0], reply
}

// parseNone parses a request that must succeed with no events.
func parseNone(t *testing.T, provider string, req Request, cfg Config) Reply {
	t.Helper()
	evs, reply, err := Parse(provider, req, cfg)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(evs) != 0 {
		t.Fatalf("Parse: %d events, want none: %+v", len(evs), evs)
	}
	return reply
}

func wantSignatureError(t *testing.T, provider string, req Request, cfg Config) {
	t.Helper()
	evs, _, err := Parse(provider, req, cfg)
	if !errors.Is(err, ErrSignature) {
		t.Fatalf("Parse: events %+v, error %v; want ErrSignature", evs, err)
	}
	if evs != nil {
		t.Fatalf("Parse gave events with a signature error: %+v", evs)
	}
}

func wantFieldError(t *testing.T, provider string, req Request, cfg Config, field string) *FieldError {
	t.Helper()
	evs, _, err := Parse(provider, req, cfg)
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("Parse: events %+v, error %v; want a FieldError on %q", evs, err, field)
	}
	if fe.Field != field {
		t.Fatalf("Parse: FieldError on %q (%v), want on %q", fe.Field, fe, field)
	}
	if fe.Message == "" || !strings.Contains(fe.Error(), field) {
		t.Fatalf("FieldError %q does not explain itself", fe.Error())
	}
	return fe
}

func wantEvent(t *testing.T, got, want Event) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("event\n got %s\nwant %s", show(got), show(want))
	}
}

// show prints an event with its pointers dereferenced.
func show(e Event) string {
	p := func(v any) string {
		switch v := v.(type) {
		case *bool:
			if v != nil {
				return fmt.Sprint(*v)
			}
		case *int:
			if v != nil {
				return fmt.Sprint(*v)
			}
		}
		return "nil"
	}
	return fmt.Sprintf("{Provider:%q Kind:%q CallID:%q Direction:%q Caller:%q Tracked:%q StartedAt:%s Answered:%s Talk:%s Wait:%s Disposition:%q RecordingURL:%q Employee:%q Final:%v}",
		e.Provider, e.Kind, e.CallID, e.Direction, e.Caller, e.Tracked, e.StartedAt.Format(time.RFC3339Nano),
		p(e.Answered), p(e.TalkSeconds), p(e.WaitSeconds), e.Disposition, e.RecordingURL, e.Employee, e.Final)
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestUnknownProvider(t *testing.T) {
	for _, p := range []string{"", "uis", "Zadarma", "asterisk"} {
		_, _, err := Parse(p, post("https://x/", "", formCT, "a=b"), Config{})
		if !errors.Is(err, ErrUnknownProvider) {
			t.Errorf("Parse(%q): %v, want ErrUnknownProvider", p, err)
		}
	}
	if len(Providers) != 4 {
		t.Fatalf("Providers = %v", Providers)
	}
	for _, p := range Providers {
		_, _, err := Parse(p, post("https://x/", "", formCT, ""), Config{})
		if errors.Is(err, ErrUnknownProvider) {
			t.Errorf("Parse(%q): unknown provider", p)
		}
	}
}

func TestMethod(t *testing.T) {
	for _, p := range Providers {
		req := post("https://x/", "", formCT, "a=b")
		req.Method = "PUT"
		wantFieldError(t, p, req, Config{Key: "k", Salt: "s"}, "method")
	}
}

func TestFieldErrorMessage(t *testing.T) {
	e := &FieldError{Field: "call_id", Message: "is required"}
	if got := e.Error(); got != "telephony: call_id: is required" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestNilHeader(t *testing.T) {
	// The caller may build a Request without headers.
	reqs := map[string]Request{
		Generic: {Method: "POST", URL: "https://x/", Body: []byte(`{"call_id":"c","to":"1","date":1763722991}`)},
		Zadarma: {Method: "POST", URL: "https://x/", Body: []byte(zadarmaEndBody)},
		Twilio:  {Method: "POST", URL: "https://x/", Body: []byte("CallSid=CA1")},
	}
	for p, req := range reqs {
		if _, _, err := Parse(p, req, Config{}); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		if _, _, err := Parse(p, req, Config{Secret: "s"}); !errors.Is(err, ErrSignature) {
			t.Errorf("%s with a secret: %v, want ErrSignature", p, err)
		}
	}
	if _, _, err := Parse(Mango, Request{Method: "POST", Subpath: "/events/call", Body: []byte("json={}")}, mangoCfg); !errors.Is(err, ErrSignature) {
		t.Errorf("mango: %v, want ErrSignature", err)
	}
}
