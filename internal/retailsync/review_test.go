package retailsync_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/leads"
	"github.com/throughline/throughline/internal/retailcrm/fakecrm"
	"github.com/throughline/throughline/internal/retailsync"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// isWalk reports whether r is a page of the pull's walk of orders (not a
// push's look-up of one customer's orders, nor a read by ids).
func isWalk(r fakecrm.Request) bool {
	return r.Method == "GET" && r.Path == "/api/v5/orders" && r.Query.Get("filter[customerId]") == "" &&
		r.Query.Get("filter[ids][]") == "" && !strings.Contains(r.Query.Encode(), "customFields")
}

func (f *fixture) deals() int {
	f.t.Helper()
	var n int
	if err := f.db.Reader().QueryRowContext(f.ctx, `SELECT count(*) FROM crm_orders WHERE counter_id = $1`, f.c.ID).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// An order that changes status between two pages moves in the listing; no
// other order may be skipped for good (spec §3: pages can shift).
func TestPullOrderChangesMidWalk(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.crm.SetListOrder(fakecrm.ByStatusUpdatedAt)
		const n = 150
		ids := make([]int64, n)
		for i := range ids {
			ids[i] = f.crm.AddOrder(fakecrm.O{"status": "new", "createdAt": f.clock.Now().Add(-48 * time.Hour)})
		}
		var fired atomic.Bool
		f.crm.OnRequest(func(r fakecrm.Request) {
			if isWalk(r) && r.Query.Get("page") == "1" && fired.CompareAndSwap(false, true) {
				f.crm.UpdateOrder(ids[0], fakecrm.O{"status": "assembling"})
			}
		})
		f.active() // setup and the first pull
		if got := f.deals(); got != n {
			t.Fatalf("first pull: %d deals of %d orders", got, n)
		}
		// Later pulls: many status changes, and one more during the pull.
		f.clock.Add(time.Hour)
		for _, id := range ids[:120] {
			f.crm.UpdateOrder(id, fakecrm.O{"status": "complete"})
		}
		f.clock.Add(retailsync.DefaultPullEvery + time.Minute)
		fired.Store(false)
		f.crm.OnRequest(func(r fakecrm.Request) {
			if r.Path == "/api/v5/orders" || r.Path == "/api/v5/orders/history" {
				if fired.CompareAndSwap(false, true) {
					f.crm.UpdateOrder(ids[1], fakecrm.O{"status": "delivering"})
				}
			}
		})
		f.run(f.w)
		f.crm.OnRequest(nil)
		f.clock.Add(retailsync.DefaultPullEvery + time.Minute)
		f.run(f.w)
		for i, id := range ids[:120] {
			o, err := crm.GetOrder(f.ctx, db, f.c.ID, fmt.Sprint(id))
			if err != nil {
				t.Fatal(err)
			}
			want := "complete"
			if i == 1 {
				want = "delivering"
			}
			if o.Status != want {
				t.Fatalf("order %d: status %q, want %q: a status change was skipped", id, o.Status, want)
			}
		}
	})
}

// A pull that takes long holds back no push, and the next pull is due
// PullEvery after the last one started.
func TestPushesNotHeldByPull(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.crm.AddOrder(fakecrm.O{"status": "new"})
		release := make(chan struct{})
		var blocked atomic.Bool
		f.crm.OnRequest(func(r fakecrm.Request) {
			if isWalk(r) && blocked.CompareAndSwap(false, true) {
				f.clock.Add(10 * time.Minute) // a long first pull
				<-release
			}
		})
		defer func() {
			if blocked.Load() {
				select {
				case <-release:
				default:
					close(release)
				}
			}
		}()
		f.connect(f.crm.URL, f.crm.Key())
		start := f.clock.Now()
		f.lead(leads.Input{Type: "form", Name: "Анна", Phone: "+79160000077"}, start)
		ctx, cancel := context.WithCancel(f.ctx)
		done := make(chan struct{})
		go func() { f.w.Run(ctx, 10*time.Millisecond); close(done) }()
		defer func() { cancel(); <-done }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ps, err := retailsync.ListPushes(f.ctx, db, f.c.ID, "done", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the push waited for the pull (pull blocked: %v)", blocked.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !blocked.Load() {
			t.Fatal("the pull never started")
		}
		close(release)
		for f.get().LastPullAt == nil {
			if time.Now().After(deadline) {
				t.Fatal("the pull did not finish")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if in := f.get(); !in.NextPullAt.Equal(start.Add(retailsync.DefaultPullEvery)) {
			t.Fatalf("next pull at %v, want %v (the start of the last + 30 min)", in.NextPullAt, start.Add(retailsync.DefaultPullEvery))
		}
	})
}

// A process whose claim ran out (it hung) must not push the rows another
// process has taken over, and must say so.
func TestPushClaimLost(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		f.lead(leads.Input{Type: "form", Name: "Гость", Phone: "+79160000101"}, f.clock.Now())
		f.lead(leads.Input{Type: "form", Name: "Гость", Phone: "+79160000102"}, f.clock.Now())
		a, b := f.worker(), f.worker()
		var fired atomic.Bool
		f.crm.OnRequest(func(r fakecrm.Request) {
			if r.Path == "/api/v5/customers" && fired.CompareAndSwap(false, true) {
				f.clock.Add(16 * time.Minute) // a hangs past its lease
				if err := b.RunOnce(f.ctx); err != nil {
					t.Error(err)
				}
			}
		})
		f.clock.Add(2 * time.Minute)
		err := a.RunOnce(f.ctx)
		if err == nil || !strings.Contains(err.Error(), "lease") {
			t.Fatalf("a's run: %v, want an error about the lost lease", err)
		}
		// b pushed both; a pushed the one it was in the middle of, not the other.
		if got := len(f.crm.CreatedOrders()); got != 3 {
			t.Fatalf("%d orders created, want 3", got)
		}
	})
}

// A customer stored with a national phone (8…) is found.
func TestPushCustomerByNationalPhone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		cust := f.crm.AddCustomer(fakecrm.O{"firstName": "Иван", "phones": []fakecrm.O{{"number": "8 (916) 765-00-00"}}})
		f.call("+7 916 765-00-00", f.clock.Now())
		ps := f.pushAll()
		if len(ps) != 1 || ps[0].CustomerCreated || ps[0].CustomerID == nil || *ps[0].CustomerID != cust || len(f.crm.CreatedCustomers()) != 0 {
			t.Fatalf("push %+v: want customer %d found by 8…", ps, cust)
		}
	})
}

// The look-up of an order by our lead id takes only an order that carries
// exactly that id, written by this counter.
func TestPushLeadIDLookupExact(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		f.crm.SetLooseCustomFieldFilter(true)
		id := f.lead(leads.Input{Type: "form", Name: "Анна", Phone: "+79160000201"}, f.clock.Now())
		key := fmt.Sprint("lead-", id)
		f.crm.AddOrder(fakecrm.O{"status": "new", "customFields": fakecrm.O{"tl_lead_id": key + "0", "tl_site_id": fmt.Sprint(f.c.ID)}})
		f.crm.AddOrder(fakecrm.O{"status": "new", "customFields": fakecrm.O{"tl_lead_id": key, "tl_site_id": "999999"}})
		f.clock.Add(time.Second)
		f.run(f.w) // into the outbox
		// As if an earlier attempt had stopped unrecorded.
		if res, err := db.Writer().ExecContext(f.ctx, `UPDATE retailcrm_pushes SET attempts = 1 WHERE counter_id = $1`, f.c.ID); err != nil {
			t.Fatal(err)
		} else if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("%d pushes queued", n)
		}
		ps := f.pushAll()
		if len(ps) != 1 || ps[0].Outcome != retailsync.OutcomeCreated || len(f.crm.CreatedOrders()) != 1 || *ps[0].OrderID != f.crm.CreatedOrders()[0] {
			t.Fatalf("push %+v, created %v: want a new order, not another lead's or counter's", ps, f.crm.CreatedOrders())
		}
	})
}

func TestSetupFieldNotInFilter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.crm.AddCustomField(fakecrm.CustomField{Entity: "order", Code: "tl_lead_id", Name: "Lead", Type: "string"})
		f.connect(f.crm.URL, f.crm.Key())
		f.run(f.w)
		if in := f.get(); in.State != retailsync.StateFailed || !strings.Contains(in.Error, `"tl_lead_id"`) || !strings.Contains(in.Error, "filter") {
			t.Fatalf("state %s (%s), want failed naming the field not in filters", in.State, in.Error)
		}
	})
}

// An account that rate limits: the rest of its pushes wait, untried.
func TestPushRateLimitedAccountWaits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		for i := range 3 {
			f.lead(leads.Input{Type: "form", Name: "Гость", Phone: fmt.Sprintf("+7916300%04d", i)}, f.clock.Now())
		}
		f.crm.FailNext(2, 503, "") // the first push's two tries
		f.crm.ResetRequests()
		ps := f.pushAll()
		if n := f.crm.RequestCount(); n != 2 {
			t.Fatalf("%d requests, want 2: the account was rate limiting", n)
		}
		attempts := []int{}
		for _, p := range ps {
			if p.Status != "pending" {
				t.Fatalf("push %+v, want pending", p)
			}
			attempts = append(attempts, p.Attempts)
		}
		slices.Sort(attempts)
		if !slices.Equal(attempts, []int{0, 0, 1}) {
			t.Fatalf("attempts %v, want the untried not counted", attempts)
		}
		for range 2 {
			f.pushAll()
		}
		if len(f.crm.CreatedOrders()) != 3 {
			t.Fatalf("%d orders after the pause", len(f.crm.CreatedOrders()))
		}
	})
}

// Shutdown mid-batch: every row is back at once; the one whose request went
// out keeps its attempt.
func TestPushShutdownPutsBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		for i := range 3 {
			f.lead(leads.Input{Type: "form", Name: "Гость", Phone: fmt.Sprintf("+7916400%04d", i)}, f.clock.Now())
		}
		f.run(f.w)
		f.clock.Add(2 * time.Minute)
		ctx, cancel := context.WithCancel(f.ctx)
		f.crm.OnRequest(func(r fakecrm.Request) {
			if r.Method == "POST" {
				cancel()
			}
		})
		_ = f.w.RunPushes(ctx)
		f.crm.OnRequest(nil)
		ps, err := retailsync.ListPushes(f.ctx, db, f.c.ID, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		attempts := []int{}
		for _, p := range ps {
			if p.Status != "pending" || p.NextAttemptAt.After(f.clock.Now()) {
				t.Fatalf("push %+v: want back and due now (%v)", p, f.clock.Now())
			}
			attempts = append(attempts, p.Attempts)
		}
		slices.Sort(attempts)
		if !slices.Equal(attempts, []int{0, 0, 1}) {
			t.Fatalf("attempts %v, want 1 for the one sent, 0 for the others", attempts)
		}
	})
}

// Statuses added in RetailCRM after setup are known at the next pull.
func TestPullReloadsStatuses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		f.crm.SetStatuses(fakecrm.DefaultGroups(), append(fakecrm.DefaultStatuses(), fakecrm.Status{Code: "returned", Name: "Возврат", Group: "cancel"}))
		f.clock.Add(retailsync.DefaultPullEvery)
		f.run(f.w)
		if in := f.get(); !slices.Contains(in.ClosedStatuses, "returned") {
			t.Fatalf("closed statuses %v", in.ClosedStatuses)
		}
		sts, err := crm.Statuses(f.ctx, db, f.c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(sts, func(s crm.Status) bool { return s.Code == "returned" }); i < 0 || sts[i].Type != crm.Cancelled {
			t.Fatalf("mapping %+v, want returned → CANCELLED", sts)
		}
	})
}

// Another account: the pull starts over and the old links go.
func TestReconnectOtherAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.crm.AddOrder(fakecrm.O{"status": "new"})
		f.active()
		other := fakecrm.New()
		defer other.Close()
		other.SetRateLimit(0)
		other.SetClock(f.clock.Now)
		in := f.connect(other.URL, other.Key())
		var links int
		if err := db.Reader().QueryRowContext(f.ctx, `SELECT count(*) FROM retailcrm_deals WHERE counter_id = $1`, f.c.ID).Scan(&links); err != nil {
			t.Fatal(err)
		}
		if in.LastPullAt != nil || in.NextPullAt != nil || links != 0 {
			t.Fatalf("after connecting another account: last pull %v, next %v, %d links", in.LastPullAt, in.NextPullAt, links)
		}
	})
}

// Outgoing calls are not leads a deal links to.
func TestPullIgnoresOutgoingCalls(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		at := f.clock.Now().Add(-time.Hour)
		answered := true
		if _, err := calltracking.Ingest(f.ctx, db, f.c, calltracking.Event{Provider: "generic", CallID: "out1",
			Direction: "out", Caller: "+79165551212", Tracked: "74951112233", StartedAt: at, Answered: &answered, Final: true}, at); err != nil {
			t.Fatal(err)
		}
		cust := f.crm.AddCustomer(fakecrm.O{"firstName": "Иван", "phones": []fakecrm.O{{"number": "+79165551212"}}})
		id := f.crm.AddOrder(fakecrm.O{"customer": fakecrm.O{"id": cust}, "status": "new"})
		f.active()
		o, err := crm.GetOrder(f.ctx, db, f.c.ID, fmt.Sprint(id))
		if err != nil {
			t.Fatal(err)
		}
		if l := o.Attributes[retailsync.AttrLead]; len(l) != 1 || l[0] != retailsync.LeadNotFound {
			t.Fatalf("link %v, want %q", l, retailsync.LeadNotFound)
		}
	})
}

func TestSetupBadTimezone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, tz := range []string{"", "Mars/Olympus"} {
			f := newFixture(t, db)
			f.crm.SetSettingsTimezone(tz)
			f.connect(f.crm.URL, f.crm.Key())
			f.run(f.w)
			if in := f.get(); in.State != retailsync.StateFailed || !strings.Contains(in.Error, "time zone") {
				t.Fatalf("zone %q: state %s (%s), want failed about the time zone", tz, in.State, in.Error)
			}
		}
	})
}

// Scope names the docs do not confirm only warn.
func TestSetupUnconfirmedScopesWarn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.crm.SetScopes("order_read", "order_write", "customer_read", "customer_write", "reference_read")
		f.active()
		if in := f.get(); !strings.Contains(in.Note, "custom_fields_write") || !strings.Contains(in.Note, "user_read") {
			t.Fatalf("note %q, want the unconfirmed scopes named", in.Note)
		}
		f.crm.SetScopes("customer_read")
		f.connect(f.crm.URL, f.crm.Key())
		f.run(f.w)
		if in := f.get(); in.State != retailsync.StateFailed || !strings.Contains(in.Error, "order_read") {
			t.Fatalf("state %s (%s), want failed for order_read", in.State, in.Error)
		}
	})
}
