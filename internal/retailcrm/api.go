package retailcrm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The endpoints of spec §5. Paths are under /api/v5 except credentials.

const v5 = "/api/v5"

func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	return c.do(ctx, call{method: "GET", path: path, query: q, safe: true}, out)
}

// post sends a form; safe says whether repeating it is harmless (§10.6).
func (c *Client) post(ctx context.Context, path string, form url.Values, safe bool, out any) error {
	return c.do(ctx, call{method: "POST", path: path, form: form, safe: safe}, out)
}

// jsonField puts v into the form as one field holding JSON (spec §1).
func jsonField(form url.Values, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("retailcrm: encoding %s: %w", name, err)
	}
	form.Set(name, string(b))
	return nil
}

// checkLimit keeps a page limit to the values every list method accepts.
func checkLimit(limit int) int {
	switch {
	case limit <= 20:
		return 20
	case limit <= 50:
		return 50
	}
	return PageLimit
}

// ---------------------------------------------------------------- account

// Credentials reads what the key may do (GET /api/credentials): the
// connection test.
func (c *Client) Credentials(ctx context.Context) (Credentials, error) {
	var out Credentials
	err := c.get(ctx, "/api/credentials", nil, &out)
	return out, err
}

// Settings reads the account settings (GET /api/v5/settings).
func (c *Client) Settings(ctx context.Context) (Settings, error) {
	type value struct {
		Value string `json:"value"`
	}
	var out struct {
		envelope
		Settings struct {
			Timezone        value `json:"timezone"`
			DefaultCurrency value `json:"default_currency"`
			SystemLanguage  value `json:"system_language"`
		} `json:"settings"`
	}
	if err := c.get(ctx, v5+"/settings", nil, &out); err != nil {
		return Settings{}, err
	}
	s := out.Settings
	return Settings{Timezone: s.Timezone.Value, DefaultCurrency: s.DefaultCurrency.Value, SystemLanguage: s.SystemLanguage.Value}, nil
}

// Sites lists the stores, keyed by code (GET /reference/sites).
func (c *Client) Sites(ctx context.Context) (map[string]Site, error) {
	var out struct {
		envelope
		Sites map[string]Site `json:"sites"`
	}
	err := c.get(ctx, v5+"/reference/sites", nil, &out)
	return fillCodes(out.Sites, func(s *Site, code string) { s.Code = code }), err
}

// Statuses lists the order statuses, keyed by code.
func (c *Client) Statuses(ctx context.Context) (map[string]Status, error) {
	var out struct {
		envelope
		Statuses map[string]Status `json:"statuses"`
	}
	err := c.get(ctx, v5+"/reference/statuses", nil, &out)
	return fillCodes(out.Statuses, func(s *Status, code string) { s.Code = code }), err
}

// StatusGroups lists the status groups, keyed by code.
func (c *Client) StatusGroups(ctx context.Context) (map[string]StatusGroup, error) {
	var out struct {
		envelope
		StatusGroups map[string]StatusGroup `json:"statusGroups"`
	}
	err := c.get(ctx, v5+"/reference/status-groups", nil, &out)
	return fillCodes(out.StatusGroups, func(s *StatusGroup, code string) { s.Code = code }), err
}

// fillCodes sets each entry's code from its key where the body left it out.
func fillCodes[T any](m map[string]T, set func(*T, string)) map[string]T {
	for k, v := range m {
		set(&v, k)
		m[k] = v
	}
	return m
}

// User reads a user (a manager) by id.
func (c *Client) User(ctx context.Context, id int64) (User, error) {
	var out struct {
		envelope
		User User `json:"user"`
	}
	err := c.get(ctx, v5+"/users/"+strconv.FormatInt(id, 10), nil, &out)
	return out.User, err
}

// CustomFields lists the custom fields of entity ("order", "customer"),
// all pages.
func (c *Client) CustomFields(ctx context.Context, entity string) ([]CustomField, error) {
	var all []CustomField
	err := eachPage(ctx, func(page int) (Pagination, int, error) {
		q := url.Values{"limit": {strconv.Itoa(PageLimit)}, "page": {strconv.Itoa(page)}}
		if entity != "" {
			q.Set("filter[entity]", entity)
		}
		var out struct {
			envelope
			Pagination   Pagination    `json:"pagination"`
			CustomFields []CustomField `json:"customFields"`
		}
		if err := c.get(ctx, v5+"/custom-fields", q, &out); err != nil {
			return Pagination{}, 0, err
		}
		all = append(all, out.CustomFields...)
		return out.Pagination, len(out.CustomFields), nil
	})
	return all, err
}

// CustomFieldCreate creates a custom field of entity and returns its code.
// A field whose code exists already is a validation error: list first.
func (c *Client) CustomFieldCreate(ctx context.Context, entity string, f CustomField) (string, error) {
	f.Entity = ""
	form := url.Values{}
	if err := jsonField(form, "customField", f); err != nil {
		return "", err
	}
	var out struct {
		envelope
		Code string `json:"code"`
	}
	// Safe to repeat: a second create of the same code fails, it does not
	// make a second field.
	err := c.post(ctx, v5+"/custom-fields/"+url.PathEscape(entity)+"/create", form, true, &out)
	return out.Code, err
}

// ---------------------------------------------------------------- orders

// OrdersFilter selects orders (spec §5.1). Zero fields are not sent. Dates
// are sent in the account's time zone.
type OrdersFilter struct {
	IDs                 []int64
	ExternalIDs         []string
	Numbers             []string
	CustomerID          int64
	Email               string
	Sites               []string
	ExtendedStatus      []string // status codes
	CreatedAtFrom       time.Time
	CreatedAtTo         time.Time
	StatusUpdatedAtFrom time.Time
	StatusUpdatedAtTo   time.Time
	CustomFields        map[string]string // code → exact value
	// Extra holds any other filter, by its name inside filter[…]:
	// {"managers[]": {"28"}} is sent as filter[managers][]=28.
	Extra url.Values
}

func (f OrdersFilter) values(loc *time.Location) url.Values {
	q := url.Values{}
	for _, id := range f.IDs {
		q.Add("filter[ids][]", strconv.FormatInt(id, 10))
	}
	addAll(q, "filter[externalIds][]", f.ExternalIDs)
	addAll(q, "filter[numbers][]", f.Numbers)
	addAll(q, "filter[sites][]", f.Sites)
	addAll(q, "filter[extendedStatus][]", f.ExtendedStatus)
	if f.CustomerID != 0 {
		q.Set("filter[customerId]", strconv.FormatInt(f.CustomerID, 10))
	}
	if f.Email != "" {
		q.Set("filter[email]", f.Email)
	}
	addDate(q, "filter[createdAtFrom]", f.CreatedAtFrom, loc)
	addDate(q, "filter[createdAtTo]", f.CreatedAtTo, loc)
	addDate(q, "filter[statusUpdatedAtFrom]", f.StatusUpdatedAtFrom, loc)
	addDate(q, "filter[statusUpdatedAtTo]", f.StatusUpdatedAtTo, loc)
	for code, v := range f.CustomFields {
		q.Set("filter[customFields]["+code+"]", v)
	}
	addExtra(q, f.Extra)
	return q
}

func addAll(q url.Values, key string, vs []string) {
	for _, v := range vs {
		q.Add(key, v)
	}
}

func addDate(q url.Values, key string, t time.Time, loc *time.Location) {
	if !t.IsZero() {
		q.Set(key, FormatDateTime(t, loc))
	}
}

// addExtra adds filters named as inside filter[…]: "a[b][]" → filter[a][b][].
func addExtra(q url.Values, extra url.Values) {
	for name, vs := range extra {
		head, rest, _ := strings.Cut(name, "[")
		key := "filter[" + head + "]"
		if rest != "" {
			key += "[" + rest
		}
		addAll(q, key, vs)
	}
}

// Orders reads one page of orders (GET /orders). limit is 20, 50 or 100
// (others are rounded up to the next of these).
func (c *Client) Orders(ctx context.Context, f OrdersFilter, page, limit int) ([]Order, Pagination, error) {
	loc, err := c.Location(ctx)
	if err != nil {
		return nil, Pagination{}, err
	}
	q := f.values(loc)
	q.Set("limit", strconv.Itoa(checkLimit(limit)))
	q.Set("page", strconv.Itoa(max(page, 1)))
	var out struct {
		envelope
		Pagination Pagination `json:"pagination"`
		Orders     []Order    `json:"orders"`
	}
	if err := c.get(ctx, v5+"/orders", q, &out); err != nil {
		return nil, Pagination{}, err
	}
	for i := range out.Orders {
		out.Orders[i].localize(loc)
	}
	return out.Orders, out.Pagination, nil
}

// EachOrderPage reads all orders that f selects, 100 a page, calling fn
// with each page until the last; an error from fn stops it and is returned.
// Pages can shift while orders change (§3): upsert, and overlap windows.
func (c *Client) EachOrderPage(ctx context.Context, f OrdersFilter, fn func([]Order) error) error {
	return eachPage(ctx, func(page int) (Pagination, int, error) {
		orders, p, err := c.Orders(ctx, f, page, PageLimit)
		if err != nil {
			return p, 0, err
		}
		if len(orders) > 0 {
			if err := fn(orders); err != nil {
				return p, 0, err
			}
		}
		return p, len(orders), nil
	})
}

// maxPages stops a server whose pagination never ends.
const maxPages = 1 << 20

// eachPage calls fetch with page 1, 2, … until the answer's currentPage
// reaches totalPageCount or a page comes back empty.
func eachPage(ctx context.Context, fetch func(page int) (Pagination, int, error)) error {
	for page := 1; page <= maxPages; page++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, n, err := fetch(page)
		if err != nil {
			return err
		}
		current := p.CurrentPage
		if current == 0 {
			current = page
		}
		if n == 0 || current >= p.TotalPageCount {
			return nil
		}
	}
	return fmt.Errorf("retailcrm: more than %d pages", maxPages)
}

// Order reads one order by its internal id (GET /orders/{id}?by=id).
func (c *Client) Order(ctx context.Context, id int64) (Order, error) {
	loc, err := c.Location(ctx)
	if err != nil {
		return Order{}, err
	}
	var out struct {
		envelope
		Order Order `json:"order"`
	}
	if err := c.get(ctx, v5+"/orders/"+strconv.FormatInt(id, 10), url.Values{"by": {"id"}}, &out); err != nil {
		return Order{}, err
	}
	out.Order.localize(loc)
	return out.Order, nil
}

// OrderCreate creates an order in the store site and returns it (with at
// least its id). It is not retried when the answer is lost: an *APIError
// with MaybeApplied says to look the order up first (§10.6).
func (c *Client) OrderCreate(ctx context.Context, site string, o NewOrder) (Order, error) {
	form := url.Values{}
	if site != "" {
		form.Set("site", site)
	}
	if err := jsonField(form, "order", o); err != nil {
		return Order{}, err
	}
	return c.orderWrite(ctx, v5+"/orders/create", form, false)
}

// OrderEdit changes the fields in patch of the order with internal id (POST
// /orders/{id}/edit, by=id); fields not in patch stay as they are. site
// must be the order's own store. A repeat sets the same values, so it is
// retried like a read.
func (c *Client) OrderEdit(ctx context.Context, site string, id int64, patch map[string]any) (Order, error) {
	form := url.Values{"by": {"id"}}
	if site != "" {
		form.Set("site", site)
	}
	if err := jsonField(form, "order", patch); err != nil {
		return Order{}, err
	}
	return c.orderWrite(ctx, v5+"/orders/"+strconv.FormatInt(id, 10)+"/edit", form, true)
}

func (c *Client) orderWrite(ctx context.Context, path string, form url.Values, safe bool) (Order, error) {
	var out struct {
		envelope
		ID    int64  `json:"id"`
		Order *Order `json:"order"`
	}
	if err := c.post(ctx, path, form, safe, &out); err != nil {
		return Order{}, err
	}
	o := Order{ID: out.ID}
	if out.Order != nil {
		o = *out.Order
		if o.ID == 0 {
			o.ID = out.ID
		}
		// The answer's dates are converted when the zone is known already;
		// a write does not spend a request on /settings for them.
		if loc := c.knownLocation(); loc != nil {
			o.localize(loc)
		}
	}
	return o, nil
}

func (c *Client) knownLocation() *time.Location {
	if c.o.Location != nil {
		return c.o.Location
	}
	c.acct.mu.Lock()
	defer c.acct.mu.Unlock()
	return c.acct.loc
}

// ---------------------------------------------------------------- history

// HistoryFilter selects order history records (spec §5.2).
type HistoryFilter struct {
	SinceID   int64     // records with id > SinceID
	StartDate time.Time // records created at or after
	EndDate   time.Time
	OrderID   int64
}

// History reads one page of /orders/history.
func (c *Client) History(ctx context.Context, f HistoryFilter, page, limit int) (HistoryPage, error) {
	loc, err := c.Location(ctx)
	if err != nil {
		return HistoryPage{}, err
	}
	q := url.Values{"limit": {strconv.Itoa(checkLimit(limit))}, "page": {strconv.Itoa(max(page, 1))}}
	if f.SinceID > 0 {
		q.Set("filter[sinceId]", strconv.FormatInt(f.SinceID, 10))
	}
	addDate(q, "filter[startDate]", f.StartDate, loc)
	addDate(q, "filter[endDate]", f.EndDate, loc)
	if f.OrderID != 0 {
		q.Set("filter[orderId]", strconv.FormatInt(f.OrderID, 10))
	}
	var out HistoryPage
	if err := c.get(ctx, v5+"/orders/history", q, &out); err != nil {
		return HistoryPage{}, err
	}
	out.GeneratedAt = out.GeneratedAt.InZone(loc)
	for i := range out.History {
		h := &out.History[i]
		h.CreatedAt = h.CreatedAt.InZone(loc)
		h.Order.localize(loc)
	}
	return out, nil
}

// EachHistoryPage reads all history records after f, oldest first, calling
// fn with each page. Instead of page numbers it moves SinceID to the last
// record read and asks for page 1 again: new records arriving during the
// walk cannot shift it. The largest History[].ID fn has seen is the cursor
// to store once its orders are stored.
func (c *Client) EachHistoryPage(ctx context.Context, f HistoryFilter, fn func(HistoryPage) error) error {
	for pages := 0; pages < maxPages; pages++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := c.History(ctx, f, 1, PageLimit)
		if err != nil {
			return err
		}
		if len(p.History) == 0 {
			return nil
		}
		if err := fn(p); err != nil {
			return err
		}
		last := f.SinceID
		for _, h := range p.History {
			last = max(last, h.ID)
		}
		if last == f.SinceID || p.Pagination.TotalPageCount <= 1 {
			return nil
		}
		f.SinceID = last
	}
	return fmt.Errorf("retailcrm: more than %d history pages", maxPages)
}

// ---------------------------------------------------------------- customers

// CustomersFilter selects customers. Name is RetailCRM's text search, which
// also matches phones; Email matches e-mails. Both may match loosely:
// compare the results yourself.
type CustomersFilter struct {
	Name  string
	Email string
	IDs   []int64
	Sites []string
	Extra url.Values // as OrdersFilter.Extra
}

// Customers reads one page of customers (GET /customers).
func (c *Client) Customers(ctx context.Context, f CustomersFilter, page, limit int) ([]Customer, Pagination, error) {
	q := url.Values{"limit": {strconv.Itoa(checkLimit(limit))}, "page": {strconv.Itoa(max(page, 1))}}
	if f.Name != "" {
		q.Set("filter[name]", f.Name)
	}
	if f.Email != "" {
		q.Set("filter[email]", f.Email)
	}
	for _, id := range f.IDs {
		q.Add("filter[ids][]", strconv.FormatInt(id, 10))
	}
	addAll(q, "filter[sites][]", f.Sites)
	addExtra(q, f.Extra)
	var out struct {
		envelope
		Pagination Pagination `json:"pagination"`
		Customers  []Customer `json:"customers"`
	}
	if err := c.get(ctx, v5+"/customers", q, &out); err != nil {
		return nil, Pagination{}, err
	}
	if loc := c.knownLocation(); loc != nil {
		for i := range out.Customers {
			out.Customers[i].localize(loc)
		}
	}
	return out.Customers, out.Pagination, nil
}

// customersAll reads every page of f, with dates in the account's zone.
func (c *Client) customersAll(ctx context.Context, f CustomersFilter) ([]Customer, error) {
	if _, err := c.Location(ctx); err != nil { // createdAt picks the newest
		return nil, err
	}
	var all []Customer
	err := eachPage(ctx, func(page int) (Pagination, int, error) {
		list, p, err := c.Customers(ctx, f, page, PageLimit)
		all = append(all, list...)
		return p, len(list), err
	})
	return all, err
}

// CustomersByPhone finds customers by phone the way RetailCRM's own modules
// do (filter[name]=<phone>, spec §12.2), all pages. The search is loose:
// keep only those whose Phones normalise to the number looked for.
func (c *Client) CustomersByPhone(ctx context.Context, phone string) ([]Customer, error) {
	return c.customersAll(ctx, CustomersFilter{Name: phone})
}

// CustomersByEmail finds customers by e-mail (filter[email]), all pages.
// Keep only exact case-insensitive matches.
func (c *Client) CustomersByEmail(ctx context.Context, email string) ([]Customer, error) {
	return c.customersAll(ctx, CustomersFilter{Email: email})
}

// CustomerCreate creates a customer in the store site and returns its id.
// Not retried when the answer is lost (see OrderCreate).
func (c *Client) CustomerCreate(ctx context.Context, site string, cu NewCustomer) (int64, error) {
	form := url.Values{}
	if site != "" {
		form.Set("site", site)
	}
	if err := jsonField(form, "customer", cu); err != nil {
		return 0, err
	}
	var out struct {
		envelope
		ID int64 `json:"id"`
	}
	err := c.post(ctx, v5+"/customers/create", form, false, &out)
	return out.ID, err
}
