package retailcrm

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Pagination is the page information of a list answer (spec §3).
type Pagination struct {
	Limit          int `json:"limit"`
	TotalCount     int `json:"totalCount"`
	CurrentPage    int `json:"currentPage"`
	TotalPageCount int `json:"totalPageCount"`
}

// Source is RetailCRM's own UTM fields of an order or customer.
type Source struct {
	Source   string `json:"source,omitempty"`
	Medium   string `json:"medium,omitempty"`
	Campaign string `json:"campaign,omitempty"`
	Keyword  string `json:"keyword,omitempty"`
	Content  string `json:"content,omitempty"`
}

// IsZero reports whether no UTM field is set.
func (s Source) IsZero() bool { return s == Source{} }

// Phone is one phone number of a customer, free text as entered.
type Phone struct {
	Number string `json:"number"`
}

// Tag is a customer tag.
type Tag struct {
	Name  string `json:"name"`
	Color string `json:"color,omitempty"`
}

// Delivery is the delivery of an order.
type Delivery struct {
	Code    string `json:"code"`
	Cost    Money  `json:"cost"`    // charged to the customer, part of totalSumm
	NetCost Money  `json:"netCost"` // what the delivery costs the shop
}

// Item is one order line. Quantity is fractional (spec §6).
type Item struct {
	ID            int64   `json:"id"`
	Quantity      float64 `json:"quantity"`
	InitialPrice  Money   `json:"initialPrice"`
	PurchasePrice Money   `json:"purchasePrice"`
	DiscountTotal Money   `json:"discountTotal"`
	Status        string  `json:"status"`
	IsCanceled    bool    `json:"isCanceled"`
	Offer         struct {
		ID         int64  `json:"id"`
		ExternalID string `json:"externalId"`
		Name       string `json:"name"`
		Article    string `json:"article"`
	} `json:"offer"`
}

// Order is an order as RetailCRM returns it (spec §6). Raw keeps the whole
// JSON object, for fields not typed here; Field reads any of them by name.
// Orders from /orders/history may be partial: a missing field is unknown,
// not cleared.
type Order struct {
	ID              int64        `json:"id"`
	Number          string       `json:"number"`
	ExternalID      string       `json:"externalId"`
	Site            string       `json:"site"`
	Status          string       `json:"status"`
	StatusComment   string       `json:"statusComment"`
	OrderType       string       `json:"orderType"`
	OrderMethod     string       `json:"orderMethod"`
	CreatedAt       DateTime     `json:"createdAt"`
	StatusUpdatedAt DateTime     `json:"statusUpdatedAt"`
	FullPaidAt      DateTime     `json:"fullPaidAt"`
	Summ            Money        `json:"summ"`         // items total
	TotalSumm       Money        `json:"totalSumm"`    // with discounts and delivery: revenue
	PurchaseSumm    Money        `json:"purchaseSumm"` // purchase cost of the items
	PrepaySum       Money        `json:"prepaySum"`    // paid so far (one "m", as the API spells it)
	Currency        string       `json:"currency"`
	FirstName       string       `json:"firstName"`
	LastName        string       `json:"lastName"`
	Patronymic      string       `json:"patronymic"`
	Phone           string       `json:"phone"`
	AdditionalPhone string       `json:"additionalPhone"`
	Email           string       `json:"email"`
	ManagerID       int64        `json:"managerId"`
	CustomerComment string       `json:"customerComment"`
	ManagerComment  string       `json:"managerComment"`
	Customer        *Customer    `json:"customer"`
	Contact         *Customer    `json:"contact"`
	Delivery        Delivery     `json:"delivery"`
	Source          Source       `json:"source"`
	Items           []Item       `json:"items"`
	Payments        FlexPayments `json:"payments"`
	CustomFields    FlexMap      `json:"customFields"`
	ClientID        string       `json:"clientId"` // Google Analytics client id, if the site passes it

	Raw json.RawMessage `json:"-"`
	doc *rawDoc
}

func (o *Order) UnmarshalJSON(data []byte) error {
	type plain Order // without this method
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*o = Order(p)
	o.doc = newRawDoc(data)
	o.Raw = o.doc.raw
	return nil
}

// MarshalJSON writes Raw when the order came from the API (nothing lost),
// else the typed fields.
func (o Order) MarshalJSON() ([]byte, error) {
	if len(o.Raw) > 0 {
		return o.Raw, nil
	}
	type plain Order
	return json.Marshal(plain(o))
}

// Field returns a field of the order's raw JSON by path: a standard field
// ("totalSumm", "number"), a nested one ("customer.phones.0.number",
// "source.campaign", "delivery.netCost") or a custom field
// ("customFields.tl_session_id"). Strings come as they are, numbers as sent
// ("1395.16"), booleans as "true"/"false", multiselect values joined with
// ",", dates unconverted ("2021-02-25 09:37:48", see Client.Location).
// ok is false when the field is missing, null or "".
func (o *Order) Field(path string) (string, bool) { return rawField(&o.doc, o.Raw, path) }

// rawField reads path from *doc, made from raw first if the value was built
// by hand rather than decoded.
func rawField(doc **rawDoc, raw json.RawMessage, path string) (string, bool) {
	if *doc == nil && len(raw) > 0 {
		*doc = newRawDoc(raw)
	}
	return (*doc).field(path)
}

// ItemCount is the number of goods: the sum of the quantities of the items
// that are not cancelled (spec §11.1).
func (o *Order) ItemCount() float64 {
	var n float64
	for _, it := range o.Items {
		if !it.IsCanceled {
			n += it.Quantity
		}
	}
	return n
}

// Margin is totalSumm − purchaseSumm (orders carry no margin, spec §6).
func (o *Order) Margin() Money { return o.TotalSumm - o.PurchaseSumm }

func (o *Order) localize(loc *time.Location) {
	o.CreatedAt = o.CreatedAt.InZone(loc)
	o.StatusUpdatedAt = o.StatusUpdatedAt.InZone(loc)
	o.FullPaidAt = o.FullPaidAt.InZone(loc)
	for i := range o.Payments {
		o.Payments[i].PaidAt = o.Payments[i].PaidAt.InZone(loc)
	}
	if o.Customer != nil {
		o.Customer.localize(loc)
	}
	if o.Contact != nil {
		o.Contact.localize(loc)
	}
}

// Customer is a customer (spec §7), also the snapshot inside an order.
type Customer struct {
	ID           int64    `json:"id"`
	ExternalID   string   `json:"externalId"`
	Type         string   `json:"type"` // "customer" or "customer_corporate"
	Site         string   `json:"site"`
	CreatedAt    DateTime `json:"createdAt"`
	ManagerID    int64    `json:"managerId"`
	FirstName    string   `json:"firstName"`
	LastName     string   `json:"lastName"`
	Patronymic   string   `json:"patronymic"`
	Email        string   `json:"email"`
	Phones       []Phone  `json:"phones"`
	Tags         []Tag    `json:"tags"`
	CustomFields FlexMap  `json:"customFields"`
	Source       Source   `json:"source"`
	OrdersCount  int      `json:"ordersCount"`
	TotalSumm    Money    `json:"totalSumm"`
	MarginSumm   Money    `json:"marginSumm"`

	Raw json.RawMessage `json:"-"`
	doc *rawDoc
}

func (c *Customer) UnmarshalJSON(data []byte) error {
	type plain Customer
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*c = Customer(p)
	c.doc = newRawDoc(data)
	c.Raw = c.doc.raw
	return nil
}

// MarshalJSON writes Raw when the customer came from the API.
func (c Customer) MarshalJSON() ([]byte, error) {
	if len(c.Raw) > 0 {
		return c.Raw, nil
	}
	type plain Customer
	return json.Marshal(plain(c))
}

// Field reads a field of the customer's raw JSON by path, as Order.Field.
func (c *Customer) Field(path string) (string, bool) { return rawField(&c.doc, c.Raw, path) }

// Name joins the non-empty parts of lastName firstName patronymic.
func (c *Customer) Name() string {
	return joinNonEmpty(c.LastName, c.FirstName, c.Patronymic)
}

func (c *Customer) localize(loc *time.Location) { c.CreatedAt = c.CreatedAt.InZone(loc) }

func joinNonEmpty(parts ...string) string {
	out := parts[:0:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// HistoryRecord is one change of an order (spec §5.2). Order is the full
// order when Created, else a partial one. OldValue and NewValue are raw:
// their shape depends on Field.
type HistoryRecord struct {
	ID        int64           `json:"id"`
	CreatedAt DateTime        `json:"createdAt"`
	Created   bool            `json:"created"`
	Deleted   bool            `json:"deleted"`
	Source    string          `json:"source"` // api, user, code, …
	Field     string          `json:"field"`
	OldValue  json.RawMessage `json:"oldValue"`
	NewValue  json.RawMessage `json:"newValue"`
	User      *struct {
		ID int64 `json:"id"`
	} `json:"user"`
	Order Order `json:"order"`
}

// HistoryPage is one page of /orders/history.
type HistoryPage struct {
	History     []HistoryRecord `json:"history"`
	Pagination  Pagination      `json:"pagination"`
	GeneratedAt DateTime        `json:"generatedAt"` // the server's time of the answer
}

// Site is a store (spec §8.1).
type Site struct {
	ID            int64  `json:"id"`
	Code          string `json:"code"`
	Name          string `json:"name"`
	URL           string `json:"url"`
	Currency      string `json:"currency"`
	CountryIso    string `json:"countryIso"`
	Ordering      int    `json:"ordering"`
	DefaultForCRM bool   `json:"defaultForCrm"`
}

// FirstSite is "the first store": the smallest ordering, ties by id (§8.1).
func FirstSite(sites map[string]Site) (Site, bool) {
	var best Site
	found := false
	for _, s := range sites {
		if !found || s.Ordering < best.Ordering || (s.Ordering == best.Ordering && s.ID < best.ID) ||
			(s.Ordering == best.Ordering && s.ID == best.ID && s.Code < best.Code) {
			best, found = s, true
		}
	}
	return best, found
}

// Status is an order status; Group is its status group's code.
type Status struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	Active   bool   `json:"active"`
	Ordering int    `json:"ordering"`
	Group    string `json:"group"`
}

// StatusGroup is a group of statuses.
type StatusGroup struct {
	Code     string   `json:"code"`
	Name     string   `json:"name"`
	Active   bool     `json:"active"`
	Ordering int      `json:"ordering"`
	Process  bool     `json:"process"`
	Statuses []string `json:"statuses"`
}

// DefaultClosedGroups are the groups whose statuses close an order (§8.2).
var DefaultClosedGroups = []string{"complete", "cancel"}

// ClosedStatuses is the set of status codes in the given groups
// (DefaultClosedGroups if none are given).
func ClosedStatuses(groups map[string]StatusGroup, closedGroups ...string) map[string]bool {
	if len(closedGroups) == 0 {
		closedGroups = DefaultClosedGroups
	}
	out := map[string]bool{}
	for _, g := range closedGroups {
		for _, s := range groups[g].Statuses {
			out[s] = true
		}
	}
	return out
}

// SortedStatuses returns the statuses ordered as RetailCRM shows them: by
// group ordering, then status ordering, then code.
func SortedStatuses(statuses map[string]Status, groups map[string]StatusGroup) []Status {
	out := make([]Status, 0, len(statuses))
	for _, s := range statuses {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		gi, gj := groups[out[i].Group].Ordering, groups[out[j].Group].Ordering
		if gi != gj {
			return gi < gj
		}
		if out[i].Ordering != out[j].Ordering {
			return out[i].Ordering < out[j].Ordering
		}
		return out[i].Code < out[j].Code
	})
	return out
}

// User is a RetailCRM user (a manager).
type User struct {
	ID        int64  `json:"id"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Email     string `json:"email"`
	Active    bool   `json:"active"`
	IsManager bool   `json:"isManager"`
}

// Name is "firstName lastName" from the non-empty parts, else "#<id>".
func (u User) Name() string {
	if n := joinNonEmpty(u.FirstName, u.LastName); n != "" {
		return n
	}
	return "#" + strconv.FormatInt(u.ID, 10)
}

// CustomField is a custom field definition (spec §8.3), as listed and as
// sent to create one.
type CustomField struct {
	Name        string `json:"name"`
	Code        string `json:"code"`
	Entity      string `json:"entity,omitempty"` // order, customer, … (set by the path on create)
	Type        string `json:"type"`             // string, text, integer, numeric, boolean, date, email, dictionary, …
	Ordering    int    `json:"ordering,omitempty"`
	DisplayArea string `json:"displayArea,omitempty"`
	ViewMode    string `json:"viewMode,omitempty"`
	InFilter    bool   `json:"inFilter,omitempty"`
	InList      bool   `json:"inList,omitempty"`
}

// Credentials is what the API key may do (spec §8.4). Scopes and/or
// Credentials (allowed method paths) may be present.
type Credentials struct {
	Scopes         []string `json:"scopes"`
	Credentials    []string `json:"credentials"`
	SiteAccess     string   `json:"siteAccess"` // access_full or access_selective
	SitesAvailable []string `json:"sitesAvailable"`
}

// HasScope reports whether the key has scope. When the answer lists no
// scopes at all (only method paths) it cannot tell and reports true.
func (c Credentials) HasScope(scope string) bool {
	if len(c.Scopes) == 0 {
		return true
	}
	for _, s := range c.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// Settings is the part of /settings Throughline reads.
type Settings struct {
	Timezone        string // IANA name, e.g. Europe/Moscow
	DefaultCurrency string
	SystemLanguage  string
}

// NewOrder is an order to create (spec §10.2). Leave Status, ManagerID
// and Number empty to let the CRM choose (first status, its own manager
// distribution, its numbering).
type NewOrder struct {
	ExternalID      string         `json:"externalId,omitempty"`
	Number          string         `json:"number,omitempty"`
	Customer        *EntityRef     `json:"customer,omitempty"`
	FirstName       string         `json:"firstName,omitempty"`
	LastName        string         `json:"lastName,omitempty"`
	Phone           string         `json:"phone,omitempty"`
	Email           string         `json:"email,omitempty"`
	CustomerComment string         `json:"customerComment,omitempty"`
	ManagerComment  string         `json:"managerComment,omitempty"`
	Status          string         `json:"status,omitempty"`
	OrderMethod     string         `json:"orderMethod,omitempty"`
	ManagerID       int64          `json:"managerId,omitempty"`
	Source          *Source        `json:"source,omitempty"`
	CustomFields    map[string]any `json:"customFields,omitempty"`
}

// EntityRef links an entity by id or external id.
type EntityRef struct {
	ID         int64  `json:"id,omitempty"`
	ExternalID string `json:"externalId,omitempty"`
}

// NewCustomer is a customer to create (spec §10.1).
type NewCustomer struct {
	ExternalID   string         `json:"externalId,omitempty"`
	FirstName    string         `json:"firstName,omitempty"`
	LastName     string         `json:"lastName,omitempty"`
	Email        string         `json:"email,omitempty"`
	Phones       []Phone        `json:"phones,omitempty"`
	Source       *Source        `json:"source,omitempty"`
	CustomFields map[string]any `json:"customFields,omitempty"`
}
