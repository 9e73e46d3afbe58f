package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func TestImportCostsCommand(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			env := map[string]string{"THROUGHLINE_DB": storetest.DSN(t, d)}
			r := run(t, env, "counter", "create", "--name", "Shop", "--domain", "shop.ru", "--json")
			var c struct{ ID int64 }
			if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
				t.Fatal(r.stderr)
			}
			dir := t.TempDir()
			good := filepath.Join(dir, "costs.csv")
			os.WriteFile(good, []byte("\ufeffdate;utm_source;utm_medium;utm_campaign;cost;clicks\r\n"+
				"01.03.2024;yandex;cpc;\"sale; spring\";1 234,50;120\r\n2024-03-01;google;cpc;brand;99,90;7\r\n"), 0o600)

			r = run(t, env, "import", "costs", good, "--counter", itoa(c.ID))
			if r.code != 0 || !strings.Contains(r.stdout, "Imported costs from "+good+": 2 rows read, 2 inserted, 0 updated, 0 unchanged, 0 duplicates, 0 rejected") {
				t.Fatalf("import: %d %q %q", r.code, r.stdout, r.stderr)
			}
			r = run(t, env, "import", "costs", "--counter", itoa(c.ID), "--json", good)
			var res struct {
				Read      int `json:"rows_read"`
				Unchanged int
			}
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || res.Read != 2 || res.Unchanged != 2 {
				t.Fatalf("re-import --json: %d %q %v", r.code, r.stdout, err)
			}

			// Bad rows: refused whole, each line on stderr, exit 1.
			bad := filepath.Join(dir, "bad.csv")
			os.WriteFile(bad, []byte("date,source,medium,campaign,cost\n2024-03-02,vk,social,c,10\n2024-03-02,vk,social,d,ten\n2024-03-32,vk,social,e,1\n"), 0o600)
			r = run(t, env, "import", "costs", bad, "--counter", itoa(c.ID))
			if r.code != 1 || !strings.Contains(r.stdout, "Did not import costs from") ||
				!strings.Contains(r.stderr, "  line 3, column cost: \"ten\" is not a number\n") ||
				!strings.Contains(r.stderr, "  line 4, column date: ") ||
				!strings.Contains(r.stderr, "throughline: import "+bad+" failed: 2 rows rejected, nothing applied") {
				t.Fatalf("bad file: %d %q %q", r.code, r.stdout, r.stderr)
			}
			r = run(t, env, "import", "costs", bad, "--counter", itoa(c.ID), "--skip-bad-rows")
			if r.code != 0 || !strings.Contains(r.stdout, "1 inserted") || !strings.Contains(r.stdout, "2 rejected") || !strings.Contains(r.stderr, "line 3") {
				t.Fatalf("--skip-bad-rows: %d %q %q", r.code, r.stdout, r.stderr)
			}

			// A file that cannot be read as a cost file at all.
			noCost := filepath.Join(dir, "nocost.csv")
			os.WriteFile(noCost, []byte("date,source,medium,campaign\n2024-03-02,vk,social,c\n"), 0o600)
			if r := run(t, env, "import", "costs", noCost, "--counter", itoa(c.ID)); r.code != 1 || !strings.Contains(r.stderr, "cost: required column cost is missing") {
				t.Errorf("no cost column: %d %q", r.code, r.stderr)
			}

			for _, args := range [][]string{
				{"import", "costs", good},
				{"import", "costs", "--counter", itoa(c.ID)},
				{"import", "costs", good, good, "--counter", itoa(c.ID)},
				{"import", "costs", good, "--counter", "x"},
				{"import", "costs", good, "--counter", itoa(c.ID), "--max-import-size", "lots"},
			} {
				if r := run(t, env, args...); r.code != 2 {
					t.Errorf("%v: exit %d %q", args, r.code, r.stderr)
				}
			}
			if r := run(t, env, "import", "costs", filepath.Join(dir, "nope.csv"), "--counter", itoa(c.ID)); r.code != 1 || !strings.Contains(r.stderr, "nope.csv") {
				t.Errorf("missing file: %d %q", r.code, r.stderr)
			}
			if r := run(t, env, "import", "costs", good, "--counter", itoa(c.ID), "--max-import-size", "10B"); r.code != 1 || !strings.Contains(r.stderr, "larger than the limit") {
				t.Errorf("over the size limit: %d %q", r.code, r.stderr)
			}
			if r := run(t, env, "import", "costs", good, "--counter", "9999"); r.code != 1 || !strings.Contains(r.stderr, "counter 9999 not found") {
				t.Errorf("unknown counter: %d %q", r.code, r.stderr)
			}
		})
	}
}
