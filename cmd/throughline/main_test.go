package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// The test binary doubles as the throughline binary: run with this variable
// set, it executes main instead of the tests. Tests then drive real processes
// — real signals, real exit codes — without a separate build step.
const runMainEnv = "THROUGHLINE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// command returns the throughline binary with args, in an environment
// stripped of the developer's own THROUGHLINE_* settings.
func command(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "THROUGHLINE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, runMainEnv+"=1")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// served is a running `throughline serve` child process.
type served struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	logs []map[string]any
	done chan error
}

func startServe(t *testing.T, env []string, args ...string) *served {
	t.Helper()
	cmd := command(t, env, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, done: make(chan error, 1)}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				rec = map[string]any{"msg": "(not JSON) " + sc.Text()}
			}
			s.mu.Lock()
			s.logs = append(s.logs, rec)
			s.mu.Unlock()
			if rec["msg"] == "listening" {
				listening <- rec["addr"].(string)
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	select {
	case s.addr = <-listening:
	case err := <-s.done:
		t.Fatalf("serve exited before listening (%v); log:\n%s", err, s.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start listening in 30s; log:\n%s", s.logText())
	}
	return s
}

func (s *served) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, rec := range s.logs {
		fmt.Fprintln(&b, rec)
	}
	return b.String()
}

func (s *served) logged(msg string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range s.logs {
		if rec["msg"] == msg {
			return true
		}
	}
	return false
}

func (s *served) get(t *testing.T, path, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.addr+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestServeAnswersAndStopsOnSIGTERM(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			env := []string{"THROUGHLINE_DATA_DIR=" + t.TempDir()}
			if d == store.Postgres {
				env = append(env, "THROUGHLINE_DB="+storetest.DSN(t, d))
			}
			s := startServe(t, env)

			if code, body := s.get(t, "/healthz", ""); code != 200 || !strings.Contains(body, string(d)) {
				t.Fatalf("/healthz: %d %s", code, body)
			}

			// The CLI works on the same database while the server runs.
			out, err := command(t, env, "counter", "create", "--name", "Live", "--domain", "live.ru", "--json").Output()
			if err != nil {
				t.Fatalf("counter create beside a running server: %v", err)
			}
			var c struct {
				ID    int64
				Token string
			}
			json.Unmarshal(out, &c)
			if code, body := s.get(t, fmt.Sprintf("/api/v1/counters/%d", c.ID), c.Token); code != 200 || !strings.Contains(body, `"name":"Live"`) {
				t.Fatalf("server does not see the CLI's counter: %d %s", code, body)
			}

			if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-s.done:
				if err != nil {
					t.Fatalf("serve exited with %v after SIGTERM; log:\n%s", err, s.logText())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("serve did not stop within 20s of SIGTERM; log:\n%s", s.logText())
			}
			if !s.logged("stopped") {
				t.Fatalf("no 'stopped' in the log:\n%s", s.logText())
			}
		})
	}
}

func TestServeRefusesBadDatabaseURL(t *testing.T) {
	out, err := command(t, nil, "serve", "--addr", "127.0.0.1:0", "--db", "postgres://127.0.0.1:1/x?connect_timeout=2").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("want exit code 1, got %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "connect to PostgreSQL postgres://127.0.0.1:1/x") || !strings.Contains(lines[0], "connection refused") {
		t.Fatalf("want one line naming the database and the cause, got:\n%s", out)
	}
}
