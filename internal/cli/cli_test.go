package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

func TestCounterAndTokenCommands(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			// The database comes from the environment, as an operator would set it.
			env := map[string]string{"THROUGHLINE_DB": storetest.DSN(t, d)}

			r := run(t, env, "counter", "create", "--name", "Магазин", "--domain", "https://shop.example.ru/", "--json")
			if r.code != 0 {
				t.Fatalf("counter create: %d %s", r.code, r.stderr)
			}
			var created struct {
				ID    int64
				Token string
			}
			if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || created.ID <= 0 || created.Token == "" {
				t.Fatalf("counter create --json printed %q (%v)", r.stdout, err)
			}

			r = run(t, env, "counter", "list")
			if r.code != 0 || !strings.Contains(r.stdout, "Магазин") || !strings.Contains(r.stdout, "shop.example.ru") {
				t.Fatalf("counter list: %d %q %q", r.code, r.stdout, r.stderr)
			}

			r = run(t, env, "token", "create", "--counter", itoa(created.ID), "--name", "crm", "--json")
			if r.code != 0 {
				t.Fatalf("token create: %d %s", r.code, r.stderr)
			}
			var tok struct{ ID, Token string }
			json.Unmarshal([]byte(r.stdout), &tok)

			r = run(t, env, "token", "revoke", tok.Token) // by the token's text, no --counter needed
			if r.code != 0 || !strings.Contains(r.stdout, "Revoked token "+tok.ID) {
				t.Fatalf("token revoke: %d %q %q", r.code, r.stdout, r.stderr)
			}
			r = run(t, env, "token", "list", "--counter", itoa(created.ID), "--json")
			var list []struct {
				ID        string
				RevokedAt *string `json:"revoked_at"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 || list[1].ID != tok.ID || list[1].RevokedAt == nil || list[0].RevokedAt != nil {
				t.Fatalf("token list after revoke: %q (%v)", r.stdout, err)
			}

			r = run(t, env, "token", "revoke", "--counter", itoa(created.ID), "nosuchtoken00")
			if r.code != 1 || !strings.Contains(r.stderr, "not found") {
				t.Fatalf("revoking an unknown token: %d %q", r.code, r.stderr)
			}
			r = run(t, env, "token", "create", "--counter", "424242")
			if r.code != 1 || r.stderr != "throughline: counter 424242 not found\n" {
				t.Fatalf("token for a missing counter: %d %q", r.code, r.stderr)
			}
		})
	}
}

// Flags beat environment variables, which beat defaults.
func TestFlagEnvironmentPrecedence(t *testing.T) {
	envDir := t.TempDir()
	flagDir := t.TempDir()
	env := map[string]string{"THROUGHLINE_DATA_DIR": envDir}

	if r := run(t, env, "counter", "create", "--name", "from env", "--domain", "a.ru"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := run(t, env, "counter", "create", "--name", "from flag", "--domain", "b.ru", "--data-dir", flagDir); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := run(t, map[string]string{}, "counter", "list", "--data-dir", envDir)
	if !strings.Contains(r.stdout, "from env") || strings.Contains(r.stdout, "from flag") {
		t.Fatalf("env data dir holds: %q", r.stdout)
	}
	r = run(t, map[string]string{}, "counter", "list", "--data-dir", flagDir)
	if !strings.Contains(r.stdout, "from flag") || strings.Contains(r.stdout, "from env") {
		t.Fatalf("flag data dir holds: %q", r.stdout)
	}
}

// Every way of calling a command wrongly exits non-zero with one line that
// names the problem.
func TestBadInvocationsExitWithOneLine(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		env  map[string]string
		args []string
		code int
		want string
	}{
		{nil, []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{nil, []string{"serve", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{nil, []string{"serve", "--data-dir", dir, "extra"}, 2, `unexpected argument "extra"`},
		{nil, []string{"serve", "--data-dir", dir, "--log-level", "loud"}, 2, "--log-level"},
		{map[string]string{"THROUGHLINE_LOG_FORMAT": "xml"}, []string{"serve", "--data-dir", dir}, 2, "--log-format \"xml\""},
		{nil, []string{"serve", "--data-dir", dir, "--shutdown-timeout", "soon"}, 2, "--shutdown-timeout"},
		{nil, []string{"serve", "--db", "mysql://root@localhost/x"}, 1, `unsupported database URL scheme "mysql"`},
		{nil, []string{"migrate", "--db", "postgres://127.0.0.1:1/x?connect_timeout=2"}, 1, "connect to PostgreSQL postgres://127.0.0.1:1/x"},
		{nil, []string{"serve", "--data-dir", dir, "--addr", "not-an-address"}, 1, "listen on not-an-address"},
		{nil, []string{"counter"}, 2, "missing subcommand"},
		{nil, []string{"counter", "delete"}, 2, `unknown subcommand "delete"`},
		{nil, []string{"counter", "create", "--data-dir", dir, "--name", "x"}, 2, "--domain: is required"},
		{nil, []string{"counter", "create", "--data-dir", dir, "--name", "x", "--domain", "a.ru", "--timezone", "Moscow"}, 2, "timezone"},
		{nil, []string{"token", "create", "--data-dir", dir}, 2, "--counter ID is required"},
		{nil, []string{"token", "create", "--counter", "abc"}, 2, `"abc" is not a counter id`},
		{nil, []string{"token", "revoke", "--data-dir", dir}, 2, "give one token id"},
	}
	for _, c := range cases {
		r := run(t, c.env, c.args...)
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if r.code != c.code || len(lines) != 1 || !strings.Contains(r.stderr, c.want) || !strings.HasPrefix(r.stderr, "throughline") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line with %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	if r := run(t, nil, "help"); r.code != 0 || !strings.Contains(r.stdout, "serve") {
		t.Fatalf("help: %d %q", r.code, r.stdout)
	}
	if r := run(t, nil, "serve", "-h"); r.code != 0 || !strings.Contains(r.stdout, "THROUGHLINE_ADDR") {
		t.Fatalf("serve -h: %d %q", r.code, r.stdout)
	}
	if r := run(t, nil, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "throughline ") {
		t.Fatalf("version: %d %q", r.code, r.stdout)
	}
	if r := run(t, nil); r.code != 2 || !strings.Contains(r.stderr, "Usage") {
		t.Fatalf("no arguments: %d %q", r.code, r.stderr)
	}
}

func TestMigrateReportsVersions(t *testing.T) {
	dir := t.TempDir()
	r := run(t, nil, "migrate", "--data-dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "migrated from schema version 0 to") {
		t.Fatalf("first migrate: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, nil, "migrate", "--data-dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "up to date") {
		t.Fatalf("second migrate: %d %q", r.code, r.stdout)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
