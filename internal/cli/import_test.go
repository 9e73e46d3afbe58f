package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func TestImportOrdersCommand(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			env := map[string]string{"THROUGHLINE_DB": storetest.DSN(t, d)}
			r := run(t, env, "counter", "create", "--name", "Shop", "--domain", "shop.ru", "--json")
			var c struct{ ID int64 }
			if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
				t.Fatal(r.stderr)
			}
			dir := t.TempDir()
			good := filepath.Join(dir, "feed.csv")
			os.WriteFile(good, []byte("\ufeffdate;orderId;callerPhone;sid;uuid;revenue\r\n2024-03-01 12:00:00;F-1;8 (999) 555-11-11;;;100,50\r\n2024-03-01 13:00:00;F-2;;;;7\r\n"), 0o600)

			// The flags may follow the file, as the README writes it.
			r = run(t, env, "import", "orders", good, "--counter", itoa(c.ID))
			if r.code != 0 || !strings.Contains(r.stdout, "2 rows read, 2 inserted, 0 updated, 0 unchanged, 0 rejected") {
				t.Fatalf("import: %d %q %q", r.code, r.stdout, r.stderr)
			}
			r = run(t, env, "import", "orders", "--counter", itoa(c.ID), "--json", good)
			var res struct {
				Status    string
				Unchanged int
				Origin    string
			}
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || res.Status != "passed" || res.Unchanged != 2 || res.Origin != good {
				t.Fatalf("re-import --json: %d %q %v", r.code, r.stdout, err)
			}

			// The imported orders wait for matching; match does it now.
			r = run(t, env, "match", "--counter", itoa(c.ID))
			if r.code != 0 || !strings.Contains(r.stdout, "Matched 2 orders of counter") || !strings.Contains(r.stdout, "2 not found") {
				t.Fatalf("match: %d %q %q", r.code, r.stdout, r.stderr)
			}
			if r = run(t, env, "match", "--counter", itoa(c.ID)); r.code != 0 || !strings.Contains(r.stdout, "Matched 0 orders") {
				t.Fatalf("match with an empty queue: %d %q", r.code, r.stdout)
			}
			if r = run(t, env, "match", "--counter", itoa(c.ID), "--all", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"orders": 2`) {
				t.Fatalf("match --all: %d %q", r.code, r.stdout)
			}
			if r = run(t, env, "match"); r.code != 2 || !strings.Contains(r.stderr, "--counter ID is required") {
				t.Fatalf("match without a counter: %d %q", r.code, r.stderr)
			}
			if r = run(t, env, "match", "--counter", "999999"); r.code != 1 || !strings.Contains(r.stderr, "counter 999999 not found") {
				t.Fatalf("match of a missing counter: %d %q", r.code, r.stderr)
			}

			// A bad row: refused whole, its line on stderr, exit 1.
			bad := filepath.Join(dir, "bad.csv")
			os.WriteFile(bad, []byte("date;orderId;callerPhone;sid;uuid;amount\n2024-03-01 12:00:00;F-3;;;;1\n2024-03-01;F-4;;;;many\n"), 0o600)
			r = run(t, env, "import", "orders", bad, "--counter", itoa(c.ID))
			if r.code != 1 || !strings.Contains(r.stderr, "line 3, column amount") || !strings.Contains(r.stdout, "Did not import") {
				t.Fatalf("bad file: %d %q %q", r.code, r.stdout, r.stderr)
			}
			r = run(t, env, "import", "orders", bad, "--counter", itoa(c.ID), "--skip-bad-rows")
			if r.code != 0 || !strings.Contains(r.stdout, "1 inserted") || !strings.Contains(r.stdout, "1 rejected") {
				t.Fatalf("--skip-bad-rows: %d %q %q", r.code, r.stdout, r.stderr)
			}

			// Simple orders, and a URL.
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("id,create_date_time,emails,revenue\nS-1,01.03.2024 10:00,a@b.ru,10\n"))
			}))
			defer srv.Close()
			r = run(t, env, "import", "orders", srv.URL+"/feed", "--counter", itoa(c.ID), "--format", "simple_orders")
			if r.code != 1 || !strings.Contains(r.stderr, "loopback, private or link-local") {
				t.Fatalf("private URL without permission: %d %q", r.code, r.stderr)
			}
			r = run(t, env, "import", "orders", srv.URL+"/feed", "--counter", itoa(c.ID), "--format", "simple_orders", "--allow-private-feeds")
			if r.code != 0 || !strings.Contains(r.stdout, "1 inserted") {
				t.Fatalf("URL import: %d %q %q", r.code, r.stdout, r.stderr)
			}

			for _, args := range [][]string{
				{"import", "orders", good},
				{"import", "orders", "--counter", itoa(c.ID)},
				{"import", "orders", good, "--counter", itoa(c.ID), "--format", "xml"},
				{"import", "orders", good, "--counter", itoa(c.ID), "--max-import-size", "lots"},
			} {
				if r := run(t, env, args...); r.code != 2 {
					t.Errorf("%v: exit %d %q", args, r.code, r.stderr)
				}
			}
			if r := run(t, env, "import", "orders", filepath.Join(dir, "nope.csv"), "--counter", itoa(c.ID)); r.code != 1 || !strings.Contains(r.stderr, "nope.csv") {
				t.Errorf("missing file: %d %q", r.code, r.stderr)
			}
			if r := run(t, env, "import", "orders", good, "--counter", itoa(c.ID), "--max-import-size", "10B"); r.code != 1 || !strings.Contains(r.stderr, "larger than the limit") {
				t.Errorf("over the size limit: %d %q", r.code, r.stderr)
			}
			if r := run(t, env, "import", "orders", good, "--counter", "9999"); r.code != 1 || !strings.Contains(r.stderr, "counter 9999 not found") {
				t.Errorf("unknown counter: %d %q", r.code, r.stderr)
			}
		})
	}
}

// On a terminal the import redraws one progress line; in a pipe it is silent.
func TestImportProgress(t *testing.T) {
	var buf strings.Builder
	p := newProgress(&buf)
	p.update(crm.Progress{Phase: crm.PhaseCheck, Rows: 10_000})
	if buf.Len() != 0 {
		t.Fatalf("progress written to a non-terminal: %q", buf.String())
	}
	p.tty = true
	p.update(crm.Progress{Phase: crm.PhaseCheck, Rows: 1_230_000})
	p.update(crm.Progress{Phase: crm.PhaseApply, Rows: 20_000})
	p.done()
	out := buf.String()
	if !strings.Contains(out, "\r\033[Kchecking: 1,230,000 rows (") || !strings.Contains(out, "applying: 20,000 rows (") || !strings.HasSuffix(out, "\r\033[K") {
		t.Errorf("progress: %q", out)
	}
}

func TestHookCommands(t *testing.T) {
	env := map[string]string{"THROUGHLINE_DATA_DIR": t.TempDir()}
	r := run(t, env, "counter", "create", "--name", "Shop", "--domain", "shop.ru", "--json")
	var c struct{ ID int64 }
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatal(r.stderr)
	}
	r = run(t, env, "hook", "create", "--counter", itoa(c.ID), "--provider", "zadarma", "--secret", "s", "--json")
	var h struct{ ID, Path, Token string }
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil || r.code != 0 || !strings.HasPrefix(h.Path, "/hooks/calls/zadarma/") || strings.Contains(r.stdout, `"s"`) {
		t.Fatalf("hook create: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "hook", "list", "--counter", itoa(c.ID)); r.code != 0 || !strings.Contains(r.stdout, h.Path) {
		t.Errorf("hook list: %d %q", r.code, r.stdout)
	}
	if r := run(t, env, "hook", "revoke", "--counter", itoa(c.ID), h.ID); r.code != 0 {
		t.Errorf("hook revoke: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "hook", "revoke", "--counter", itoa(c.ID), h.ID); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("revoking twice: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "hook", "create", "--counter", itoa(c.ID)); r.code != 2 {
		t.Errorf("no provider: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "hook", "create", "--counter", itoa(c.ID), "--provider", "mango"); r.code != 1 || !strings.Contains(r.stderr, "api_key") {
		t.Errorf("mango without key: %d %q", r.code, r.stderr)
	}
}
