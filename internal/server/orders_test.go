package server

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func (f *fixture) uploadSimple(t *testing.T, csvText string) {
	t.Helper()
	r := f.cdp(t, "POST", "/cdp/api/v1/counter/"+id(f.a)+"/data/simple_orders?merge_mode=SAVE", f.tokA, "text/csv", strings.NewReader(csvText))
	if r.status != 200 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
}

func TestOrdersAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var b strings.Builder
		b.WriteString("id,create_date_time,phones,order_status,revenue\n")
		for i := 1; i <= 25; i++ {
			status := "PAID"
			switch {
			case i%5 == 0:
				status = "CANCELLED"
			case i%7 == 0:
				status = "waiting"
			}
			fmt.Fprintf(&b, "O-%02d,2024-03-%02d 12:00,7999555%04d,%s,%d.50\n", i, i, i, status, i*100)
		}
		f.uploadSimple(t, b.String())
		api := "/api/v1/counters/" + id(f.a)

		// Pages, newest first.
		var seen []string
		cursor := ""
		for page := 0; page < 5; page++ {
			r := f.do(t, "GET", api+"/orders?limit=10&cursor="+cursor, f.tokA, nil)
			var p struct {
				Orders []struct {
					ID      string      `json:"id"`
					Revenue json.Number `json:"revenue"`
				}
				NextCursor *string `json:"next_cursor"`
			}
			if err := json.Unmarshal(r.body, &p); err != nil || r.status != 200 {
				t.Fatalf("page %d: %d %s", page, r.status, r.body)
			}
			for _, o := range p.Orders {
				seen = append(seen, o.ID)
			}
			if p.NextCursor == nil {
				break
			}
			cursor = *p.NextCursor
		}
		if len(seen) != 25 || seen[0] != "O-25" || seen[24] != "O-01" {
			t.Fatalf("paged through %d orders: %v", len(seen), seen)
		}

		// Filters: dates in the counter's zone, to included; status types.
		r := f.do(t, "GET", api+"/orders?from=2024-03-10&to=2024-03-12", f.tokA, nil)
		if n := strings.Count(string(r.body), `"id":"O-`); n != 3 {
			t.Errorf("from/to: %d orders: %s", n, r.body)
		}
		r = f.do(t, "GET", api+"/orders?status_type=cancelled", f.tokA, nil)
		if n := strings.Count(string(r.body), `"id":"O-`); n != 5 {
			t.Errorf("cancelled: %d", n)
		}
		r = f.do(t, "GET", api+"/orders?status_type=UNMAPPED", f.tokA, nil)
		if n := strings.Count(string(r.body), `"id":"O-`); n != 3 { // 7, 14, 21
			t.Errorf("unmapped: %d %s", n, r.body)
		}
		for _, bad := range []string{"status_type=DONE", "limit=0", "cursor=zzz", "from=yesterday", "format=xml"} {
			if r := f.do(t, "GET", api+"/orders?"+bad, f.tokA, nil); r.status != 400 {
				t.Errorf("%s: %d", bad, r.status)
			}
		}

		// CSV export: every order, a header, RFC 4180.
		r = f.do(t, "GET", api+"/orders?format=csv", f.tokA, nil)
		rows, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil || r.status != 200 || len(rows) != 26 || rows[0][0] != "id" || rows[1][0] != "O-25" || rows[1][6] != "2500.50" {
			t.Fatalf("CSV export: %d %v %q", r.status, err, r.body[:min(len(r.body), 300)])
		}
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
			t.Errorf("CSV Content-Type %q", r.header.Get("Content-Type"))
		}

		// The status mapping: unmapped "waiting" is reported, then mapped.
		r = f.do(t, "GET", api+"/order-statuses", f.tokA, nil)
		if !strings.Contains(string(r.body), `"unmapped":[{"id":"waiting","orders":3}]`) {
			t.Errorf("order-statuses: %s", r.body)
		}
		r = f.do(t, "PUT", api+"/order-statuses", f.tokA, strings.NewReader(`{"order_statuses": [{"id": "waiting", "type": "IN_PROGRESS", "humanized": "Ждёт оплаты"}]}`),
			"Content-Type", "application/json")
		if r.status != 200 || !strings.Contains(string(r.body), `"unmapped":[]`) {
			t.Errorf("PUT order-statuses: %d %s", r.status, r.body)
		}
		if r = f.do(t, "GET", api+"/orders/O-07", f.tokA, nil); !strings.Contains(string(r.body), `"status_type":"IN_PROGRESS"`) {
			t.Errorf("O-07 after mapping: %s", r.body)
		}
		if r = f.do(t, "PUT", api+"/order-statuses", f.tokA, strings.NewReader(`{"order_statuses": [{"id": "x", "type": "DONE"}]}`)); r.status != 400 || r.errorCode(t) != "bad_request" {
			t.Errorf("bad type: %d %s", r.status, r.body)
		}
		// The tenant wall.
		for _, p := range []string{"/orders", "/orders/O-07", "/order-statuses", "/contacts/x", "/imports", "/import-log"} {
			if r := f.do(t, "GET", api+p, f.tokB, nil); r.status != 404 {
				t.Errorf("B's token on A's %s: %d", p, r.status)
			}
		}
		if r := f.do(t, "GET", api+"/import-log", f.tokA, nil); r.status != 200 || !strings.Contains(string(r.body), `"intake":"simple_orders"`) {
			t.Errorf("import-log: %d %s", r.status, r.body)
		}
	})
}

// feedServer serves a K50 feed whose body and status the test changes.
type feedServer struct {
	*httptest.Server
	body   atomic.Value // string
	status atomic.Int32
	ctype  atomic.Value // string
	hits   atomic.Int32
}

func newFeedServer(t *testing.T, body string) *feedServer {
	fs := &feedServer{}
	fs.body.Store(body)
	fs.status.Store(200)
	fs.ctype.Store("text/csv; charset=utf-8")
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.hits.Add(1)
		w.Header().Set("Content-Type", fs.ctype.Load().(string))
		w.WriteHeader(int(fs.status.Load()))
		w.Write([]byte(fs.body.Load().(string)))
	}))
	t.Cleanup(fs.Close)
	return fs
}

const k50Feed = "date;orderId;callerPhone;sid;uuid;amount;margin;revenue;comment;type\n" +
	"2024-03-01 12:00:00;K-1;79995551111;;;2;1500,00;4990,00;;\n" +
	"2024-03-01 13:00:00;K-2;;;;1;;990,00;;\n"

type taskResp struct {
	ID        int64      `json:"id"`
	URL       string     `json:"url"`
	Active    bool       `json:"active"`
	NextRunAt *time.Time `json:"next_run_at"`
	LastRun   *struct {
		Status   string `json:"status"`
		Inserted int    `json:"inserted"`
		Message  string `json:"message"`
	} `json:"last_run"`
}

func TestImportTasks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixtureWith(t, db, Config{Imports: ImportsConfig{AllowPrivateFeeds: true, Poll: 50 * time.Millisecond}})
		feed := newFeedServer(t, k50Feed)
		api := "/api/v1/counters/" + id(f.a)
		r := f.do(t, "POST", api+"/imports", f.tokA, strings.NewReader(`{"name": "CRM feed", "url": "`+feed.URL+`/feed.csv", "frequency_hours": 2}`))
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var task taskResp
		decode(t, r.body, &task)
		if !task.Active || task.NextRunAt == nil {
			t.Fatalf("a new task is active and due: %s", r.body)
		}
		tpath := fmt.Sprintf("%s/imports/%d", api, task.ID)

		// Saving it ran it at once: wait for the run to show.
		waitFor(t, func() bool {
			decode(t, f.do(t, "GET", tpath, f.tokA, nil).body, &task)
			return task.LastRun != nil && task.LastRun.Status != "running"
		})
		if task.LastRun.Status != "passed" || task.LastRun.Inserted != 2 {
			t.Fatalf("first run: %+v", task.LastRun)
		}
		if task.NextRunAt == nil || time.Until(*task.NextRunAt) < 119*time.Minute {
			t.Errorf("next run in %v, want 2 hours", time.Until(*task.NextRunAt))
		}
		if r := f.do(t, "GET", api+"/orders/K-1", f.tokA, nil); r.status != 200 {
			t.Fatalf("K-1 not imported: %d", r.status)
		}

		// A run on demand, the feed changed.
		feed.body.Store(strings.Replace(k50Feed, ";990,00", ";1990,00", 1))
		r = f.do(t, "POST", tpath+"/run", f.tokA, nil)
		if r.status != 200 || !strings.Contains(string(r.body), `"updated":1`) || !strings.Contains(string(r.body), `"unchanged":1`) {
			t.Fatalf("run: %d %s", r.status, r.body)
		}

		// Feeds that fail leave the data as it was, and say why.
		for _, c := range []struct {
			name   string
			status int
			ctype  string
			body   string
			want   string
		}{
			{"server error", 500, "text/plain", "oops", "500"},
			{"HTML", 200, "text/html", "<html><body>Login</body></html>", "HTML"},
			{"HTML sent as text", 200, "text/plain", "<!DOCTYPE html><html></html>", "HTML"},
			{"wrong columns", 200, "text/csv", "a;b;c\n1;2;3\n", "required column"},
		} {
			feed.status.Store(int32(c.status))
			feed.ctype.Store(c.ctype)
			feed.body.Store(c.body)
			r = f.do(t, "POST", tpath+"/run", f.tokA, nil)
			if r.status != 422 || !strings.Contains(string(r.body), `"status":"failed"`) || !strings.Contains(string(r.body), c.want) {
				t.Errorf("%s: %d %s", c.name, r.status, r.body)
			}
		}
		if r := f.do(t, "GET", api+"/orders/K-2", f.tokA, nil); !strings.Contains(string(r.body), `"revenue":1990.00`) {
			t.Errorf("failed runs changed K-2: %s", r.body)
		}
		r = f.do(t, "GET", tpath+"/runs", f.tokA, nil)
		if n := strings.Count(string(r.body), `"task_id":`); r.status != 200 || n != 6 {
			t.Errorf("runs: %d runs: %s", n, r.body)
		}

		// Changing and deleting. A key in the URL's query is never shown.
		r = f.do(t, "PATCH", tpath, f.tokA, strings.NewReader(`{"active": false, "url": "`+feed.URL+`/v2.csv?apikey=SECRET"}`))
		if decode(t, r.body, &task); r.status != 200 || task.Active || task.NextRunAt != nil ||
			!strings.Contains(task.URL, "/v2.csv?apikey=xxxxx") || strings.Contains(string(r.body), "SECRET") || task.LastRun == nil {
			t.Errorf("deactivate: %d %s", r.status, r.body)
		}
		if r := f.do(t, "GET", tpath+"/runs", f.tokA, nil); strings.Contains(string(r.body), "SECRET") {
			t.Errorf("a secret in the runs: %s", r.body)
		}
		for _, bad := range []string{`{"frequency_hours": 0}`, `{"url": "ftp://x/feed.csv"}`, `{"type": "xml"}`,
			`{"column_mapping": {"price": "Цена"}}`, `{"name": ""}`, `{"nmae": "x"}`} {
			if r := f.do(t, "PATCH", tpath, f.tokA, strings.NewReader(bad)); r.status != 400 {
				t.Errorf("PATCH %s: %d %s", bad, r.status, r.body)
			}
		}
		if r := f.do(t, "GET", tpath, f.tokB, nil); r.status != 404 {
			t.Errorf("B reads A's task: %d", r.status)
		}
		if r := f.do(t, "DELETE", tpath, f.tokA, nil); r.status != 204 {
			t.Errorf("delete: %d", r.status)
		}
		if r := f.do(t, "GET", tpath, f.tokA, nil); r.status != 404 {
			t.Errorf("deleted task: %d", r.status)
		}
	})
}

func TestImportTaskRefusesPrivateFeeds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db) // private feeds not allowed
		api := "/api/v1/counters/" + id(f.a)
		for _, u := range []string{"http://127.0.0.1:8080/feed.csv", "http://localhost/feed.csv", "http://10.1.2.3/f.csv",
			"http://[::1]/f.csv", "http://169.254.169.254/latest/meta-data", "http://192.168.0.10/f.csv"} {
			r := f.do(t, "POST", api+"/imports", f.tokA, strings.NewReader(`{"name": "x", "url": "`+u+`"}`))
			if r.status != 400 || !strings.Contains(string(r.body), "private") {
				t.Errorf("%s: %d %s", u, r.status, r.body)
			}
		}
	})
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
