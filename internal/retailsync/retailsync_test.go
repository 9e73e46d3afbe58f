package retailsync_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/leads"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/retailcrm"
	"github.com/throughline/throughline/internal/retailcrm/fakecrm"
	"github.com/throughline/throughline/internal/retailsync"
	"github.com/throughline/throughline/internal/secrets"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
	"github.com/throughline/throughline/internal/webhooks"
)

var box = func() *secrets.Box {
	b, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		panic(err)
	}
	return b
}()

var guard = webhooks.Guard{AllowPrivate: true} // the fake listens on 127.0.0.1

// clock is the time of the worker, the fake CRM and the arrivals, moved by
// the test instead of waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t     *testing.T
	ctx   context.Context
	db    *store.DB
	c     counter.Counter
	crm   *fakecrm.Server
	clock *clock
	w     *retailsync.Worker
	calls int
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	c, _, err := counter.Create(ctx, db, counter.NewCounter{Name: "Shop", Domain: "shop.ru", Timezone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, db: db, c: c, crm: fakecrm.New(),
		clock: &clock{t: time.Now().UTC().Truncate(time.Second)}}
	t.Cleanup(f.crm.Close)
	f.crm.SetRateLimit(0) // the rate limit has its own test; the others run unthrottled
	f.crm.SetClock(f.clock.Now)
	f.w = f.worker()
	return f
}

// worker is a Worker on the fixture's clock, as a restarted process or a
// second one would be.
func (f *fixture) worker() *retailsync.Worker {
	return &retailsync.Worker{DB: f.db, Box: box, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Guard: guard,
		Client: retailcrm.Options{RequestsPerSecond: -1, MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxRetryTime: time.Second},
		Now:    f.clock.Now}
}

func (f *fixture) run(w *retailsync.Worker) {
	f.t.Helper()
	if err := w.RunOnce(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) connect(url, key string) *retailsync.Integration {
	f.t.Helper()
	in, err := retailsync.Connect(f.ctx, f.db, box, guard, f.c.ID, retailsync.Input{URL: url, APIKey: key}, f.clock.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return in
}

// active connects to the fake and sets the connection up.
func (f *fixture) active() {
	f.t.Helper()
	f.connect(f.crm.URL, f.crm.Key())
	f.run(f.w)
	if in := f.get(); in.State != retailsync.StateActive {
		f.t.Fatalf("state %s (%s), want active", in.State, in.Error)
	}
}

func (f *fixture) get() *retailsync.Integration {
	f.t.Helper()
	in, err := retailsync.Get(f.ctx, f.db, f.c.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return in
}

// call records an incoming call from phone, arriving now.
func (f *fixture) call(phone string, at time.Time) int64 {
	f.t.Helper()
	f.calls++
	answered := true
	c, err := calltracking.Ingest(f.ctx, f.db, f.c, calltracking.Event{Provider: "generic", CallID: fmt.Sprint("c", f.calls),
		Direction: "in", Caller: phone, Tracked: "74951112233", StartedAt: at, Answered: &answered, Final: true}, at)
	if err != nil {
		f.t.Fatal(err)
	}
	return c.ID
}

func (f *fixture) lead(in leads.Input, at time.Time) int64 {
	f.t.Helper()
	in.CreatedAt = &at
	l, err := leads.Create(f.ctx, f.db, f.c.ID, in, "api", at)
	if err != nil {
		f.t.Fatal(err)
	}
	return l.ID
}

// pushAll lets the delay pass and runs the worker.
func (f *fixture) pushAll() []retailsync.Push {
	f.t.Helper()
	f.clock.Add(retailsync.DefaultDelay + time.Second)
	f.run(f.w)
	ps, err := retailsync.ListPushes(f.ctx, f.db, f.c.ID, "", 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return ps
}

func (f *fixture) order(id int64) fakecrm.O {
	f.t.Helper()
	o, ok := f.crm.Order(id)
	if !ok {
		f.t.Fatalf("order %d not in the CRM", id)
	}
	return o
}

func customFields(o fakecrm.O) map[string]any {
	cf, _ := o["customFields"].(map[string]any)
	return cf
}

func TestSetupCreatesFieldsAndBecomesActive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		if in := f.connect(f.crm.URL, f.crm.Key()); in.State != retailsync.StateSettingUp {
			t.Fatalf("state after connect %s, want setting_up", in.State)
		}
		f.run(f.w)
		in := f.get()
		if in.State != retailsync.StateActive || in.Error != "" {
			t.Fatalf("state %s (%s), want active", in.State, in.Error)
		}
		if in.Site != "shop" || !slices.Equal(in.Sites, []string{"shop"}) || in.Timezone != "Europe/Moscow" {
			t.Fatalf("site %q sites %v zone %q", in.Site, in.Sites, in.Timezone)
		}
		if !slices.Contains(in.ClosedStatuses, "complete") || !slices.Contains(in.ClosedStatuses, "no-call") || slices.Contains(in.ClosedStatuses, "new") {
			t.Fatalf("closed statuses %v", in.ClosedStatuses)
		}
		var codes []string
		for _, cf := range f.crm.CreatedCustomFields() {
			if cf.Entity != "order" || cf.Type != "string" || !cf.InFilter {
				t.Errorf("field %+v: want an order string field in filters", cf)
			}
			codes = append(codes, cf.Code)
		}
		want := []string{"tl_site_id", "tl_lead_id", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"}
		if !slices.Equal(codes, want) {
			t.Fatalf("created fields %v, want %v", codes, want)
		}
		// The status mapping is offered pre-filled by group.
		sts, err := crm.Statuses(f.ctx, db, f.c.ID)
		if err != nil {
			t.Fatal(err)
		}
		types := map[string]crm.StatusType{}
		for _, s := range sts {
			types[s.Code] = s.Type
		}
		if types["complete"] != crm.Paid || types["no-call"] != crm.Cancelled || types["new"] != crm.InProgress {
			t.Fatalf("status mapping %v", types)
		}
		// Connecting again (a new key) finds the fields and creates none.
		f.connect(f.crm.URL, f.crm.Key())
		f.run(f.w)
		if in := f.get(); in.State != retailsync.StateActive || len(f.crm.CreatedCustomFields()) != len(want) {
			t.Fatalf("reconnect: state %s, %d fields created", in.State, len(f.crm.CreatedCustomFields()))
		}
	})
}

func TestSetupFieldOfAnotherType(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.crm.AddCustomField(fakecrm.CustomField{Entity: "order", Code: "utm_source", Name: "UTM", Type: "integer"})
		f.connect(f.crm.URL, f.crm.Key())
		f.run(f.w)
		if in := f.get(); in.State != retailsync.StateFailed || !strings.Contains(in.Error, `"utm_source"`) || !strings.Contains(in.Error, "integer") {
			t.Fatalf("state %s (%s), want failed naming the field and its type", in.State, in.Error)
		}
	})
}

func TestSetupFailuresLoseNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.connect(f.crm.URL, "wrong-key")
		f.run(f.w)
		in := f.get()
		if in.State != retailsync.StateFailed || !strings.Contains(in.Error, "API key is wrong") {
			t.Fatalf("bad key: state %s (%s)", in.State, in.Error)
		}
		// A lead that arrives while the connection is failed waits for it.
		f.lead(leads.Input{Type: "form", Subject: "Заказ звонка", Name: "Анна", Phone: "+7 916 000-00-01"}, f.clock.Now())
		ps := f.pushAll()
		if len(ps) != 1 || ps[0].Status != "pending" || len(f.crm.CreatedOrders()) != 0 {
			t.Fatalf("pushes while failed: %+v", ps)
		}

		f.crm.SetAccountMissing(true)
		f.connect(f.crm.URL, f.crm.Key())
		f.run(f.w)
		if in := f.get(); in.State != retailsync.StateFailed || !strings.Contains(in.Error, "account does not exist") {
			t.Fatalf("missing account: state %s (%s)", in.State, in.Error)
		}
		f.crm.SetAccountMissing(false)

		// An account that does not answer is tried again, then failed.
		dead := httptest.NewServer(nil)
		dead.Close()
		f.connect(dead.URL, "key")
		for i := 0; ; i++ {
			f.run(f.w)
			in := f.get()
			if in.State == retailsync.StateFailed {
				if i != 4 || !strings.Contains(in.Error, "could not be reached") {
					t.Fatalf("unreachable: failed after %d retries (%s)", i, in.Error)
				}
				break
			}
			if in.State != retailsync.StateSettingUp || !strings.HasPrefix(in.Error, "will retry: ") || i > 4 {
				t.Fatalf("unreachable, try %d: state %s (%s)", i, in.State, in.Error)
			}
			f.clock.Add(2 * time.Hour)
		}

		// Fixed: the lead that waited is pushed.
		f.active()
		ps = f.pushAll()
		if len(ps) != 1 || ps[0].Status != "done" || ps[0].Outcome != retailsync.OutcomeCreated {
			t.Fatalf("after reconnect: %+v", ps)
		}
	})
}

func TestPushCallCustomerByPhoneNoOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		// The search finds both (same number, written differently); the newest wins.
		older := f.crm.AddCustomer(fakecrm.O{"firstName": "Old", "phones": []fakecrm.O{{"number": "+7 (916) 123-45-67"}},
			"createdAt": f.clock.Now().Add(-48 * time.Hour)})
		newest := f.crm.AddCustomer(fakecrm.O{"firstName": "Иван", "phones": []fakecrm.O{{"number": "+7 916 123-45-67"}},
			"createdAt": f.clock.Now().Add(-24 * time.Hour)})
		// A loose search also finds this one; it is not the same number.
		f.crm.AddCustomer(fakecrm.O{"firstName": "Other", "phones": []fakecrm.O{{"number": "+7 916 123-45-670"}}})
		id := f.call("89161234567", f.clock.Now())
		ps := f.pushAll()
		if len(ps) != 1 || ps[0].Status != "done" || ps[0].Outcome != retailsync.OutcomeCreated || ps[0].CustomerCreated ||
			ps[0].CustomerID == nil || *ps[0].CustomerID != newest || *ps[0].CustomerID == older || ps[0].LeadID != id {
			t.Fatalf("push %+v, want an order for customer %d", ps, newest)
		}
		if len(f.crm.CreatedCustomers()) != 0 {
			t.Fatal("a customer was created although one was found")
		}
		o := f.order(*ps[0].OrderID)
		cf := customFields(o)
		if cf["tl_site_id"] != fmt.Sprint(f.c.ID) || cf["tl_lead_id"] != fmt.Sprint("call-", id) {
			t.Fatalf("order fields %v", cf)
		}
		if o["status"] != "new" || o["site"] != "shop" || o["managerId"] != nil {
			t.Fatalf("order status %v site %v manager %v: want the first status of the first store, no manager", o["status"], o["site"], o["managerId"])
		}
	})
}

func TestPushRequestByEmailClosedOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		cust := f.crm.AddCustomer(fakecrm.O{"firstName": "Анна", "email": "Anna@Example.ru"})
		old := f.crm.AddOrder(fakecrm.O{"customer": fakecrm.O{"id": cust}, "status": "complete", "createdAt": f.clock.Now().Add(-time.Hour)})
		f.crm.AddOrder(fakecrm.O{"customer": fakecrm.O{"id": cust}, "status": "new", "createdAt": f.clock.Now().Add(-2 * time.Hour)})
		f.lead(leads.Input{Type: "form", Subject: "Расчёт", Name: "Анна", Email: "anna@example.ru"}, f.clock.Now())
		ps := f.pushAll()
		if len(ps) != 1 || ps[0].Outcome != retailsync.OutcomeCreated || *ps[0].CustomerID != cust || *ps[0].OrderID == old {
			t.Fatalf("push %+v: the newest order is closed, want a new order for customer %d", ps, cust)
		}
		if len(f.crm.Edits()) != 0 {
			t.Fatalf("edits %v, want none", f.crm.Edits())
		}
	})
}

func TestPushChatCreatesCustomer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		f.lead(leads.Input{Type: "chat", Name: "Иван", Phone: "8 916 765-43-21", Email: "ivan@example.ru"}, f.clock.Now())
		f.lead(leads.Input{Type: "form", Subject: "Обратный звонок", Name: "Пётр", Email: "petr@example.ru"}, f.clock.Now())
		f.call("+7 495 000-00-07", f.clock.Now())
		ps := f.pushAll()
		if len(ps) != 3 {
			t.Fatalf("pushes %+v", ps)
		}
		var names []string
		for _, id := range f.crm.CreatedCustomers() {
			c, _ := f.crm.Customer(id)
			names = append(names, fmt.Sprint(c["firstName"]))
		}
		slices.Sort(names)
		want := []string{"Звонок от +7 495 000-00-07", "Обратный звонок от Пётр petr@example.ru", "Чат от Иван +7 916 765-43-21 ivan@example.ru"}
		if !slices.Equal(names, want) {
			t.Fatalf("customer names\n%q\nwant\n%q", names, want)
		}
		for _, p := range ps {
			if p.Outcome != retailsync.OutcomeCreated || !p.CustomerCreated {
				t.Fatalf("push %+v: want a new customer with a new order", p)
			}
		}
	})
}

func TestPushOpenOrderUpdatedOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		cust := f.crm.AddCustomer(fakecrm.O{"firstName": "Иван", "phones": []fakecrm.O{{"number": "+79161112233"}}})
		open := f.crm.AddOrder(fakecrm.O{"customer": fakecrm.O{"id": cust}, "status": "assembling",
			"source": fakecrm.O{"source": "shop-own"}})
		first := f.call("+79161112233", f.clock.Now())
		ps := f.pushAll()
		if len(ps) != 1 || ps[0].Outcome != retailsync.OutcomeUpdated || *ps[0].OrderID != open {
			t.Fatalf("push %+v, want order %d updated", ps, open)
		}
		edits := f.crm.Edits()
		if len(edits) != 1 || edits[0].Site != "shop" || edits[0].Patch["source"] != nil {
			t.Fatalf("edits %+v: want one, in the order's store, leaving the shop's own source", edits)
		}
		if cf := customFields(f.order(open)); cf["tl_lead_id"] != fmt.Sprint("call-", first) {
			t.Fatalf("order fields %v", cf)
		}
		// The next lead of the same customer finds the order marked.
		f.call("+79161112233", f.clock.Now())
		ps = f.pushAll()
		if ps[0].Outcome != retailsync.OutcomeAlreadyMarked || *ps[0].OrderID != open || len(f.crm.Edits()) != 1 || len(f.crm.CreatedOrders()) != 0 {
			t.Fatalf("second push %+v, edits %d", ps[0], len(f.crm.Edits()))
		}
		if cf := customFields(f.order(open)); cf["tl_lead_id"] != fmt.Sprint("call-", first) {
			t.Fatalf("order fields changed by the second lead: %v", cf)
		}
	})
}

func TestPushDelay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		f.lead(leads.Input{Type: "form", Name: "Анна", Phone: "+79160000002"}, f.clock.Now())
		f.crm.ResetRequests()
		f.clock.Add(59 * time.Second)
		f.run(f.w)
		if n := f.crm.RequestCount(); n != 0 {
			t.Fatalf("%d requests before the minute passed", n)
		}
		f.clock.Add(2 * time.Second)
		f.run(f.w)
		if len(f.crm.CreatedOrders()) != 1 {
			t.Fatal("not pushed after a minute")
		}
	})
}

func TestPushNeverTwice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		const n = 6
		for i := range n {
			f.lead(leads.Input{Type: "form", Name: "Гость", Phone: fmt.Sprintf("+7916000%04d", i)}, f.clock.Now())
		}
		f.clock.Add(2 * time.Minute)
		// Two processes at once.
		var wg sync.WaitGroup
		for _, w := range []*retailsync.Worker{f.worker(), f.worker()} {
			wg.Go(func() {
				if err := w.RunOnce(f.ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		// A restart runs everything again.
		f.run(f.worker())
		if got := len(f.crm.CreatedOrders()); got != n {
			t.Fatalf("%d orders created for %d leads", got, n)
		}
		// A process that stopped after pushing, before recording: the
		// lease ends and the next attempt finds the order by our lead id.
		if _, err := db.Writer().ExecContext(f.ctx, `UPDATE retailcrm_pushes SET status = 'pending', outcome = '', due_at = $2
			WHERE counter_id = $1`, f.c.ID, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		f.run(f.worker())
		ps, err := retailsync.ListPushes(f.ctx, db, f.c.ID, "done", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(f.crm.CreatedOrders()); got != n || len(ps) != n || len(f.crm.CreatedCustomers()) != n {
			t.Fatalf("after a lost record: %d orders, %d customers, %d done pushes, want %d", got, len(f.crm.CreatedCustomers()), len(ps), n)
		}
		for _, p := range ps {
			if p.Outcome != retailsync.OutcomeCreated || p.Attempts != 2 {
				t.Fatalf("push %+v: want found as created on the second attempt", p)
			}
		}
	})
}

func TestPushRetriesThenFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.active()
		f.lead(leads.Input{Type: "form", Name: "Анна", Phone: "+79160000003"}, f.clock.Now())
		f.crm.FailNext(1000, 500, "")
		ps := f.pushAll()
		if ps[0].Status != "pending" || ps[0].Attempts != 1 || !strings.Contains(ps[0].Error, "could not be reached") {
			t.Fatalf("after a server error: %+v", ps[0])
		}
		for range 10 {
			f.clock.Add(7 * time.Hour)
			f.run(f.w)
		}
		ps, _ = retailsync.ListPushes(f.ctx, db, f.c.ID, "", 0)
		if ps[0].Status != "failed" || ps[0].Attempts != 7 {
			t.Fatalf("after the retries: %+v", ps[0])
		}
	})
}

func TestPushRateLimitHeld(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.crm.SetRateLimit(10)
		f.w.Client = retailcrm.Options{} // the defaults: 8 requests/s per account
		f.active()
		for i := range 4 {
			f.lead(leads.Input{Type: "form", Name: "Гость", Phone: fmt.Sprintf("+7916100%04d", i)}, f.clock.Now())
		}
		f.pushAll()
		if len(f.crm.CreatedOrders()) != 4 {
			t.Fatalf("%d orders", len(f.crm.CreatedOrders()))
		}
		for _, r := range f.crm.Requests() {
			if r.Status == 503 {
				t.Fatalf("%s %s answered 503: the rate limit was exceeded", r.Method, r.Path)
			}
		}
	})
}

func TestPullLinksDeals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		// The account is ten hours east of UTC (and of the counter): its
		// zoneless dates are placed in its zone, read from /settings.
		f.crm.SetTimezone("Asia/Vladivostok")
		f.crm.SetDefaultCurrency("KZT")
		now := f.clock.Now()
		f.crm.AddUser(fakecrm.User{ID: 28, FirstName: "Мария", LastName: "Петрова"})
		// Leads: a request and a call from the same phone (the call wins),
		// a request by e-mail, and a call from more than a year ago.
		f.lead(leads.Input{Type: "form", Name: "Иван", Phone: "+79161234567"}, now.Add(-2*time.Hour))
		callID := f.call("+79161234567", now.Add(-3*time.Hour))
		reqID := f.lead(leads.Input{Type: "form", Name: "Анна", Email: "anna@example.ru"}, now.Add(-24*time.Hour))
		f.call("+79165550000", now.AddDate(-1, -1, 0))

		ivan := f.crm.AddCustomer(fakecrm.O{"firstName": "Иван", "phones": []fakecrm.O{{"number": "8 916 123-45-67"}}})
		anna := f.crm.AddCustomer(fakecrm.O{"firstName": "Анна", "email": "anna@example.ru"})
		old := f.crm.AddCustomer(fakecrm.O{"firstName": "Old", "phones": []fakecrm.O{{"number": "+79165550000"}}})
		created := now.Add(-30 * time.Minute)
		o1 := f.crm.AddOrder(fakecrm.O{"number": "7141C", "customer": fakecrm.O{"id": ivan}, "status": "assembling", "totalSumm": 1395.16, "managerId": 28,
			"createdAt": created})
		o2 := f.crm.AddOrder(fakecrm.O{"customer": fakecrm.O{"id": anna}, "status": "complete", "totalSumm": 500})
		o3 := f.crm.AddOrder(fakecrm.O{"customer": fakecrm.O{"id": old}, "status": "new"})
		o4 := f.crm.AddOrder(fakecrm.O{"status": "new"})
		o5 := f.crm.AddOrder(fakecrm.O{"status": "new", "currency": nil}) // in the account's currency
		f.clock.Add(15 * time.Minute)
		f.active() // the first pull is due at once

		get := func(id int64) *crm.Order {
			t.Helper()
			o, err := crm.GetOrder(f.ctx, db, f.c.ID, fmt.Sprint(id))
			if err != nil {
				t.Fatalf("order %d: %v", id, err)
			}
			return o
		}
		d1 := get(o1)
		if d1.Intake != retailsync.Intake || d1.Status != "assembling" || d1.Revenue != 139516 || d1.StatusType != crm.InProgress ||
			d1.CallerPhone != "79161234567" || d1.ContactID != fmt.Sprint(ivan) {
			t.Fatalf("deal 1: %+v", d1)
		}
		if !d1.CreatedAt.Equal(created) {
			t.Fatalf("deal 1 created at %v, want %v (the account's %s)", d1.CreatedAt, created, created.In(f.crm.Location()).Format(time.DateTime))
		}
		attrs := d1.Attributes
		if attrs[retailsync.AttrNumber][0] != "7141C" || attrs[retailsync.AttrFunnel][0] != "shop" ||
			attrs[retailsync.AttrManager][0] != "Мария Петрова" || attrs[retailsync.AttrLead][0] != fmt.Sprintf("call %d by phone +7 916 123-45-67", callID) {
			t.Fatalf("deal 1 attributes %v", attrs)
		}
		if d2 := get(o2); d2.StatusType != crm.Paid || d2.Attributes[retailsync.AttrLead][0] != fmt.Sprintf("request %d by e-mail anna@example.ru", reqID) {
			t.Fatalf("deal 2: %+v", d2)
		}
		// The deals reach matching, which finds the linked call.
		if _, err := matching.Run(f.ctx, db, f.c.ID); err != nil {
			t.Fatal(err)
		}
		if p, err := matching.OrderPath(f.ctx, db, f.c.ID, fmt.Sprint(o1)); err != nil || p.Rung != matching.RungCallerPhone {
			t.Fatalf("deal 1 matched: %+v, %v; want by the caller phone", p, err)
		}
		if d := get(o5); d.Currency != "KZT" {
			t.Errorf("a deal without a currency: %q, want the account's KZT", d.Currency)
		}
		for _, id := range []int64{o3, o4} {
			if d := get(id); d.Attributes[retailsync.AttrLead][0] != retailsync.LeadNotFound {
				t.Fatalf("deal %d: link %v, want %q", id, d.Attributes[retailsync.AttrLead], retailsync.LeadNotFound)
			}
		}

		// A revenue change without a status change is not taken; with one it is.
		f.clock.Add(time.Hour)
		f.crm.UpdateOrder(o1, fakecrm.O{"totalSumm": 2000})
		f.run(f.w)
		if d := get(o1); d.Revenue != 139516 {
			t.Fatalf("revenue %d taken without a status change", d.Revenue)
		}
		// A newer call does not re-link the deal.
		f.call("+79161234567", f.clock.Now())
		f.clock.Add(time.Minute)
		f.crm.UpdateOrder(o1, fakecrm.O{"status": "complete"})
		f.clock.Add(retailsync.DefaultPullEvery)
		f.run(f.w)
		d := get(o1)
		if d.Revenue != 200000 || d.Status != "complete" || d.StatusType != crm.Paid ||
			d.Attributes[retailsync.AttrLead][0] != fmt.Sprintf("call %d by phone +7 916 123-45-67", callID) {
			t.Fatalf("after the status change: %+v", d)
		}
		if in := f.get(); in.LastPullAt == nil || in.PullError != "" {
			t.Fatalf("connection after pulls: %+v", in)
		}
	})
}

func TestConnectRejectsBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, tc := range []struct {
			in    retailsync.Input
			field string
		}{
			{retailsync.Input{URL: f.crm.URL}, "api_key"},
			{retailsync.Input{URL: "", APIKey: "k"}, "url"},
			{retailsync.Input{URL: f.crm.URL, APIKey: "k", Names: "de"}, "names"},
		} {
			_, err := retailsync.Connect(f.ctx, db, box, guard, f.c.ID, tc.in, f.clock.Now())
			inv, ok := err.(*retailsync.InvalidError)
			if !ok || inv.Field != tc.field {
				t.Errorf("%+v: got %v, want an error about %s", tc.in, err, tc.field)
			}
		}
		// Private addresses are refused unless the operator allows them.
		_, err := retailsync.Connect(f.ctx, db, box, webhooks.Guard{}, f.c.ID, retailsync.Input{URL: "https://127.0.0.1", APIKey: "k"}, f.clock.Now())
		if inv, ok := err.(*retailsync.InvalidError); !ok || inv.Field != "url" {
			t.Errorf("private address: %v", err)
		}
	})
}
