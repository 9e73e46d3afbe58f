package retailcrm

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "time/tzdata" // Europe/Moscow on machines without a zoneinfo database
)

// Tests against the exact bodies of shared/spec/retailcrm.md (testdata/
// holds its examples verbatim) and hand-written variants of each trap.

type rawAnswer struct {
	status int
	body   string
	header map[string]string
}

// rawServer answers each path with its bodies in turn (the last repeats).
func rawServer(t *testing.T, routes map[string][]rawAnswer) (*Client, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("X-API-KEY") != "k" {
			t.Errorf("%s: X-API-KEY %q", r.URL.Path, r.Header.Get("X-API-KEY"))
		}
		list, ok := routes[r.URL.Path]
		if !ok {
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
			w.WriteHeader(500)
			return
		}
		a := list[min(seen[r.URL.Path], len(list)-1)]
		seen[r.URL.Path]++
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, "k", Options{AllowHTTP: true, RequestsPerSecond: -1, BaseBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c, &hits
}

func ok(body string) []rawAnswer { return []rawAnswer{{status: 200, body: body}} }

func testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func msk(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestSpecOrder(t *testing.T) {
	order := testdata(t, "order.json")
	c, _ := rawServer(t, map[string][]rawAnswer{
		"/api/v5/settings":    ok(testdata(t, "settings.json")),
		"/api/v5/orders/7141": ok(`{"success":true,"order":` + order + `}`),
	})
	o, err := c.Order(context.Background(), 7141)
	if err != nil {
		t.Fatal(err)
	}
	if o.ID != 7141 || o.Number != "7141C" || o.ExternalID != "a-7141" || o.Site != "moysklad" || o.Status != "assembling" {
		t.Errorf("ids: %+v", o)
	}
	if o.TotalSumm != 139516 || o.Summ != 77900 || o.PurchaseSumm != 6000 || o.Margin() != 133516 || o.Delivery.Cost != 61616 {
		t.Errorf("money: total %d summ %d purchase %d margin %d delivery %d", o.TotalSumm, o.Summ, o.PurchaseSumm, o.Margin(), o.Delivery.Cost)
	}
	// 09:37:48 in Moscow (UTC+3) is 06:37:48 UTC.
	if want := time.Date(2021, 2, 25, 6, 37, 48, 0, time.UTC); !o.CreatedAt.Equal(want) || o.CreatedAt.Location().String() != "Europe/Moscow" {
		t.Errorf("createdAt %v, want %v", o.CreatedAt, want)
	}
	if o.Customer == nil || o.Customer.ID != 4924 || o.Customer.Phones[0].Number != "+79515151515" || o.Customer.Tags[0].Name != "vip" {
		t.Errorf("customer %+v", o.Customer)
	}
	if len(o.Customer.CustomFields) != 0 {
		t.Errorf("customer customFields [] → %v", o.Customer.CustomFields)
	}
	if len(o.Payments) != 1 || o.Payments[0].ID != 4326 || o.Payments[0].Amount != 139516 || o.Payments.Paid() != 139516 ||
		!o.Payments[0].PaidAt.Equal(time.Date(2021, 2, 25, 11, 5, 6, 0, time.UTC)) {
		t.Errorf("payments %+v", o.Payments)
	}
	if o.ItemCount() != 1 || o.ManagerID != 28 || o.Source.Campaign != "sofa_msk" || o.ClientID != "1234567890.1614242268" {
		t.Errorf("items %v manager %d source %+v", o.ItemCount(), o.ManagerID, o.Source)
	}
	for path, want := range map[string]string{
		"totalSumm":                 "1395.16",
		"customFields.dictionary":   "test2",
		"customFields.multiselect":  "test1,test3",
		"customFields.galka":        "false",
		"customFields.test_number":  "0",
		"customer.phones.0.number":  "+79515151515",
		"customer.tags.0.name":      "vip",
		"source.keyword":            "купить диван",
		"delivery.netCost":          "0",
		"payments.4326.status":      "paid",
		"createdAt":                 "2021-02-25 09:37:48",
		"items.0.offer.unit.sym":    "шт",
		"contact.phones.0.number":   "+79515151515",
		"links.0.order.number":      "8170C",
		"customer.contragent":       `{"contragentType":"individual"}`,
		"customFields.nonexistent.": "",
	} {
		got, found := o.Field(path)
		if got != want || found != (want != "") {
			t.Errorf("Field(%q) = %q, %v; want %q", path, got, found, want)
		}
	}
	for _, missing := range []string{"additionalPhone", "managerComment", "nope", "customer.customFields.x", "items.5.id", ""} {
		if v, found := o.Field(missing); found {
			t.Errorf("Field(%q) = %q, want missing", missing, v)
		}
	}
}

func TestSpecTrapVariants(t *testing.T) {
	// customFields [] and payments as an array with a money string; money
	// as strings; dates null and empty; managerId null.
	body := `{"success":true,"pagination":{"limit":100,"totalCount":3,"currentPage":1,"totalPageCount":1},"orders":[
	  {"id":1,"customFields":[],"payments":[{"id":5,"status":"paid","amount":"10.5"},{"id":4,"status":"not-paid","amount":1}],
	   "totalSumm":"1 000,25","purchaseSumm":null,"createdAt":"2021-02-25 09:37:48","statusUpdatedAt":null,"fullPaidAt":"","managerId":null,
	   "items":[{"quantity":1.5},{"quantity":2,"isCanceled":true}],"customer":{"id":3,"customFields":{"a":1},"mgCustomers":[{"id":1,"externalId":100}]}},
	  {"id":2,"customFields":{},"payments":{}},
	  {"id":3,"payments":{"9":{"amount":3},"10":{"id":10,"amount":1e2}},"customFields":null}
	]}`
	c, _ := rawServer(t, map[string][]rawAnswer{"/api/v5/orders": ok(body)})
	c.o.Location = msk(t)
	orders, p, err := c.Orders(context.Background(), OrdersFilter{}, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if p.TotalCount != 3 || len(orders) != 3 {
		t.Fatalf("pagination %+v, %d orders", p, len(orders))
	}
	a := orders[0]
	if a.TotalSumm != 100025 || a.PurchaseSumm != 0 || !a.StatusUpdatedAt.IsZero() || !a.FullPaidAt.IsZero() || a.ManagerID != 0 {
		t.Errorf("order 1: %+v", a)
	}
	if len(a.Payments) != 2 || a.Payments[0].ID != 4 || a.Payments.Paid() != 1050 {
		t.Errorf("payments array: %+v", a.Payments)
	}
	if a.ItemCount() != 1.5 || len(a.CustomFields) != 0 {
		t.Errorf("items %v customFields %v", a.ItemCount(), a.CustomFields)
	}
	if v, ok := a.Customer.CustomFields.String("a"); v != "1" || !ok {
		t.Errorf("customer customFields a = %q", v)
	}
	if len(orders[1].Payments) != 0 || len(orders[1].CustomFields) != 0 {
		t.Errorf("order 2: %+v", orders[1])
	}
	if pays := orders[2].Payments; len(pays) != 2 || pays[0].ID != 9 || pays[0].Amount != 300 || pays[1].Amount != 10000 {
		t.Errorf("payments object without ids: %+v", pays)
	}
}

func TestSpecErrors(t *testing.T) {
	f, err := os.Open("testdata/errors.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var bodies []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		bodies = append(bodies, sc.Text())
	}
	want := []struct {
		status int
		class  error
		errs   map[string]string
	}{
		{400, ErrValidation, map[string]string{"customer": "Set one of the following fields: id, externalId"}},
		{400, ErrValidation, map[string]string{"0": "Your account has insufficient funds", "1": "Test error"}},
		{403, ErrMissingKey, nil},
		{403, ErrInvalidKey, nil},
		{403, ErrAccessDenied, nil},
		{200, ErrAccountNotFound, nil}, // success:false decides, whatever the status
		{400, ErrValidation, map[string]string{"name": "name must be provided"}},
		{400, ErrMissingParameter, nil},
		{404, ErrNotFound, nil},
	}
	if len(bodies) != len(want) {
		t.Fatalf("%d bodies", len(bodies))
	}
	for i, body := range bodies {
		c, hits := rawServer(t, map[string][]rawAnswer{"/api/v5/reference/sites": {{status: want[i].status, body: body}}})
		_, err := c.Sites(context.Background())
		var apiErr *APIError
		if !errors.As(err, &apiErr) || !errors.Is(err, want[i].class) {
			t.Errorf("%s: %v, want class %v", body, err, want[i].class)
			continue
		}
		if hits.Load() != 1 {
			t.Errorf("%s: %d requests; 4xx must not be retried", body, hits.Load())
		}
		if apiErr.Endpoint != "GET /api/v5/reference/sites" || apiErr.HTTPStatus != want[i].status || apiErr.Message == "" {
			t.Errorf("%s: %+v", body, apiErr)
		}
		if len(want[i].errs) > 0 {
			for k, v := range want[i].errs {
				if apiErr.Errors[k] != v {
					t.Errorf("%s: errors %v", body, apiErr.Errors)
				}
			}
			if !strings.Contains(err.Error(), want[i].errs[firstKey(want[i].errs)]) {
				t.Errorf("message %q lacks the field errors", err)
			}
		}
	}
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

func TestHTMLMeansNoAccount(t *testing.T) {
	page := "<html>\r\n<head><title>405 Not Allowed</title></head>\r\n<body>\r\n<center><h1>405 Not Allowed</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	for _, status := range []int{405, 404, 200} {
		c, hits := rawServer(t, map[string][]rawAnswer{"/api/credentials": {{status: status, body: page}}})
		_, err := c.Credentials(context.Background())
		if !errors.Is(err, ErrAccountNotFound) || hits.Load() != 1 {
			t.Errorf("HTML %d: %v after %d requests", status, err, hits.Load())
		}
	}
	// A 503 HTML page is nginx's rate limit, not a missing account.
	c, hits := rawServer(t, map[string][]rawAnswer{"/api/credentials": {
		{status: 503, body: "<html><title>503 Service Temporarily Unavailable</title></html>"},
		{status: 200, body: testdata(t, "credentials.jsonl")[:110]},
	}})
	cr, err := c.Credentials(context.Background())
	if err != nil || hits.Load() != 2 || !cr.HasScope("order_read") || cr.HasScope("order_write") || cr.SiteAccess != "access_full" {
		t.Errorf("503 HTML then credentials: %+v, %v, %d requests", cr, err, hits.Load())
	}
}

func TestSpecReferenceAndHistory(t *testing.T) {
	c, _ := rawServer(t, map[string][]rawAnswer{
		"/api/v5/settings":                ok(testdata(t, "settings.json")),
		"/api/v5/reference/statuses":      ok(testdata(t, "statuses.json")),
		"/api/v5/reference/status-groups": ok(testdata(t, "status-groups.json")),
		"/api/v5/orders/history":          ok(testdata(t, "history.json")),
		"/api/v5/users/28":                ok(`{ "success": true, "user": { "id": 28, "firstName": "programmer", "email": "p@example.ru", "active": true, "isManager": true, "groups": [] } }`),
	})
	ctx := context.Background()
	st, err := c.Statuses(ctx)
	if err != nil || st["3"].Group != "complete" || st["new"].Name != "Новый" {
		t.Errorf("statuses %v %v", st, err)
	}
	groups, err := c.StatusGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed := ClosedStatuses(groups)
	if !closed["3"] || !closed["abandoned-cart"] || closed["new"] || len(closed) != 7 {
		t.Errorf("closed %v", closed)
	}
	u, err := c.User(ctx, 28)
	if err != nil || u.Name() != "programmer" || (User{ID: 5}).Name() != "#5" {
		t.Errorf("user %+v %v", u, err)
	}
	h, err := c.History(ctx, HistoryFilter{SinceID: 7000}, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.History) != 2 || h.History[0].ID != 7038 || !h.History[0].Created || h.History[0].Order.TotalSumm != 139516 ||
		h.History[1].Field != "manager" || h.History[1].User.ID != 19 || h.History[1].Order.ManagerID != 23 || h.Pagination.TotalPageCount != 298 {
		t.Errorf("history %+v", h)
	}
	if want := time.Date(2021, 2, 25, 17, 41, 40, 0, time.UTC); !h.GeneratedAt.Equal(want) {
		t.Errorf("generatedAt %v", h.GeneratedAt)
	}
	if string(h.History[0].NewValue) != `{"code": "new"}` {
		t.Errorf("newValue %s", h.History[0].NewValue)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	c, hits := rawServer(t, map[string][]rawAnswer{"/api/v5/reference/sites": {
		{status: 429, body: `{"success":false,"errorMsg":"Too many requests"}`, header: map[string]string{"Retry-After": "2"}},
		{status: 200, body: `{"success":true,"sites":{"s":{"id":1,"ordering":1}}}`},
	}})
	var slept []time.Duration
	c.sleepFn = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	sites, err := c.Sites(context.Background())
	if err != nil || sites["s"].Code != "s" || hits.Load() != 2 {
		t.Fatalf("%v %v %d", sites, err, hits.Load())
	}
	if len(slept) != 1 || slept[0] != 2*time.Second {
		t.Errorf("slept %v, want Retry-After 2s", slept)
	}
}

func TestRetryBudget(t *testing.T) {
	// Backoff doubles from the base, capped; the total time bound stops it.
	c, hits := rawServer(t, map[string][]rawAnswer{"/api/v5/reference/sites": {{status: 502, body: "bad gateway"}}})
	c.o.BaseBackoff, c.o.MaxBackoff, c.o.MaxAttempts = 100*time.Millisecond, 400*time.Millisecond, 6
	var slept []time.Duration
	c.sleepFn = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	_, err := c.Sites(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, ErrUnavailable) || apiErr.Attempts != 6 || hits.Load() != 6 || !Retryable(err) {
		t.Fatalf("%v (%d requests)", err, hits.Load())
	}
	want := []time.Duration{100, 200, 400, 400, 400}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if len(slept) != len(want) {
		t.Fatalf("slept %v", slept)
	}
	for i := range want {
		if slept[i] != want[i] {
			t.Errorf("slept %v, want %v", slept, want)
		}
	}
	// With Retry-After beyond the whole budget it gives up at once.
	c2, hits2 := rawServer(t, map[string][]rawAnswer{"/api/v5/reference/sites": {{status: 503, body: "", header: map[string]string{"Retry-After": "3600"}}}})
	c2.o.MaxRetryTime = time.Minute
	if _, err := c2.Sites(context.Background()); !errors.Is(err, ErrRateLimited) || hits2.Load() != 1 {
		t.Errorf("Retry-After past the budget: %v after %d", err, hits2.Load())
	}
}

func TestCreateNotRetriedWhenUnsure(t *testing.T) {
	c, hits := rawServer(t, map[string][]rawAnswer{"/api/v5/orders/create": {{status: 500, body: `{"success":false,"errorMsg":"Internal error"}`}}})
	_, err := c.OrderCreate(context.Background(), "s", NewOrder{FirstName: "x"})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || !apiErr.MaybeApplied || hits.Load() != 1 || !errors.Is(err, ErrUnavailable) {
		t.Errorf("%v, %d requests", err, hits.Load())
	}
	// A rate-limit answer was not applied: retried.
	c, hits = rawServer(t, map[string][]rawAnswer{"/api/v5/orders/create": {
		{status: 503, body: "<html>503</html>"},
		{status: 201, body: `{"success":true,"id":7146,"order":{"id":7146,"number":"7146A","customFields":[]}}`},
	}})
	o, err := c.OrderCreate(context.Background(), "s", NewOrder{FirstName: "x"})
	if err != nil || o.ID != 7146 || o.Number != "7146A" || hits.Load() != 2 {
		t.Errorf("%+v %v %d", o, err, hits.Load())
	}
	// Connection refused: never sent, so retried even for a create.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c3, _ := New(url, "k", Options{AllowHTTP: true, RequestsPerSecond: -1, MaxAttempts: 3, BaseBackoff: time.Millisecond})
	_, err = c3.CustomerCreate(context.Background(), "s", NewCustomer{FirstName: "x"})
	if !errors.As(err, &apiErr) || apiErr.Attempts != 3 || apiErr.MaybeApplied || !errors.Is(err, ErrUnavailable) {
		t.Errorf("refused: %v %+v", err, apiErr)
	}
}

func TestNormalizeBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"demo.retailcrm.ru":                  "https://demo.retailcrm.ru",
		" https://Demo.RetailCRM.ru/ ":       "https://demo.retailcrm.ru",
		"https://demo.retailcrm.ru/api/v5/":  "https://demo.retailcrm.ru",
		"https://demo.simla.com/api":         "https://demo.simla.com",
		"https://crm.example.com:8443/crm/":  "https://crm.example.com:8443/crm",
		"http://demo.retailcrm.ru":           "",
		"https://user:pw@demo.retailcrm.ru":  "",
		"https://demo.retailcrm.ru/?apiKey=": "",
		"":                                   "",
	} {
		got, err := NormalizeBaseURL(in, false)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("%q → %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := New("demo.retailcrm.ru", " ", Options{}); !errors.Is(err, ErrMissingKey) {
		t.Errorf("empty key: %v", err)
	}
}

func TestMoneyAndDates(t *testing.T) {
	for in, want := range map[string]Money{
		`1395.16`: 139516, `-1157.1`: -115710, `0`: 0, `"1395.16"`: 139516, `"1395,16"`: 139516, `null`: 0, `""`: 0,
		`10.005`: 1001, `10.004`: 1000, `-10.005`: -1001, `1e2`: 10000, `1.5E-1`: 15, `0.001`: 0, `0.005`: 1,
		`779`: 77900, `" 12 "`: 1200, `92233720368547758.07`: 9223372036854775807,
	} {
		var m Money
		if err := m.UnmarshalJSON([]byte(in)); err != nil || m != want {
			t.Errorf("%s → %d, %v; want %d", in, m, err, want)
		}
	}
	for _, bad := range []string{`"abc"`, `1,5`, `92233720368547758.08`, `1e30`, `true`, `"1.2.3"`, `"-"`, `{}`} {
		var m Money
		if err := m.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("%s accepted as %d", bad, m)
		}
	}
	for m, want := range map[Money]string{139516: "1395.16", 150: "1.5", -5: "-0.05", 0: "0", 100: "1", -115710: "-1157.1"} {
		if m.String() != want {
			t.Errorf("%d → %s, want %s", m, m.String(), want)
		}
	}
	var d DateTime
	if err := d.UnmarshalJSON([]byte(`"2021-02-25 09:37:48"`)); err != nil {
		t.Fatal(err)
	}
	if got := d.InZone(msk(t)).UTC(); !got.Equal(time.Date(2021, 2, 25, 6, 37, 48, 0, time.UTC)) {
		t.Errorf("InZone %v", got)
	}
	if err := d.UnmarshalJSON([]byte(`"2021-02-25"`)); err != nil || d.Day() != 25 {
		t.Errorf("date only: %v %v", d, err)
	}
	if err := d.UnmarshalJSON([]byte(`"25.02.2021"`)); err == nil {
		t.Error("a foreign date format accepted")
	}
	if got := FormatDateTime(time.Date(2021, 2, 25, 6, 37, 48, 0, time.UTC), msk(t)); got != "2021-02-25 09:37:48" {
		t.Errorf("FormatDateTime %s", got)
	}
}
