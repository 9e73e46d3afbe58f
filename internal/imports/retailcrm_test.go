package imports

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/retailcrm"
	"github.com/throughline/throughline/internal/retailcrm/fakecrm"
	"github.com/throughline/throughline/internal/secrets"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func TestRetailMappingChecks(t *testing.T) {
	known := map[string]bool{"tl_session_id": true, "tl_visitor_id": true, "promo": true}
	for _, tc := range []struct {
		mapping map[string]string
		field   string // "" = valid
		msg     string
	}{
		{DefaultRetailMapping(), "", ""},
		{map[string]string{"order_id": "number", "order_date": "customFields.promo | createdAt", "margin": "summ - purchaseSumm | totalSumm"}, "", ""},
		{map[string]string{"order_id": "id"}, "column_mapping.order_date", "is required"},
		{map[string]string{"order_id": "", "order_date": "createdAt"}, "column_mapping.order_id", "is required"},
		{map[string]string{"order_id": "id", "order_date": "createdAt", "shoe_size": "x"}, "column_mapping", `"shoe_size" is not a parameter`},
		{map[string]string{"order_id": "id", "order_date": "createdAt", "revenue": "totalSum"}, "column_mapping.revenue", `"totalSum" is not a RetailCRM order field`},
		{map[string]string{"order_id": "id", "order_date": "createdAt", "session_id": "customFields.sid"}, "column_mapping.session_id", `no order custom field "sid"`},
		{map[string]string{"order_id": "id", "order_date": "createdAt", "comment": "phone - email"}, "column_mapping.comment", "difference"},
		{map[string]string{"order_id": "id", "order_date": "createdAt", "comment": "phone ||"}, "column_mapping.comment", "empty field name"},
		{map[string]string{"order_id": "id", "order_date": "createdAt", "comment": "customer.Фамилия"}, "column_mapping.comment", "not a field name"},
		{map[string]string{"order_id": "id", "order_date": "createdAt", "comment": "customFields.a.b"}, "column_mapping.comment", "customFields.<code>"},
	} {
		_, err := compileMapping(tc.mapping, known)
		var ie *InvalidError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%v: %v", tc.mapping, err)
		case tc.field != "" && (!errors.As(err, &ie) || ie.Field != tc.field || !strings.Contains(ie.Message, tc.msg)):
			t.Errorf("%v: got %v, want %s: …%s…", tc.mapping, err, tc.field, tc.msg)
		}
	}
}

func FuzzRetailSource(f *testing.F) {
	for _, s := range DefaultRetailMapping() {
		f.Add("margin", s)
	}
	f.Add("comment", "a|b-c|")
	f.Add("revenue", "customFields.x - -")
	f.Fuzz(func(t *testing.T, param, text string) {
		src, err := parseSource(param, text, nil)
		if err != nil {
			return
		}
		if strings.TrimSpace(text) != "" && len(src) == 0 {
			t.Fatalf("%q: no alternatives and no error", text)
		}
		for _, a := range src {
			if a.a == "" || (a.b != "" && !numericParam(param)) {
				t.Fatalf("%q: bad alternative %+v", text, a)
			}
		}
		// A checked mapping reads any order without failing.
		rm := &retailMapping{src: map[string]source{param: src}}
		o := &retailcrm.Order{ID: 1, Raw: json.RawMessage(`{"id":1,"totalSumm":"12.5","customFields":{"x":"abc"},"customer":{"phones":[{"number":"1"}]}}`)}
		rm.text(o, param)
		rm.number(o, param)
	})
}

var retailBox = func() *secrets.Box {
	b, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		panic(err)
	}
	return b
}()

type retailFixture struct {
	db    *store.DB
	crm   *fakecrm.Server
	tasks *Tasks
	c     counter.Counter
	ctx   context.Context
}

func newRetailFixture(t *testing.T, db *store.DB) *retailFixture {
	t.Helper()
	f := &retailFixture{db: db, crm: fakecrm.New(), ctx: context.Background()}
	t.Cleanup(f.crm.Close)
	f.crm.AddCustomField(fakecrm.CustomField{Entity: "order", Code: "tl_session_id", Name: "Session", Type: "string"})
	f.crm.AddCustomField(fakecrm.CustomField{Entity: "order", Code: "tl_visitor_id", Name: "Visitor", Type: "string"})
	f.crm.AddCustomField(fakecrm.CustomField{Entity: "order", Code: "promo", Name: "Promo", Type: "string"})
	f.tasks = &Tasks{DB: db, AllowPrivate: true, Box: retailBox,
		RetailOptions: retailcrm.Options{MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxRetryTime: 2 * time.Second}}
	var err error
	if f.c, _, err = counter.Create(f.ctx, db, counter.NewCounter{Name: "s", Domain: "shop.ru"}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *retailFixture) create(in TaskInput) (*Task, error) {
	typ, name := TypeRetailCRM, "RetailCRM"
	in.Type, in.Name = &typ, &name
	if in.URL == nil {
		in.URL = &f.crm.URL
	}
	if in.APIKey == nil {
		k := f.crm.Key()
		in.APIKey = &k
	}
	return f.tasks.Create(f.ctx, f.c.ID, in)
}

func (f *retailFixture) run(t *testing.T, id int64) (*crm.Result, error) {
	t.Helper()
	task, err := f.tasks.Get(f.ctx, f.c.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return f.tasks.Run(f.ctx, nil, task, t.TempDir())
}

func (f *retailFixture) order(t *testing.T, id string) *crm.Order {
	t.Helper()
	o, err := crm.GetOrder(f.ctx, f.db, f.c.ID, id)
	if err != nil {
		t.Fatalf("order %s: %v", id, err)
	}
	return o
}

func strp(s string) *string { return &s }

// The first run imports the orders created from the start date with the
// mapping (custom fields included), pre-fills the status mapping, and
// later runs read only what the history says changed.
func TestRetailTaskRuns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRetailFixture(t, db)
		msk := f.crm.Location()
		cu := f.crm.AddCustomer(fakecrm.O{"firstName": "Анна", "lastName": "Петрова", "email": "Anna@Example.ru",
			"phones": []fakecrm.O{{"number": "8 (999) 555-11-11"}}, "tags": []fakecrm.O{{"name": "vip"}, {"name": "opt"}}})
		paid := f.crm.AddOrder(fakecrm.O{"createdAt": time.Date(2025, 2, 1, 12, 0, 0, 0, msk), "status": "complete",
			"customer": fakecrm.O{"id": cu}, "firstName": "Анна", "lastName": "Петрова", "phone": "+7 999 555-11-11",
			"totalSumm": 1395.16, "purchaseSumm": 60, "managerComment": "перезвонить",
			"items":        []fakecrm.O{{"quantity": 2, "initialPrice": 500}, {"quantity": 1.5, "initialPrice": 100}},
			"customFields": fakecrm.O{"tl_session_id": "S-1", "tl_visitor_id": "V-1", "promo": "SPRING"}})
		fresh := f.crm.AddOrder(fakecrm.O{"createdAt": time.Date(2025, 2, 2, 9, 30, 0, 0, msk), "status": "new", "totalSumm": 100})
		f.crm.AddOrder(fakecrm.O{"createdAt": time.Date(2024, 12, 31, 23, 0, 0, 0, msk), "status": "new", "totalSumm": 5}) // before the start

		// A custom field the account lacks is refused, naming the parameter.
		_, err := f.create(TaskInput{ColumnMapping: &map[string]string{"comment": "customFields.nope"}})
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != "column_mapping.comment" {
			t.Fatalf("unknown custom field: %v", err)
		}
		task, err := f.create(TaskInput{StartDate: strp("2025-01-01"), ColumnMapping: &map[string]string{"comment": "customFields.promo | managerComment"}})
		if err != nil {
			t.Fatal(err)
		}
		if !task.StartDate.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, msk)) || task.APIKey != MaskKey(f.crm.Key()) || task.FrequencyHours != 1 || !task.SkipBadRows {
			t.Fatalf("task: %+v", task)
		}
		if task.ColumnMapping["session_id"] != "customFields.tl_session_id" || task.ColumnMapping["revenue"] != "totalSumm" {
			t.Errorf("mapping defaults: %v", task.ColumnMapping)
		}

		res, err := f.run(t, task.ID)
		if err != nil {
			t.Fatalf("first run: %v %+v", err, res)
		}
		if res.Inserted != 3 || res.Rejected != 0 { // two orders and one contact
			t.Fatalf("first run: %+v", res)
		}
		o := f.order(t, itoa(paid))
		if !o.CreatedAt.Equal(time.Date(2025, 2, 1, 9, 0, 0, 0, time.UTC)) || o.Revenue != 139516 || o.Margin != 133516 ||
			o.Items != 4 || o.SID != "s-1" || strings.Join(o.ClientIDs, ",") != "v-1" || o.Comment != "SPRING" ||
			o.CallerPhone != "79995551111" || o.Type != "online" || o.Status != "complete" || o.StatusType != crm.Paid ||
			o.ContactID != itoa(cu) || strings.Join(o.Attributes["tags"], ",") != "vip,opt" || o.FinishedAt.IsZero() {
			t.Errorf("paid order: %+v", o)
		}
		if o := f.order(t, itoa(fresh)); o.StatusType != crm.InProgress || o.Type != "offline" || o.Revenue != 10000 {
			t.Errorf("new order: %+v", o)
		}
		contact, err := crm.GetContact(f.ctx, db, f.c.ID, itoa(cu))
		if err != nil || contact.Name != "Петрова Анна" || strings.Join(contact.Emails, ",") != "anna@example.ru" {
			t.Errorf("contact: %v %+v", err, contact)
		}
		// Statuses are offered pre-filled.
		statuses, _ := crm.Statuses(f.ctx, db, f.c.ID)
		types := map[string]crm.StatusType{}
		for _, s := range statuses {
			types[s.Code] = s.Type
		}
		if types["complete"] != crm.Paid || types["3"] != crm.Paid || types["no-call"] != crm.Cancelled || types["assembling"] != crm.InProgress {
			t.Errorf("pre-filled statuses: %v", types)
		}

		// Nothing changed: a second run stores nothing (the overlap reads
		// the new orders' history again; they are unchanged).
		f.crm.ResetRequests()
		res, err = f.run(t, task.ID)
		if err != nil || res.Inserted+res.Updated != 0 {
			t.Fatalf("second run: %v %+v", err, res)
		}
		for _, r := range f.crm.Requests() {
			if r.Path == "/api/v5/orders" && r.Query.Get("filter[createdAtFrom]") != "" {
				t.Errorf("an incremental run read by creation date: %v", r.Query)
			}
			if r.Status == 503 {
				t.Errorf("rate limit hit: %v", r.Path)
			}
		}

		// An edit without a status change is caught (history), and only
		// that order is read.
		f.crm.UpdateOrder(fresh, fakecrm.O{"totalSumm": 250.5})
		f.crm.ResetRequests()
		res, err = f.run(t, task.ID)
		if err != nil || res.Updated != 1 || res.Inserted != 0 {
			t.Fatalf("third run: %v %+v", err, res)
		}
		if o := f.order(t, itoa(fresh)); o.Revenue != 25050 {
			t.Errorf("edited revenue: %d", o.Revenue)
		}
		var read []string
		for _, r := range f.crm.Requests() {
			if r.Path == "/api/v5/orders" {
				read = append(read, strings.Join(r.Query["filter[ids][]"], ","))
			}
		}
		if strings.Join(read, ";") != itoa(fresh) {
			t.Errorf("orders read: %q", read)
		}
		// And again: nothing.
		if res, err = f.run(t, task.ID); err != nil || res.Read != 0 {
			t.Fatalf("fourth run: %v %+v", err, res)
		}
	})
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

// flakyTransport answers 503 to every request for page 2 of /orders while
// broken is set, as a RetailCRM under load might.
type flakyTransport struct {
	broken atomic.Bool
}

func (ft *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if ft.broken.Load() && r.URL.Path == "/api/v5/orders" && r.URL.Query().Get("page") == "2" {
		return &http.Response{StatusCode: 503, Header: http.Header{"Content-Type": {"text/html"}},
			Body: http.NoBody, Request: r}, nil
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A run that fails — a wrong key, a missing account, a 503 storm half-way —
// is logged with what to fix, stores nothing of the run, and keeps the
// cursor; the next good run imports everything.
func TestRetailTaskFailuresLoseNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRetailFixture(t, db)
		ft := &flakyTransport{}
		f.tasks.RetailOptions.HTTPClient = &http.Client{Transport: ft}
		f.crm.GenerateOrders(250, fakecrm.Generate{Start: time.Now().AddDate(0, 0, -5)})
		task, err := f.create(TaskInput{})
		if err != nil {
			t.Fatal(err)
		}
		count := func() int {
			var n int
			if err := db.Reader().QueryRow(`SELECT count(*) FROM crm_orders WHERE counter_id = $1`, f.c.ID).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		cursor := func() string {
			tk, err := f.tasks.get(f.ctx, db.Reader(), f.c.ID, task.ID)
			if err != nil {
				t.Fatal(err)
			}
			return tk.cursor
		}

		ft.broken.Store(true)
		res, err := f.run(t, task.ID)
		if err == nil || res.Status != crm.StatusFailed || !strings.Contains(res.Message, "will retry later") {
			t.Fatalf("503 storm: %v %+v", err, res)
		}
		if count() != 0 || cursor() != "" {
			t.Fatalf("a failed run stored %d orders, cursor %q", count(), cursor())
		}
		ft.broken.Store(false)

		f.crm.SetKeys("another-key")
		res, err = f.run(t, task.ID)
		if !errors.Is(err, retailcrm.ErrInvalidKey) || res.Status != crm.StatusFailed || !strings.Contains(res.Message, "the API key is wrong") {
			t.Fatalf("bad key: %v %+v", err, res)
		}
		f.crm.SetKeys(f.crm.Key(), fakecrm.DefaultKey)
		f.crm.SetAccountMissing(true)
		res, err = f.run(t, task.ID)
		if !errors.Is(err, retailcrm.ErrAccountNotFound) || !strings.Contains(res.Message, "check the account URL") {
			t.Fatalf("missing account: %v %+v", err, res)
		}
		f.crm.SetAccountMissing(false)
		if count() != 0 || cursor() != "" {
			t.Fatalf("failed runs stored %d orders, cursor %q", count(), cursor())
		}

		res, err = f.run(t, task.ID)
		if err != nil || count() != 250 || cursor() == "" {
			t.Fatalf("good run: %v %+v; %d orders, cursor %q", err, res, count(), cursor())
		}
		// A failing incremental run leaves the cursor where it was.
		before := cursor()
		f.crm.SetKeys("another-key")
		if _, err := f.run(t, task.ID); err == nil || cursor() != before {
			t.Fatalf("incremental failure: %v, cursor %q → %q", err, before, cursor())
		}
	})
}

// The connection test at save says which field is wrong.
func TestRetailTaskConnectionTest(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	f := newRetailFixture(t, db)
	check := func(in TaskInput, field, msg string) {
		t.Helper()
		_, err := f.create(in)
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != field || !strings.Contains(ie.Message, msg) {
			t.Errorf("got %v, want %s: …%s…", err, field, msg)
		}
	}
	check(TaskInput{APIKey: strp("wrong")}, "api_key", "the API key is wrong")
	check(TaskInput{APIKey: strp("")}, "api_key", "API access keys")
	check(TaskInput{URL: strp("ftp://x")}, "url", "")
	check(TaskInput{StartDate: strp("yesterday")}, "start_date", "not a date")
	f.crm.SetAccountMissing(true)
	check(TaskInput{}, "url", "account does not exist")
	f.crm.SetAccountMissing(false)
	f.crm.SetScopes("order_read")
	check(TaskInput{}, "api_key", "reference_read")
	f.crm.SetScopes("order_read", "reference_read", "custom_fields_read")

	// Private addresses are refused unless the operator allows them.
	f.tasks.AllowPrivate = false
	check(TaskInput{URL: strp("https://127.0.0.1:1")}, "url", "private")
	f.tasks.AllowPrivate = true

	// The key is stored sealed and shown masked.
	task, err := f.create(TaskInput{})
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	db.Reader().QueryRow(`SELECT api_key FROM import_tasks WHERE id = $1`, task.ID).Scan(&stored)
	if !secrets.IsSealed(stored) || strings.Contains(stored, f.crm.Key()) {
		t.Errorf("stored key %q", stored)
	}
	if b, _ := json.Marshal(task); strings.Contains(string(b), f.crm.Key()) {
		t.Errorf("the key is in the task's JSON: %s", b)
	}
	// A rename does not need the account.
	f.crm.SetAccountMissing(true)
	if _, err := f.tasks.Update(f.ctx, f.c.ID, task.ID, TaskInput{Name: strp("renamed")}); err != nil {
		t.Errorf("rename: %v", err)
	}
}

// The typed fast paths read what Order.Field reads from the raw JSON.
func TestRetailTypedFieldsAgreeWithRaw(t *testing.T) {
	var o retailcrm.Order
	raw := `{"id": 7, "number": "7A", "externalId": "", "phone": "+7 999 555-11-11", "email": "a@b.ru", "customerComment": "c",
		"customer": {"id": 1, "email": "c@d.ru", "phones": [{"number": "8 (999) 000-00-01"}]},
		"customFields": {"s": "abc", "n": 12.50, "b": true, "m": ["x", "y"], "e": ""}}`
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"number", "externalId", "phone", "additionalPhone", "email", "customerComment", "managerComment",
		"customer.email", "customer.phones.0.number", "customFields.s", "customFields.n", "customFields.b", "customFields.m",
		"customFields.e", "customFields.none"} {
		typed, _ := typedText(&o, p)
		rawV, _ := o.Field(p)
		if typed != rawV {
			t.Errorf("%s: typed %q, raw %q", p, typed, rawV)
		}
	}
}

// BenchmarkRetailMapping is a retailcrm run's own work on each page while
// the next is awaited (bench/retailimport's "reading"): the default mapping
// of 100 generated orders, decoded once outside the loop, to an order and a
// contact each.
func BenchmarkRetailMapping(b *testing.B) {
	s := fakecrm.New()
	defer s.Close()
	s.GenerateOrders(100, fakecrm.Generate{})
	c, err := retailcrm.New(s.URL, s.Key(), retailcrm.Options{AllowHTTP: true, RequestsPerSecond: -1})
	if err != nil {
		b.Fatal(err)
	}
	orders, _, err := c.Orders(context.Background(), retailcrm.OrdersFilter{}, 1, 100)
	if err != nil || len(orders) != 100 {
		b.Fatal(len(orders), err)
	}
	rm, err := compileMapping(DefaultRetailMapping(), nil)
	if err != nil {
		b.Fatal(err)
	}
	groups := map[string]string{"complete": "complete"}
	for b.Loop() {
		for i := range orders {
			if o, ct, err := rm.order(i+1, &orders[i], groups, time.UTC); err != nil || o.CallerPhone == "" || ct == nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/100, "µs/order")
}
