package store_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func TestMigrateFromEmptyAndRerun(t *testing.T) {
	ctx := context.Background()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.OpenEmpty(t, d)
			ms, err := store.Migrations(d)
			if err != nil {
				t.Fatal(err)
			}
			last := ms[len(ms)-1].Version // numbers may have gaps
			res, err := db.Migrate(ctx)
			if err != nil {
				t.Fatalf("first migrate: %v", err)
			}
			if res.From != 0 || res.To != last {
				t.Fatalf("first migrate went %d→%d, want 0→%d", res.From, res.To, last)
			}
			res, err = db.Migrate(ctx)
			if err != nil {
				t.Fatalf("second migrate: %v", err)
			}
			if res.From != last || res.To != last {
				t.Fatalf("second migrate went %d→%d, want no change at %d", res.From, res.To, last)
			}
			var n int
			if err := db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != len(ms) {
				t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
			}
		})
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		v, err := db.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Writer().ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from_the_future', $2)`,
			v+1, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		_, err = db.Migrate(ctx)
		if !errors.Is(err, store.ErrSchemaTooNew) {
			t.Fatalf("migrate on a newer schema: got %v, want ErrSchemaTooNew", err)
		}
		if !strings.Contains(err.Error(), "newer") {
			t.Fatalf("error does not say what is wrong: %v", err)
		}
	})
}

// Every schema step must exist for both engines, or one engine would silently
// lack a table the code relies on.
func TestMigrationsPairedAcrossDialects(t *testing.T) {
	pg, err := store.Migrations(store.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	lite, err := store.Migrations(store.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if len(pg) != len(lite) {
		t.Fatalf("postgres has %d migrations, sqlite %d", len(pg), len(lite))
	}
	for i := range pg {
		if pg[i].Version != lite[i].Version || pg[i].Name != lite[i].Name {
			t.Errorf("migration %d: postgres %04d_%s, sqlite %04d_%s", i+1, pg[i].Version, pg[i].Name, lite[i].Version, lite[i].Name)
		}
	}
}

// Times go in as UTC and come back equal, and compare in time order in SQL,
// on both engines (on SQLite they are text, so ordering depends on layout).
func TestTimesRoundTripAndOrder(t *testing.T) {
	ctx := context.Background()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE t (k integer PRIMARY KEY, at `+db.Dialect().TimestampType()+` NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		base := time.Date(2026, 3, 29, 1, 59, 59, 0, time.UTC)
		times := []time.Time{
			base,
			base.Add(500 * time.Millisecond),
			base.Add(450 * time.Millisecond),
			base.Add(time.Second),
			base.Add(-time.Microsecond),
			// A non-UTC input must be stored as the same instant.
			base.Add(2 * time.Hour).In(time.FixedZone("MSK", 3*3600)),
		}
		for i, tm := range times {
			if _, err := db.Writer().ExecContext(ctx, `INSERT INTO t (k, at) VALUES ($1, $2)`, i, tm); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := db.Reader().QueryContext(ctx, `SELECT k, at FROM t WHERE at >= $1 ORDER BY at`, base)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var order []int
		for rows.Next() {
			var k int
			var at time.Time
			if err := rows.Scan(&k, &at); err != nil {
				t.Fatal(err)
			}
			if !at.Equal(times[k]) || at.Location() != time.UTC {
				t.Errorf("row %d: got %v, want %v in UTC", k, at, times[k])
			}
			order = append(order, k)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := []int{0, 2, 1, 3, 5}
		if len(order) != len(want) {
			t.Fatalf("order %v, want %v", order, want)
		}
		for i := range want {
			if order[i] != want[i] {
				t.Fatalf("order %v, want %v", order, want)
			}
		}
		var latest time.Time
		if err := db.Reader().QueryRowContext(ctx, `SELECT MAX(at) FROM t`).Scan(&latest); err != nil {
			t.Fatalf("MAX(at) must scan as a time: %v", err)
		}
		if !latest.Equal(times[5]) {
			t.Fatalf("MAX(at) = %v, want %v", latest, times[5])
		}
	})
}

func TestSQLiteReaderRefusesWrites(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	_, err := db.Reader().ExecContext(context.Background(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'x', '2026-01-01 00:00:00+00:00')`)
	if err == nil {
		t.Fatal("a write through the read pool succeeded; it must fail so misuse is caught")
	}
}

func TestOpenErrorsNameTheProblem(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		dsn, want string
	}{
		{"mysql://root@localhost/db", `unsupported database URL scheme "mysql"`},
		{"postgres://127.0.0.1:1/none?connect_timeout=2", "connect to PostgreSQL"},
		{"postgres://%zz", "PostgreSQL URL"},
		{t.TempDir() + "/missing/dir/x.db", "does not exist"},
	}
	for _, c := range cases {
		db, err := store.Open(ctx, c.dsn, t.TempDir(), store.Options{})
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", c.dsn)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q) = %v, want it to mention %q", c.dsn, err, c.want)
		}
	}
}

func TestOpenDefaultsToSQLiteInDataDir(t *testing.T) {
	dir := t.TempDir() + "/data"
	db, err := store.Open(context.Background(), "", dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Dialect() != store.SQLite || db.Target() != dir+"/"+store.DefaultFile {
		t.Fatalf("got %s at %s, want sqlite at %s/%s", db.Dialect(), db.Target(), dir, store.DefaultFile)
	}
}

// migratedBelow returns a new database with the migrations before version
// applied (and recorded), as a database last migrated by an older binary.
func migratedBelow(t *testing.T, d store.Dialect, version int) *store.DB {
	t.Helper()
	ctx := context.Background()
	db := storetest.OpenEmpty(t, d)
	ms, err := store.Migrations(d)
	if err != nil {
		t.Fatal(err)
	}
	w := db.Writer()
	if _, err := w.ExecContext(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
		applied_at `+d.TimestampType()+` NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version >= version {
			break
		}
		if _, err := w.ExecContext(ctx, m.SQL); err != nil {
			t.Fatalf("migration %d: %v", m.Version, err)
		}
		if _, err := w.ExecContext(ctx, `INSERT INTO schema_migrations VALUES ($1, $2, $3)`, m.Version, m.Name, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// Migration 14 gives the calls to static numbers stored before it the
// traffic type offline (their orders' touches had it already), and has the
// rollups of their days rebuilt; other calls keep theirs.
func TestMigration14StaticCallsOffline(t *testing.T) {
	ctx := context.Background()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			db := migratedBelow(t, d, 14)
			w := db.Writer()
			created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			var counterID int64
			if err := w.QueryRowContext(ctx, `INSERT INTO counters (name, domain, timezone, created_at, updated_at) VALUES ('Shop', 'shop.ru', 'Europe/Moscow', $1, $1) RETURNING id`,
				created).Scan(&counterID); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				id, sid, typ, source string
				at                   time.Time
			}{
				{"static", "", "", "billboard", time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)}, // 2 March in Moscow: the UTC day is marked
				{"lease", "s1", "ad", "yandex", time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)},
				{"unidentified", "", "", "", time.Date(2026, 3, 6, 10, 0, 0, 0, time.UTC)},
			} {
				if _, err := w.ExecContext(ctx, `INSERT INTO calls (counter_id, provider, external_id, direction, caller, caller_raw, caller_md5, tracked_number,
					started_at, disposition, recording_url, employee, ended, match, match_reason, lease_id, sid, uuid, traffic_type, source, medium, campaign,
					is_unique, created_at, updated_at)
					VALUES ($1, 'generic', $2, 'in', '79161234567', '79161234567', '', '74951112233', $3, '', '', '', `+d.Bool(true)+`, '', '', '', $4, '', $5, $6, '', '',
					`+d.Bool(true)+`, $3, $3)`, counterID, c.id, c.at, c.sid, c.typ, c.source); err != nil {
					t.Fatal(err)
				}
			}
			if res, err := db.Migrate(ctx); err != nil || res.From != 13 {
				t.Fatalf("migrate from 13: %+v, %v", res, err)
			}
			types := map[string]string{}
			rows, err := db.Reader().QueryContext(ctx, `SELECT external_id, traffic_type FROM calls WHERE counter_id = $1`, counterID)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id, typ string
				if err := rows.Scan(&id, &typ); err != nil {
					t.Fatal(err)
				}
				types[id] = typ
			}
			rows.Close()
			if want := map[string]string{"static": "offline", "lease": "ad", "unidentified": ""}; !maps.Equal(types, want) {
				t.Errorf("traffic types after migration 14: %v, want %v", types, want)
			}
			var days []string
			rows, err = db.Reader().QueryContext(ctx, `SELECT utc_day FROM rollup_dirty WHERE counter_id = $1 ORDER BY utc_day`, counterID)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var day string
				if err := rows.Scan(&day); err != nil {
					t.Fatal(err)
				}
				days = append(days, day)
			}
			rows.Close()
			if !slices.Equal(days, []string{"2026-03-01"}) {
				t.Errorf("days to rebuild: %v, want the static call's UTC day", days)
			}
		})
	}
}

// Migration 13 makes sessions insert-only: the sessions stored before it
// keep every column that remains, and a counter's deletion no longer
// reaches them through a foreign key.
func TestMigration13KeepsSessions(t *testing.T) {
	ctx := context.Background()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			db := migratedBelow(t, d, 13)
			w := db.Writer()
			started := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
			var counterID int64
			if err := w.QueryRowContext(ctx, `INSERT INTO counters (name, domain, timezone, created_at, updated_at) VALUES ('Shop', 'shop.ru', 'UTC', $1, $1) RETURNING id`,
				started).Scan(&counterID); err != nil {
				t.Fatal(err)
			}
			if _, err := w.ExecContext(ctx, `INSERT INTO sessions (counter_id, sid, uuid, started_at, last_activity_at, landing_url, referrer,
				utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids, traffic_type, source, medium, pageviews, events, device, browser, os, ip)
				VALUES ($1, 's1', 'u1', $2, $3, 'https://shop.ru/?yclid=7', 'https://ya.ru/', 'yandex', 'cpc', 'boots', 'c', 't', '{"yclid":"7"}',
				'ad', 'yandex', 'cpc', 3, 1, 'mobile', 'Safari', 'iOS', '203.0.113.0')`, counterID, started, started.Add(5*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if res, err := db.Migrate(ctx); err != nil || res.From != 12 {
				t.Fatalf("migrate from 12: %+v, %v", res, err)
			}
			var sid, uuid, landing, referrer, utm, clicks, typ, device, browser, os, ip string
			var at time.Time
			err := db.Reader().QueryRowContext(ctx, `SELECT sid, uuid, started_at, landing_url, referrer,
				utm_source || '/' || utm_medium || '/' || utm_campaign || '/' || utm_content || '/' || utm_term, click_ids,
				traffic_type || '/' || source || '/' || medium, device, browser, os, ip
				FROM sessions WHERE counter_id = $1`, counterID).Scan(&sid, &uuid, &at, &landing, &referrer, &utm, &clicks, &typ, &device, &browser, &os, &ip)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join([]string{sid, uuid, at.UTC().Format(time.RFC3339), landing, referrer, utm, clicks, typ, device, browser, os, ip}, " ")
			want := "s1 u1 2026-11-30T10:00:00Z https://shop.ru/?yclid=7 https://ya.ru/ yandex/cpc/boots/c/t {\"yclid\":\"7\"} ad/yandex/cpc mobile Safari iOS 203.0.113.0"
			if got != want {
				t.Errorf("after migration 13:\n got %s\nwant %s", got, want)
			}
			// No foreign key: a session of a counter id that does not exist is
			// accepted (as hits always were); demo.Reset deletes by counter.
			if _, err := w.ExecContext(ctx, `INSERT INTO sessions (counter_id, sid, uuid, started_at, landing_url, referrer,
				utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids, traffic_type, source, medium, device, browser, os, ip)
				VALUES ($1, 's2', 'u2', $2, '', '', '', '', '', '', '', '{}', 'direct', '', '', '', '', '', '')`, counterID+100, started); err != nil {
				t.Errorf("session of another counter id: %v", err)
			}
		})
	}
}
