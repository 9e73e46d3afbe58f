package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/throughline/throughline/internal/secrets"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
	"github.com/throughline/throughline/internal/webhooks"
)

// The day the test's orders are placed.
var day = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// box seals the tests' webhook secrets, as serve's --secret-key would.
var box = func() *secrets.Box {
	b, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		panic(err)
	}
	return b
}()

func uid(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// clock is the sender's clock, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts a minute ahead, so that what the test queues now (at
// the real time) is due.
func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second).Add(time.Minute)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

type fixture struct {
	t     *testing.T
	db    *store.DB
	c     counter.Counter
	clock *clock
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	c, _, err := counter.Create(context.Background(), db, counter.NewCounter{Name: "Shop", Domain: "shop.ru", Timezone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, db: db, c: c, clock: newClock()}
}

// session stores a visit as the collector would.
func (f *fixture) session(sid, uuid string, at time.Time, typ, source, medium, campaign string) {
	f.t.Helper()
	_, err := f.db.Writer().Exec(`INSERT INTO sessions (counter_id, sid, uuid, started_at, landing_url, referrer,
		utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids, traffic_type, source, medium, device, browser, os, ip)
		VALUES ($1, $2, $3, $4, 'https://shop.ru/', '', $5, $6, $7, '', '', '{}', $8, $5, $6, 'desktop', 'Chrome', 'Linux', '')`,
		f.c.ID, sid, uuid, at, source, medium, campaign, typ)
	if err != nil {
		f.t.Fatal(err)
	}
}

// orders imports simple orders (CSV) and matches them.
func (f *fixture) orders(csv string) {
	f.t.Helper()
	ctx := context.Background()
	_, err := crm.Import(ctx, f.db, f.c.ID, crm.Options{Intake: crm.SimpleOrders}, func() (crm.RowReader, error) {
		return crm.NewMetricaCSVReader(strings.NewReader(csv), crm.MetricaFormat{Intake: crm.SimpleOrders, Location: time.UTC})
	})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := matching.Run(ctx, f.db, f.c.ID); err != nil {
		f.t.Fatal(err)
	}
}

// matchedOrder stores order W1 from a visitor whose ad visit was followed
// by a direct one, matched by its client id. Matching queues nothing: it
// runs before any webhook exists.
func (f *fixture) matchedOrder() {
	f.t.Helper()
	f.session("s1", uid(1), day.Add(-2*time.Hour), "ad", "yandex", "cpc", "boots")
	f.session("s2", uid(1), day.Add(-time.Hour), "direct", "", "", "")
	f.orders("id,create_date_time,client_ids,order_status,revenue\nW1,10.03.2026 12:00," + uid(1) + ",IN_PROGRESS,1200.50\n")
}

// queue adds n pending deliveries of order to hook, due now, as matching would.
func (f *fixture) queue(hook, order string, n int) {
	f.t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	for range n {
		if _, err := f.db.Writer().Exec(`INSERT INTO webhook_deliveries (counter_id, webhook_id, order_id, event, status, attempts,
			next_attempt_at, last_status, last_error, created_at) VALUES ($1, $2, $3, 'matched', 'pending', 0, $4, 0, '', $4)`,
			f.c.ID, hook, order, now); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) sender(g webhooks.Guard) *webhooks.Sender {
	return &webhooks.Sender{DB: f.db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Guard: g, Box: box, Now: f.clock.Now}
}

func (f *fixture) runOnce(s *webhooks.Sender, want int) {
	f.t.Helper()
	n, err := s.RunOnce(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	if n != want {
		f.t.Fatalf("attempted %d deliveries, want %d", n, want)
	}
}

func (f *fixture) create(url string, g webhooks.Guard) *webhooks.Webhook {
	f.t.Helper()
	h, err := webhooks.Create(context.Background(), f.db, box, f.c.ID, webhooks.Input{URL: &url}, g)
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

// deliveries returns the hook's deliveries, newest first.
func (f *fixture) deliveries(hook string) []*webhooks.Delivery {
	f.t.Helper()
	ds, _, err := webhooks.ListDeliveries(context.Background(), f.db, f.c.ID, hook, 1000, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return ds
}

func (f *fixture) only(hook string) *webhooks.Delivery {
	f.t.Helper()
	ds := f.deliveries(hook)
	if len(ds) != 1 {
		f.t.Fatalf("%d deliveries, want 1", len(ds))
	}
	return ds[0]
}

// receiver is a webhook endpoint that checks every signature and records
// what it got; respond answers the nth request (from 1).
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	clock   *clock
	mu      sync.Mutex
	secret  string
	got     []received
	respond func(w http.ResponseWriter, r *http.Request, n int)
}

type received struct {
	header  http.Header
	body    []byte
	payload payload
}

// payload is the part of a delivery's body the tests look at.
type payload struct {
	Event      string
	DeliveryID int64     `json:"delivery_id"`
	CounterID  int64     `json:"counter_id"`
	SentAt     time.Time `json:"sent_at"`
	Order      struct {
		ID         string
		Status     string
		StatusType *string `json:"status_type"`
		Revenue    json.Number
	}
	Match struct {
		OrderID  string `json:"order_id"`
		Rung     string
		Evidence []struct{ Rung, Key, Value, Kind, Ref string }
		Touches  []struct {
			Ref     string
			Traffic struct{ Type, Source string }
			Weights map[string]float64
		}
	}
	Attributed *struct {
		Model, Source, Medium, Campaign, Content, Term string
		TrafficType                                    string `json:"traffic_type"`
	}
}

func newReceiver(t *testing.T, c *clock, respond func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	rc := &receiver{t: t, clock: c, respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		secret := rc.secret
		rc.mu.Unlock()
		if err := webhooks.Verify(secret, r.Header.Get(webhooks.HeaderSignature), body, rc.clock.Now(), 0); err != nil {
			t.Errorf("receiver: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var p payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("receiver: %v: %s", err, body)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, received{r.Header.Clone(), body, p})
		n := len(rc.got)
		rc.mu.Unlock()
		if rc.respond != nil {
			rc.respond(w, r, n)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	rc.secret = s
	rc.mu.Unlock()
}

func (rc *receiver) received() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

var allow = webhooks.Guard{AllowPrivate: true} // httptest listens on 127.0.0.1

// TestDeliverOrderEvents: matching an order queues a 'matched' event, the
// sender posts it signed with the order, its match and the credited source
// as they are, and the log says delivered; a status change is a 'status'
// event.
func TestDeliverOrderEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		rc := newReceiver(t, f.clock, nil)
		h := f.create(rc.srv.URL+"/hook?key=k1", allow)
		rc.setSecret(h.Secret)
		if !strings.HasPrefix(h.Secret, "whsec_") || h.URL != rc.srv.URL+"/hook?key=xxxxx" || !h.Active {
			t.Fatalf("created: %+v", h)
		}
		s := f.sender(webhooks.Guard{AllowPrivate: true})
		f.runOnce(s, 0) // nothing queued yet

		f.matchedOrder()
		f.runOnce(s, 1)
		got := rc.received()
		if len(got) != 1 {
			t.Fatalf("received %d requests", len(got))
		}
		p, hdr := got[0].payload, got[0].header
		d := f.only(h.ID)
		if p.Event != "matched" || p.CounterID != f.c.ID || p.DeliveryID != d.ID || !p.SentAt.Equal(f.clock.Now()) ||
			p.Order.ID != "W1" || p.Order.Revenue != "1200.50" || p.Match.Rung != "uuid" || p.Match.OrderID != "W1" ||
			len(p.Match.Evidence) != 1 || len(p.Match.Touches) != 2 || p.Match.Touches[0].Weights["last_non_direct"] != 1 {
			t.Fatalf("payload: %+v\n%s", p, got[0].body)
		}
		// The default model skips the later direct visit.
		if a := p.Attributed; a == nil || a.Model != "last_non_direct" || a.TrafficType != "ad" || a.Source != "yandex" ||
			a.Medium != "cpc" || a.Campaign != "boots" {
			t.Fatalf("attributed: %+v", p.Attributed)
		}
		for k, v := range map[string]string{"Content-Type": "application/json", "User-Agent": "Throughline-Webhooks",
			"X-Throughline-Event": "matched", "X-Throughline-Delivery": strconv.FormatInt(d.ID, 10)} {
			if hdr.Get(k) != v {
				t.Errorf("%s: %q, want %q", k, hdr.Get(k), v)
			}
		}
		if d.Status != "delivered" || d.Attempts != 1 || d.LastStatus != 200 || d.LastError != "" || d.DeliveredAt == nil ||
			d.NextAttemptAt != nil || d.OrderID != "W1" || d.Event != "matched" || d.WebhookID != h.ID {
			t.Fatalf("delivery: %+v", d)
		}
		f.runOnce(s, 0) // delivered once

		// The status type changes: a 'status' event, sent with the new status.
		if err := crm.SaveStatuses(ctx, db, f.c.ID, []crm.Status{{Code: "PAID", Type: crm.Paid}}, false); err != nil {
			t.Fatal(err)
		}
		f.orders("id,create_date_time,client_ids,order_status,revenue\nW1,10.03.2026 12:00," + uid(1) + ",PAID,1200.50\n")
		f.runOnce(s, 1)
		got = rc.received()
		if len(got) != 2 || got[1].payload.Event != "status" || got[1].header.Get(webhooks.HeaderEvent) != "status" ||
			got[1].payload.Order.Status != "PAID" || got[1].payload.Order.StatusType == nil || *got[1].payload.Order.StatusType != "PAID" {
			t.Fatalf("status event: %d requests, last %s", len(got), got[len(got)-1].body)
		}
		if ds := f.deliveries(h.ID); len(ds) != 2 || ds[0].Event != "status" || ds[0].Status != "delivered" {
			t.Fatalf("log: %+v", ds)
		}
	})
}

// TestRetries: a 500, then a connection closed without an answer, then a
// 200 — each failure counted, recorded and retried on the schedule.
func TestRetries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.matchedOrder()
		rc := newReceiver(t, f.clock, func(w http.ResponseWriter, r *http.Request, n int) {
			switch n {
			case 1:
				http.Error(w, "down for maintenance", http.StatusInternalServerError)
			case 2:
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				conn.Close()
			}
		})
		h := f.create(rc.srv.URL, allow)
		rc.setSecret(h.Secret)
		f.queue(h.ID, "W1", 1)
		s := f.sender(allow)
		t0 := f.clock.Now()

		f.runOnce(s, 1)
		d := f.only(h.ID)
		if d.Status != "pending" || d.Attempts != 1 || d.LastStatus != 500 || !strings.Contains(d.LastError, "500 Internal Server Error") ||
			d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(t0.Add(time.Minute)) || d.DeliveredAt != nil {
			t.Fatalf("after a 500: %+v (next %v)", d, d.NextAttemptAt)
		}
		f.clock.Add(59 * time.Second)
		f.runOnce(s, 0) // not due yet

		f.clock.Set(t0.Add(time.Minute))
		f.runOnce(s, 1)
		d = f.only(h.ID)
		if d.Status != "pending" || d.Attempts != 2 || d.LastStatus != 0 || !strings.Contains(d.LastError, "closed the connection") ||
			!d.NextAttemptAt.Equal(t0.Add(6*time.Minute)) {
			t.Fatalf("after a closed connection: %+v (next %v)", d, d.NextAttemptAt)
		}
		f.clock.Set(t0.Add(6 * time.Minute))
		f.runOnce(s, 1)
		d = f.only(h.ID)
		if d.Status != "delivered" || d.Attempts != 3 || d.LastStatus != 200 || d.LastError != "" ||
			d.DeliveredAt == nil || !d.DeliveredAt.Equal(t0.Add(6*time.Minute)) {
			t.Fatalf("after a 200: %+v", d)
		}
		if n := len(rc.received()); n != 3 {
			t.Fatalf("%d requests", n)
		}
	})
}

// TestTimeout: a receiver that does not answer in time is a failed attempt.
func TestTimeout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.matchedOrder()
		rc := newReceiver(t, f.clock, func(w http.ResponseWriter, r *http.Request, n int) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		h := f.create(rc.srv.URL, allow)
		rc.setSecret(h.Secret)
		f.queue(h.ID, "W1", 1)
		s := f.sender(allow)
		s.Timeout = 200 * time.Millisecond
		start := time.Now()
		f.runOnce(s, 1)
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("an attempt took %s", took)
		}
		d := f.only(h.ID)
		if d.Status != "pending" || d.Attempts != 1 || d.LastStatus != 0 || d.LastError != "no answer within 200ms" {
			t.Fatalf("after a timeout: %+v", d)
		}
	})
}

// TestGiveUpAndRedeliver: a receiver that always fails is tried on the
// whole schedule, then the delivery is failed; redelivering it after the
// receiver is fixed sends it again.
func TestGiveUpAndRedeliver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.matchedOrder()
		var mu sync.Mutex
		status := http.StatusServiceUnavailable
		rc := newReceiver(t, f.clock, func(w http.ResponseWriter, r *http.Request, n int) {
			mu.Lock()
			defer mu.Unlock()
			w.WriteHeader(status)
		})
		h := f.create(rc.srv.URL, allow)
		rc.setSecret(h.Secret)
		f.queue(h.ID, "W1", 1)
		s := f.sender(allow)
		for i, wait := range webhooks.Backoff {
			at := f.clock.Now()
			f.runOnce(s, 1)
			d := f.only(h.ID)
			if d.Status != "pending" || d.Attempts != i+1 || d.LastStatus != 503 || !d.NextAttemptAt.Equal(at.Add(wait)) {
				t.Fatalf("attempt %d: %+v (next %v, want %v)", i+1, d, d.NextAttemptAt, at.Add(wait))
			}
			f.clock.Add(wait - time.Second)
			f.runOnce(s, 0)
			f.clock.Add(time.Second)
		}
		f.runOnce(s, 1)
		d := f.only(h.ID)
		if d.Status != "failed" || d.Attempts != len(webhooks.Backoff)+1 || d.NextAttemptAt != nil || d.LastStatus != 503 {
			t.Fatalf("gave up: %+v", d)
		}
		f.clock.Add(100 * time.Hour)
		f.runOnce(s, 0)

		// Fixed: redeliver.
		mu.Lock()
		status = http.StatusNoContent
		mu.Unlock()
		if _, err := webhooks.Redeliver(ctx, db, f.c.ID, "other", d.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Fatalf("redeliver through another webhook: %v", err)
		}
		r, err := webhooks.Redeliver(ctx, db, f.c.ID, h.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != "pending" || r.Attempts != 0 || r.NextAttemptAt == nil || r.LastStatus != 503 {
			t.Fatalf("redelivered: %+v", r)
		}
		f.runOnce(s, 1)
		d = f.only(h.ID)
		if d.Status != "delivered" || d.Attempts != 1 || d.LastStatus != 204 || d.DeliveredAt == nil {
			t.Fatalf("after redelivery: %+v", d)
		}
		if n := len(rc.received()); n != len(webhooks.Backoff)+2 {
			t.Fatalf("%d requests", n)
		}
	})
}

// TestRedirectNotFollowed: a 3xx is a failed attempt, and its target is
// never called.
func TestRedirectNotFollowed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.matchedOrder()
		rc := newReceiver(t, f.clock, func(w http.ResponseWriter, r *http.Request, n int) {
			if r.URL.Path == "/final" {
				t.Error("the redirect was followed")
			}
			http.Redirect(w, r, "/final", http.StatusFound)
		})
		h := f.create(rc.srv.URL+"/hook", allow)
		rc.setSecret(h.Secret)
		f.queue(h.ID, "W1", 1)
		f.runOnce(f.sender(allow), 1)
		d := f.only(h.ID)
		if d.Status != "pending" || d.Attempts != 1 || d.LastStatus != 302 || !strings.Contains(d.LastError, "redirects are not followed") ||
			!strings.Contains(d.LastError, "/final") {
			t.Fatalf("after a redirect: %+v", d)
		}
		if n := len(rc.received()); n != 1 {
			t.Fatalf("%d requests", n)
		}
	})
}

// TestPrivateDestinations: loopback, private and link-local addresses are
// refused when saved and, in case DNS changed, when connecting — unless
// the operator allowed them.
func TestPrivateDestinations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
			switch host {
			case "internal.example":
				return []netip.Addr{netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("192.168.1.10")}, nil
			case "public.example":
				return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
			}
			return nil, errors.New("no such host")
		}
		strict := webhooks.Guard{Resolve: resolve}
		for _, u := range []string{"http://127.0.0.1:8080/hook", "http://localhost/hook", "https://api.localhost/", "http://10.1.2.3/",
			"http://[::1]/hook", "http://169.254.169.254/latest/meta-data", "http://[::ffff:192.168.0.1]/", "https://internal.example/hook"} {
			_, err := webhooks.Create(ctx, db, box, f.c.ID, webhooks.Input{URL: &u}, strict)
			var inv *webhooks.InvalidError
			if !errors.As(err, &inv) || inv.Field != "url" || !strings.Contains(inv.Message, "--allow-private-feeds") {
				t.Errorf("%s: %v", u, err)
			}
			if _, err := webhooks.Create(ctx, db, box, f.c.ID, webhooks.Input{URL: &u}, webhooks.Guard{AllowPrivate: true, Resolve: resolve}); err != nil {
				t.Errorf("%s allowed: %v", u, err)
			}
		}
		for _, u := range []string{"https://93.184.215.14/hook", "https://public.example/hook", "https://unresolvable.example/"} {
			if _, err := webhooks.Create(ctx, db, box, f.c.ID, webhooks.Input{URL: &u}, strict); err != nil {
				t.Errorf("%s: %v", u, err)
			}
		}
		// Updating to a private URL is refused too.
		pub := f.create("https://93.184.215.14/x", strict)
		bad := "http://127.0.0.1/x"
		if _, err := webhooks.Update(ctx, db, box, f.c.ID, pub.ID, webhooks.Input{URL: &bad}, strict); err == nil {
			t.Error("update to a loopback URL accepted")
		}

		// Saved while allowed (or while its name pointed elsewhere), sent
		// by a sender that is not: refused at connect time.
		f.matchedOrder()
		rc := newReceiver(t, f.clock, nil)
		h := f.create(rc.srv.URL, allow)
		f.queue(h.ID, "W1", 1)
		if _, err := f.db.Writer().Exec(`UPDATE webhooks SET active = $2 WHERE counter_id = $1 AND id <> $3`, f.c.ID, false, h.ID); err != nil {
			t.Fatal(err)
		}
		f.runOnce(f.sender(webhooks.Guard{}), 1)
		d := f.only(h.ID)
		if d.Status != "pending" || d.Attempts != 1 || d.LastStatus != 0 || !strings.Contains(d.LastError, "refused") ||
			!strings.Contains(d.LastError, "loopback") {
			t.Fatalf("connect-time guard: %+v", d)
		}
		if n := len(rc.received()); n != 0 {
			t.Fatalf("the receiver got %d requests", n)
		}
	})
}

func TestValidationAndSecrets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		g := webhooks.Guard{AllowPrivate: true}
		str := func(s string) *string { return &s }
		for _, c := range []struct {
			in    webhooks.Input
			field string
		}{
			{webhooks.Input{}, "url"},
			{webhooks.Input{URL: str("")}, "url"},
			{webhooks.Input{URL: str("ftp://example.com/x")}, "url"},
			{webhooks.Input{URL: str("https://")}, "url"},
			{webhooks.Input{URL: str("example.com/hook")}, "url"},
			{webhooks.Input{URL: str("https://example.com/" + strings.Repeat("a", webhooks.MaxURLLength))}, "url"},
			{webhooks.Input{URL: str("https://example.com/"), Secret: str("short")}, "secret"},
			{webhooks.Input{URL: str("https://example.com/"), Secret: str(strings.Repeat("s", webhooks.MaxSecret+1))}, "secret"},
			{webhooks.Input{URL: str("https://example.com/"), Secret: str("sixteen chars with spaces")}, "secret"},
			{webhooks.Input{URL: str("https://example.com/"), Secret: str("пароль-пароль-пароль")}, "secret"},
		} {
			_, err := webhooks.Create(ctx, db, box, f.c.ID, c.in, g)
			var inv *webhooks.InvalidError
			if !errors.As(err, &inv) || inv.Field != c.field {
				t.Errorf("%+v: %v, want a %s error", c.in, err, c.field)
			}
		}

		// A given secret is kept; shown whole once, masked afterwards.
		secret := "my-receiver-secret-123"
		h, err := webhooks.Create(ctx, db, box, f.c.ID, webhooks.Input{URL: str("https://user:pw@example.com/hook#frag"), Secret: &secret, Active: new(false)}, g)
		if err != nil {
			t.Fatal(err)
		}
		if h.Secret != secret || h.Active || h.URL != "https://user:xxxxx@example.com/hook" || len(h.ID) != 26 {
			t.Fatalf("created: %+v", h)
		}
		got, err := webhooks.Get(ctx, db, box, f.c.ID, h.ID)
		if err != nil || got.Secret != "xxxxx-123" || got.URL != h.URL {
			t.Fatalf("get: %+v %v", got, err)
		}
		// At rest the secret is sealed: the database alone does not give it.
		var stored string
		if err := db.Reader().QueryRow(`SELECT secret FROM webhooks WHERE id = $1`, h.ID).Scan(&stored); err != nil ||
			strings.Contains(stored, secret) || !secrets.IsSealed(stored) {
			t.Errorf("stored secret %q (%v), want it sealed", stored, err)
		}
		// Another key cannot open it: the webhook is refused, not sent unsigned.
		otherBox, _ := secrets.New([]byte("fedcba9876543210fedcba9876543210"))
		if _, err := webhooks.Get(ctx, db, otherBox, f.c.ID, h.ID); !errors.Is(err, secrets.ErrOpen) {
			t.Errorf("get with another key: %v, want ErrOpen", err)
		}
		if ls, err := webhooks.List(ctx, db, box, f.c.ID); err != nil || len(ls) != 1 || ls[0].Secret != "xxxxx-123" {
			t.Fatalf("list: %+v %v", ls, err)
		}
		// Activating shows no secret; an empty one rotates it, shown once.
		up, err := webhooks.Update(ctx, db, box, f.c.ID, h.ID, webhooks.Input{Active: new(true)}, g)
		if err != nil || !up.Active || up.Secret != "xxxxx-123" || !up.UpdatedAt.After(h.UpdatedAt) {
			t.Fatalf("activate: %+v %v", up, err)
		}
		up, err = webhooks.Update(ctx, db, box, f.c.ID, h.ID, webhooks.Input{Secret: str("")}, g)
		if err != nil || !strings.HasPrefix(up.Secret, "whsec_") || len(up.Secret) != 49 {
			t.Fatalf("rotate: %+v %v", up, err)
		}
		if _, err := webhooks.Update(ctx, db, box, f.c.ID, h.ID, webhooks.Input{URL: str("gopher://x")}, g); err == nil {
			t.Error("update to a bad URL accepted")
		}
		// Another counter sees none of it.
		other, _, err := counter.Create(ctx, db, counter.NewCounter{Name: "Other", Domain: "other.ru"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := webhooks.Get(ctx, db, box, other.ID, h.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("get from another counter: %v", err)
		}
		if _, err := webhooks.Update(ctx, db, box, other.ID, h.ID, webhooks.Input{Active: new(false)}, g); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("update from another counter: %v", err)
		}
		if err := webhooks.Delete(ctx, db, other.ID, h.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("delete from another counter: %v", err)
		}
		if _, _, err := webhooks.ListDeliveries(ctx, db, other.ID, h.ID, 10, ""); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("deliveries from another counter: %v", err)
		}
		// At most MaxPerCounter webhooks.
		for i := 1; i < webhooks.MaxPerCounter; i++ {
			f.create("https://example.com/"+strconv.Itoa(i), g)
		}
		var inv *webhooks.InvalidError
		if _, err := webhooks.Create(ctx, db, box, f.c.ID, webhooks.Input{URL: str("https://example.com/x")}, g); !errors.As(err, &inv) {
			t.Errorf("webhook %d: %v", webhooks.MaxPerCounter+1, err)
		}
	})
}

// TestDeliveryLog: pages newest first; deleting a webhook deletes its log.
func TestDeliveryLog(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		h := f.create("https://example.com/hook", allow)
		f.queue(h.ID, "W1", 5)
		var ids []int64
		cur := ""
		for page := 0; ; page++ {
			ds, next, err := webhooks.ListDeliveries(ctx, db, f.c.ID, h.ID, 2, cur)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				ids = append(ids, d.ID)
			}
			if next == "" {
				break
			}
			cur = next
		}
		if len(ids) != 5 {
			t.Fatalf("paged %v", ids)
		}
		for i := 1; i < len(ids); i++ {
			if ids[i] >= ids[i-1] {
				t.Fatalf("not newest first: %v", ids)
			}
		}
		if _, _, err := webhooks.ListDeliveries(ctx, db, f.c.ID, h.ID, 2, "garbage"); !errors.Is(err, webhooks.ErrBadCursor) {
			t.Errorf("bad cursor: %v", err)
		}
		if _, err := webhooks.GetDelivery(ctx, db, f.c.ID, h.ID, ids[0]); err != nil {
			t.Fatal(err)
		}
		if err := webhooks.Delete(ctx, db, f.c.ID, h.ID); err != nil {
			t.Fatal(err)
		}
		var n int
		db.Reader().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries WHERE counter_id = $1`, f.c.ID).Scan(&n)
		if n != 0 {
			t.Fatalf("%d deliveries left", n)
		}
		if _, _, err := webhooks.ListDeliveries(ctx, db, f.c.ID, h.ID, 2, ""); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("deliveries of a deleted webhook: %v", err)
		}
		if err := webhooks.Delete(ctx, db, f.c.ID, h.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("delete twice: %v", err)
		}
	})
}

// TestGoneOrderAndInactiveWebhook: a delivery of an order that no longer
// exists fails at once, saying so; an inactive webhook's deliveries wait.
func TestGoneOrderAndInactiveWebhook(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.matchedOrder()
		rc := newReceiver(t, f.clock, nil)
		h := f.create(rc.srv.URL, allow)
		rc.setSecret(h.Secret)
		f.queue(h.ID, "GONE", 1)
		s := f.sender(allow)
		f.runOnce(s, 1)
		d := f.only(h.ID)
		if d.Status != "failed" || d.LastError != `order "GONE" no longer exists; nothing to send` || d.NextAttemptAt != nil {
			t.Fatalf("gone order: %+v", d)
		}
		if n := len(rc.received()); n != 0 {
			t.Fatalf("%d requests", n)
		}

		if _, err := webhooks.Update(ctx, db, box, f.c.ID, h.ID, webhooks.Input{Active: new(false)}, allow); err != nil {
			t.Fatal(err)
		}
		f.queue(h.ID, "W1", 1)
		f.runOnce(s, 0)
		if _, err := webhooks.Update(ctx, db, box, f.c.ID, h.ID, webhooks.Input{Active: new(true)}, allow); err != nil {
			t.Fatal(err)
		}
		f.runOnce(s, 1)
		if n := len(rc.received()); n != 1 {
			t.Fatalf("%d requests", n)
		}
	})
}

// TestConcurrentSenders: two senders on one database send each delivery once.
func TestConcurrentSenders(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.matchedOrder()
		rc := newReceiver(t, f.clock, func(w http.ResponseWriter, r *http.Request, n int) {
			time.Sleep(5 * time.Millisecond)
		})
		h := f.create(rc.srv.URL, allow)
		rc.setSecret(h.Secret)
		f.queue(h.ID, "W1", 40)
		var wg sync.WaitGroup
		for range 2 {
			s := f.sender(allow)
			s.Batch = 7
			wg.Go(func() {
				for {
					n, err := s.RunOnce(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					if n == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		seen := map[string]int{}
		for _, r := range rc.received() {
			seen[r.header.Get(webhooks.HeaderDelivery)]++
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("delivery %s sent %d times", id, n)
			}
		}
		if len(seen) != 40 {
			t.Errorf("%d deliveries sent", len(seen))
		}
		for _, d := range f.deliveries(h.ID) {
			if d.Status != "delivered" {
				t.Fatalf("%+v", d)
			}
		}
	})
}

func TestSignature(t *testing.T) {
	now := time.Unix(1_770_000_000, 0)
	body := []byte(`{"event":"matched"}`)
	h := webhooks.Sign("secret-secret-secret", now, body)
	if !strings.HasPrefix(h, "t=1770000000,v1=") || len(h) != len("t=1770000000,v1=")+64 {
		t.Fatalf("header %q", h)
	}
	if err := webhooks.Verify("secret-secret-secret", h, body, now.Add(time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	// Rotation: a header may carry several v1 values.
	if err := webhooks.Verify("secret-secret-secret", "t=1770000000,v1=00ff,"+h[len("t=1770000000,"):], body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret, header string
		body           []byte
		at             time.Time
	}{
		"tampered body":   {"secret-secret-secret", h, []byte(`{"event":"status"}`), now},
		"wrong secret":    {"another-secret-secret", h, body, now},
		"too old":         {"secret-secret-secret", h, body, now.Add(6 * time.Minute)},
		"from the future": {"secret-secret-secret", h, body, now.Add(-6 * time.Minute)},
		"no time":         {"secret-secret-secret", h[strings.Index(h, ",")+1:], body, now},
		"no signature":    {"secret-secret-secret", "t=1770000000", body, now},
		"empty":           {"secret-secret-secret", "", body, now},
		"other time":      {"secret-secret-secret", "t=1770000001," + h[strings.Index(h, ",")+1:], body, now},
	} {
		if err := webhooks.Verify(c.secret, c.header, c.body, c.at, 0); !errors.Is(err, webhooks.ErrSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
