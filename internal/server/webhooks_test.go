package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
	"github.com/throughline/throughline/internal/webhooks"
)

type webhookJSON struct {
	ID, URL, Secret string
	CounterID       int64 `json:"counter_id"`
	Active          bool
}

type deliveryJSON struct {
	ID            int64
	WebhookID     string `json:"webhook_id"`
	OrderID       string `json:"order_id"`
	Event, Status string
	Attempts      int
	LastStatus    int        `json:"last_status"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
}

// hookReceiver records signed deliveries; the secret is set once known.
type hookReceiver struct {
	mu     sync.Mutex
	secret string
	got    []http.Header
	bodies [][]byte
	srv    *httptest.Server
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if err := webhooks.Verify(rc.secret, r.Header.Get(webhooks.HeaderSignature), body, time.Now(), 0); err != nil {
			t.Errorf("receiver: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rc.got = append(rc.got, r.Header.Clone())
		rc.bodies = append(rc.bodies, body)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// TestWebhooksAPI: a webhook made through the API receives the order a
// visit led to, signed; the log shows it, and it can be sent again.
func TestWebhooksAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixtureWith(t, db, Config{MatchPoll: 20 * time.Millisecond, WebhookPoll: 20 * time.Millisecond,
			Imports: ImportsConfig{AllowPrivateFeeds: true}})
		rc := newHookReceiver(t)

		r := f.api(t, "POST", "/webhooks", `{"url": "`+rc.srv.URL+`/orders"}`)
		var h webhookJSON
		decode(t, r.body, &h)
		if r.status != 201 || h.ID == "" || !strings.HasPrefix(h.Secret, "whsec_") || !h.Active || h.CounterID != f.a.ID ||
			h.URL != rc.srv.URL+"/orders" {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		rc.mu.Lock()
		rc.secret = h.Secret
		rc.mu.Unlock()

		var list struct{ Webhooks []webhookJSON }
		r = f.api(t, "GET", "/webhooks", "")
		decode(t, r.body, &list)
		if r.status != 200 || len(list.Webhooks) != 1 || list.Webhooks[0].ID != h.ID || list.Webhooks[0].Secret != "xxxxx"+h.Secret[len(h.Secret)-4:] {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		var got webhookJSON
		r = f.api(t, "GET", "/webhooks/"+h.ID, "")
		decode(t, r.body, &got)
		if r.status != 200 || got.ID != h.ID || strings.Contains(string(r.body), h.Secret) {
			t.Fatalf("get: %d %s", r.status, r.body)
		}

		// A visit, then an order from the visitor: matched, then posted.
		if n := time.Now().In(f.a.Location()); n.Hour() == 23 && n.Minute() == 59 {
			time.Sleep(61 * time.Second) // the order, a minute after the visit, must fall on the same day
		}
		visitor := "3e9f3ae5-6c1f-4c9b-8b8f-4a1b2c3d4e5f"
		if sid := f.visit(t, visitor, "https://www.a.example.ru/?utm_source=Yandex&utm_medium=cpc&utm_campaign=boots"); sid == "" {
			t.Fatal("no session")
		}
		placed := time.Now().In(f.a.Location()).Add(time.Minute).Format("02.01.2006 15:04")
		f.uploadSimple(t, "id,create_date_time,client_ids,order_status,revenue\nH-1,"+placed+","+visitor+",PAID,990\n")
		waitFor(t, func() bool { return rc.count() == 1 })
		rc.mu.Lock()
		hdr, body := rc.got[0], rc.bodies[0]
		rc.mu.Unlock()
		var p struct {
			Event      string
			Order      struct{ ID string }
			Match      struct{ Rung string }
			Attributed struct{ Source, Medium, Campaign string }
		}
		decode(t, body, &p)
		if p.Event != "matched" || p.Order.ID != "H-1" || p.Match.Rung != "uuid" || p.Attributed.Source != "yandex" ||
			p.Attributed.Medium != "cpc" || p.Attributed.Campaign != "boots" || hdr.Get(webhooks.HeaderEvent) != "matched" {
			t.Fatalf("payload: %s", body)
		}

		var page struct {
			Deliveries []deliveryJSON
			NextCursor *string `json:"next_cursor"`
		}
		waitFor(t, func() bool {
			r = f.api(t, "GET", "/webhooks/"+h.ID+"/deliveries", "")
			decode(t, r.body, &page)
			return len(page.Deliveries) == 1 && page.Deliveries[0].Status == "delivered"
		})
		d := page.Deliveries[0]
		if r.status != 200 || page.NextCursor != nil || d.OrderID != "H-1" || d.Event != "matched" || d.Attempts != 1 ||
			d.LastStatus != 200 || d.DeliveredAt == nil || d.NextAttemptAt != nil || d.WebhookID != h.ID ||
			hdr.Get(webhooks.HeaderDelivery) != strconv.FormatInt(d.ID, 10) {
			t.Fatalf("deliveries: %d %s", r.status, r.body)
		}

		// Sent again on request, under the same delivery id.
		var re deliveryJSON
		r = f.api(t, "POST", "/webhooks/"+h.ID+"/deliveries/"+strconv.FormatInt(d.ID, 10)+"/redeliver", "")
		decode(t, r.body, &re)
		if r.status != 200 || re.ID != d.ID || re.Status != "pending" || re.Attempts != 0 || re.NextAttemptAt == nil {
			t.Fatalf("redeliver: %d %s", r.status, r.body)
		}
		waitFor(t, func() bool { return rc.count() == 2 })
		rc.mu.Lock()
		if rc.got[1].Get(webhooks.HeaderDelivery) != strconv.FormatInt(d.ID, 10) {
			t.Errorf("redelivered as %q", rc.got[1].Get(webhooks.HeaderDelivery))
		}
		rc.mu.Unlock()

		// Paging: a second delivery, one per page.
		if _, err := db.Writer().Exec(`INSERT INTO webhook_deliveries (counter_id, webhook_id, order_id, event, status, attempts,
			next_attempt_at, last_status, last_error, created_at) VALUES ($1, $2, 'H-1', 'status', 'failed', 8, $3, 500, 'x', $3)`,
			f.a.ID, h.ID, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		r = f.api(t, "GET", "/webhooks/"+h.ID+"/deliveries?limit=1", "")
		decode(t, r.body, &page)
		if r.status != 200 || len(page.Deliveries) != 1 || page.Deliveries[0].Event != "status" || page.NextCursor == nil {
			t.Fatalf("page 1: %d %s", r.status, r.body)
		}
		r = f.api(t, "GET", "/webhooks/"+h.ID+"/deliveries?limit=1&cursor="+*page.NextCursor, "")
		decode(t, r.body, &page)
		if r.status != 200 || len(page.Deliveries) != 1 || page.Deliveries[0].ID != d.ID || page.NextCursor != nil {
			t.Fatalf("page 2: %d %s", r.status, r.body)
		}

		// Deactivated, rotated, deleted.
		r = f.api(t, "PATCH", "/webhooks/"+h.ID, `{"active": false}`)
		decode(t, r.body, &got)
		if r.status != 200 || got.Active || strings.HasPrefix(got.Secret, "whsec_") {
			t.Fatalf("deactivate: %d %s", r.status, r.body)
		}
		r = f.api(t, "PATCH", "/webhooks/"+h.ID, `{"secret": ""}`)
		decode(t, r.body, &got)
		if r.status != 200 || !strings.HasPrefix(got.Secret, "whsec_") || got.Secret == h.Secret {
			t.Fatalf("rotate: %d %s", r.status, r.body)
		}
		if r := f.api(t, "DELETE", "/webhooks/"+h.ID, ""); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		for _, path := range []string{"/webhooks/" + h.ID, "/webhooks/" + h.ID + "/deliveries"} {
			if r := f.api(t, "GET", path, ""); r.status != 404 || r.errorCode(t) != "not_found" {
				t.Errorf("GET %s after delete: %d %s", path, r.status, r.body)
			}
		}
	})
}

// TestWebhooksAPIBadInput: every endpoint refuses bad input with 400 (413
// for a body over the limit) naming the field.
func TestWebhooksAPIBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db) // private destinations not allowed
		r := f.api(t, "POST", "/webhooks", `{"url": "https://93.184.215.14/hook", "secret": "receiver-secret-0001"}`)
		var h webhookJSON
		decode(t, r.body, &h)
		if r.status != 201 || h.Secret != "receiver-secret-0001" {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		hook := "/webhooks/" + h.ID
		huge := `{"url": "https://example.com/` + strings.Repeat("a", DefaultMaxBody) + `"}`
		for _, c := range []struct {
			name, method, path, body string
			status                   int
			field                    string
		}{
			{"malformed JSON", "POST", "/webhooks", `{"url": `, 400, ""},
			{"not an object", "POST", "/webhooks", `["https://example.com"]`, 400, ""},
			{"empty body", "POST", "/webhooks", ``, 400, ""},
			{"two objects", "POST", "/webhooks", `{} {}`, 400, ""},
			{"unknown field", "POST", "/webhooks", `{"url": "https://example.com", "events": ["matched"]}`, 400, "events"},
			{"wrong type", "POST", "/webhooks", `{"url": "https://example.com", "active": "yes"}`, 400, "active"},
			{"no URL", "POST", "/webhooks", `{}`, 400, "url"},
			{"not http", "POST", "/webhooks", `{"url": "ftp://example.com/x"}`, 400, "url"},
			{"no host", "POST", "/webhooks", `{"url": "https:///x"}`, 400, "url"},
			{"long URL", "POST", "/webhooks", `{"url": "https://example.com/` + strings.Repeat("a", 2000) + `"}`, 400, "url"},
			{"loopback", "POST", "/webhooks", `{"url": "http://127.0.0.1:9000/hook"}`, 400, "url"},
			{"metadata service", "POST", "/webhooks", `{"url": "http://169.254.169.254/latest"}`, 400, "url"},
			{"short secret", "POST", "/webhooks", `{"url": "https://example.com", "secret": "123"}`, 400, "secret"},
			{"long secret", "POST", "/webhooks", `{"url": "https://example.com", "secret": "` + strings.Repeat("s", 201) + `"}`, 400, "secret"},
			{"body over 1 MiB", "POST", "/webhooks", huge, 413, ""},
			{"patch malformed", "PATCH", hook, `{"active": tru}`, 400, ""},
			{"patch unknown field", "PATCH", hook, `{"enabled": true}`, 400, "enabled"},
			{"patch wrong type", "PATCH", hook, `{"url": 5}`, 400, "url"},
			{"patch bad URL", "PATCH", hook, `{"url": "mailto:ops@example.com"}`, 400, "url"},
			{"patch private URL", "PATCH", hook, `{"url": "http://10.0.0.7/"}`, 400, "url"},
			{"patch bad secret", "PATCH", hook, `{"secret": "with spaces inside it"}`, 400, "secret"},
			{"patch over 1 MiB", "PATCH", hook, huge, 413, ""},
			{"limit 0", "GET", hook + "/deliveries?limit=0", "", 400, "limit"},
			{"limit not a number", "GET", hook + "/deliveries?limit=ten", "", 400, "limit"},
			{"bad cursor", "GET", hook + "/deliveries?cursor=nope", "", 400, "cursor"},
			{"delivery not a number", "POST", hook + "/deliveries/abc/redeliver", "", 404, ""},
			{"no such delivery", "POST", hook + "/deliveries/999999/redeliver", "", 404, ""},
			{"no such webhook", "GET", "/webhooks/nope", "", 404, ""},
			{"patch no such webhook", "PATCH", "/webhooks/nope", `{"active": false}`, 404, ""},
			{"delete no such webhook", "DELETE", "/webhooks/nope", "", 404, ""},
			{"deliveries of no such webhook", "GET", "/webhooks/nope/deliveries", "", 404, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := f.api(t, c.method, c.path, c.body)
				if r.status != c.status {
					t.Fatalf("status %d, want %d: %.300s", r.status, c.status, r.body)
				}
				var e struct {
					Error struct{ Code, Message, Field string }
				}
				decode(t, r.body, &e)
				if e.Error.Field != c.field || e.Error.Message == "" {
					t.Fatalf("field %q, want %q: %.300s", e.Error.Field, c.field, r.body)
				}
			})
		}
		// Nothing above changed the webhook.
		var got webhookJSON
		decode(t, f.api(t, "GET", hook, "").body, &got)
		if got.URL != "https://93.184.215.14/hook" || !got.Active || got.Secret != "xxxxx0001" {
			t.Fatalf("after bad input: %+v", got)
		}
	})
}

// TestWebhooksTenancy: counter B's token reaches none of A's webhooks or
// deliveries, by A's paths or by its own.
func TestWebhooksTenancy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var a, b webhookJSON
		decode(t, f.api(t, "POST", "/webhooks", `{"url": "https://93.184.215.14/a"}`).body, &a)
		r := f.do(t, "POST", "/api/v1/counters/"+id(f.b)+"/webhooks", f.tokB, strings.NewReader(`{"url": "https://93.184.215.14/b"}`))
		decode(t, r.body, &b)
		if a.ID == "" || b.ID == "" {
			t.Fatalf("create: %+v %+v", a, b)
		}
		var delivery int64
		if err := db.Writer().QueryRowContext(context.Background(), `INSERT INTO webhook_deliveries (counter_id, webhook_id, order_id, event,
			status, attempts, next_attempt_at, last_status, last_error, created_at) VALUES ($1, $2, 'A-1', 'matched', 'failed', 8, $3, 500, '', $3)
			RETURNING id`, f.a.ID, a.ID, time.Now().UTC()).Scan(&delivery); err != nil {
			t.Fatal(err)
		}
		redeliver := "/deliveries/" + strconv.FormatInt(delivery, 10) + "/redeliver"
		patch := `{"active": false}`
		for _, c := range []struct{ method, path, body string }{
			// A's counter with B's token: the tenant wall.
			{"GET", "/api/v1/counters/" + id(f.a) + "/webhooks", ""},
			{"POST", "/api/v1/counters/" + id(f.a) + "/webhooks", `{"url": "https://93.184.215.14/x"}`},
			{"GET", "/api/v1/counters/" + id(f.a) + "/webhooks/" + a.ID, ""},
			{"PATCH", "/api/v1/counters/" + id(f.a) + "/webhooks/" + a.ID, patch},
			{"DELETE", "/api/v1/counters/" + id(f.a) + "/webhooks/" + a.ID, ""},
			{"GET", "/api/v1/counters/" + id(f.a) + "/webhooks/" + a.ID + "/deliveries", ""},
			{"POST", "/api/v1/counters/" + id(f.a) + "/webhooks/" + a.ID + redeliver, ""},
			// B's own counter, A's ids.
			{"GET", "/api/v1/counters/" + id(f.b) + "/webhooks/" + a.ID, ""},
			{"PATCH", "/api/v1/counters/" + id(f.b) + "/webhooks/" + a.ID, patch},
			{"DELETE", "/api/v1/counters/" + id(f.b) + "/webhooks/" + a.ID, ""},
			{"GET", "/api/v1/counters/" + id(f.b) + "/webhooks/" + a.ID + "/deliveries", ""},
			{"POST", "/api/v1/counters/" + id(f.b) + "/webhooks/" + a.ID + redeliver, ""},
			// B's own webhook, A's delivery.
			{"POST", "/api/v1/counters/" + id(f.b) + "/webhooks/" + b.ID + redeliver, ""},
		} {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			if r := f.do(t, c.method, c.path, f.tokB, body); r.status != 404 || r.errorCode(t) != "not_found" {
				t.Errorf("%s %s with B's token: %d %s", c.method, c.path, r.status, r.body)
			}
		}
		// No token at all: 401.
		if r := f.do(t, "GET", "/api/v1/counters/"+id(f.a)+"/webhooks", "", nil); r.status != 401 {
			t.Errorf("no token: %d", r.status)
		}
		var list struct{ Webhooks []webhookJSON }
		decode(t, f.do(t, "GET", "/api/v1/counters/"+id(f.b)+"/webhooks", f.tokB, nil).body, &list)
		if len(list.Webhooks) != 1 || list.Webhooks[0].ID != b.ID {
			t.Errorf("B's list: %+v", list)
		}
		// A's webhook and delivery are untouched.
		var got webhookJSON
		decode(t, f.api(t, "GET", "/webhooks/"+a.ID, "").body, &got)
		var page struct{ Deliveries []deliveryJSON }
		decode(t, f.api(t, "GET", "/webhooks/"+a.ID+"/deliveries", "").body, &page)
		if !got.Active || len(page.Deliveries) != 1 || page.Deliveries[0].Status != "failed" {
			t.Errorf("A's webhook: %+v, deliveries %+v", got, page.Deliveries)
		}
	})
}
