package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// A feed URL's query key is never printed: not when the server answers
// 404, not when nothing listens there.
func TestImportKeepsTheFeedKeyOffTheTerminal(t *testing.T) {
	const key = "SECRET-k3y"
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			env := map[string]string{"THROUGHLINE_DB": storetest.DSN(t, d)}
			r := run(t, env, "counter", "create", "--name", "Shop", "--domain", "shop.ru", "--json")
			var c struct{ ID int64 }
			if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
				t.Fatal(r.stderr)
			}
			for _, u := range []struct{ url, want string }{
				{srv.URL + "/k50.csv?apikey=" + key, "404"},
				{"http://" + closed + "/k50.csv?apikey=" + key, "refused"},
			} {
				for _, extra := range [][]string{nil, {"--json"}} {
					args := append([]string{"import", "orders", u.url, "--counter", itoa(c.ID), "--allow-private-feeds"}, extra...)
					r := run(t, env, args...)
					if r.code != 1 || !strings.Contains(r.stderr, u.want) || !strings.Contains(r.stdout+r.stderr, "apikey=xxxxx") ||
						strings.Contains(r.stdout+r.stderr, key) {
						t.Errorf("%v: exit %d\nstdout %q\nstderr %q\nwant exit 1, %q said, and the key hidden", args, r.code, r.stdout, r.stderr, u.want)
					}
				}
			}
		})
	}
}
