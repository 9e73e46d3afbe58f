package fakecrm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// answer is a response: status, body, content type.
type answer struct {
	status int
	body   []byte
	html   bool
}

func jsonAnswer(status int, v any) answer {
	b, err := json.Marshal(v)
	if err != nil {
		panic("fakecrm: " + err.Error())
	}
	return answer{status: status, body: b}
}

func fail(status int, msg string) answer {
	return jsonAnswer(status, O{"success": false, "errorMsg": msg})
}

// failFields is a validation error with errors as an object (field → text).
func failFields(status int, msg string, errs map[string]string) answer {
	return jsonAnswer(status, O{"success": false, "errorMsg": msg, "errors": errs})
}

// failList is an error with errors as an array: what RetailCRM sends for
// errors not tied to one field.
func failList(status int, msg string, errs ...string) answer {
	return jsonAnswer(status, O{"success": false, "errorMsg": msg, "errors": errs})
}

func nginxPage(status int) answer {
	title := fmt.Sprintf("%d %s", status, http.StatusText(status))
	if status == http.StatusServiceUnavailable {
		title = "503 Service Temporarily Unavailable" // nginx's wording
	}
	body := "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	return answer{status: status, body: []byte(body), html: true}
}

// ServeHTTP answers as RetailCRM: account check, rate limit, key check,
// then the method.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	key := r.Header.Get("X-API-KEY")
	if key == "" {
		key = r.Form.Get("apiKey")
	}
	s.mu.Lock()
	a := s.serve(r, key)
	req := Request{Time: s.now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
		Form: r.PostForm, Key: key, Status: a.status}
	s.log = append(s.log, req)
	hook := s.onRequest
	s.mu.Unlock()
	if hook != nil {
		hook(req)
	}
	if a.html {
		w.Header().Set("Content-Type", "text/html")
	} else {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

func (s *Server) serve(r *http.Request, key string) answer {
	if s.accountMissing {
		return nginxPage(http.StatusMethodNotAllowed)
	}
	if s.rateLimit > 0 {
		now := time.Now() // real time: the limit is about real request rates
		win := s.window[key]
		for len(win) > 0 && now.Sub(win[0]) >= time.Second {
			win = win[1:]
		}
		if len(win) >= s.rateLimit {
			s.window[key] = win
			return nginxPage(http.StatusServiceUnavailable)
		}
		s.window[key] = append(win, now)
	}
	if len(s.fail) > 0 {
		f := s.fail[0]
		s.fail = s.fail[1:]
		if f.body == "" {
			return nginxPage(f.status)
		}
		return answer{status: f.status, body: []byte(f.body), html: strings.HasPrefix(f.body, "<")}
	}
	switch {
	case key == "":
		return fail(http.StatusForbidden, `"apiKey" is missing.`)
	case !s.keys[key]:
		return fail(http.StatusForbidden, `Wrong "apiKey" value.`)
	case s.denied[r.URL.Path]:
		return fail(http.StatusForbidden, "Access denied.")
	}
	return s.route(r)
}

var (
	reUser        = regexp.MustCompile(`^/api/v5/users/(\d+)$`)
	reOrder       = regexp.MustCompile(`^/api/v5/orders/([^/]+)$`)
	reOrderEdit   = regexp.MustCompile(`^/api/v5/orders/([^/]+)/edit$`)
	reFieldCreate = regexp.MustCompile(`^/api/v5/custom-fields/([a-z_]+)/create$`)
)

func (s *Server) route(r *http.Request) answer {
	p, get := r.URL.Path, r.Method == http.MethodGet
	post := r.Method == http.MethodPost
	switch {
	case get && p == "/api/credentials":
		return jsonAnswer(200, O{"success": true, "scopes": s.scopes, "siteAccess": "access_full"})
	case get && p == "/api/api-versions":
		return jsonAnswer(200, O{"success": true, "versions": []string{"3.0", "4.0", "5.0"}})
	case get && p == "/api/v5/settings":
		return s.settings()
	case get && p == "/api/v5/reference/sites":
		return s.sitesAnswer()
	case get && p == "/api/v5/reference/statuses":
		return s.statusesAnswer()
	case get && p == "/api/v5/reference/status-groups":
		return s.groupsAnswer()
	case get && reUser.MatchString(p):
		return s.user(num(reUser.FindStringSubmatch(p)[1]))
	case get && p == "/api/v5/custom-fields":
		return s.customFields(r.URL.Query())
	case post && reFieldCreate.MatchString(p):
		return s.customFieldCreate(reFieldCreate.FindStringSubmatch(p)[1], r.PostForm)
	case get && p == "/api/v5/orders":
		return s.ordersList(r.URL.Query())
	case get && p == "/api/v5/orders/history":
		return s.historyList(r.URL.Query())
	case post && p == "/api/v5/orders/create":
		return s.orderCreate(r.PostForm)
	case post && reOrderEdit.MatchString(p):
		return s.orderEdit(reOrderEdit.FindStringSubmatch(p)[1], r.PostForm)
	case get && reOrder.MatchString(p):
		return s.orderGet(reOrder.FindStringSubmatch(p)[1], r.URL.Query())
	case get && p == "/api/v5/customers":
		return s.customersList(r.URL.Query())
	case post && p == "/api/v5/customers/create":
		return s.customerCreate(r.PostForm)
	}
	return fail(http.StatusNotFound, "API method not found")
}

// ---------------------------------------------------------------- reference

func (s *Server) settings() answer {
	at := "2021-02-08 08:29:40"
	tz := s.tzName
	if s.tzOverride != nil {
		tz = *s.tzOverride
	}
	return jsonAnswer(200, O{"success": true, "settings": O{
		"default_currency": O{"value": s.currency, "updated_at": at},
		"system_language":  O{"value": "RU", "updated_at": at},
		"timezone":         O{"value": tz, "updated_at": at},
		"work_times":       []O{{"day_type": "Monday", "start_time": "08:00", "end_time": "20:30"}},
	}})
}

func (s *Server) sitesAnswer() answer {
	out := O{}
	for code, x := range s.sites {
		out[code] = O{"id": x.ID, "code": x.Code, "name": x.Name, "url": x.URL, "currency": x.Currency,
			"countryIso": "RU", "ordering": x.Ordering, "defaultForCrm": false}
	}
	return jsonAnswer(200, O{"success": true, "sites": out})
}

func (s *Server) statusesAnswer() answer {
	out := O{}
	for code, x := range s.statuses {
		out[code] = O{"name": x.Name, "code": x.Code, "active": !x.Inactive, "ordering": x.Ordering, "group": x.Group}
	}
	return jsonAnswer(200, O{"success": true, "statuses": out})
}

func (s *Server) groupsAnswer() answer {
	members := map[string][]string{}
	for _, x := range s.sortedStatuses() {
		members[x.Group] = append(members[x.Group], x.Code)
	}
	out := O{}
	for code, g := range s.groups {
		st := members[code]
		if st == nil {
			st = []string{}
		}
		out[code] = O{"name": g.Name, "code": g.Code, "active": true, "ordering": g.Ordering, "process": g.Process, "statuses": st}
	}
	return jsonAnswer(200, O{"success": true, "statusGroups": out})
}

func (s *Server) user(id int64) answer {
	u, ok := s.users[id]
	if !ok {
		return fail(http.StatusNotFound, "Not found")
	}
	out := O{"id": u.ID, "firstName": u.FirstName, "email": u.Email, "active": true, "isManager": true, "groups": []any{}}
	if u.LastName != "" {
		out["lastName"] = u.LastName
	}
	return jsonAnswer(200, O{"success": true, "user": out})
}

var reCode = regexp.MustCompile(`^[a-z0-9_]+$`)

var fieldTypes = map[string]bool{"boolean": true, "date": true, "dictionary": true, "email": true, "integer": true,
	"numeric": true, "string": true, "text": true, "multiselect_dictionary": true}

func (s *Server) customFields(q url.Values) answer {
	if a, ok := checkFilters(q, "entity", "code", "name", "type"); !ok {
		return a
	}
	var list []CustomField
	for _, f := range s.fields {
		if e := q.Get("filter[entity]"); e != "" && f.Entity != e {
			continue
		}
		if c := q.Get("filter[code]"); c != "" && f.Code != c {
			continue
		}
		list = append(list, f)
	}
	return page(q, "customFields", len(list), func(i int) []byte {
		b, _ := json.Marshal(list[i])
		return b
	})
}

func (s *Server) customFieldCreate(entity string, form url.Values) answer {
	if entity != "order" && entity != "customer" && entity != "loyalty_account" {
		return fail(http.StatusNotFound, "Not found")
	}
	raw, ok := form["customField"]
	if !ok {
		return fail(http.StatusBadRequest, "Parameter 'customField' is missing")
	}
	var f CustomField
	if err := json.Unmarshal([]byte(raw[0]), &f); err != nil {
		return failFields(http.StatusBadRequest, "Errors in the entity format", map[string]string{"customField": "Invalid JSON"})
	}
	f.Entity = entity
	errs := map[string]string{}
	if strings.TrimSpace(f.Name) == "" {
		errs["name"] = "This value should not be blank."
	}
	if !reCode.MatchString(f.Code) {
		errs["code"] = "The code may contain only lower-case latin letters, digits and _."
	}
	if !fieldTypes[f.Type] {
		errs["type"] = "The value you selected is not a valid choice."
	}
	for _, x := range s.fields {
		if x.Entity == entity && x.Code == f.Code {
			errs["code"] = "A custom field with this code already exists."
		}
	}
	if len(errs) > 0 {
		return failFields(http.StatusBadRequest, "Errors in the entity format", errs)
	}
	s.fields = append(s.fields, f)
	s.createdFields = append(s.createdFields, f)
	return jsonAnswer(http.StatusCreated, O{"success": true, "code": f.Code})
}

// ---------------------------------------------------------------- lists

// checkFilters rejects filter[…] names outside allowed, as RetailCRM's
// forms do, and page/limit values it does not accept.
func checkFilters(q url.Values, allowed ...string) (answer, bool) {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for k := range q {
		switch k {
		case "limit", "page", "apiKey":
			continue
		}
		name, found := strings.CutPrefix(k, "filter[")
		if !found {
			return failFields(http.StatusBadRequest, "Errors in the input parameters", map[string]string{k: "This form should not contain extra fields."}), false
		}
		name, _, _ = strings.Cut(name, "]")
		if !ok[name] {
			return failFields(http.StatusBadRequest, "Errors in the input parameters", map[string]string{"filter": "This form should not contain extra fields: " + name}), false
		}
	}
	if l := q.Get("limit"); l != "" && l != "20" && l != "50" && l != "100" {
		return failFields(http.StatusBadRequest, "Errors in the input parameters", map[string]string{"limit": "The value you selected is not a valid choice."}), false
	}
	if p := q.Get("page"); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 {
			return failFields(http.StatusBadRequest, "Errors in the input parameters", map[string]string{"page": "This value should be greater than or equal to 1."}), false
		}
	}
	return answer{}, true
}

// list returns the values of an array filter: filter[name][] or
// filter[name][0], … (PHP accepts both).
func list(q url.Values, name string) []string {
	var out []string
	prefix := "filter[" + name + "]["
	keys := make([]string, 0)
	for k := range q {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, "]") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, q[k]...)
	}
	return out
}

// page renders one page of n items: {"success":true,"pagination":…,key:[…]}.
func page(q url.Values, key string, n int, item func(i int) []byte) answer {
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit == 0 {
		limit = 20
	}
	current, _ := strconv.Atoi(q.Get("page"))
	current = max(current, 1)
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"success":true,"pagination":{"limit":%d,"totalCount":%d,"currentPage":%d,"totalPageCount":%d},%q:[`,
		limit, n, current, (n+limit-1)/limit, key)
	for i := (current - 1) * limit; i < n && i < current*limit; i++ {
		if i > (current-1)*limit {
			b.WriteByte(',')
		}
		b.Write(item(i))
	}
	b.WriteString("]}")
	return answer{status: 200, body: b.Bytes()}
}

var orderFilters = []string{"ids", "externalIds", "numbers", "customerId", "email", "sites", "extendedStatus",
	"createdAtFrom", "createdAtTo", "statusUpdatedAtFrom", "statusUpdatedAtTo", "customFields", "managers"}

func (s *Server) ordersList(q url.Values) answer {
	if a, ok := checkFilters(q, orderFilters...); !ok {
		return a
	}
	match, errs := s.orderMatcher(q)
	if len(errs) > 0 {
		return failFields(http.StatusBadRequest, "Errors in the input parameters", errs)
	}
	var hits []*order
	filtered := false
	for k := range q {
		filtered = filtered || strings.HasPrefix(k, "filter[")
	}
	if !filtered && s.listOrder == ByID { // the plain walk of all orders: no scan per page
		return page(q, "orders", len(s.orders), func(i int) []byte { return s.orders[i].raw })
	}
	if ids := list(q, "ids"); len(ids) > 0 {
		for _, id := range ids {
			if o, ok := s.orderByID[num(id)]; ok && match(o) {
				hits = append(hits, o)
			}
		}
		sort.Slice(hits, func(i, j int) bool { return hits[i].id < hits[j].id })
	} else {
		for _, o := range s.orders {
			if match(o) {
				hits = append(hits, o)
			}
		}
	}
	switch s.listOrder {
	case NewestFirst:
		sort.SliceStable(hits, func(i, j int) bool { return hits[i].id > hits[j].id })
	case ByStatusUpdatedAt:
		sort.SliceStable(hits, func(i, j int) bool {
			a, b := hits[i], hits[j]
			return a.statusUpdatedAt.Before(b.statusUpdatedAt) || a.statusUpdatedAt.Equal(b.statusUpdatedAt) && a.id < b.id
		})
	}
	return page(q, "orders", len(hits), func(i int) []byte { return hits[i].raw })
}

// orderMatcher builds the test of the filters of GET /orders.
func (s *Server) orderMatcher(q url.Values) (func(*order) bool, map[string]string) {
	errs := map[string]string{}
	set := func(name string) map[string]bool {
		vs := list(q, name)
		if len(vs) == 0 {
			return nil
		}
		m := map[string]bool{}
		for _, v := range vs {
			m[v] = true
		}
		return m
	}
	date := func(name string) time.Time {
		v := q.Get("filter[" + name + "]")
		if v == "" {
			return time.Time{}
		}
		t, ok := s.parseDate(v)
		if !ok {
			errs[name] = "This value is not a valid datetime."
		}
		return t
	}
	externalIDs, numbers, sites := set("externalIds"), set("numbers"), set("sites")
	statuses := set("extendedStatus")
	for code := range statuses { // a group code stands for its statuses
		if _, ok := s.groups[code]; ok {
			for _, x := range s.statuses {
				if x.Group == code {
					statuses[x.Code] = true
				}
			}
		}
	}
	customerID := q.Get("filter[customerId]")
	email := strings.ToLower(q.Get("filter[email]"))
	caFrom, caTo := date("createdAtFrom"), date("createdAtTo")
	suFrom, suTo := date("statusUpdatedAtFrom"), date("statusUpdatedAtTo")
	custom := map[string]string{}
	for k, v := range q {
		if code, ok := strings.CutPrefix(k, "filter[customFields]["); ok && strings.HasSuffix(code, "]") && !strings.Contains(code, "][") {
			custom[strings.TrimSuffix(code, "]")] = v[0]
		}
	}
	return func(o *order) bool {
		switch {
		case externalIDs != nil && !externalIDs[o.externalID],
			numbers != nil && !numbers[o.number],
			sites != nil && !sites[o.site],
			statuses != nil && !statuses[o.status],
			customerID != "" && strconv.FormatInt(o.customerID, 10) != customerID,
			email != "" && !strings.Contains(o.email, email),
			!caFrom.IsZero() && o.createdAt.Before(caFrom),
			!caTo.IsZero() && o.createdAt.After(caTo),
			!suFrom.IsZero() && o.statusUpdatedAt.Before(suFrom),
			!suTo.IsZero() && o.statusUpdatedAt.After(suTo):
			return false
		}
		for code, v := range custom {
			if s.looseCustom && strings.Contains(o.custom[code], v) {
				continue
			}
			if o.custom[code] != v {
				return false
			}
		}
		return true
	}, errs
}

func (s *Server) historyList(q url.Values) answer {
	if a, ok := checkFilters(q, "sinceId", "startDate", "endDate", "orderId"); !ok {
		return a
	}
	since := num(q.Get("filter[sinceId]"))
	orderID := num(q.Get("filter[orderId]"))
	var from, to time.Time
	if v := q.Get("filter[startDate]"); v != "" {
		var ok bool
		if from, ok = s.parseDate(v); !ok {
			return failFields(http.StatusBadRequest, "Errors in the input parameters", map[string]string{"startDate": "This value is not a valid datetime."})
		}
	}
	if v := q.Get("filter[endDate]"); v != "" {
		var ok bool
		if to, ok = s.parseDate(v); !ok {
			return failFields(http.StatusBadRequest, "Errors in the input parameters", map[string]string{"endDate": "This value is not a valid datetime."})
		}
	}
	// Records are written at whole-second precision, as the API shows them.
	var hits []historyRecord
	for _, h := range s.history {
		at := h.createdAt.Truncate(time.Second)
		if h.id <= since || (orderID != 0 && h.orderID != orderID) ||
			(!from.IsZero() && at.Before(from)) || (!to.IsZero() && at.After(to)) {
			continue
		}
		hits = append(hits, h)
	}
	a := page(q, "history", len(hits), func(i int) []byte { return hits[i].raw })
	// generatedAt goes first, as in the spec's example order it does not matter.
	a.body = append([]byte(`{"generatedAt":"`+s.stamp()+`",`), a.body[1:]...)
	return a
}

// ---------------------------------------------------------------- orders

// findOrder looks an order up by {x}: by=id means the internal id, anything
// else the externalId (the API's default).
func (s *Server) findOrder(x, by string) (*order, bool) {
	if by == "id" {
		o, ok := s.orderByID[num(x)]
		return o, ok && strconv.FormatInt(num(x), 10) == x
	}
	for _, o := range s.orders {
		if o.externalID == x {
			return o, true
		}
	}
	return nil, false
}

func (s *Server) orderGet(x string, q url.Values) answer {
	o, ok := s.findOrder(x, q.Get("by"))
	if !ok || (q.Get("site") != "" && q.Get("site") != o.site) {
		return fail(http.StatusNotFound, "Not found")
	}
	return answer{status: 200, body: append(append([]byte(`{"success":true,"order":`), o.raw...), '}')}
}

// entity reads the JSON entity field of a form.
func entity(form url.Values, name string) (O, answer, bool) {
	raw, ok := form[name]
	if !ok || raw[0] == "" {
		return nil, fail(http.StatusBadRequest, "Parameter '"+name+"' is missing"), false
	}
	var doc O
	d := json.NewDecoder(strings.NewReader(raw[0]))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil || doc == nil {
		return nil, failFields(http.StatusBadRequest, "Errors in the entity format", map[string]string{name: "Invalid JSON"}), false
	}
	return doc, answer{}, true
}

// siteOf checks the site form field: required when there are several
// stores. Unknown stores are an error not tied to a field: errors as array.
func (s *Server) siteOf(form url.Values) (string, answer, bool) {
	site := form.Get("site")
	if site == "" {
		if len(s.sites) > 1 {
			return "", fail(http.StatusBadRequest, "Parameter 'site' is missing"), false
		}
		return s.firstSite(), answer{}, true
	}
	if _, ok := s.sites[site]; !ok {
		return "", failList(http.StatusBadRequest, "Errors in the entity format", fmt.Sprintf("Site with code %q not found", site)), false
	}
	return site, answer{}, true
}

// knownFields drops custom fields that are not defined for entity: the CRM
// keeps only the fields it has.
func (s *Server) knownFields(entity string, doc O) {
	cf, ok := doc["customFields"].(map[string]any)
	if !ok {
		delete(doc, "customFields")
		return
	}
	for code := range cf {
		defined := false
		for _, f := range s.fields {
			defined = defined || (f.Entity == entity && f.Code == code)
		}
		if !defined {
			delete(cf, code)
		}
	}
}

// createForm reads a create: the JSON entity name and the store.
func (s *Server) createForm(form url.Values, name string) (O, string, answer, bool) {
	doc, a, ok := entity(form, name)
	if !ok {
		return nil, "", a, false
	}
	site, a, ok := s.siteOf(form)
	return doc, site, a, ok
}

func (s *Server) orderCreate(form url.Values) answer {
	doc, site, a, ok := s.createForm(form, "order")
	if !ok {
		return a
	}
	errs := map[string]string{}
	if st := str(doc["status"]); st != "" {
		if _, ok := s.statuses[st]; !ok {
			errs["status"] = "Status with code \"" + st + "\" not found"
		}
	}
	if ref, ok := doc["customer"].(map[string]any); ok {
		if _, ok := s.customerBy[num(ref["id"])]; !ok {
			errs["customer"] = "Customer not found"
		}
	}
	if len(errs) > 0 {
		return failFields(http.StatusBadRequest, "Errors in the entity format", errs)
	}
	for _, k := range []string{"id", "slug", "createdAt", "statusUpdatedAt"} {
		delete(doc, k)
	}
	s.knownFields("order", doc)
	doc["site"] = site
	s.completeOrder(doc)
	o := s.putOrder(doc)
	s.recordCreated(o, "api")
	s.createdOrders = append(s.createdOrders, o.id)
	return answer{status: http.StatusCreated, body: fmt.Appendf(nil, `{"success":true,"id":%d,"order":%s}`, o.id, o.raw)}
}

func (s *Server) orderEdit(x string, form url.Values) answer {
	o, ok := s.findOrder(x, form.Get("by"))
	if !ok {
		return fail(http.StatusNotFound, "Not found")
	}
	if site := form.Get("site"); site != "" && site != o.site {
		return fail(http.StatusNotFound, "Not found")
	}
	patch, a, ok := entity(form, "order")
	if !ok {
		return a
	}
	if st := str(patch["status"]); st != "" {
		if _, ok := s.statuses[st]; !ok {
			return failFields(http.StatusBadRequest, "Errors in the entity format", map[string]string{"status": "Status with code \"" + st + "\" not found"})
		}
	}
	if _, has := patch["customFields"]; has {
		s.knownFields("order", patch)
	}
	s.edits = append(s.edits, Edit{OrderID: o.id, Site: form.Get("site"), Patch: patch})
	n := s.applyEdit(o, patch, "api")
	return answer{status: 200, body: fmt.Appendf(nil, `{"success":true,"id":%d,"order":%s}`, n.id, n.raw)}
}

// ---------------------------------------------------------------- customers

func (s *Server) customersList(q url.Values) answer {
	if a, ok := checkFilters(q, "name", "email", "ids", "sites", "customFields", "dateFrom"); !ok {
		return a
	}
	name := strings.ToLower(strings.TrimSpace(q.Get("filter[name]")))
	nameDigits := digits(name)
	email := strings.ToLower(strings.TrimSpace(q.Get("filter[email]")))
	ids := map[int64]bool{}
	for _, v := range list(q, "ids") {
		ids[num(v)] = true
	}
	sites := map[string]bool{}
	for _, v := range list(q, "sites") {
		sites[v] = true
	}
	var hits []*customer
	for _, c := range s.customers {
		if (len(ids) > 0 && !ids[c.id]) || (len(sites) > 0 && !sites[c.site]) ||
			(email != "" && !strings.Contains(c.email, email)) {
			continue
		}
		if name != "" && !strings.Contains(c.name, name) && !phoneMatch(c.phones, nameDigits) {
			continue
		}
		hits = append(hits, c)
	}
	return page(q, "customers", len(hits), func(i int) []byte { return hits[i].raw })
}

// phoneMatch is the loose search of filter[name]: the digits looked for
// appear in a phone's digits (so "9161234567" finds "+7 916 123-45-67").
func phoneMatch(phones []string, want string) bool {
	if len(want) < 5 {
		return false
	}
	for _, p := range phones {
		if strings.Contains(p, want) {
			return true
		}
	}
	return false
}

func (s *Server) customerCreate(form url.Values) answer {
	doc, site, a, ok := s.createForm(form, "customer")
	if !ok {
		return a
	}
	for _, k := range []string{"id", "createdAt"} {
		delete(doc, k)
	}
	s.knownFields("customer", doc)
	doc["site"] = site
	c := s.putCustomer(doc)
	s.createdCustomers = append(s.createdCustomers, c.id)
	return jsonAnswer(http.StatusCreated, O{"success": true, "id": c.id})
}
