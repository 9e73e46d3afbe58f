package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// A hit answered 204 is committed: kill -9 the server in the middle of a
// stream of concurrent hits, start it again, and every acknowledged hit is
// in the database.
func TestCollectorSurvivesSIGKILL(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			dataDir := t.TempDir()
			dsn := storetest.DSN(t, d)
			env := []string{"THROUGHLINE_DATA_DIR=" + dataDir, "THROUGHLINE_DB=" + dsn}
			out, err := command(t, env, "counter", "create", "--name", "Shop", "--domain", "shop.ru", "--json").Output()
			if err != nil {
				t.Fatalf("counter create: %v", err)
			}
			var c struct{ ID int64 }
			if err := json.Unmarshal(out, &c); err != nil {
				t.Fatal(err)
			}

			// A short batch window keeps transactions open, so the kill lands
			// while hits wait in a batch, not only between commits.
			s := startServe(t, env, "--commit-max-delay", "2ms", "--collect-rate", "0")
			var (
				mu      sync.Mutex
				acked   = map[string]bool{} // URLs answered 204
				next    atomic.Int64
				stop    = make(chan struct{})
				wg      sync.WaitGroup
				client  = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
				refused atomic.Int64
			)
			for range 16 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						n := next.Add(1)
						page := fmt.Sprintf("https://shop.ru/p?n=%d", n)
						body := fmt.Sprintf(`{"counter":%d,"uuid":"00000000-0000-4000-8000-%012d","url":%q}`, c.ID, n%50, page)
						req, _ := http.NewRequest("POST", "http://"+s.addr+"/collect", strings.NewReader(body))
						req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
						res, err := client.Do(req)
						if err != nil {
							refused.Add(1)
							time.Sleep(time.Millisecond) // the server is gone; keep trying until told to stop
							continue
						}
						res.Body.Close()
						if res.StatusCode == http.StatusNoContent {
							mu.Lock()
							acked[page] = true
							mu.Unlock()
						}
					}
				})
			}
			// Kill once a good stream is flowing.
			deadline := time.Now().Add(20 * time.Second)
			for {
				mu.Lock()
				n := len(acked)
				mu.Unlock()
				if n >= 2000 || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-s.done
			time.Sleep(100 * time.Millisecond) // senders see the dead server
			close(stop)
			wg.Wait()
			if len(acked) < 100 || refused.Load() == 0 {
				t.Fatalf("the kill did not land mid-stream: %d acknowledged, %d refused", len(acked), refused.Load())
			}

			// The server starts again on the same database and takes hits.
			s2 := startServe(t, env)
			if code, body := s2.get(t, "/healthz", ""); code != 200 {
				t.Fatalf("after the crash /healthz: %d %s", code, body)
			}
			if err := s2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			<-s2.done

			db, err := store.Open(context.Background(), dsn, dataDir, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			rows, err := db.Reader().QueryContext(context.Background(), `SELECT url FROM hits WHERE counter_id = $1`, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			stored := map[string]bool{}
			for rows.Next() {
				var u string
				if err := rows.Scan(&u); err != nil {
					t.Fatal(err)
				}
				stored[u] = true
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			lost := 0
			for page := range acked {
				if !stored[page] {
					lost++
				}
			}
			if lost > 0 {
				t.Fatalf("%d of %d acknowledged hits are not in the database", lost, len(acked))
			}
			t.Logf("%d hits acknowledged before SIGKILL, all stored (%d stored in all; %d requests failed after the kill)", len(acked), len(stored), refused.Load())
		})
	}
}
