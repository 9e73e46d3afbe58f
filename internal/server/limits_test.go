package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/netutil"

	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
	"github.com/throughline/throughline/internal/tracker"
)

// liveServer is the fixture's handler served as serve serves it: by
// NewHTTPServer, on a listener capped at conns connections. closed counts
// the connections the server has closed (their goroutines are done).
type liveServer struct {
	*fixture
	addr   string
	http   *http.Server
	closed atomic.Int32
}

func newLiveServer(t *testing.T, db *store.DB, cfg Config, conns int, configure ...func(*http.Server)) *liveServer {
	t.Helper()
	s := &liveServer{fixture: newFixtureWith(t, db, cfg)}
	s.http = NewHTTPServer(s.srv, slog.New(slog.DiscardHandler))
	for _, c := range configure {
		c(s.http)
	}
	s.http.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateClosed {
			s.closed.Add(1)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.url = "http://" + s.addr
	go s.http.Serve(netutil.LimitListener(ln, conns)) // LimitConns, with a cap a test can fill
	t.Cleanup(func() { s.http.Close() })
	return s
}

// slowRequest sends head (request line and headers), then body in pieces
// spread evenly over the time given (all of it at once when pieces is 0),
// and reads the answer. It returns the answer's status line and how long
// the server kept the connection: until it closed it, or until the client
// gave up after 10 s. A server that closes while the client is still
// sending resets the connection, and the answer may be lost: the status is
// then empty.
func (s *liveServer) slowRequest(t *testing.T, head, body string, pieces int, over time.Duration) (status string, held time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	go func() {
		if pieces == 0 {
			io.WriteString(conn, body)
			return
		}
		for i := range pieces {
			time.Sleep(time.Until(start.Add(over * time.Duration(i+1) / time.Duration(pieces))))
			if _, err := io.WriteString(conn, body[i*len(body)/pieces:(i+1)*len(body)/pieces]); err != nil {
				return // closed by the server
			}
		}
	}()
	conn.SetReadDeadline(start.Add(10 * time.Second))
	answer, err := io.ReadAll(bufio.NewReader(conn))
	held = time.Since(start)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("%.40q: the server held the connection for %s: %v", head, held.Round(time.Millisecond), err)
	}
	status, _, _ = strings.Cut(string(answer), "\r\n")
	return status, held
}

// head is a request's head announcing a body of length bytes.
func head(method, path string, length int, header ...string) string {
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n", method, path, length, strings.Join(header, ""))
}

func post(path string, length int, header ...string) string {
	return head("POST", path, length, header...)
}

// A client that announces a body and sends it slowly, or not at all, is
// answered 408 and disconnected once its route's time is up: a stalled
// client holds a connection for seconds, not forever.
func TestStalledBodiesAreCut(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	budget := BodyTimeouts{Small: 300 * time.Millisecond, API: 700 * time.Millisecond, Upload: time.Minute}
	s := newLiveServer(t, db, Config{BodyTimeouts: budget}, 100)
	const slack = 1500 * time.Millisecond
	hit := hitJSON(s.a.ID, visitorA, "", "https://a.example.ru/")
	tests := []struct {
		name, head, body string
		pieces           int // sent a piece every 100 ms; 0: at once
		status           string
		within           time.Duration
	}{
		// A hit that announces 100 kB and sends a byte every 100 ms (a
		// byte every 5 s, scaled down; the answer may be lost to the
		// reset of a connection closed while the client sends), or
		// nothing at all.
		{"hit trickled", post("/collect", 100_000), strings.Repeat(" ", 100), 100, "", budget.Small},
		{"hit never sent", post("/collect", 100_000), "", 0, "HTTP/1.1 408 Request Timeout", budget.Small},
		// A lead and a call hook are short routes too.
		{"lead", post("/leads/collect", 5_000), "{", 0, "", budget.Small},
		{"call hook", post("/hooks/calls/mango/nosuchtoken", 5_000), "", 0, "", budget.Small},
		// An API request has the API's time.
		{"API", head("PATCH", "/api/v1/counters/"+id(s.a), 5_000, "Authorization: Bearer "+s.tokA+"\r\n", "Content-Type: application/json\r\n"), `{"name":`, 0, "HTTP/1.1 408 Request Timeout", budget.API},
		// A path no route takes, and an upload refused before its body is
		// read (no token), do not get an upload's time for the rest.
		{"no route", post("/nowhere", 5_000), "", 0, "HTTP/1.1 404 Not Found", budget.Small},
		{"upload without a token", post("/api/v1/counters/"+id(s.a)+"/costs", 100_000, "Content-Type: text/csv\r\n"), "date", 0, "HTTP/1.1 401 Unauthorized", budget.Small},
	}
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Go(func() {
			status, held := s.slowRequest(t, tt.head, tt.body, tt.pieces, time.Duration(tt.pieces)*100*time.Millisecond)
			if tt.status != "" && status != tt.status {
				t.Errorf("%s: answered %q, want %q", tt.name, status, tt.status)
			}
			if held < tt.within-50*time.Millisecond || held > tt.within+slack {
				t.Errorf("%s: connection held %s; want about %s", tt.name, held.Round(time.Millisecond), tt.within)
			}
		})
	}
	wg.Wait()
	// The server closed every connection: their goroutines are done.
	deadline := time.Now().Add(2 * time.Second)
	for s.closed.Load() < int32(len(tests)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.closed.Load(); n != int32(len(tests)) {
		t.Errorf("the server closed %d of the %d stalled connections", n, len(tests))
	}
	// The hit that did arrive whole was stored as usual.
	if status, _ := s.slowRequest(t, post("/collect", len(hit), "Connection: close\r\n", "User-Agent: "+browser+"\r\n"), hit, 0, 0); status != "HTTP/1.1 204 No Content" {
		t.Errorf("a hit sent at once: %q", status)
	}
}

// A big upload that arrives slowly but within its time is imported: its
// route's budget, not the short one, applies. Past that budget it is cut.
func TestSlowUploadWithinItsBudget(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	budget := BodyTimeouts{Small: 200 * time.Millisecond, API: 400 * time.Millisecond, Upload: 3 * time.Second}
	s := newLiveServer(t, db, Config{BodyTimeouts: budget}, 100)
	var file strings.Builder
	file.WriteString("date,source,medium,campaign,cost\n")
	for day := range 28 {
		fmt.Fprintf(&file, "2024-02-%02d,yandex,cpc,boots,%d.50\n", day+1, 100+day)
	}
	csv := file.String()
	head := post("/api/v1/counters/"+id(s.a)+"/costs", len(csv), "Authorization: Bearer "+s.tokA+"\r\n", "Content-Type: text/csv\r\n", "Connection: close\r\n")

	// In ten pieces over a second: five times the short budget, a third of
	// the upload's.
	status, held := s.slowRequest(t, head, csv, 10, time.Second)
	if status != "HTTP/1.1 200 OK" || held < budget.API {
		t.Fatalf("an upload sent over %s within its %s: %q", held.Round(time.Millisecond), budget.Upload, status)
	}
	if n := s.queryInt(t, `SELECT count(*) FROM ad_costs WHERE counter_id = $1`, s.a.ID); n != 28 {
		t.Errorf("%d cost rows imported, want 28", n)
	}
	// Over twice the upload's budget: cut when it is up.
	status, held = s.slowRequest(t, head, csv, 10, 2*budget.Upload)
	if status != "HTTP/1.1 408 Request Timeout" || held > budget.Upload+time.Second {
		t.Errorf("an upload still arriving after its budget: %q after %s", status, held.Round(time.Millisecond))
	}
}

// The deadline bounds the body, not the answer: a hit whose body arrived at
// once is answered when its batch commits, even after the body's time.
func TestBodyDeadlineDoesNotCutTheAnswer(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	s := newLiveServer(t, db, Config{
		BodyTimeouts: BodyTimeouts{Small: 100 * time.Millisecond},
		Collector:    tracker.Config{MaxDelay: 600 * time.Millisecond}, // the batch waits past the body's deadline
	}, 100)
	r := s.sendHit(t, hitJSON(s.a.ID, visitorA, "", "https://a.example.ru/"))
	if r.status != http.StatusNoContent || r.header.Get("Throughline-Sid") == "" {
		t.Fatalf("a hit answered after its body's deadline: %d %q", r.status, r.body)
	}
}

// The connection cap holds, yet a flood of slow clients filling it does not
// lock everyone else out: their connections are cut within the short
// deadlines, and the next client is served.
func TestConnectionCapDoesNotLockOut(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	const conns = 8
	s := newLiveServer(t, db, Config{BodyTimeouts: BodyTimeouts{Small: 500 * time.Millisecond}}, conns,
		func(hs *http.Server) { hs.ReadHeaderTimeout = 500 * time.Millisecond })
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			if i%2 == 0 {
				s.slowRequest(t, "POST /collect HTTP/1.1\r\nHost: x\r\n", "", 0, 0) // headers never end
			} else {
				s.slowRequest(t, post("/collect", 100_000), "", 0, 0) // the body never comes
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // the flood holds every connection
	start := time.Now()
	r := s.sendHit(t, hitJSON(s.a.ID, visitorA, "", "https://a.example.ru/"))
	waited := time.Since(start)
	if r.status != http.StatusNoContent {
		t.Errorf("a visitor after the flood: %d %s", r.status, r.body)
	}
	if waited < 300*time.Millisecond || waited > 3*time.Second {
		t.Errorf("a visitor waited %s; want the cap to hold it until the stalled clients were cut (~400 ms)", waited.Round(time.Millisecond))
	}
	wg.Wait()
}
