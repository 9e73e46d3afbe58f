package fakecrm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Orders and customers are kept as their rendered JSON plus the few fields
// the filters read, so that 100,000 generated orders stay cheap; the JSON is
// decoded again only to edit one.

type order struct {
	id              int64
	raw             []byte
	externalID      string
	number          string
	site            string
	status          string
	email           string
	customerID      int64
	createdAt       time.Time
	statusUpdatedAt time.Time
	custom          map[string]string
}

type customer struct {
	id        int64
	raw       []byte
	site      string
	email     string // lower-case
	name      string // lower-case "first last patronymic"
	phones    []string
	createdAt time.Time
}

type historyRecord struct {
	id        int64
	orderID   int64
	createdAt time.Time
	raw       []byte
}

// normalize turns a seed into plain decoded JSON (maps, []any, string,
// json.Number, bool, nil), writing time.Time values as RetailCRM does.
func (s *Server) normalize(v any) (O, error) {
	b, err := json.Marshal(s.dates(v))
	if err != nil {
		return nil, err
	}
	var out O
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Server) dates(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.In(s.loc).Format(layout)
	case *time.Time:
		if x == nil {
			return nil
		}
		return x.In(s.loc).Format(layout)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = s.dates(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = s.dates(e)
		}
		return out
	}
	return v
}

const layout = "2006-01-02 15:04:05"

func (s *Server) stamp() string { return s.now().In(s.loc).Format(layout) }

// parseDate reads a date filter or field: "Y-m-d H:i:s" or "Y-m-d".
func (s *Server) parseDate(v string) (time.Time, bool) {
	for _, l := range []string{layout, "2006-01-02"} {
		if t, err := time.ParseInLocation(l, strings.TrimSpace(v), s.loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			parts = append(parts, str(e))
		}
		return strings.Join(parts, ",")
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func num(v any) int64 {
	n, _ := strconv.ParseInt(str(v), 10, 64)
	return n
}

// emptyObject reports whether v is a missing, null, {} or [] value.
func emptyObject(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// putOrder stores doc (complete, normalised) as the order's state.
func (s *Server) putOrder(doc O) *order {
	if emptyObject(doc["customFields"]) {
		doc["customFields"] = []any{} // what RetailCRM sends for none (§9)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		panic("fakecrm: " + err.Error()) // decoded JSON always encodes
	}
	o := &order{
		id: num(doc["id"]), raw: raw,
		externalID: str(doc["externalId"]), number: str(doc["number"]),
		site: str(doc["site"]), status: str(doc["status"]), email: strings.ToLower(str(doc["email"])),
	}
	if c, ok := doc["customer"].(map[string]any); ok {
		o.customerID = num(c["id"])
	}
	o.createdAt, _ = s.parseDate(str(doc["createdAt"]))
	o.statusUpdatedAt, _ = s.parseDate(str(doc["statusUpdatedAt"]))
	if cf, ok := doc["customFields"].(map[string]any); ok {
		o.custom = make(map[string]string, len(cf))
		for k, v := range cf {
			o.custom[k] = str(v)
		}
	}
	s.insertOrder(o)
	return o
}

func (s *Server) insertOrder(o *order) {
	if old, ok := s.orderByID[o.id]; ok {
		*old = *o
		return
	}
	s.orderByID[o.id] = o
	i := sort.Search(len(s.orders), func(i int) bool { return s.orders[i].id > o.id })
	s.orders = append(s.orders, nil)
	copy(s.orders[i+1:], s.orders[i:])
	s.orders[i] = o
	s.nextOrder = max(s.nextOrder, o.id+1)
}

func (o *order) doc() O { return decode(o.raw) }

// decode reads stored JSON back, numbers as json.Number.
func decode(raw []byte) O {
	var out O
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	_ = d.Decode(&out)
	return out
}

// firstSite is the store with the smallest ordering, ties by id.
func (s *Server) firstSite() string {
	best := Site{}
	for _, x := range s.sites {
		if best.Code == "" || x.Ordering < best.Ordering || (x.Ordering == best.Ordering && x.ID < best.ID) {
			best = x
		}
	}
	return best.Code
}

// firstStatus is the status new orders get: the first active one of the
// first group.
func (s *Server) firstStatus() string {
	list := s.sortedStatuses()
	for _, x := range list {
		if !x.Inactive {
			return x.Code
		}
	}
	return "new"
}

func (s *Server) sortedStatuses() []Status {
	list := make([]Status, 0, len(s.statuses))
	for _, x := range s.statuses {
		list = append(list, x)
	}
	sort.Slice(list, func(i, j int) bool {
		gi, gj := s.groups[list[i].Group].Ordering, s.groups[list[j].Group].Ordering
		if gi != gj {
			return gi < gj
		}
		if list[i].Ordering != list[j].Ordering {
			return list[i].Ordering < list[j].Ordering
		}
		return list[i].Code < list[j].Code
	})
	return list
}

// completeOrder fills what RetailCRM fills on a new order.
func (s *Server) completeOrder(doc O) {
	id := num(doc["id"])
	if id == 0 {
		id = s.nextOrder
	}
	doc["id"], doc["slug"] = id, id
	setDefault(doc, "number", fmt.Sprintf("%dA", id))
	setDefault(doc, "site", s.firstSite())
	setDefault(doc, "status", s.firstStatus())
	setDefault(doc, "createdAt", s.stamp())
	setDefault(doc, "statusUpdatedAt", doc["createdAt"])
	if _, given := doc["currency"]; !given { // "currency": nil stays null
		doc["currency"] = s.currency
	}
	for _, k := range []string{"summ", "totalSumm", "purchaseSumm", "prepaySum"} {
		setDefault(doc, k, 0)
	}
	setDefault(doc, "payments", []any{})
	setDefault(doc, "items", []any{})
	// A customer given by id is shown as its full snapshot, as the API does.
	if ref, ok := doc["customer"].(map[string]any); ok {
		if c, ok := s.customerBy[num(ref["id"])]; ok {
			var snap O
			_ = json.Unmarshal(c.raw, &snap)
			doc["customer"] = snap
		}
	}
}

func setDefault(doc O, k string, v any) {
	if x, ok := doc[k]; !ok || x == nil || x == "" {
		doc[k] = v
	}
}

// AddOrder seeds an order and returns its id. Missing fields get what
// RetailCRM would give: id, number "<id>A", the first store and status,
// createdAt now, money 0, customFields [] (payments are kept in the shape
// given: an object keyed by id or an array). A "customer": {"id": N} of a
// seeded customer is expanded to its snapshot. A history record
// "created" is written too.
func (s *Server) AddOrder(fields O) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, err := s.normalize(fields)
	if err != nil {
		panic("fakecrm: AddOrder: " + err.Error())
	}
	s.completeOrder(doc)
	o := s.putOrder(doc)
	s.recordCreated(o, "user")
	return o.id
}

func (s *Server) recordCreated(o *order, source string) {
	s.addHistory(o.id, O{"created": true, "source": source, "field": "status", "oldValue": nil,
		"newValue": O{"code": o.status}}, json.RawMessage(o.raw))
}

func (s *Server) addHistory(orderID int64, rec O, orderJSON json.RawMessage) {
	now := s.now()
	rec["id"] = s.nextHistory
	rec["createdAt"] = now.In(s.loc).Format(layout)
	rec["order"] = orderJSON
	raw, err := json.Marshal(rec)
	if err != nil {
		panic("fakecrm: " + err.Error())
	}
	s.history = append(s.history, historyRecord{id: s.nextHistory, orderID: orderID, createdAt: now, raw: raw})
	s.nextHistory++
}

// UpdateOrder changes an order as a user in RetailCRM would: patch is
// merged (objects key by key, customFields included), a status change moves
// statusUpdatedAt to now, and a history record is written per changed
// field. It reports whether the order exists.
func (s *Server) UpdateOrder(id int64, patch O) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orderByID[id]
	if !ok {
		return false
	}
	p, err := s.normalize(patch)
	if err != nil {
		panic("fakecrm: UpdateOrder: " + err.Error())
	}
	s.applyEdit(o, p, "user")
	return true
}

// applyEdit merges patch into the order and writes the history.
func (s *Server) applyEdit(o *order, patch O, source string) *order {
	doc := o.doc()
	if cf, ok := doc["customFields"].([]any); ok && len(cf) == 0 {
		doc["customFields"] = O{}
	}
	type change struct {
		field    string
		old, new any
	}
	var changes []change
	for k, v := range patch {
		if k == "id" || k == "slug" || k == "createdAt" {
			continue // not writable
		}
		old := doc[k]
		if k == "customFields" {
			cur, _ := doc[k].(map[string]any)
			if cur == nil {
				cur = O{}
			}
			if add, ok := v.(map[string]any); ok {
				for code, val := range add {
					if str(cur[code]) != str(val) {
						changes = append(changes, change{"custom_" + code, cur[code], val})
					}
					cur[code] = val
				}
			}
			doc[k] = cur
			continue
		}
		if om, ok := old.(map[string]any); ok {
			if pm, ok := v.(map[string]any); ok {
				merged := O{}
				for a, b := range om {
					merged[a] = b
				}
				for a, b := range pm {
					merged[a] = b
				}
				v = merged
			}
		}
		if str(old) == str(v) {
			continue
		}
		doc[k] = v
		changes = append(changes, change{historyField(k), old, v})
	}
	for _, ch := range changes {
		if ch.field == "status" {
			doc["statusUpdatedAt"] = s.stamp()
		}
	}
	n := s.putOrder(doc)
	partial := O{"id": n.id, "number": n.number, "site": n.site, "status": n.status}
	if n.externalID != "" {
		partial["externalId"] = n.externalID
	}
	for _, ch := range changes {
		old, nw := ch.old, ch.new
		switch ch.field {
		case "status":
			old, nw = codeValue(old), codeValue(nw)
		case "manager":
			old, nw = idValue(old), idValue(nw)
			partial["managerId"] = ch.new
		}
		rec := O{"source": source, "field": ch.field, "oldValue": old, "newValue": nw}
		if source == "user" {
			rec["user"] = O{"id": 1}
		} else {
			rec["apiKey"] = O{"current": true}
		}
		p, _ := json.Marshal(partial)
		s.addHistory(n.id, rec, p)
	}
	return n
}

func codeValue(v any) any {
	if v == nil || v == "" {
		return nil
	}
	return O{"code": v}
}

func idValue(v any) any {
	if v == nil || v == "" {
		return nil
	}
	return O{"id": v}
}

// historyField names a changed order field as history does: "status",
// "manager", "manager_comment", "custom_<code>".
func historyField(k string) string {
	if k == "managerId" {
		return "manager"
	}
	var b strings.Builder
	for _, r := range k {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// DeleteOrder deletes an order, writing a history record with
// "deleted": true. It reports whether the order existed.
func (s *Server) DeleteOrder(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orderByID[id]
	if !ok {
		return false
	}
	delete(s.orderByID, id)
	i := sort.Search(len(s.orders), func(i int) bool { return s.orders[i].id >= id })
	s.orders = append(s.orders[:i], s.orders[i+1:]...)
	p, _ := json.Marshal(O{"id": o.id, "number": o.number, "site": o.site, "status": o.status})
	s.addHistory(id, O{"deleted": true, "source": "user", "user": O{"id": 1}, "field": "id", "oldValue": o.id, "newValue": nil}, p)
	return true
}

// Order returns the order's current JSON, decoded (numbers as json.Number).
func (s *Server) Order(id int64) (O, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orderByID[id]
	if !ok {
		return nil, false
	}
	return o.doc(), true
}

// ---------------------------------------------------------------- customers

// AddCustomer seeds a customer and returns its id. Missing fields: id,
// createdAt now, the first store, customFields [].
func (s *Server) AddCustomer(fields O) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, err := s.normalize(fields)
	if err != nil {
		panic("fakecrm: AddCustomer: " + err.Error())
	}
	return s.putCustomer(doc).id
}

func (s *Server) putCustomer(doc O) *customer {
	id := num(doc["id"])
	if id == 0 {
		id = s.nextCust
	}
	s.nextCust = max(s.nextCust, id+1)
	doc["id"] = id
	setDefault(doc, "type", "customer")
	setDefault(doc, "createdAt", s.stamp())
	setDefault(doc, "site", s.firstSite())
	if emptyObject(doc["customFields"]) {
		doc["customFields"] = []any{}
	}
	setDefault(doc, "phones", []any{})
	raw, err := json.Marshal(doc)
	if err != nil {
		panic("fakecrm: " + err.Error())
	}
	c := &customer{id: id, raw: raw, site: str(doc["site"]), email: strings.ToLower(str(doc["email"]))}
	c.name = strings.ToLower(strings.Join([]string{str(doc["firstName"]), str(doc["lastName"]), str(doc["patronymic"])}, " "))
	if list, ok := doc["phones"].([]any); ok {
		for _, p := range list {
			if m, ok := p.(map[string]any); ok {
				c.phones = append(c.phones, digits(str(m["number"])))
			}
		}
	}
	c.createdAt, _ = s.parseDate(str(doc["createdAt"]))
	if _, ok := s.customerBy[id]; !ok {
		s.customers = append(s.customers, c)
		sort.Slice(s.customers, func(i, j int) bool { return s.customers[i].id < s.customers[j].id })
	} else {
		for i := range s.customers {
			if s.customers[i].id == id {
				s.customers[i] = c
			}
		}
	}
	s.customerBy[id] = c
	return c
}

// Customer returns the customer's current JSON, decoded.
func (s *Server) Customer(id int64) (O, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customerBy[id]
	if !ok {
		return nil, false
	}
	return decode(c.raw), true
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
