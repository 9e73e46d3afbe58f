package retailcrm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	_ "time/tzdata"

	"github.com/throughline/throughline/internal/retailcrm"
	"github.com/throughline/throughline/internal/retailcrm/fakecrm"
)

// Tests of the client against the fake server.

func newPair(t *testing.T, o retailcrm.Options) (*fakecrm.Server, *retailcrm.Client) {
	t.Helper()
	s := fakecrm.New()
	t.Cleanup(s.Close)
	o.AllowHTTP = true
	if o.RequestsPerSecond == 0 {
		o.RequestsPerSecond = -1 // most tests are not about the rate
		s.SetRateLimit(0)
	}
	if o.BaseBackoff == 0 {
		o.BaseBackoff = time.Millisecond
	}
	c, err := retailcrm.New(s.URL, s.Key(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestConnect(t *testing.T) {
	s, c := newPair(t, retailcrm.Options{})
	s.SetSites(fakecrm.Site{ID: 2, Code: "b", Ordering: 5}, fakecrm.Site{ID: 1, Code: "a", Ordering: 5}, fakecrm.Site{ID: 3, Code: "c", Ordering: 1})
	s.AddUser(fakecrm.User{ID: 28, FirstName: "Анна", LastName: "Петрова"})
	s.AddUser(fakecrm.User{ID: 29, FirstName: "programmer"})
	ctx := context.Background()
	cr, err := c.Credentials(ctx)
	if err != nil || !cr.HasScope("order_write") {
		t.Fatalf("credentials %+v %v", cr, err)
	}
	loc, err := c.Location(ctx)
	if err != nil || loc.String() != "Europe/Moscow" {
		t.Fatalf("location %v %v", loc, err)
	}
	sites, err := c.Sites(ctx)
	if first, ok := retailcrm.FirstSite(sites); err != nil || !ok || first.Code != "c" || len(sites) != 3 {
		t.Errorf("sites %v %v", sites, err)
	}
	statuses, err := c.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := c.StatusGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sorted := retailcrm.SortedStatuses(statuses, groups)
	if sorted[0].Code != "new" || !retailcrm.ClosedStatuses(groups)["3"] || retailcrm.ClosedStatuses(groups)["delivering"] {
		t.Errorf("statuses %v", sorted)
	}
	for id, want := range map[int64]string{28: "Анна Петрова", 29: "programmer"} {
		if u, err := c.User(ctx, id); err != nil || u.Name() != want {
			t.Errorf("user %d: %+v %v", id, u, err)
		}
	}
	if _, err := c.User(ctx, 404); !errors.Is(err, retailcrm.ErrNotFound) {
		t.Errorf("missing user: %v", err)
	}
	// The zone is read once per account and shared by its clients.
	c2, _ := retailcrm.New(s.URL, s.Key(), retailcrm.Options{AllowHTTP: true})
	before := s.RequestCount()
	if _, err := c2.Location(ctx); err != nil || s.RequestCount() != before {
		t.Errorf("second client read /settings again (%v)", err)
	}
}

func TestPaginationToTheEnd(t *testing.T) {
	s, c := newPair(t, retailcrm.Options{})
	for i := range 250 {
		s.AddOrder(fakecrm.O{"totalSumm": 100 + i})
	}
	var ids []int64
	pages := 0
	err := c.EachOrderPage(context.Background(), retailcrm.OrdersFilter{}, func(orders []retailcrm.Order) error {
		pages++
		for _, o := range orders {
			ids = append(ids, o.ID)
		}
		return nil
	})
	if err != nil || pages != 3 || len(ids) != 250 || ids[0] != 1 || ids[249] != 250 {
		t.Fatalf("%d pages, %d orders, %v", pages, len(ids), err)
	}
	for _, r := range s.Requests() {
		if r.Path == "/api/v5/orders" && r.Query.Get("limit") != "100" {
			t.Errorf("limit %q", r.Query.Get("limit"))
		}
	}
	// An empty result is one request and no call.
	s.ResetRequests()
	err = c.EachOrderPage(context.Background(), retailcrm.OrdersFilter{Sites: []string{"none"}}, func([]retailcrm.Order) error {
		t.Error("called for an empty result")
		return nil
	})
	if err != nil || s.RequestCount() != 1 {
		t.Errorf("empty: %v, %d requests", err, s.RequestCount())
	}
	// An error from fn stops the walk.
	stop := errors.New("stop")
	if err := c.EachOrderPage(context.Background(), retailcrm.OrdersFilter{}, func([]retailcrm.Order) error { return stop }); err != stop {
		t.Errorf("stop: %v", err)
	}
}

func TestOrderFiltersAndTimezone(t *testing.T) {
	s, c := newPair(t, retailcrm.Options{})
	s.SetTimezone("Asia/Vladivostok") // UTC+10
	s.AddCustomField(fakecrm.CustomField{Entity: "order", Code: "tl_session_id", Name: "s", Type: "string"})
	a := s.AddOrder(fakecrm.O{"createdAt": "2021-02-25 09:37:48", "statusUpdatedAt": "2021-02-25 10:00:00", "customFields": fakecrm.O{"tl_session_id": "S1"}, "status": "complete"})
	b := s.AddOrder(fakecrm.O{"createdAt": "2021-02-25 11:00:00", "statusUpdatedAt": "2021-02-25 12:00:00", "status": "new"})
	ctx := context.Background()
	o, err := c.Order(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2021, 2, 24, 23, 37, 48, 0, time.UTC); !o.CreatedAt.Equal(want) {
		t.Errorf("createdAt %v, want %v", o.CreatedAt.UTC(), want)
	}
	if v, ok := o.Field("customFields.tl_session_id"); v != "S1" || !ok {
		t.Errorf("session id %q", v)
	}
	// 01:00 UTC is 11:00 in Vladivostok: only b changed status since.
	got := func(f retailcrm.OrdersFilter) []int64 {
		t.Helper()
		orders, _, err := c.Orders(ctx, f, 1, 20)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, o := range orders {
			ids = append(ids, o.ID)
		}
		return ids
	}
	if ids := got(retailcrm.OrdersFilter{StatusUpdatedAtFrom: time.Date(2021, 2, 25, 1, 0, 0, 0, time.UTC)}); len(ids) != 1 || ids[0] != b {
		t.Errorf("statusUpdatedAtFrom: %v", ids)
	}
	last := s.Requests()[len(s.Requests())-1]
	if v := last.Query.Get("filter[statusUpdatedAtFrom]"); v != "2021-02-25 11:00:00" {
		t.Errorf("sent %q, want the account's local time", v)
	}
	if ids := got(retailcrm.OrdersFilter{IDs: []int64{b, a, 99}}); len(ids) != 2 {
		t.Errorf("ids: %v", ids)
	}
	if _, ok := s.Requests()[len(s.Requests())-1].Query["filter[ids][]"]; !ok {
		t.Errorf("ids not sent as filter[ids][]: %v", s.Requests()[len(s.Requests())-1].Query)
	}
	if ids := got(retailcrm.OrdersFilter{CustomFields: map[string]string{"tl_session_id": "S1"}}); len(ids) != 1 || ids[0] != a {
		t.Errorf("customFields: %v", ids)
	}
	if ids := got(retailcrm.OrdersFilter{ExtendedStatus: []string{"complete"}, CreatedAtFrom: time.Date(2021, 2, 24, 0, 0, 0, 0, time.UTC)}); len(ids) != 1 || ids[0] != a {
		t.Errorf("status: %v", ids)
	}
	if ids := got(retailcrm.OrdersFilter{Sites: []string{"shop"}, Extra: map[string][]string{"managers[]": {"1"}}}); len(ids) != 2 {
		t.Errorf("sites: %v", ids)
	}
	// The fake rejects a filter RetailCRM does not have: a bug shows.
	if _, _, err := c.Orders(ctx, retailcrm.OrdersFilter{Extra: map[string][]string{"updatedAtFrom": {"2021-01-01"}}}, 1, 20); !errors.Is(err, retailcrm.ErrValidation) {
		t.Errorf("unknown filter: %v", err)
	}
}

func TestWritesAndHistory(t *testing.T) {
	s, c := newPair(t, retailcrm.Options{})
	ctx := context.Background()
	for _, code := range []string{"tl_site_id", "tl_lead_id"} {
		got, err := c.CustomFieldCreate(ctx, "order", retailcrm.CustomField{Name: code, Code: code, Type: "string", DisplayArea: "customer", ViewMode: "editable", InFilter: true, InList: true})
		if err != nil || got != code {
			t.Fatalf("create %s: %q %v", code, got, err)
		}
	}
	_, err := c.CustomFieldCreate(ctx, "order", retailcrm.CustomField{Name: "dup", Code: "tl_site_id", Type: "string"})
	var apiErr *retailcrm.APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, retailcrm.ErrValidation) || apiErr.Errors["code"] == "" {
		t.Errorf("duplicate field: %v", err)
	}
	fields, err := c.CustomFields(ctx, "order")
	if err != nil || len(fields) != 2 || !fields[0].InFilter {
		t.Errorf("fields %+v %v", fields, err)
	}

	custID, err := c.CustomerCreate(ctx, "shop", retailcrm.NewCustomer{FirstName: "Call from +7 916 123-45-67", Phones: []retailcrm.Phone{{Number: "+79161234567"}}})
	if err != nil || custID == 0 || len(s.CreatedCustomers()) != 1 {
		t.Fatalf("customer %d %v", custID, err)
	}
	found, err := c.CustomersByPhone(ctx, "79161234567")
	if err != nil || len(found) != 1 || found[0].ID != custID || found[0].CreatedAt.IsZero() || found[0].CreatedAt.Location().String() != "Europe/Moscow" {
		t.Errorf("by phone: %+v %v", found, err)
	}
	s.AddCustomer(fakecrm.O{"firstName": "Ann", "email": "Ann@Example.ru"})
	if found, err := c.CustomersByEmail(ctx, "ann@example.ru"); err != nil || len(found) != 1 || found[0].Email != "Ann@Example.ru" {
		t.Errorf("by email: %+v %v", found, err)
	}

	o, err := c.OrderCreate(ctx, "shop", retailcrm.NewOrder{
		Customer: &retailcrm.EntityRef{ID: custID}, FirstName: "Call from +7 916 123-45-67", Phone: "+79161234567",
		Source:       &retailcrm.Source{Source: "yandex", Medium: "cpc"},
		CustomFields: map[string]any{"tl_site_id": "12", "tl_lead_id": "987654", "not_defined": "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.ID == 0 || o.Status != "new" || o.Site != "shop" || o.Customer == nil || o.Customer.ID != custID || o.CreatedAt.Location().String() != "Europe/Moscow" {
		t.Errorf("created %+v", o)
	}
	if v, _ := o.Field("customFields.tl_lead_id"); v != "987654" {
		t.Errorf("lead id %q", v)
	}
	if _, ok := o.CustomFields["not_defined"]; ok {
		t.Error("an undefined custom field was kept")
	}
	create := s.Requests()[len(s.Requests())-1]
	if create.Form.Get("site") != "shop" || create.Status != 201 {
		t.Errorf("create request %+v", create)
	}
	var sent map[string]any
	if err := json.Unmarshal([]byte(create.Form.Get("order")), &sent); err != nil || sent["status"] != nil || sent["customer"].(map[string]any)["id"] != float64(custID) {
		t.Errorf("order= %s", create.Form.Get("order"))
	}
	// Found by the custom field (§10.6).
	byLead, _, err := c.Orders(ctx, retailcrm.OrdersFilter{CustomFields: map[string]string{"tl_lead_id": "987654"}}, 1, 20)
	if err != nil || len(byLead) != 1 {
		t.Errorf("by lead %v %v", byLead, err)
	}

	edited, err := c.OrderEdit(ctx, "shop", o.ID, map[string]any{"customFields": map[string]any{"tl_lead_id": "111"}, "status": "complete"})
	if err != nil || edited.Status != "complete" {
		t.Fatalf("edit %+v %v", edited, err)
	}
	if v, _ := edited.Field("customFields.tl_site_id"); v != "12" {
		t.Errorf("edit lost another custom field: %q", v)
	}
	if e := s.Edits(); len(e) != 1 || e[0].OrderID != o.ID {
		t.Errorf("edits %+v", e)
	}
	if r := s.Requests()[len(s.Requests())-1]; r.Form.Get("by") != "id" {
		t.Errorf("edit without by=id: %v", r.Form)
	}
	if _, err := c.OrderEdit(ctx, "other", o.ID, map[string]any{"status": "new"}); !errors.Is(err, retailcrm.ErrNotFound) {
		t.Errorf("edit in the wrong store: %v", err)
	}
	if _, err := c.OrderCreate(ctx, "nope", retailcrm.NewOrder{}); !errors.As(err, &apiErr) || apiErr.Errors["0"] == "" {
		t.Errorf("unknown store (errors as array): %v", err)
	}

	// History: created, then the two changes.
	var recs []retailcrm.HistoryRecord
	err = c.EachHistoryPage(ctx, retailcrm.HistoryFilter{}, func(p retailcrm.HistoryPage) error {
		recs = append(recs, p.History...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fieldsSeen := map[string]bool{}
	for _, h := range recs {
		fieldsSeen[h.Field] = true
		if h.Order.ID != o.ID {
			t.Errorf("history of %d", h.Order.ID)
		}
	}
	if len(recs) != 3 || !recs[0].Created || !fieldsSeen["custom_tl_lead_id"] || !fieldsSeen["status"] {
		t.Errorf("history %+v", recs)
	}
	after, err := c.History(ctx, retailcrm.HistoryFilter{SinceID: recs[2].ID}, 1, 100)
	if err != nil || len(after.History) != 0 || after.GeneratedAt.IsZero() {
		t.Errorf("after the cursor: %+v %v", after, err)
	}
}

func TestHistoryWalksBySinceID(t *testing.T) {
	s, c := newPair(t, retailcrm.Options{})
	for range 230 {
		s.AddOrder(fakecrm.O{})
	}
	var ids []int64
	err := c.EachHistoryPage(context.Background(), retailcrm.HistoryFilter{SinceID: 5}, func(p retailcrm.HistoryPage) error {
		for _, h := range p.History {
			ids = append(ids, h.ID)
		}
		return nil
	})
	if err != nil || len(ids) != 225 || ids[0] != 6 || ids[224] != 230 {
		t.Fatalf("%d records (%v)", len(ids), err)
	}
	for _, r := range s.Requests() {
		if r.Path == "/api/v5/orders/history" && r.Query.Get("page") != "1" {
			t.Errorf("page %s: the walk moves sinceId instead", r.Query.Get("page"))
		}
	}
}

func TestTypedErrors(t *testing.T) {
	ctx := context.Background()
	s, c := newPair(t, retailcrm.Options{})
	bad, _ := retailcrm.New(s.URL, "wrong", retailcrm.Options{AllowHTTP: true, RequestsPerSecond: -1})
	_, err := bad.Credentials(ctx)
	var apiErr *retailcrm.APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, retailcrm.ErrInvalidKey) || apiErr.HTTPStatus != 403 || apiErr.Endpoint != "GET /api/credentials" {
		t.Errorf("wrong key: %v", err)
	}
	s.DenyPath("/api/v5/settings")
	if _, err := c.Settings(ctx); !errors.Is(err, retailcrm.ErrAccessDenied) {
		t.Errorf("denied: %v", err)
	}
	if _, _, err := c.Orders(ctx, retailcrm.OrdersFilter{}, 1, 20); !errors.Is(err, retailcrm.ErrAccessDenied) {
		t.Errorf("no zone → the orders cannot be read: %v", err)
	}
	s2, c2 := newPair(t, retailcrm.Options{Location: time.UTC})
	if _, err := c2.Order(ctx, 12345); !errors.Is(err, retailcrm.ErrNotFound) {
		t.Errorf("missing order: %v", err)
	}
	s2.SetAccountMissing(true)
	_, err = c2.Credentials(ctx)
	if !errors.Is(err, retailcrm.ErrAccountNotFound) || errors.As(err, &apiErr) && apiErr.HTTPStatus != 405 {
		t.Errorf("missing account: %v", err)
	}
	if s2.RequestCount() != 2 {
		t.Errorf("%d requests: an HTML answer must not be retried", s2.RequestCount())
	}
}

func TestRetry503ThenSuccess(t *testing.T) {
	s, c := newPair(t, retailcrm.Options{Location: time.UTC})
	s.AddOrder(fakecrm.O{})
	s.FailNext(2, 503, "")
	orders, _, err := c.Orders(context.Background(), retailcrm.OrdersFilter{}, 1, 100)
	if err != nil || len(orders) != 1 || s.RequestCount() != 3 {
		t.Fatalf("%v, %d requests", err, s.RequestCount())
	}
	s.FailNext(100, 500, `{"success":false,"errorMsg":"Internal Server Error"}`)
	_, _, err = c.Orders(context.Background(), retailcrm.OrdersFilter{}, 1, 100)
	var apiErr *retailcrm.APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, retailcrm.ErrUnavailable) || apiErr.Attempts != retailcrm.DefaultMaxAttempts {
		t.Errorf("gave up: %v", err)
	}
}

// TestRateLimitHeld: 3 clients of one account send 30 requests at once; the
// fake's limit of 10 in any sliding second is never hit, and the log shows
// no second with more than 10.
func TestRateLimitHeld(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 3 s")
	}
	s := fakecrm.New()
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for range 3 {
		c, err := retailcrm.New(s.URL, s.Key(), retailcrm.Options{AllowHTTP: true, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := c.Sites(context.Background()); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("request failed (the limit was exceeded?): %v", err)
	}
	reqs := s.Requests()
	if len(reqs) != 30 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i := range reqs {
		n := 0
		for j := i; j < len(reqs) && reqs[j].Time.Sub(reqs[i].Time) < time.Second; j++ {
			n++
		}
		if n > 10 {
			t.Fatalf("%d requests within a second from request %d", n, i)
		}
	}
	if took := reqs[29].Time.Sub(reqs[0].Time); took < 3*time.Second {
		t.Errorf("30 requests in %v: faster than %d/s", took, retailcrm.DefaultRequestsPerSecond)
	}
}

// TestFakeRateLimit: without our limiter the fake answers 503 past 10/s,
// and the client's retries still get every request through.
func TestFakeRateLimit(t *testing.T) {
	s := fakecrm.New()
	defer s.Close()
	c, _ := retailcrm.New(s.URL, s.Key(), retailcrm.Options{AllowHTTP: true, RequestsPerSecond: -1, BaseBackoff: 50 * time.Millisecond})
	for i := range 15 {
		if _, err := c.Sites(context.Background()); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	limited := 0
	for _, r := range s.Requests() {
		if r.Status == 503 {
			limited++
		}
	}
	if limited == 0 {
		t.Error("15 unpaced requests were never limited")
	}
}

func TestGenerateOrders(t *testing.T) {
	s, c := newPair(t, retailcrm.Options{})
	// How fast is a benchmark's business (BenchmarkEachOrderPage); a test
	// under -race on a busy machine only checks what was made.
	first, last := s.GenerateOrders(100_000, fakecrm.Generate{})
	if last-first != 99_999 {
		t.Errorf("ids %d…%d", first, last)
	}
	orders, p, err := c.Orders(context.Background(), retailcrm.OrdersFilter{IDs: []int64{1, 2, 3}}, 1, 20)
	if err != nil || len(orders) != 3 || p.TotalCount != 3 {
		t.Fatalf("%d %+v %v", len(orders), p, err)
	}
	for _, o := range orders {
		if o.TotalSumm == 0 || o.ItemCount() != 2.5 || o.Customer == nil || len(o.Customer.Phones) != 1 {
			t.Errorf("generated %+v", o)
		}
	}
	if v, ok := orders[0].Field("customFields.tl_session_id"); !ok || v != fmt.Sprint("s", first) {
		t.Errorf("session id %q", v)
	}
	if len(orders[0].Payments) != 1 || len(orders[1].Payments) != 1 || len(orders[2].Payments) != 0 || len(orders[2].CustomFields) != 0 {
		t.Errorf("payments/customFields shapes: %+v", orders)
	}
}

// BenchmarkEachOrderPage reads 100,000 generated orders with both rate
// limits off: what reading costs us, without the API's pacing. At the API's
// 10 requests/s the same 1,000 pages take at least 100 s.
//
//	go test -run XXX -bench EachOrderPage -benchtime 1x ./internal/retailcrm
func BenchmarkEachOrderPage(b *testing.B) {
	s := fakecrm.New()
	defer s.Close()
	s.SetRateLimit(0)
	const n = 100_000
	s.GenerateOrders(n, fakecrm.Generate{})
	c, err := retailcrm.New(s.URL, s.Key(), retailcrm.Options{AllowHTTP: true, RequestsPerSecond: -1, Location: time.UTC})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		s.ResetRequests()
		read := 0
		err := c.EachOrderPage(context.Background(), retailcrm.OrdersFilter{}, func(orders []retailcrm.Order) error {
			for i := range orders {
				// What an import reads of each order.
				orders[i].Field("customFields.tl_session_id")
				orders[i].Field("customer.phones.0.number")
				orders[i].ItemCount()
				read++
			}
			return nil
		})
		if err != nil || read != n {
			b.Fatalf("%d orders, %v", read, err)
		}
	}
	perRun := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(n/perRun, "orders/s")
	b.ReportMetric(float64(s.RequestCount()), "requests")
	b.ReportMetric(perRun/(float64(s.RequestCount())/retailcrm.MaxRequestsPerSecond), "share-of-rate-bound")
}

// BenchmarkDecodeOrdersPage is the client's own work on one page of 100
// generated orders: decoding it into Orders (what an import does with each
// page; the default mapping then reads typed fields), decoding and reading
// two fields of each by path (what a mapping of other fields adds), and, for
// scale, decoding the same bytes into plain maps.
func BenchmarkDecodeOrdersPage(b *testing.B) {
	s := fakecrm.New()
	defer s.Close()
	s.GenerateOrders(100, fakecrm.Generate{})
	req, _ := http.NewRequest("GET", s.URL+"/api/v5/orders?limit=100", nil)
	req.Header.Set("X-API-KEY", s.Key())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	decode := func(b *testing.B, fields ...string) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var page struct {
				Orders []retailcrm.Order `json:"orders"`
			}
			if err := json.Unmarshal(body, &page); err != nil || len(page.Orders) != 100 {
				b.Fatal(err)
			}
			for i := range page.Orders {
				for _, f := range fields {
					page.Orders[i].Field(f)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/100, "µs/order")
	}
	b.Run("orders", func(b *testing.B) { decode(b) })
	b.Run("orders+fields", func(b *testing.B) { decode(b, "customFields.tl_session_id", "customer.phones.0.number") })
	b.Run("any", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var page any
			if err := json.Unmarshal(body, &page); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/100, "µs/order")
	})
}
