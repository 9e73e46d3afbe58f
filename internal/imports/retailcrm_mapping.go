package imports

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/retailcrm"
)

// The parameter mapping of a retailcrm task (seed 001 "Импорт параметров",
// spec §11.1): each of our order parameters comes from a field of the
// RetailCRM order, named by a source:
//
//	source := alt { "|" alt }      the first alternative with a usable value wins
//	alt    := term [ "-" term ]    a difference (money and count parameters)
//	term   := a field path         "totalSumm", "customer.email", "customFields.tl_session_id"
//	        | a derived value      "items.quantity" (Σ quantities of items not cancelled),
//	                               "fullName", "contact.fullName", "customer.fullName"
//	                               (lastName firstName patronymic), "customer.tags",
//	                               "contact.tags" (the tag names)
//
// A path starts with a standard order field (spec §6) or is
// "customFields.<code>" of a custom field the account has. An empty source
// means the parameter is not imported.

// RetailParams are the mapping's parameters, the required ones first.
var RetailParams = []string{"order_id", "order_date", "session_id", "user_id", "items_count", "margin",
	"revenue", "comment", "contact_name", "contact_phone", "contact_email", "tags"}

const retailRequired = 2 // order_id, order_date

// Default custom fields the site fills with the tracker's ids (the codes the
// two-way integration and the docs use). They are mapped by default only
// when the account has them.
const (
	DefaultSessionField = "tl_session_id"
	DefaultVisitorField = "tl_visitor_id"
)

// DefaultRetailMapping is the mapping of spec §11.1.
func DefaultRetailMapping() map[string]string {
	return map[string]string{
		"order_id":      "id",
		"order_date":    "createdAt",
		"session_id":    "customFields." + DefaultSessionField,
		"user_id":       "customFields." + DefaultVisitorField,
		"items_count":   "items.quantity",
		"margin":        "totalSumm - purchaseSumm",
		"revenue":       "totalSumm",
		"comment":       "customerComment | managerComment",
		"contact_name":  "fullName | contact.fullName | customer.fullName",
		"contact_phone": "phone | additionalPhone | customer.phones.0.number",
		"contact_email": "email | customer.email",
		"tags":          "customer.tags",
	}
}

// orderFields are the top-level fields of a RetailCRM order (spec §6) a
// path may start with.
var orderFields = map[string]bool{}

func init() {
	for _, f := range strings.Fields(`id number externalId slug orderType orderMethod privilegeType countryIso
		createdAt statusUpdatedAt summ totalSumm prepaySum purchaseSumm currency markDatetime
		bonusesCreditTotal bonusesChargeTotal lastName firstName patronymic phone additionalPhone email
		call expired managerId customerComment managerComment customer contact contragent delivery site
		status statusComment source items payments fullPaidAt links fromApi weight length width height
		shipmentStore shipmentDate shipped customFields clientId discountManualAmount discountManualPercent`) {
		orderFields[f] = true
	}
}

var derivedFields = map[string]bool{"items.quantity": true, "fullName": true, "contact.fullName": true,
	"customer.fullName": true, "customer.tags": true, "contact.tags": true}

type term string

type alt struct{ a, b term } // b != "": a − b

type source []alt

// paramKind says how a parameter's text is read.
func numericParam(p string) bool { return p == "items_count" || p == "margin" || p == "revenue" }

// parseSource reads one parameter's source. customFields lists the codes of
// the account's order custom fields; nil means unknown (not checked).
func parseSource(param, text string, customFields map[string]bool) (source, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, nil
	}
	if len(text) > 500 {
		return nil, fmt.Errorf("is longer than 500 characters")
	}
	var src source
	for part := range strings.SplitSeq(text, "|") {
		a, b, diff := strings.Cut(part, "-")
		var x alt
		var err error
		if x.a, err = parseTerm(a, customFields); err != nil {
			return nil, err
		}
		if diff {
			if !numericParam(param) {
				return nil, fmt.Errorf("%q: a difference (a - b) is only for items_count, margin and revenue", strings.TrimSpace(part))
			}
			if x.b, err = parseTerm(b, customFields); err != nil {
				return nil, err
			}
		}
		src = append(src, x)
	}
	return src, nil
}

func parseTerm(s string, customFields map[string]bool) (term, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("has an empty field name (between | or -)")
	}
	if derivedFields[s] {
		return term(s), nil
	}
	segs := strings.Split(s, ".")
	for _, seg := range segs {
		if seg == "" || strings.ContainsFunc(seg, func(r rune) bool {
			return !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) {
			return "", fmt.Errorf("%q is not a field name: letters, digits and _ separated by dots", s)
		}
	}
	if !orderFields[segs[0]] {
		return "", fmt.Errorf("%q is not a RetailCRM order field (e.g. id, number, createdAt, totalSumm, phone, customFields.<code>)", s)
	}
	if segs[0] == "customFields" {
		if len(segs) != 2 {
			return "", fmt.Errorf("%q: name a custom field as customFields.<code>", s)
		}
		if customFields != nil && !customFields[segs[1]] {
			return "", fmt.Errorf("the account has no order custom field %q (known: %s)", segs[1], strings.Join(slices.Sorted(maps.Keys(customFields)), ", "))
		}
	}
	return term(s), nil
}

// retailMapping is a checked mapping, ready to read orders.
type retailMapping struct {
	src map[string]source
}

// compileMapping checks a whole mapping. An error is an *InvalidError naming
// the parameter.
func compileMapping(m map[string]string, customFields map[string]bool) (*retailMapping, error) {
	rm := &retailMapping{src: map[string]source{}}
	for p, text := range m {
		if !slices.Contains(RetailParams, p) {
			return nil, &InvalidError{"column_mapping", fmt.Sprintf("%q is not a parameter of a RetailCRM import (%s)", p, strings.Join(RetailParams, ", "))}
		}
		src, err := parseSource(p, text, customFields)
		if err != nil {
			return nil, &InvalidError{"column_mapping." + p, err.Error()}
		}
		rm.src[p] = src
	}
	for _, p := range RetailParams[:retailRequired] {
		if len(rm.src[p]) == 0 {
			return nil, &InvalidError{"column_mapping." + p, "is required: the order field it comes from (e.g. " + DefaultRetailMapping()[p] + ")"}
		}
	}
	return rm, nil
}

// value reads one alternative's term as text.
func termText(o *retailcrm.Order, t term) (string, bool) {
	switch t {
	case "id":
		return strconv.FormatInt(o.ID, 10), o.ID != 0
	case "totalSumm":
		return o.TotalSumm.String(), true
	case "purchaseSumm":
		return o.PurchaseSumm.String(), true
	case "summ":
		return o.Summ.String(), true
	case "items.quantity":
		n := o.ItemCount()
		return strconv.FormatFloat(n, 'f', -1, 64), len(o.Items) > 0
	case "fullName":
		n := joinName(o.LastName, o.FirstName, o.Patronymic)
		return n, n != ""
	case "contact.fullName", "customer.fullName":
		if c := person(o, t); c != nil {
			n := c.Name()
			return n, n != ""
		}
		return "", false
	case "customer.tags", "contact.tags":
		c := person(o, t)
		if c == nil {
			return "", false
		}
		names := make([]string, 0, len(c.Tags))
		for _, tag := range c.Tags {
			if tag.Name != "" {
				names = append(names, tag.Name)
			}
		}
		return strings.Join(names, ","), len(names) > 0
	}
	// The fields mapped by default come from the decoded order: reading
	// them from the raw JSON decodes each value again.
	if v, ok := typedText(o, string(t)); ok {
		return v, v != ""
	}
	return o.Field(string(t))
}

// typedText reads the order fields the client has decoded already; ok is
// false for a path it does not cover.
func typedText(o *retailcrm.Order, path string) (string, bool) {
	switch path {
	case "number":
		return o.Number, true
	case "externalId":
		return o.ExternalID, true
	case "phone":
		return o.Phone, true
	case "additionalPhone":
		return o.AdditionalPhone, true
	case "email":
		return o.Email, true
	case "customerComment":
		return o.CustomerComment, true
	case "managerComment":
		return o.ManagerComment, true
	case "customer.email":
		if o.Customer == nil {
			return "", true
		}
		return o.Customer.Email, true
	case "customer.phones.0.number":
		if o.Customer == nil || len(o.Customer.Phones) == 0 {
			return "", true
		}
		return o.Customer.Phones[0].Number, true
	}
	if code, ok := strings.CutPrefix(path, "customFields."); ok {
		v, _ := o.CustomFields.String(code)
		return v, true
	}
	return "", false
}

// person is the order's customer, or its contact person for a "contact." term.
func person(o *retailcrm.Order, t term) *retailcrm.Customer {
	if strings.HasPrefix(string(t), "contact.") {
		return o.Contact
	}
	return o.Customer
}

func joinName(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

// first reads a parameter's value of its kind: the first alternative whose
// text use accepts (use returns the value to keep). An alternative that is
// empty or not of the parameter's kind ("нет" for a phone) falls through to
// the next (spec §11.1's fallbacks); bad is the first such text, "" when
// every alternative was empty.
func (rm *retailMapping) first(o *retailcrm.Order, p string, use func(string) (string, bool)) (v string, ok bool, bad string) {
	for _, a := range rm.src[p] {
		s, has := termText(o, a.a)
		if s = strings.TrimSpace(s); !has || s == "" {
			continue
		}
		if v, ok := use(s); ok {
			return v, true, ""
		}
		if bad == "" {
			bad = s
		}
	}
	return "", false, bad
}

// text reads a text parameter: the first alternative with a value.
func (rm *retailMapping) text(o *retailcrm.Order, p string) string {
	v, _, _ := rm.first(o, p, func(s string) (string, bool) { return s, true })
	return v
}

// phone reads a phone parameter, normalised: the first alternative that is
// a phone number.
func (rm *retailMapping) phone(o *retailcrm.Order, p string) string {
	v, _, _ := rm.first(o, p, func(s string) (string, bool) {
		norm, err := normalize.Phone(s, "")
		return norm, err == nil
	})
	return v
}

// email reads an e-mail parameter, normalised: the first alternative that
// is an e-mail address.
func (rm *retailMapping) email(o *retailcrm.Order, p string) string {
	v, _, _ := rm.first(o, p, func(s string) (string, bool) {
		norm, err := normalize.Email(s)
		return norm, err == nil
	})
	return v
}

// date reads a date parameter: the first alternative that is a date in the
// account's zone (createdAt comes placed in it by the client); bad is the
// first text that was not one.
func (rm *retailMapping) date(o *retailcrm.Order, p string, loc *time.Location) (t time.Time, ok bool, bad string) {
	for _, a := range rm.src[p] {
		if a.a == "createdAt" && !o.CreatedAt.IsZero() {
			return o.CreatedAt.UTC(), true, ""
		}
		s, has := termText(o, a.a)
		if s = strings.TrimSpace(s); !has || s == "" {
			continue
		}
		if d, err := retailcrm.ParseDateTime(s, loc); err == nil && !d.IsZero() {
			return d.UTC(), true, ""
		}
		if bad == "" {
			bad = s
		}
	}
	return time.Time{}, false, bad
}

// typedMoney are the money fields read from the decoded order, where a
// missing field reads 0.
func typedMoney(t term) bool { return t == "totalSumm" || t == "purchaseSumm" || t == "summ" }

// number reads a money or count parameter in hundredths (minor units); ok
// is false when no alternative has a value. An alternative that is
// missing, empty or not a number falls through to the next; when none is
// usable and one was not a number, err says which. In a difference a
// missing subtrahend counts as 0 (an order without purchase prices).
func (rm *retailMapping) number(o *retailcrm.Order, p string) (v int64, ok bool, err error) {
	alts := rm.src[p]
	var bad error
	for i, a := range alts {
		if i < len(alts)-1 && typedMoney(a.a) {
			// The decoded order reads a missing amount as 0; a fallback
			// needs to know it is missing (the raw field, only read here).
			if _, has := o.Field(string(a.a)); !has {
				continue
			}
		}
		s, has := termText(o, a.a)
		if s = strings.TrimSpace(s); !has || s == "" {
			continue
		}
		v, err := crm.ParseMoney(s)
		if err != nil {
			if bad == nil {
				bad = fmt.Errorf("%s %q: %v", a.a, s, err)
			}
			continue
		}
		if a.b != "" {
			if s, has := termText(o, a.b); has && strings.TrimSpace(s) != "" {
				w, err := crm.ParseMoney(strings.TrimSpace(s))
				if err != nil {
					if bad == nil {
						bad = fmt.Errorf("%s %q: %v", a.b, s, err)
					}
					continue
				}
				v -= w
			}
		}
		return v, true, nil
	}
	return 0, false, bad
}

// rowError is a rejected order: the parameter at fault and why.
func rowError(n int, o *retailcrm.Order, param, format string, args ...any) *crm.RowError {
	return &crm.RowError{Line: n, Column: param, Message: fmt.Sprintf("order %d: ", o.ID) + fmt.Sprintf(format, args...)}
}

// order turns a RetailCRM order into Throughline's, the n-th of a run, and
// its customer into a contact (nil when the order has none). groups maps
// status codes to their groups; loc is the account's zone.
func (rm *retailMapping) order(n int, o *retailcrm.Order, groups map[string]string, loc *time.Location) (*crm.Order, *crm.Contact, error) {
	out := &crm.Order{Has: crm.FStatus | crm.FUpdatedAt | crm.FCurrency | crm.FComment | crm.FSID | crm.FClientIDs |
		crm.FCallerPhone | crm.FPhones | crm.FEmails | crm.FAttributes | crm.FContact}
	out.ID = rm.text(o, "order_id")
	if out.ID == "" {
		return nil, nil, rowError(n, o, "order_id", "the order id is empty")
	}
	if len(out.ID) > 255 {
		return nil, nil, rowError(n, o, "order_id", "the order id is longer than 255 characters")
	}
	created, ok, bad := rm.date(o, "order_date", loc)
	if !ok {
		return nil, nil, rowError(n, o, "order_date", "%q is not a date (YYYY-MM-DD HH:MM:SS)", bad)
	}
	out.CreatedAt = created
	out.Status = o.Status
	if !o.StatusUpdatedAt.IsZero() {
		out.UpdatedAt = o.StatusUpdatedAt.UTC()
		if groups[o.Status] == "complete" {
			// The order was done when it entered its completed status.
			out.FinishedAt, out.Has = out.UpdatedAt, out.Has|crm.FFinishedAt
		}
	}
	out.Currency = strings.ToUpper(o.Currency)
	out.Comment = rm.text(o, "comment")
	out.SID = strings.ToLower(rm.text(o, "session_id"))
	if uid := strings.ToLower(rm.text(o, "user_id")); uid != "" {
		out.ClientIDs = []string{uid}
	}
	for _, p := range []string{"revenue", "margin", "items_count"} {
		v, ok, err := rm.number(o, p)
		if err != nil {
			return nil, nil, rowError(n, o, p, "%v", err)
		}
		if !ok {
			continue
		}
		switch p {
		case "revenue":
			if v < 0 {
				return nil, nil, rowError(n, o, p, "the revenue %s is negative", crm.FormatMoney(v))
			}
			out.Revenue, out.Has = v, out.Has|crm.FRevenue
		case "margin":
			out.Margin, out.Has = v, out.Has|crm.FMargin
		case "items_count":
			if v < 0 {
				return nil, nil, rowError(n, o, p, "the item count %s is negative", crm.FormatMoney(v))
			}
			// Quantities may be fractional (2.5 kg); orders count whole goods.
			out.Items, out.Has = int64(math.Round(float64(v)/100)), out.Has|crm.FItems
		}
	}
	// RetailCRM phones are free text ("нет", "звонить вечером"): one that is
	// no phone number gives way to the next source, and when none is one
	// the order has no phone (no reason to refuse it).
	if ph := rm.phone(o, "contact_phone"); ph != "" {
		out.CallerPhone, out.Phones = ph, []string{ph}
	}
	if em := rm.email(o, "contact_email"); em != "" {
		out.Emails = []string{em}
	}
	if tags := rm.text(o, "tags"); tags != "" {
		var list []string
		for t := range strings.SplitSeq(tags, ",") {
			if t = strings.TrimSpace(t); t != "" && !slices.Contains(list, t) {
				list = append(list, t)
			}
		}
		out.Attributes = map[string][]string{"tags": list}
	}
	var c *crm.Contact
	if cu := o.Customer; cu != nil && cu.ID != 0 {
		// The RetailCRM customer is the contact: the name the mapping gives
		// (the order's contact person by default), the customer's phones and
		// e-mail with the order's own.
		out.ContactID = strconv.FormatInt(cu.ID, 10)
		c = &crm.Contact{UniqID: out.ContactID, Has: crm.FName | crm.FPhones | crm.FEmails,
			Name: rm.text(o, "contact_name"), Phones: slices.Clone(out.Phones), Emails: slices.Clone(out.Emails)}
		for _, ph := range cu.Phones {
			if norm, err := normalize.Phone(ph.Number, ""); err == nil && !slices.Contains(c.Phones, norm) {
				c.Phones = append(c.Phones, norm)
			}
		}
		if norm, err := normalize.Email(cu.Email); err == nil && !slices.Contains(c.Emails, norm) {
			c.Emails = append(c.Emails, norm)
		}
		if !cu.CreatedAt.IsZero() {
			c.CreatedAt, c.Has = cu.CreatedAt.UTC(), c.Has|crm.FCreatedAt
		}
	}
	return out, c, nil
}
