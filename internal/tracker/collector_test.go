package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

const (
	chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	iphoneUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	botUA    = "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"
)

type collectorFixture struct {
	db   *store.DB
	c    *Collector
	shop counter.Counter
	t0   time.Time
}

func newCollectorFixture(t *testing.T, db *store.DB, cfg Config) *collectorFixture {
	t.Helper()
	shop, _, err := counter.Create(context.Background(), db, counter.NewCounter{Name: "Shop", Domain: "shop.ru"})
	if err != nil {
		t.Fatal(err)
	}
	f := &collectorFixture{db: db, shop: shop, t0: time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)}
	f.c = NewCollector(db, cfg)
	t.Cleanup(func() { f.c.Close(context.Background()) })
	return f
}

// hit builds a validated pageview, as the HTTP layer would.
func (f *collectorFixture) hit(t *testing.T, uuid, sid, rawURL string, at time.Time) Hit {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return Hit{Counter: f.shop, UUID: uuid, LastSID: sid, Type: Pageview, URL: u, Title: "Page",
		Props: "{}", At: at, UserAgent: chromeUA, IP: netip.MustParseAddr("203.0.113.77"), Campaign: ParseCampaign(u)}
}

func (f *collectorFixture) collect(t *testing.T, h Hit) string {
	t.Helper()
	res, err := f.c.Collect(context.Background(), h)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	if res.SID == "" || !validID(res.SID) {
		t.Fatalf("collect returned sid %q", res.SID)
	}
	return res.SID
}

func count(t *testing.T, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestCollectorSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newCollectorFixture(t, db, Config{})
		visitor := newID()
		ad := "https://shop.ru/boots?utm_source=yandex&utm_medium=cpc&utm_campaign=boots&yclid=111"

		s1 := f.collect(t, f.hit(t, visitor, "", ad, f.t0))
		if got := f.collect(t, f.hit(t, visitor, s1, ad, f.t0.Add(time.Minute))); got != s1 {
			t.Errorf("reload of the ad landing: sid %s, want %s", got, s1)
		}
		if got := f.collect(t, f.hit(t, visitor, s1, "https://shop.ru/cart", f.t0.Add(2*time.Minute))); got != s1 {
			t.Errorf("next page: sid %s, want %s", got, s1)
		}
		// The browser lost its sid (a new tab before the answer came back):
		// the visitor's latest session continues.
		if got := f.collect(t, f.hit(t, visitor, "", "https://shop.ru/cart", f.t0.Add(3*time.Minute))); got != s1 {
			t.Errorf("no sid, same visitor: sid %s, want %s", got, s1)
		}
		s2 := f.collect(t, f.hit(t, visitor, s1, "https://shop.ru/boots?utm_source=yandex&utm_medium=cpc&utm_campaign=boots&yclid=222", f.t0.Add(4*time.Minute)))
		if s2 == s1 {
			t.Error("a new ad click continued the old session")
		}
		s3 := f.collect(t, f.hit(t, visitor, s2, "https://shop.ru/", f.t0.Add(40*time.Minute)))
		if s3 == s2 {
			t.Error("a hit after 36 idle minutes continued the session")
		}

		// A restarted collector knows nothing in memory: the database decides.
		if err := f.c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := f.c.Collect(context.Background(), f.hit(t, visitor, s3, "https://shop.ru/", f.t0.Add(41*time.Minute))); !errors.Is(err, ErrClosed) {
			t.Fatalf("collect after close: err = %v, want ErrClosed", err)
		}
		f.c = NewCollector(db, Config{})
		if got := f.collect(t, f.hit(t, visitor, s3, "https://shop.ru/about", f.t0.Add(42*time.Minute))); got != s3 {
			t.Errorf("after restart: sid %s, want %s", got, s3)
		}
		if got := f.collect(t, f.hit(t, visitor, "", "https://shop.ru/contacts", f.t0.Add(43*time.Minute))); got != s3 {
			t.Errorf("after restart, no sid: sid %s, want %s", got, s3)
		}
		// A sid of someone else's session does not merge two visitors.
		other := newID()
		if got := f.collect(t, f.hit(t, other, s3, "https://shop.ru/", f.t0.Add(44*time.Minute))); got == s3 {
			t.Error("another visitor joined the session by sending its sid")
		}

		ctx := context.Background()
		first, err := GetSession(ctx, db, f.shop.ID, s1)
		if err != nil {
			t.Fatal(err)
		}
		if first.UUID != visitor || first.Pageviews != 4 || len(first.Hits) != 4 || first.LandingURL != ad {
			t.Errorf("session 1 = %d pageviews, %d hits, landing %s", first.Pageviews, len(first.Hits), first.LandingURL)
		}
		if !first.StartedAt.Equal(f.t0) || !first.LastActivityAt.Equal(f.t0.Add(3*time.Minute)) {
			t.Errorf("session 1 ran %v – %v, want %v – %v", first.StartedAt, first.LastActivityAt, f.t0, f.t0.Add(3*time.Minute))
		}
		if first.Traffic.Type != Ad || first.UTM.Source != "yandex" || first.UTM.Campaign != "boots" || first.ClickIDs["yclid"] != "111" {
			t.Errorf("session 1 source = %+v %+v %v", first.Traffic, first.UTM, first.ClickIDs)
		}
		if first.IP != "203.0.113.0" || first.Device != "desktop" || first.Browser != "Chrome" || first.OS != "Windows" {
			t.Errorf("session 1 client = ip %s, %s/%s/%s", first.IP, first.Device, first.Browser, first.OS)
		}
		if first.Hits[2].URL != "https://shop.ru/cart" || !first.Hits[2].At.Equal(f.t0.Add(2*time.Minute)) {
			t.Errorf("session 1 third hit = %+v", first.Hits[2])
		}
		if n := count(t, db, `SELECT count(*) FROM sessions WHERE counter_id = $1 AND uuid = $2`, f.shop.ID, visitor); n != 3 {
			t.Errorf("visitor has %d sessions, want 3", n)
		}
		if _, err := GetSession(ctx, db, f.shop.ID+1000, s1); !errors.Is(err, ErrNotFound) {
			t.Errorf("session of another counter: err = %v, want ErrNotFound", err)
		}
		// The new sessions' day is marked for the report rollups.
		if n := count(t, db, `SELECT count(*) FROM rollup_dirty WHERE counter_id = $1 AND utc_day = $2`, f.shop.ID, f.t0.UTC().Format("2006-01-02")); n != 1 {
			t.Errorf("the sessions' day is not marked changed for the reports")
		}
	})
}

// Hits of one visitor that arrive at the same moment, before the browser
// knows any sid, make one session, not several.
func TestCollectorConcurrentHitsOneSession(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newCollectorFixture(t, db, Config{MaxDelay: 2 * time.Millisecond})
		const visitors, perVisitor = 20, 10
		var wg sync.WaitGroup
		sids := make([][]string, visitors)
		ids := make([]string, visitors)
		for v := range visitors {
			ids[v] = newID()
			sids[v] = make([]string, perVisitor)
			for i := range perVisitor {
				wg.Go(func() {
					res, err := f.c.Collect(context.Background(), f.hit(t, ids[v], "", "https://shop.ru/p", f.t0.Add(time.Duration(i)*time.Second)))
					if err != nil {
						t.Error(err)
					}
					sids[v][i] = res.SID
				})
			}
		}
		wg.Wait()
		for v := range visitors {
			for i := range perVisitor {
				if sids[v][i] != sids[v][0] {
					t.Fatalf("visitor %d got sids %v", v, sids[v])
				}
			}
			if n := count(t, db, `SELECT count(*) FROM hits WHERE counter_id = $1 AND sid = $2 AND type = 'pageview'`, f.shop.ID, sids[v][0]); n != perVisitor {
				t.Errorf("visitor %d session has %d pageviews, want %d", v, n, perVisitor)
			}
		}
		if n := count(t, db, `SELECT count(*) FROM sessions WHERE counter_id = $1`, f.shop.ID); n != visitors {
			t.Errorf("%d sessions, want %d", n, visitors)
		}
		if n := count(t, db, `SELECT count(*) FROM hits WHERE counter_id = $1`, f.shop.ID); n != visitors*perVisitor {
			t.Errorf("%d hits, want %d", n, visitors*perVisitor)
		}
		// Group commit: the 200 hits shared transactions.
		var m dto.Metric
		if err := f.c.m.batch.Write(&m); err != nil {
			t.Fatal(err)
		}
		commits := m.GetHistogram().GetSampleCount()
		if commits == 0 || commits > visitors*perVisitor/4 {
			t.Errorf("%d hits took %d commits; want group commit (at most a quarter as many commits as hits)", visitors*perVisitor, commits)
		}
		t.Logf("%d hits in %d commits", visitors*perVisitor, commits)
	})
}

func TestCollectorCountsBotsWithoutStoringThem(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newCollectorFixture(t, db, Config{})
		for i, why := range []string{"YandexBot", "YandexBot", "HTTP library curl/8.5.0"} {
			h := f.hit(t, newID(), "", "https://shop.ru/", f.t0)
			h.UserAgent = botUA
			if i == 2 {
				h.UserAgent = "curl/8.5.0"
			}
			res, err := f.c.Collect(context.Background(), h)
			if err != nil || res.Robot != why || res.SID != "" {
				t.Fatalf("bot hit: %+v, %v; want a robot's for %q", res, err, why)
			}
		}
		human := f.hit(t, newID(), "", "https://shop.ru/", f.t0)
		human.UserAgent = iphoneUA
		sid := f.collect(t, human)
		if n := count(t, db, `SELECT count(*) FROM sessions WHERE counter_id = $1`, f.shop.ID); n != 1 {
			t.Errorf("%d sessions stored, want only the person's", n)
		}
		if n := count(t, db, `SELECT count(*) FROM hits WHERE counter_id = $1`, f.shop.ID); n != 1 {
			t.Errorf("%d hits stored, want 1", n)
		}
		day := f.t0.In(f.shop.Location()).Format(time.DateOnly)
		if n := count(t, db, `SELECT hits FROM bot_hits WHERE counter_id = $1 AND day = $2`, f.shop.ID, day); n != 3 {
			t.Errorf("bot hits counted = %d, want 3", n)
		}
		s, err := GetSession(context.Background(), db, f.shop.ID, sid)
		if err != nil || s.Device != "mobile" || s.OS != "iOS" {
			t.Errorf("iPhone session: %+v, %v", s, err)
		}
	})
}

// A User-Agent header may hold bytes that are not UTF-8 (net/http lets them
// through): the browser and OS names taken from it are stored as valid text
// on both engines, not refused by PostgreSQL with the batch around them.
func TestCollectorStoresAUserAgentThatIsNotUTF8(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newCollectorFixture(t, db, Config{})
		h := f.hit(t, newID(), "", "https://shop.ru/", f.t0)
		h.UserAgent = "Mozilla/5.0 (X11; Linux x86_64) Foo\xc0bar/1.0"
		sid := f.collect(t, h)
		s, err := GetSession(context.Background(), db, f.shop.ID, sid)
		if err != nil {
			t.Fatal(err)
		}
		if s.Browser != "Foo\uFFFDbar" {
			t.Errorf("browser = %q, want the name with U+FFFD for the byte that is not UTF-8", s.Browser)
		}
	})
}

// Close commits every hit already queued: a hit that was accepted is stored.
func TestCollectorCloseFlushes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newCollectorFixture(t, db, Config{MaxDelay: 50 * time.Millisecond})
		var wg sync.WaitGroup
		var mu sync.Mutex
		stored, refused := 0, 0
		for i := range 100 {
			wg.Go(func() {
				_, err := f.c.Collect(context.Background(), f.hit(t, newID(), "", "https://shop.ru/", f.t0.Add(time.Duration(i)*time.Millisecond)))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					stored++
				case errors.Is(err, ErrClosed):
					refused++
				default:
					t.Error(err)
				}
			})
		}
		time.Sleep(10 * time.Millisecond) // let some hits queue inside the 50 ms batch window
		if err := f.c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if stored+refused != 100 || stored == 0 {
			t.Fatalf("stored %d, refused %d", stored, refused)
		}
		if n := count(t, db, `SELECT count(*) FROM hits WHERE counter_id = $1`, f.shop.ID); n != stored {
			t.Errorf("%d hits in the database, %d acknowledged", n, stored)
		}
	})
}

func TestListSessionsPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newCollectorFixture(t, db, Config{})
		var want []string // newest first
		for i := range 7 {
			sid := f.collect(t, f.hit(t, newID(), "", "https://shop.ru/", f.t0.Add(time.Duration(i)*time.Minute)))
			want = append([]string{sid}, want...)
		}
		ctx := context.Background()
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 4 {
				t.Fatal("pagination does not end")
			}
			page, next, err := ListSessions(ctx, db, f.shop.ID, ListQuery{Limit: 3, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page {
				got = append(got, s.SID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if len(got) != len(want) {
			t.Fatalf("pages gave %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("pages gave %v, want %v", got, want)
			}
		}
		page, _, err := ListSessions(ctx, db, f.shop.ID, ListQuery{From: f.t0.Add(2 * time.Minute), To: f.t0.Add(4 * time.Minute), Limit: 10})
		if err != nil || len(page) != 2 || page[0].SID != want[3] || page[1].SID != want[4] {
			t.Errorf("from/to: %d sessions, err %v", len(page), err)
		}
		if _, _, err := ListSessions(ctx, db, f.shop.ID, ListQuery{Limit: 3, Cursor: "bm9wZQ"}); !errors.Is(err, ErrBadCursor) {
			t.Errorf("forged cursor: err = %v", err)
		}
		if page, _, _ := ListSessions(ctx, db, f.shop.ID+1000, ListQuery{Limit: 10}); len(page) != 0 {
			t.Errorf("another counter sees %d sessions", len(page))
		}
	})
}

// A session's last activity is its latest hit, not its start: a collector
// that restarts reads it from the hits, so a visit that has been going on
// for longer than the timeout (with no gap as long) goes on, and one whose
// latest hit is older than the timeout does not. The listing shows the same
// last activity and counts as the session's own page.
func TestCollectorLastActivityFromHits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newCollectorFixture(t, db, Config{})
		long, idle := newID(), newID()
		sid := f.collect(t, f.hit(t, long, "", "https://shop.ru/", f.t0))
		for _, m := range []int{20, 40} {
			if got := f.collect(t, f.hit(t, long, sid, "https://shop.ru/p", f.t0.Add(time.Duration(m)*time.Minute))); got != sid {
				t.Fatalf("hit at +%d min: sid %s, want %s", m, got, sid)
			}
		}
		ev := f.hit(t, long, sid, "https://shop.ru/p", f.t0.Add(41*time.Minute))
		ev.Type, ev.Name = Event, "cart"
		if got := f.collect(t, ev); got != sid {
			t.Fatalf("event: sid %s, want %s", got, sid)
		}
		idleSID := f.collect(t, f.hit(t, idle, "", "https://shop.ru/", f.t0.Add(10*time.Minute)))

		if err := f.c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.c = NewCollector(db, Config{})
		// 65 minutes after the start, 24 after the latest hit.
		if got := f.collect(t, f.hit(t, long, sid, "https://shop.ru/q", f.t0.Add(65*time.Minute))); got != sid {
			t.Errorf("after restart, 24 min after the latest hit: sid %s, want the same session %s", got, sid)
		}
		// 41 minutes after the idle visitor's only hit: a new session, whether
		// the browser names the old one or not.
		if got := f.collect(t, f.hit(t, idle, idleSID, "https://shop.ru/", f.t0.Add(51*time.Minute))); got == idleSID {
			t.Errorf("after restart, 41 idle minutes continued the session")
		}

		ctx := context.Background()
		s, err := GetSession(ctx, db, f.shop.ID, sid)
		if err != nil {
			t.Fatal(err)
		}
		if s.Pageviews != 4 || s.Events != 1 || !s.LastActivityAt.Equal(f.t0.Add(65*time.Minute)) || !s.StartedAt.Equal(f.t0) {
			t.Errorf("session = %d pageviews, %d events, %v – %v", s.Pageviews, s.Events, s.StartedAt, s.LastActivityAt)
		}
		page, _, err := ListSessions(ctx, db, f.shop.ID, ListQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range page {
			if p.SID == sid {
				found = true
				if p.Pageviews != s.Pageviews || p.Events != s.Events || !p.LastActivityAt.Equal(s.LastActivityAt) {
					t.Errorf("listed: %d pageviews, %d events, last %v; the session's page says %d, %d, %v",
						p.Pageviews, p.Events, p.LastActivityAt, s.Pageviews, s.Events, s.LastActivityAt)
				}
			}
		}
		if !found {
			t.Errorf("session %s not listed", sid)
		}
	})
}

// The visitor cache keeps at most MaxVisitors; visitors it forgot are read
// back from the database and keep their sessions.
func TestCollectorVisitorCacheCap(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const visitors = 40
		f := newCollectorFixture(t, db, Config{MaxVisitors: 8})
		ids := make([]string, visitors)
		sids := make([]string, visitors)
		for v := range visitors {
			ids[v] = newID()
			sids[v] = f.collect(t, f.hit(t, ids[v], "", "https://shop.ru/", f.t0.Add(time.Duration(v)*time.Second)))
			if n := f.c.sum(func(w *writer) int64 { return w.cached.Load() }); n > 8 {
				t.Fatalf("%d visitors cached, cap 8", n)
			}
		}
		for v := range visitors {
			// Half the browsers remember their sid, half lost it.
			last := sids[v]
			if v%2 == 0 {
				last = ""
			}
			if got := f.collect(t, f.hit(t, ids[v], last, "https://shop.ru/next", f.t0.Add(time.Minute+time.Duration(v)*time.Second))); got != sids[v] {
				t.Errorf("visitor %d: sid %s, want %s", v, got, sids[v])
			}
		}
		if n := count(t, db, `SELECT count(*) FROM sessions WHERE counter_id = $1`, f.shop.ID); n != visitors {
			t.Errorf("%d sessions, want %d", n, visitors)
		}
	})
}

// A batch the database refuses because of what one hit holds is stored
// without that hit: every other hit is committed, and only the hits at
// fault get an error. The fault here gets past validation: robots' hits are
// counted per counter in bot_hits, and the database refuses a count for a
// counter deleted while its hits were in flight (the server knows a
// counter for up to a minute after it is gone).
func TestCollectorStoresABatchWithoutTheHitsTheDatabaseRefuses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var logs bytes.Buffer // written before the hits are answered: read after
		f := newCollectorFixture(t, db, Config{MaxDelay: 200 * time.Millisecond, Writers: 1,
			Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
		ctx := context.Background()
		gone, _, err := counter.Create(ctx, db, counter.NewCounter{Name: "Gone", Domain: "gone.ru"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Writer().ExecContext(ctx, `DELETE FROM counters WHERE id = $1`, gone.ID); err != nil {
			t.Fatal(err)
		}
		const people, robots = 60, 2
		var wg sync.WaitGroup
		personErrs := make([]error, people)
		robotErrs := make([]error, robots)
		for i := range people {
			wg.Go(func() {
				_, personErrs[i] = f.c.Collect(ctx, f.hit(t, newID(), "", "https://shop.ru/", f.t0))
			})
			if i%30 == 10 {
				wg.Go(func() {
					h := f.hit(t, newID(), "", "https://gone.ru/", f.t0)
					h.Counter, h.UserAgent = gone, botUA
					_, robotErrs[i/30] = f.c.Collect(ctx, h)
				})
			}
		}
		wg.Wait()
		for i, err := range personErrs {
			if err != nil {
				t.Errorf("hit %d, which the database accepts, was not stored: %v", i, err)
			}
		}
		for i, err := range robotErrs {
			if !errors.Is(err, ErrRefused) {
				t.Errorf("robot hit %d of the deleted counter: err = %v, want ErrRefused", i, err)
			}
		}
		if n := count(t, db, `SELECT count(*) FROM hits WHERE counter_id = $1`, f.shop.ID); n != people {
			t.Errorf("%d hits stored, want the %d the database accepts", n, people)
		}
		// The hits did share a batch: it was refused whole first.
		var first struct{ Hits int }
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "refused a batch") {
				json.Unmarshal([]byte(line), &first)
				break
			}
		}
		if first.Hits < people/2 {
			t.Errorf("the first batch refused held %d hits; the test needs the hits to share one (log: %s)", first.Hits, logs.String())
		}
	})
}
