package calltracking_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

var t0 = time.Date(2025, 11, 21, 10, 0, 0, 0, time.UTC)

type fixture struct {
	db *store.DB
	c  counter.Counter
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	c, _, err := counter.Create(context.Background(), db, counter.NewCounter{Name: "Shop", Domain: "shop.ru"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, c: c}
}

// session stores a visit as the collector would, so leases and calls can
// read its traffic.
func (f *fixture) session(t *testing.T, sid, uuid, source, medium string) {
	t.Helper()
	_, err := f.db.Writer().Exec(`INSERT INTO sessions (counter_id, sid, uuid, started_at, landing_url, referrer,
		utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids, traffic_type, source, medium, device, browser, os, ip)
		VALUES ($1, $2, $3, $4, 'https://shop.ru/', '', $5, $6, 'winter', '', '', '{}', 'ad', $5, $6, 'desktop', 'Chrome', 'Linux', '')`,
		f.c.ID, sid, uuid, t0, source, medium)
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) pool(t *testing.T, name string, rule calltracking.Rule, fallback string, numbers ...string) *calltracking.Pool {
	t.Helper()
	ctx := context.Background()
	p, err := calltracking.CreatePool(ctx, f.db, f.c.ID, calltracking.PoolInput{Name: &name, Rule: &rule, FallbackNumber: &fallback})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range numbers {
		if _, err := calltracking.SaveNumber(ctx, f.db, f.c.ID, calltracking.NumberInput{Number: &n, PoolID: &p.ID}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func (f *fixture) assign(t *testing.T, sid, uuid string, at time.Time) *calltracking.Shown {
	t.Helper()
	s, err := calltracking.Assign(context.Background(), f.db, f.c, sid, uuid, at)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) heartbeat(t *testing.T, s *calltracking.Shown, sid string, at time.Time) {
	t.Helper()
	if err := calltracking.Heartbeat(context.Background(), f.db, f.c, s.LeaseID, sid, at); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) call(t *testing.T, id, caller, tracked string, at time.Time, extra ...func(*calltracking.Event)) *calltracking.Call {
	t.Helper()
	ev := calltracking.Event{Provider: "generic", CallID: id, Caller: caller, Tracked: tracked, StartedAt: at}
	for _, e := range extra {
		e(&ev)
	}
	received := at.Add(2 * time.Second)
	if at.IsZero() { // an event without a time (an end event): it arrives at 10:02:40
		received = t0.Add(160 * time.Second)
	}
	c, err := calltracking.Ingest(context.Background(), f.db, f.c, ev, received)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLeaseLifeCycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		f.pool(t, "paid", calltracking.Rule{Medium: "cpc"}, "74950000000", "74951110001", "74951110002")
		for _, s := range [][2]string{{"s1", "v1"}, {"s2", "v2"}, {"s3", "v3"}, {"s1b", "v1"}} {
			f.session(t, s[0], s[1], "yandex", "cpc")
		}
		f.session(t, "org", "v9", "google", "organic")

		a := f.assign(t, "s1", "v1", t0)
		b := f.assign(t, "s2", "v2", t0)
		if a == nil || b == nil || a.Kind != "lease" || b.Kind != "lease" || a.Number == b.Number {
			t.Fatalf("two sessions, two numbers: %+v %+v", a, b)
		}
		// The same session again (a reload, another tab) keeps its number.
		if again := f.assign(t, "s1", "v1", t0.Add(time.Minute)); again.Number != a.Number || again.LeaseID != a.LeaseID {
			t.Errorf("the same session got %+v, had %+v", again, a)
		}
		// A third session finds the pool exhausted: the fallback, counted.
		if c := f.assign(t, "s3", "v3", t0.Add(time.Minute)); c == nil || c.Kind != "fallback" || c.Number != "74950000000" || c.LeaseID != "" {
			t.Errorf("exhausted pool: %+v", c)
		}
		// Traffic the pool's rule does not take keeps the site's own number.
		if o := f.assign(t, "org", "v9", t0); o != nil {
			t.Errorf("organic session got %+v", o)
		}
		pools, _ := calltracking.Pools(ctx, db, f.c.ID)
		if pools[0].Shortages != 1 || pools[0].LastShortageAt == nil {
			t.Errorf("shortages: %+v", pools[0])
		}

		// Heartbeats keep a lease; without them it lapses after the hold.
		if err := calltracking.Heartbeat(ctx, db, f.c, b.LeaseID, "s2", t0.Add(time.Minute)); err != nil {
			t.Fatal(err) // s2's first heartbeat: held till 10:16
		}
		if err := calltracking.Heartbeat(ctx, db, f.c, a.LeaseID, "s1", t0.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := calltracking.Heartbeat(ctx, db, f.c, a.LeaseID, "s2", t0.Add(10*time.Minute)); !errors.Is(err, calltracking.ErrGone) {
			t.Errorf("another session renews s1's lease: %v", err)
		}
		if err := calltracking.Heartbeat(ctx, db, f.c, b.LeaseID, "s2", t0.Add(17*time.Minute)); !errors.Is(err, calltracking.ErrGone) {
			t.Errorf("a lease past its 15-minute hold: %v", err)
		}
		// s2's number (lapsed at 10:16) rests for the 5-minute cooldown:
		// another visitor gets it only from 10:21…
		if c := f.assign(t, "s3", "v3", t0.Add(18*time.Minute)); c.Kind != "fallback" {
			t.Errorf("during cooldown another visitor got %+v", c)
		}
		c := f.assign(t, "s3", "v3", t0.Add(22*time.Minute))
		if c.Kind != "lease" || c.Number != b.Number {
			t.Errorf("after cooldown: %+v, want %s", c, b.Number)
		}
		// …while its last holder's visitor may have its own number back at once.
		if err := calltracking.Release(ctx, db, f.c.ID, a.LeaseID, "s1", "page closed", t0.Add(22*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if back := f.assign(t, "s1b", "v1", t0.Add(22*time.Minute)); back == nil || back.Kind != "lease" || back.Number != a.Number {
			t.Errorf("the same visitor's new session: %+v, want %s", back, a.Number)
		}
		leases, err := calltracking.Leases(ctx, db, f.c.ID, a.Number, 10)
		if err != nil || len(leases) != 2 || leases[1].ReleaseReason != "page closed" || leases[1].ReleasedAt == nil {
			t.Errorf("lease history: %v %+v", err, leases)
		}
	})
}

// Many sessions race for a small pool: each number goes to one session.
func TestLeaseConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var numbers []string
		for i := range 10 {
			numbers = append(numbers, fmt.Sprintf("7495111%04d", i))
		}
		f.pool(t, "all", calltracking.Rule{}, "74950000000", numbers...)
		const sessions = 40
		for i := range sessions {
			f.session(t, fmt.Sprintf("s%d", i), fmt.Sprintf("v%d", i), "yandex", "cpc")
		}
		var wg sync.WaitGroup
		got := make([]*calltracking.Shown, sessions)
		errs := make([]error, sessions)
		for i := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = calltracking.Assign(context.Background(), db, f.c, fmt.Sprintf("s%d", i), fmt.Sprintf("v%d", i), t0)
			}()
		}
		wg.Wait()
		held := map[string]int{}
		fallback := 0
		for i, s := range got {
			if errs[i] != nil {
				t.Fatalf("session %d: %v", i, errs[i])
			}
			if s.Kind == "fallback" {
				fallback++
			} else {
				held[s.Number]++
			}
		}
		for n, k := range held {
			if k != 1 {
				t.Errorf("%s leased to %d sessions at once", n, k)
			}
		}
		if len(held) != 10 || fallback != sessions-10 {
			t.Errorf("%d numbers leased, %d fallbacks", len(held), fallback)
		}
	})
}

func TestCallMatching(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		n := "74951110001"
		f.pool(t, "one", calltracking.Rule{}, "74950000000", n)
		static, src := "78005553535", calltracking.Traffic{Source: "billboard", Medium: "offline", Campaign: "mkad"}
		if _, err := calltracking.SaveNumber(ctx, db, f.c.ID, calltracking.NumberInput{Number: &static, Source: &src}); err != nil {
			t.Fatal(err)
		}
		f.session(t, "morning", "v1", "yandex", "cpc")
		f.session(t, "noon", "v2", "google", "cpc")
		// The number passes from one session to another during the day.
		m := f.assign(t, "morning", "v1", t0)                  // 10:00
		f.heartbeat(t, m, "morning", t0.Add(time.Minute))      // held till 10:16
		noon := f.assign(t, "noon", "v2", t0.Add(2*time.Hour)) // 12:00
		f.heartbeat(t, noon, "noon", t0.Add(2*time.Hour+time.Minute))
		if m.Number != n || noon.Number != n || m.LeaseID == noon.LeaseID {
			t.Fatalf("%+v %+v", m, noon)
		}
		cases := []struct {
			at         time.Time
			tracked    string
			match, sid string
		}{
			{t0.Add(5 * time.Minute), n, calltracking.MatchLease, "morning"},
			{t0.Add(18 * time.Minute), n, calltracking.MatchAfterLease, "morning"}, // 2 min after the hold: within the cooldown
			{t0.Add(40 * time.Minute), n, calltracking.MatchUnidentified, ""},      // long after: nobody
			{t0.Add(2*time.Hour + 5*time.Minute), n, calltracking.MatchLease, "noon"},
			{t0.Add(-time.Hour), n, calltracking.MatchUnidentified, ""}, // before any lease
			{t0, static, calltracking.MatchStatic, ""},
			{t0, "74950000000", calltracking.MatchPoolExhausted, ""},
			{t0, "74999999999", calltracking.MatchUnidentified, ""},
		}
		for i, c := range cases {
			call := f.call(t, fmt.Sprint("c", i), fmt.Sprintf("7916123%04d", i), c.tracked, c.at)
			if call.Match.Type != c.match || call.Match.SID != c.sid || call.Match.Reason == "" {
				t.Errorf("call %d at %s to %s: %+v, want %s %s", i, c.at.Format("15:04"), c.tracked, call.Match, c.match, c.sid)
			}
		}
		if call, want := f.call(t, "s", "79161230000", static, t0), (calltracking.Traffic{Type: "offline", Source: "billboard", Medium: "offline", Campaign: "mkad"}); call.Traffic != want {
			t.Errorf("a static number's call has its source, of type offline: %+v", call.Traffic)
		}
		if call := f.call(t, "m", "79161230001", n, t0.Add(time.Minute)); call.Traffic.Source != "yandex" || call.Traffic.Medium != "cpc" || call.Traffic.Campaign != "winter" {
			t.Errorf("a lease's call has its session's source: %+v", call.Traffic)
		}
		out := f.call(t, "out", "79161230002", n, t0.Add(time.Minute), func(e *calltracking.Event) { e.Direction = "out" })
		if out.Match.Type != calltracking.MatchNotIncoming {
			t.Errorf("outgoing call: %+v", out.Match)
		}
	})
}

// Providers send a call's events one by one: the call is completed, never
// duplicated, and its end lets the number rest from then.
func TestCallEventsAndLeaseEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		n := "74951110001"
		f.pool(t, "one", calltracking.Rule{}, "", n)
		f.session(t, "s1", "v1", "yandex", "cpc")
		f.session(t, "s2", "v2", "yandex", "cpc")
		lease := f.assign(t, "s1", "v1", t0)
		start := f.call(t, "abc", "8 (916) 123-45-67", n, t0.Add(time.Minute))
		yes, talk := true, 95
		end := f.call(t, "abc", "", "", time.Time{}, func(e *calltracking.Event) {
			e.Answered, e.TalkSeconds, e.Final, e.RecordingURL = &yes, &talk, true, "https://pbx/rec/abc.mp3"
		})
		if end.ID != start.ID || end.Caller != "79161234567" || end.Answered == nil || !*end.Answered || *end.TalkSeconds != 95 ||
			!end.Ended || end.Match.Type != calltracking.MatchLease || end.RecordingURL == "" || !end.StartedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("after the end event: %+v", end)
		}
		calls, _, err := calltracking.Calls(ctx, db, f.c.ID, calltracking.CallQuery{Limit: 10})
		if err != nil || len(calls) != 1 {
			t.Fatalf("calls: %v %d", err, len(calls))
		}
		// The call ended the lease at 10:02:35; the number rests until 10:07:35.
		if err := calltracking.Heartbeat(ctx, db, f.c, lease.LeaseID, "s1", t0.Add(3*time.Minute)); !errors.Is(err, calltracking.ErrGone) {
			t.Errorf("the lease outlived its call: %v", err)
		}
		if s := f.assign(t, "s2", "v2", t0.Add(6*time.Minute)); s != nil {
			t.Errorf("during the cooldown after the call: %+v", s)
		}
		if s := f.assign(t, "s2", "v2", t0.Add(8*time.Minute)); s == nil || s.Number != n {
			t.Errorf("after it: %+v", s)
		}
	})
}

func TestUniqueCallsAndBadCallers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		tracked := "74951110001"
		first := f.call(t, "u1", "79161234567", tracked, t0)
		again := f.call(t, "u2", "+7 916 123-45-67", tracked, t0.Add(24*time.Hour))
		later := f.call(t, "u3", "79161234567", tracked, t0.Add(32*24*time.Hour)) // 31 days after the last: past the 30-day window
		if !first.Unique || again.Unique || !later.Unique {
			t.Errorf("unique: %v %v %v", first.Unique, again.Unique, later.Unique)
		}
		bad := f.call(t, "u4", "anonymous", tracked, t0)
		if bad.CallerValid || bad.Caller != "" || bad.CallerRaw != "anonymous" || bad.Unique {
			t.Errorf("a caller that is not a phone is kept raw and flagged: %+v", bad)
		}
		notPhone := f.call(t, "u5", "79161234567", "sip:100@pbx", t0.Add(time.Hour))
		if notPhone.Match.Type != calltracking.MatchUnidentified || !strings.Contains(notPhone.Match.Reason, "sip:100@pbx") {
			t.Errorf("a dialled number that is not a phone: %+v", notPhone.Match)
		}
		yes := true
		answered, _, _ := calltracking.Calls(context.Background(), db, f.c.ID, calltracking.CallQuery{Limit: 10, Unique: &yes})
		if len(answered) != 2 {
			t.Errorf("unique filter: %d", len(answered))
		}
	})
}

// A pool without numbers serves no one: the next pool whose rule matches does.
func TestEmptyPoolIsSkipped(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.pool(t, "empty", calltracking.Rule{}, "74950000000")
		f.pool(t, "real", calltracking.Rule{}, "", "74951110001")
		f.session(t, "s1", "v1", "yandex", "cpc")
		if s := f.assign(t, "s1", "v1", t0); s == nil || s.Kind != "lease" || s.Number != "74951110001" {
			t.Errorf("got %+v", s)
		}
		pools, _ := calltracking.Pools(context.Background(), db, f.c.ID)
		if pools[0].Shortages != 0 {
			t.Errorf("an empty pool counted a shortage: %+v", pools[0])
		}
	})
}

// Cases found by review, each once a bug.
func TestLeaseEdges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		n := "74951110001"
		f.pool(t, "one", calltracking.Rule{}, "", n)
		for _, s := range [][2]string{{"s1", "v1"}, {"s2", "v2"}, {"s3", "v3"}} {
			f.session(t, s[0], s[1], "yandex", "cpc")
		}
		// A final event without durations (Twilio's inbound "completed")
		// must not end the lease at the call's start: the page showed the
		// number through the call.
		a := f.assign(t, "s1", "v1", t0)
		for m := 1; m <= 11; m++ {
			f.heartbeat(t, a, "s1", t0.Add(time.Duration(m)*time.Minute))
		}
		f.call(t, "long", "79161234567", n, t0.Add(time.Minute))
		if _, err := calltracking.Ingest(ctx, db, f.c, calltracking.Event{Provider: "generic", CallID: "long", Final: true}, t0.Add(11*time.Minute+5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if s := f.assign(t, "s2", "v2", t0.Add(11*time.Minute+10*time.Second)); s != nil {
			t.Fatalf("the number went to another visitor while its caller's page still showed it: %+v", s)
		}
		if c := f.call(t, "again", "79161234567", n, t0.Add(11*time.Minute+30*time.Second)); c.Match.SID != "s1" {
			t.Errorf("a second call from the same page: %+v", c.Match)
		}
		// A number lent right now cannot be deleted; once deleted and added
		// back, it still rests after its last lease.
		b := f.assign(t, "s2", "v2", t0.Add(20*time.Minute))
		if b == nil {
			t.Fatal("no number after the cooldown")
		}
		f.heartbeat(t, b, "s2", t0.Add(21*time.Minute))
		// A renewal for a lease whose number moved on is refused.
		if err := calltracking.Heartbeat(ctx, db, f.c, a.LeaseID, "s1", t0.Add(22*time.Minute)); !errors.Is(err, calltracking.ErrGone) {
			t.Errorf("s1 renewed a lease whose number is s2's: %v", err)
		}
		// A call stored late makes the caller's later call not the first.
		later := f.call(t, "u-late", "79990000001", n, t0.Add(5*time.Hour))
		f.call(t, "u-early", "79990000001", n, t0.Add(4*time.Hour))
		got, _ := calltracking.GetCall(ctx, db, f.c.ID, later.ID)
		if !later.Unique || got.Unique {
			t.Errorf("unique: stored first %v, after the earlier call arrived %v", later.Unique, got.Unique)
		}
	})
}

func TestDeletingALiveNumberIsRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		n := "74951110001"
		f.pool(t, "one", calltracking.Rule{}, "", n)
		f.session(t, "s1", "v1", "yandex", "cpc")
		f.session(t, "s2", "v2", "yandex", "cpc")
		now := time.Now()
		if s := f.assign(t, "s1", "v1", now); s == nil {
			t.Fatal("no number")
		}
		var ie *calltracking.InvalidError
		if err := calltracking.DeleteNumber(ctx, db, f.c.ID, n); !errors.As(err, &ie) {
			t.Fatalf("deleting a lent number: %v", err)
		}
		// Released, deleted and added back: it still rests after the lease.
		var lease string
		db.Reader().QueryRow(`SELECT id FROM number_leases WHERE number = $1`, n).Scan(&lease)
		if err := calltracking.Release(ctx, db, f.c.ID, lease, "s1", "page closed", now); err != nil {
			t.Fatal(err)
		}
		if err := calltracking.DeleteNumber(ctx, db, f.c.ID, n); err != nil {
			t.Fatal(err)
		}
		f.pool(t, "two", calltracking.Rule{}, "", n)
		if s := f.assign(t, "s2", "v2", now.Add(time.Minute)); s != nil {
			t.Errorf("a re-added number skipped its cooldown: %+v", s)
		}
	})
}
