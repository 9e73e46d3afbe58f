package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/demo"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func TestDemoCommand(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			env := map[string]string{"THROUGHLINE_DB": storetest.DSN(t, d)}
			r := run(t, env, "counter", "create", "--name", "Shop", "--domain", "shop.ru")
			if r.code != 0 {
				t.Fatal(r.stderr)
			}

			// A few days keep the test quick; the demo package checks a month.
			r = run(t, env, "demo", "--days", "2", "--json")
			var first struct {
				CounterID int64  `json:"counter_id"`
				Token     string `json:"token"`
				From, To  string
				Sessions  int
				Calls     int
				Leads     int
				Orders    int
				CostRows  int    `json:"cost_rows"`
				ReportURL string `json:"report_url"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &first); err != nil || r.code != 0 {
				t.Fatalf("demo --json: %d %q %q (%v)", r.code, r.stdout, r.stderr, err)
			}
			if first.CounterID == 0 || !strings.HasPrefix(first.Token, "tl_") || first.Sessions < 500 || first.Calls == 0 ||
				first.Leads == 0 || first.Orders == 0 || first.CostRows == 0 ||
				first.ReportURL != "http://127.0.0.1:8080/api/v1/counters/"+itoa(first.CounterID)+"/reports/end-to-end?from="+first.From+"&to="+first.To {
				t.Fatalf("demo --json: %+v", first)
			}

			// Again, as text: a new counter with the same data, the old
			// token gone, the next commands spelled out.
			r = run(t, env, "demo", "--days", "2")
			if r.code != 0 {
				t.Fatalf("demo: %d %q", r.code, r.stderr)
			}
			var token string
			for _, line := range strings.Split(r.stdout, "\n") {
				if s := strings.TrimSpace(line); strings.HasPrefix(s, "tl_") {
					token = s
				}
			}
			counts := groupDigits(int64(first.Sessions)) + " sessions"
			if token == "" || token == first.Token || !strings.Contains(r.stdout, counts) ||
				!strings.Contains(r.stdout, "\n    throughline serve\n") ||
				!strings.Contains(r.stdout, `curl -H "Authorization: Bearer `+token+`" "http://127.0.0.1:8080/api/v1/counters/`) ||
				!strings.Contains(r.stdout, "/reports/end-to-end?from="+first.From+"&to="+first.To+`"`) {
				t.Fatalf("demo printed %q", r.stdout)
			}
			if r := run(t, env, "token", "revoke", first.Token); r.code != 1 || !strings.Contains(r.stderr, "not found") {
				t.Errorf("the first demo's token: %d %q", r.code, r.stderr)
			}
			r = run(t, env, "counter", "list", "--json")
			var cs []struct{ ID int64 }
			if err := json.Unmarshal([]byte(r.stdout), &cs); err != nil || len(cs) != 2 {
				t.Errorf("counters after two demos: %q", r.stdout)
			}
			if n := strings.Count(r.stdout, demo.Domain); n != 1 {
				t.Errorf("%d demo counters: %q", n, r.stdout)
			}

			for _, args := range [][]string{
				{"demo", "--days", "0"},
				{"demo", "--days", "many"},
				{"demo", "--seed", "x"},
				{"demo", "extra"},
			} {
				if r := run(t, env, args...); r.code != 2 {
					t.Errorf("%v: exit %d %q", args, r.code, r.stderr)
				}
			}
		})
	}
}

// The next command repeats the data flags given on the command line, and
// only those: the environment reaches serve as it reached demo.
func TestServeCommand(t *testing.T) {
	env := func(m map[string]string) Env { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		d    dataFlags
		env  map[string]string
		want string
	}{
		{dataFlags{dataDir: "./throughline-data"}, nil, "throughline serve"},
		{dataFlags{dataDir: "/srv/tl"}, nil, "throughline serve --data-dir /srv/tl"},
		{dataFlags{dataDir: "/srv/tl"}, map[string]string{"THROUGHLINE_DATA_DIR": "/srv/tl"}, "throughline serve"},
		{dataFlags{dataDir: "my data"}, nil, "throughline serve --data-dir 'my data'"},
		{dataFlags{dataDir: "./throughline-data", db: "postgres://tl@db/tl"}, nil, "throughline serve --db postgres://tl@db/tl"},
		{dataFlags{dataDir: "./throughline-data", db: "postgres://tl@db/tl?sslmode=disable"}, nil, "throughline serve --db 'postgres://tl@db/tl?sslmode=disable'"},
		{dataFlags{dataDir: "./throughline-data", db: "postgres://tl@db/tl"}, map[string]string{"THROUGHLINE_DB": "postgres://tl@db/tl"}, "throughline serve"},
	} {
		if got := serveCommand(c.d, env(c.env)); got != c.want {
			t.Errorf("%+v %v: %q, want %q", c.d, c.env, got, c.want)
		}
	}
}

// raceDetector reports whether the test runs with -race.
func raceDetector() bool {
	bi, ok := debug.ReadBuildInfo()
	return ok && slices.ContainsFunc(bi.Settings, func(s debug.BuildSetting) bool { return s.Key == "-race" && s.Value == "true" })
}

// syncBuffer collects a running command's output.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve --demo makes the demo before it listens and logs how to read it.
func TestServeDemo(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			if d == store.SQLite && raceDetector() {
				// Under -race the pure-Go SQLite takes a minute over the
				// demo's month; internal/demo runs it on a shorter period.
				t.Skip("serve --demo on SQLite is too slow under -race")
			}
			env := map[string]string{"THROUGHLINE_DB": storetest.DSN(t, d)}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr syncBuffer
			exit := make(chan int, 1)
			go func() {
				exit <- Main(ctx, []string{"serve", "--demo", "--addr", "127.0.0.1:0", "--log-format", "json", "--data-dir", t.TempDir()},
					&stdout, &stderr, func(k string) string { return env[k] })
			}()
			var ready struct{ Token, Report string }
			deadline := time.Now().Add(2 * time.Minute)
			for listening := false; !listening; {
				select {
				case code := <-exit:
					t.Fatalf("serve exited with %d: %s", code, stderr.String())
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("serve --demo did not start: %s", stderr.String())
				}
				sc := bufio.NewScanner(strings.NewReader(stderr.String()))
				for sc.Scan() {
					var rec struct{ Msg, Token, Report string }
					json.Unmarshal(sc.Bytes(), &rec)
					switch rec.Msg {
					case "demo counter ready":
						ready.Token, ready.Report = rec.Token, rec.Report
					case "listening":
						listening = true
					}
				}
			}
			if ready.Token == "" || !strings.Contains(ready.Report, "/reports/end-to-end?from=") {
				t.Fatalf("the demo was not logged before listening: %s", stderr.String())
			}
			req, _ := http.NewRequest("GET", ready.Report, nil)
			req.Header.Set("Authorization", "Bearer "+ready.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var rep struct {
				Totals struct{ Sessions, Calls, Leads int64 }
				Rows   []json.RawMessage
			}
			err = json.NewDecoder(resp.Body).Decode(&rep)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || rep.Totals.Sessions < 20_000 || rep.Totals.Calls == 0 || rep.Totals.Leads == 0 || len(rep.Rows) < 10 {
				t.Fatalf("the report: %d %+v %v", resp.StatusCode, rep.Totals, err)
			}
			cancel()
			if code := <-exit; code != 0 {
				t.Fatalf("serve stopped with %d: %s", code, stderr.String())
			}
		})
	}
}
