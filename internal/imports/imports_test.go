package imports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

const feed = "date;orderId;callerPhone;sid;uuid\n2024-03-01 12:00:00;T-1;79995551111;;\n"

func readAll(t *testing.T, f *Fetcher, url string) (string, error) {
	t.Helper()
	body, err := f.Open(context.Background(), url)
	if err != nil {
		return "", err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	return string(b), err
}

func TestFetcher(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		io.WriteString(w, feed)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x;", 5000))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "date;orderId;callerPhone;sid;uuid\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // until the client gives up
	})
	mux.HandleFunc("/cut", func(w http.ResponseWriter, r *http.Request) {
		// Promise 1000 bytes, send 100, hang up.
		conn, buf, _ := w.(http.Hijacker).Hijack()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\n%s", strings.Repeat("a", 100))
		buf.Flush()
		conn.Close()
	})
	mux.HandleFunc("/cut-chunked", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, _ := w.(http.Hijacker).Hijack()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n40\r\nonly part")
		buf.Flush()
		conn.Close()
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<html>login</html>")
	})
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	allowed := NewFetcher(FetcherOptions{AllowPrivate: true, MaxBytes: 4096, Timeout: 500 * time.Millisecond})
	if got, err := readAll(t, allowed, srv.URL+"/ok"); err != nil || got != feed {
		t.Fatalf("ok: %q %v", got, err)
	}
	if got, err := readAll(t, allowed, srv.URL+"/redirect"); err != nil || got != feed {
		t.Errorf("redirect: %q %v", got, err)
	}
	for path, want := range map[string]string{
		"/big":         "larger than the limit",
		"/slow":        "did not finish within",
		"/cut":         "cut off",
		"/cut-chunked": "cut off",
		"/html":        "HTML page",
		"/missing":     "404 Not Found",
	} {
		_, err := readAll(t, allowed, srv.URL+path)
		var fe *FetchError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a FetchError saying %q", path, err, want)
		}
	}
	if _, err := readAll(t, allowed, "ftp://example.com/feed.csv"); err == nil {
		t.Error("ftp URL accepted")
	}

	// Without permission, loopback is refused at the connection — also when
	// reached through a name.
	guarded := NewFetcher(FetcherOptions{})
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	for _, u := range []string{srv.URL + "/ok", "http://localhost" + port + "/ok"} {
		_, err := readAll(t, guarded, u)
		if !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("%s: %v, want ErrPrivateAddress", u, err)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pass@crm.shop.ru/feed.csv?apikey=SECRET&x=1": "https://user:xxxxx@crm.shop.ru/feed.csv?apikey=xxxxx&x=xxxxx",
		"https://crm.shop.ru/feed.csv":                             "https://crm.shop.ru/feed.csv",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPublicAddr(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "::1", "fe80::1",
		"fc00::1", "0.0.0.0", "100.64.0.1", "::ffff:127.0.0.1", "224.0.0.1"} {
		if PublicAddr(netip.MustParseAddr(a)) {
			t.Errorf("%s is public?", a)
		}
	}
	for _, a := range []string{"77.88.55.88", "8.8.8.8", "2a02:6b8::2:242"} {
		if !PublicAddr(netip.MustParseAddr(a)) {
			t.Errorf("%s is not public?", a)
		}
	}
}

// Two processes on one database (two handles here) race for the same due
// task: it runs once per due time.
func TestSchedulerRunsATaskOncePerDueTime(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			dsn := storetest.DSN(t, d)
			open := func() *store.DB {
				db, err := store.Open(context.Background(), dsn, t.TempDir(), store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				if _, err := db.Migrate(context.Background()); err != nil {
					t.Fatal(err)
				}
				return db
			}
			db1, db2 := open(), open()
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				io.WriteString(w, feed)
			}))
			defer srv.Close()
			c, _, err := counter.Create(context.Background(), db1, counter.NewCounter{Name: "s", Domain: "shop.ru"})
			if err != nil {
				t.Fatal(err)
			}
			tasks1 := &Tasks{DB: db1, AllowPrivate: true}
			name, url := "feed", srv.URL
			task, err := tasks1.Create(context.Background(), c.ID, TaskInput{Name: &name, URL: &url})
			if err != nil {
				t.Fatal(err)
			}
			fetcher := NewFetcher(FetcherOptions{AllowPrivate: true})
			var scheds []*Scheduler
			for _, db := range []*store.DB{db1, db2} {
				s := &Scheduler{Tasks: &Tasks{DB: db, AllowPrivate: true}, Fetcher: fetcher, Log: slog.New(slog.DiscardHandler)}
				s.Init()
				scheds = append(scheds, s)
			}
			var wg sync.WaitGroup
			var ran atomic.Int32
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := scheds[i%2].RunDue(context.Background())
					if err != nil {
						t.Error(err)
					}
					if ok {
						ran.Add(1)
					}
				}()
			}
			wg.Wait()
			runs, err := crm.ListImports(context.Background(), db1, c.ID, crm.ImportQuery{TaskID: task.ID, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if ran.Load() != 1 || hits.Load() != 1 || len(runs) != 1 || runs[0].Status != crm.StatusPassed {
				t.Fatalf("ran %d times, fetched %d times, %d runs logged", ran.Load(), hits.Load(), len(runs))
			}
			// Not due again for an hour.
			if ok, err := scheds[0].RunDue(context.Background()); ok || err != nil {
				t.Errorf("ran again at once: %v %v", ok, err)
			}
		})
	}
}

// A run the process never finished (killed mid-run) is marked failed.
func TestSchedulerSweepsInterruptedRuns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _, err := counter.Create(ctx, db, counter.NewCounter{Name: "s", Domain: "shop.ru"})
		if err != nil {
			t.Fatal(err)
		}
		// An import whose reader blocks until the test says so, standing in
		// for a process that stopped: its record stays "running".
		release := make(chan struct{})
		done := make(chan *crm.Result)
		go func() {
			res, _ := crm.Import(ctx, db, c.ID, crm.Options{Intake: crm.K50Feed, Source: "TASK"}, func() (crm.RowReader, error) {
				<-release
				return nil, errors.New("gone")
			})
			done <- res
		}()
		var running *crm.Result
		for running == nil {
			runs, err := crm.ListImports(ctx, db, c.ID, crm.ImportQuery{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) == 1 {
				running = runs[0]
			}
		}
		s := &Scheduler{Tasks: &Tasks{DB: db}, RunTimeout: time.Millisecond}
		s.Init()
		time.Sleep(5 * time.Millisecond)
		if err := s.sweep(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := crm.GetImport(ctx, db, c.ID, running.ID)
		if err != nil || got.Status != crm.StatusFailed || !strings.Contains(got.Message, "interrupted") {
			t.Errorf("swept run: %v %+v", err, got)
		}
		close(release)
		<-done
	})
}
