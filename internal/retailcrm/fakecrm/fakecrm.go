// Package fakecrm is a local RetailCRM API v5 server for tests, like
// net/http/httptest: it follows shared/spec/retailcrm.md — the X-API-KEY
// check with the real error bodies, bracket filters, form-encoded JSON
// entities, pagination (limit 20/50/100), 503 over 10 requests/s per key,
// error bodies as maps and as arrays, the HTML page of a missing account,
// 201 on creates, customFields rendered as [] when empty, payments in the
// shape they were seeded in, and history records for every change.
//
// It is written from the spec, not from package retailcrm, so that the
// client's tests do not share its mistakes.
//
//	s := fakecrm.New()
//	defer s.Close()
//	id := s.AddOrder(fakecrm.O{"status": "new", "totalSumm": 1395.16})
//	c, _ := retailcrm.New(s.URL, s.Key(), retailcrm.Options{AllowHTTP: true})
//	…
//	s.Requests()  // what the client sent
package fakecrm

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"sort"
	"sync"
	"time"
)

// O is a JSON object as seeds and patches are written: values are anything
// encoding/json marshals; time.Time values are written as RetailCRM writes
// dates (no zone, in the account's zone).
type O = map[string]any

// DefaultKey is the API key a new Server accepts.
const DefaultKey = "test-key"

// Site is a store.
type Site struct {
	ID       int64
	Code     string
	Name     string
	URL      string
	Currency string // default RUB
	Ordering int
}

// StatusGroup is a group of statuses; its statuses come from Status.Group.
type StatusGroup struct {
	Code     string
	Name     string
	Ordering int
	Process  bool
}

// Status is an order status.
type Status struct {
	Code     string
	Name     string
	Group    string
	Ordering int
	Inactive bool
}

// User is a RetailCRM user (a manager).
type User struct {
	ID        int64
	FirstName string
	LastName  string // may be empty: the API then leaves it out
	Email     string
}

// CustomField is a custom field definition.
type CustomField struct {
	Entity   string `json:"entity"` // order or customer
	Code     string `json:"code"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	InFilter bool   `json:"inFilter"`
	InList   bool   `json:"inList"`
	Ordering int    `json:"ordering"`
}

// Request is one request the server received.
type Request struct {
	Time   time.Time
	Method string
	Path   string
	Query  url.Values
	Form   url.Values // POST body
	Key    string     // X-API-KEY or apiKey
	Status int        // what the server answered
}

// Edit is one /orders/{id}/edit the server applied.
type Edit struct {
	OrderID int64
	Site    string
	Patch   O
}

// Server is the fake RetailCRM account. Its methods are safe for concurrent
// use with the requests it serves.
type Server struct {
	*httptest.Server // URL, Close, Client

	mu             sync.Mutex
	keys           map[string]bool
	rateLimit      int
	window         map[string][]time.Time
	accountMissing bool
	denied         map[string]bool
	fail           []failure
	now            func() time.Time
	onRequest      func(Request)
	listOrder      ListOrder
	looseCustom    bool
	tzOverride     *string

	tzName   string
	loc      *time.Location
	currency string
	scopes   []string
	sites    map[string]Site
	groups   map[string]StatusGroup
	statuses map[string]Status
	fields   []CustomField
	users    map[int64]User

	orders      []*order // by id
	orderByID   map[int64]*order
	customers   []*customer
	customerBy  map[int64]*customer
	history     []historyRecord
	nextOrder   int64
	nextCust    int64
	nextHistory int64

	log              []Request
	createdOrders    []int64
	createdCustomers []int64
	createdFields    []CustomField
	edits            []Edit
}

type failure struct {
	status int
	body   string
}

// New starts a server with the defaults: key DefaultKey, time zone
// Europe/Moscow, one store "shop", the status groups and statuses of spec
// §8.2, all scopes, 10 requests/s per key.
func New() *Server {
	s := newServer()
	s.Server = httptest.NewServer(s)
	return s
}

func newServer() *Server {
	s := &Server{
		keys:       map[string]bool{DefaultKey: true},
		rateLimit:  10,
		window:     map[string][]time.Time{},
		denied:     map[string]bool{},
		now:        time.Now,
		currency:   "RUB",
		scopes:     []string{"order_read", "order_write", "customer_read", "customer_write", "reference_read", "custom_fields_read", "custom_fields_write", "user_read"},
		users:      map[int64]User{},
		orderByID:  map[int64]*order{},
		customerBy: map[int64]*customer{},
		nextOrder:  1, nextCust: 1, nextHistory: 1,
	}
	s.SetTimezone("Europe/Moscow")
	s.SetSites(Site{ID: 1, Code: "shop", Name: "Shop", URL: "https://shop.example", Ordering: 10})
	s.SetStatuses(DefaultGroups(), DefaultStatuses())
	return s
}

// DefaultGroups are the status groups of spec §8.2.
func DefaultGroups() []StatusGroup {
	return []StatusGroup{
		{Code: "new", Name: "Новый", Ordering: 10},
		{Code: "approval", Name: "Согласование", Ordering: 20, Process: true},
		{Code: "assembling", Name: "Комплектация", Ordering: 30, Process: true},
		{Code: "delivery", Name: "Доставка", Ordering: 40, Process: true},
		{Code: "complete", Name: "Выполнен", Ordering: 50},
		{Code: "cancel", Name: "Отменен", Ordering: 60},
	}
}

// DefaultStatuses are the statuses of spec §8.2, numeric-looking "3"
// included.
func DefaultStatuses() []Status {
	list := []Status{}
	add := func(group string, codes ...string) {
		for i, c := range codes {
			list = append(list, Status{Code: c, Name: c, Group: group, Ordering: (i + 1) * 10})
		}
	}
	add("new", "new")
	add("approval", "availability-confirmed", "offer-analog", "client-confirmed", "prepayed")
	add("assembling", "send-to-assembling", "assembling", "assembling-complete")
	add("delivery", "send-to-delivery", "delivering", "redirect", "delivered")
	add("complete", "complete", "3")
	add("cancel", "no-call", "no-product", "already-buyed", "cancel-other", "abandoned-cart")
	return list
}

// Key returns an API key the server accepts.
func (s *Server) Key() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.keys))
	for k := range s.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[0]
}

// SetKeys replaces the accepted API keys.
func (s *Server) SetKeys(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = map[string]bool{}
	for _, k := range keys {
		s.keys[k] = true
	}
}

// SetRateLimit sets the most requests per key in any sliding second; over
// it the server answers 503 (nginx's HTML page). 0 turns the limit off.
// Rejected requests do not count.
func (s *Server) SetRateLimit(perSecond int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit = perSecond
}

// SetAccountMissing makes every request answer as a wrong account
// subdomain does: HTTP 405 with nginx's HTML page.
func (s *Server) SetAccountMissing(missing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accountMissing = missing
}

// DenyPath makes requests to path ("/api/v5/settings") answer 403
// "Access denied.", as for a key without that scope.
func (s *Server) DenyPath(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[path] = true
}

// FailNext makes the next n requests answer status with body (after the
// account and rate checks). An empty body means nginx's HTML page for
// status.
func (s *Server) FailNext(n, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, failure{status, body})
	}
}

// SetClock sets the server's clock (createdAt of creates, history times,
// generatedAt).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// ListOrder is the order GET /orders lists in. The real one cannot be set
// and is not documented (spec §3, §14.4), so tests can try each.
type ListOrder int

const (
	ByID              ListOrder = iota // ascending id (the default)
	NewestFirst                        // descending id
	ByStatusUpdatedAt                  // ascending statusUpdatedAt, then id: a status change moves an order to the end
)

// SetListOrder sets the order of GET /orders.
func (s *Server) SetListOrder(o ListOrder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listOrder = o
}

// OnRequest calls fn after each request is answered and before the answer
// is written back, outside the server's lock: fn may change the account
// (UpdateOrder, AddOrder, …) between two pages of a walk. nil removes it.
func (s *Server) OnRequest(fn func(Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRequest = fn
}

// SetLooseCustomFieldFilter makes filter[customFields][code]=v match every
// order whose value contains v, as a text search would: how exactly the
// real filter matches is not confirmed (spec §5.1, §14.6).
func (s *Server) SetLooseCustomFieldFilter(loose bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.looseCustom = loose
}

// SetSettingsTimezone makes /settings report value as settings.timezone
// ("" leaves the key's value empty) without changing the zone dates are
// written in: an account whose setting is missing or not an IANA name.
func (s *Server) SetSettingsTimezone(value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tzOverride = &value
}

// SetDefaultCurrency sets settings.default_currency ("" reports the value
// empty: an account that says nothing), which an order seeded without a
// currency is given. An order seeded with "currency": nil (or "") keeps
// it so, as RetailCRM shows an order that has none.
func (s *Server) SetDefaultCurrency(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.currency = code
}

// SetTimezone sets settings.timezone; dates are written in it.
func (s *Server) SetTimezone(name string) {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(fmt.Sprintf("fakecrm: time zone %q: %v", name, err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tzName, s.loc, s.tzOverride = name, loc, nil
}

// Location is the account's time zone.
func (s *Server) Location() *time.Location {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loc
}

// SetScopes sets the scopes /api/credentials lists.
func (s *Server) SetScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = scopes
}

// SetSites replaces the stores.
func (s *Server) SetSites(sites ...Site) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sites = map[string]Site{}
	for i, x := range sites {
		if x.ID == 0 {
			x.ID = int64(i + 1)
		}
		if x.Currency == "" {
			x.Currency = "RUB"
		}
		s.sites[x.Code] = x
	}
}

// SetStatuses replaces the status groups and statuses.
func (s *Server) SetStatuses(groups []StatusGroup, statuses []Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups, s.statuses = map[string]StatusGroup{}, map[string]Status{}
	for _, g := range groups {
		s.groups[g.Code] = g
	}
	for _, x := range statuses {
		s.statuses[x.Code] = x
	}
}

// AddUser adds a user.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
}

// AddCustomField adds a custom field definition.
func (s *Server) AddCustomField(f CustomField) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Entity == "" {
		f.Entity = "order"
	}
	s.fields = append(s.fields, f)
}

// ---------------------------------------------------------------- observing

// Requests returns the requests received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// RequestCount is the number of requests received so far.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.log)
}

// ResetRequests forgets the requests received so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

// CreatedOrders are the ids of the orders created through the API.
func (s *Server) CreatedOrders() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.createdOrders...)
}

// CreatedCustomers are the ids of the customers created through the API.
func (s *Server) CreatedCustomers() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.createdCustomers...)
}

// CreatedCustomFields are the custom fields created through the API.
func (s *Server) CreatedCustomFields() []CustomField {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CustomField(nil), s.createdFields...)
}

// Edits are the order edits applied through the API.
func (s *Server) Edits() []Edit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Edit(nil), s.edits...)
}

// OrderCount is the number of orders.
func (s *Server) OrderCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.orders)
}
