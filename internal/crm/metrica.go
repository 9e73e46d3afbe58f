package crm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/normalize"
)

// Yandex Metrica's CRM upload formats (shared/spec/metrica-cdp.md §4–§7):
// contacts, orders and simple orders, as CSV (a header of field names) or
// JSON ({"contacts": […]}, {"orders": […]}). Both forms go through the same
// field rules, so a value means the same in either.

var contactFields = []string{"uniq_id", "name", "create_date_time", "update_date_time", "client_ids", "user_ids",
	"emails", "phones", "emails_md5", "phones_md5", "birth_date", "company_uniq_id", "user_comment"}

var orderFields = []string{"id", "client_uniq_id", "client_type", "create_date_time", "order_status", "update_date_time",
	"finish_date_time", "revenue", "cost", "products", "goals", "currency", "user_comment"}

var simpleOrderFields = []string{"id", "create_date_time", "client_uniq_id", "client_ids", "emails", "phones",
	"emails_md5", "phones_md5", "order_status", "revenue", "cost", "goals", "currency", "update_date_time", "finish_date_time"}

// simpleOrderKeys are the identifier columns of which a simple-orders file
// needs at least one.
var simpleOrderKeys = []string{"client_ids", "emails", "phones", "emails_md5", "phones_md5"}

// MetricaFormat configures a Metrica CSV or JSON reader.
type MetricaFormat struct {
	Intake     Intake            // ContactsUp, OrdersUpload or SimpleOrders
	Location   *time.Location    // the counter's time zone: CRM dates are local
	Attributes []Attribute       // the custom attributes declared for the entity
	Mapping    map[string]string // field name → the file's header (columns_mapping)
	Delimiter  rune              // CSV only; 0: sniffed from the header (',' unless it has only ';' or tabs)
}

func (f *MetricaFormat) fields() []string {
	switch f.Intake {
	case ContactsUp:
		return contactFields
	case OrdersUpload:
		return orderFields
	}
	return simpleOrderFields
}

func (f *MetricaFormat) required() []string {
	switch f.Intake {
	case ContactsUp:
		return []string{"uniq_id"}
	case OrdersUpload:
		return []string{"id", "client_uniq_id", "client_type", "create_date_time", "order_status"}
	}
	return []string{"id", "create_date_time"}
}

func (f *MetricaFormat) attribute(name string) (Attribute, bool) {
	for _, a := range f.Attributes {
		if strings.EqualFold(a.Name, name) {
			return a, true
		}
	}
	return Attribute{}, false
}

var mappingPairRE = regexp.MustCompile(`"([^"]+)"\s*:\s*"([^"]+)"`)

// ParseColumnsMapping reads Metrica's columns_mapping parameter:
// "uniq_id":"ID","name":"Name" — attribute first, the file's header second.
func ParseColumnsMapping(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	m := map[string]string{}
	headers := map[string]bool{}
	for _, p := range mappingPairRE.FindAllStringSubmatch(s, -1) {
		attr, header := strings.ToLower(p[1]), p[2]
		if _, dup := m[attr]; dup {
			return nil, &FileError{Column: "columns_mapping", Message: fmt.Sprintf("%q is mapped twice", p[1])}
		}
		if headers[strings.ToLower(header)] {
			return nil, &FileError{Column: "columns_mapping", Message: fmt.Sprintf("header %q is mapped twice", header)}
		}
		m[attr], headers[strings.ToLower(header)] = header, true
	}
	if len(m) == 0 {
		return nil, &FileError{Column: "columns_mapping", Message: `expected pairs like "uniq_id":"ID","name":"Name"`}
	}
	return m, nil
}

// rowSource is one uploaded row, from a CSV line or a JSON object.
type rowSource interface {
	// has reports whether the row gives the field a non-empty value.
	has(field string) bool
	str(field string) string
	list(field string) []string
	products(field string) (map[string]float64, error)
	goals(field string) ([]Goal, error)
	// attributes returns the custom attribute values the row carries.
	attributes() (map[string][]string, error)
	column(field string) string // how the field is named in the upload, for errors
	line() int
}

// ---------------------------------------------------------------- CSV

type metricaCSV struct {
	t     *table
	f     MetricaFormat
	col   map[string]int // field → column
	attrs map[int]Attribute
}

// NewMetricaCSVReader reads the header of a contacts, orders or simple
// orders CSV. Columns that are neither fields of the format nor declared
// custom attributes are ignored.
func NewMetricaCSVReader(r io.Reader, f MetricaFormat) (RowReader, error) {
	br := &sniffReader{r: r}
	if f.Delimiter == 0 {
		f.Delimiter = br.sniffDelimiter()
	}
	t, err := newTable(br, f.Delimiter)
	if err != nil {
		return nil, err
	}
	m := &metricaCSV{t: t, f: f, col: map[string]int{}, attrs: map[int]Attribute{}}
	for attr, header := range f.Mapping {
		if i, err := m.t.column(header); err != nil {
			return nil, err
		} else if i < 0 {
			return nil, &FileError{Column: "columns_mapping", Message: fmt.Sprintf("header %q (mapped from %q) is not in the file", header, attr)}
		}
	}
	for _, name := range f.fields() {
		header := name
		if h, ok := f.Mapping[name]; ok {
			header = h
		}
		i, err := t.column(header)
		if err != nil {
			return nil, err
		}
		if i >= 0 {
			m.col[name] = i
		}
	}
	for _, a := range f.Attributes {
		header := a.Name
		if h, ok := f.Mapping[strings.ToLower(a.Name)]; ok {
			header = h
		}
		i, err := t.column(header)
		if err != nil {
			return nil, err
		}
		if i >= 0 {
			m.attrs[i] = a
		}
	}
	for _, req := range f.required() {
		if _, ok := m.col[req]; !ok {
			return nil, &FileError{Column: req, Message: fmt.Sprintf("required column %s is missing (found: %s)", req, strings.Join(t.header, ", "))}
		}
	}
	if f.Intake == SimpleOrders {
		found := false
		for _, k := range simpleOrderKeys {
			_, ok := m.col[k]
			found = found || ok
		}
		if !found {
			return nil, &FileError{Column: "client_ids", Message: "a simple-orders file needs at least one of the columns " + strings.Join(simpleOrderKeys, ", ")}
		}
	}
	return m, nil
}

// sniffReader peeks at the header to guess the delimiter: ';' or a tab when
// the header has it and no comma.
type sniffReader struct {
	r    io.Reader
	head []byte
}

func (s *sniffReader) sniffDelimiter() rune {
	buf := make([]byte, 4096)
	n, _ := io.ReadAtLeast(s.r, buf, 1)
	s.head = buf[:n]
	line, _, _ := bytes.Cut(s.head, []byte("\n"))
	switch {
	case bytes.Contains(line, []byte(",")):
		return ','
	case bytes.Contains(line, []byte(";")):
		return ';'
	case bytes.Contains(line, []byte("\t")):
		return '\t'
	}
	return ','
}

func (s *sniffReader) Read(p []byte) (int, error) {
	if len(s.head) > 0 {
		n := copy(p, s.head)
		s.head = s.head[n:]
		return n, nil
	}
	return s.r.Read(p)
}

func (m *metricaCSV) Next() (any, int, error) {
	if err := m.t.next(); err != nil {
		return nil, 0, err
	}
	for _, i := range m.col { // the columns the format does not know are not read
		if _, err := m.t.cell(i); err != nil {
			return nil, m.t.line, err
		}
	}
	row, err := buildRow(m, &m.f)
	if err != nil {
		return nil, m.t.line, err
	}
	return row, m.t.line, nil
}

func (m *metricaCSV) cellOf(field string) string {
	i, ok := m.col[field]
	if !ok || i >= len(m.t.rec) {
		return ""
	}
	return strings.TrimSpace(m.t.rec[i])
}

func (m *metricaCSV) has(field string) bool      { return m.cellOf(field) != "" }
func (m *metricaCSV) str(field string) string    { return m.cellOf(field) }
func (m *metricaCSV) list(field string) []string { return SplitMulti(m.cellOf(field)) }
func (m *metricaCSV) line() int                  { return m.t.line }
func (m *metricaCSV) column(field string) string {
	if i, ok := m.col[field]; ok {
		return m.t.header[i]
	}
	return field
}

func (m *metricaCSV) products(field string) (map[string]float64, error) {
	return parseProductsCell(m.cellOf(field))
}

func (m *metricaCSV) goals(field string) ([]Goal, error) {
	return parseGoalsCell(m.cellOf(field))
}

func (m *metricaCSV) attributes() (map[string][]string, error) {
	var out map[string][]string
	for i, a := range m.attrs {
		if i >= len(m.t.rec) || strings.TrimSpace(m.t.rec[i]) == "" {
			continue
		}
		vals := []string{strings.TrimSpace(m.t.rec[i])}
		if a.Multivalued {
			vals = SplitMulti(m.t.rec[i])
		}
		checked, err := checkAttribute(a, vals)
		if err != nil {
			return nil, &RowError{Line: m.t.line, Column: m.t.header[i], Message: err.Error()}
		}
		if out == nil {
			out = map[string][]string{}
		}
		out[a.Name] = checked
	}
	return out, nil
}

// parseProductsCell reads "Ноутбук TGDD12:1,Ноутбук TGD123:2": items split
// on commas, each on its last colon (product ids may hold spaces and colons).
func parseProductsCell(s string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, item := range SplitMulti(s) {
		i := strings.LastIndexByte(item, ':')
		if i <= 0 {
			return nil, fmt.Errorf("%q is not product:quantity", item)
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(item[i+1:]), 64)
		if err != nil || !(q >= 0 && q <= 1e12) { // NaN too
			return nil, fmt.Errorf("%q: the quantity is not a number ≥ 0", item)
		}
		out[strings.TrimSpace(item[:i])] += q
	}
	return out, nil
}

// parseGoalsCell reads "oplata_cash:200,filial_1": goal ids with an
// optional price after the last colon (a dot decimal; otherwise the colon is
// part of the id).
func parseGoalsCell(s string) ([]Goal, error) {
	var out []Goal
	for _, item := range SplitMulti(s) {
		g := Goal{ID: item}
		if i := strings.LastIndexByte(item, ':'); i > 0 {
			if _, err := strconv.ParseFloat(item[i+1:], 64); err == nil {
				if p, err := ParseMoney(item[i+1:]); err == nil && p >= 0 {
					g = Goal{ID: item[:i], Price: p, HasPrice: true}
				}
			}
		}
		if !statusCodeRE.MatchString(g.ID) {
			return nil, fmt.Errorf("%q is not a goal id", g.ID)
		}
		out = append(out, g)
	}
	return out, nil
}

// checkAttribute checks and normalises an attribute's values by its type.
func checkAttribute(a Attribute, vals []string) ([]string, error) {
	if !a.Multivalued && len(vals) > 1 {
		return nil, fmt.Errorf("attribute %s holds one value, not %d", a.Name, len(vals))
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		if err := checkText(v); err != nil {
			return nil, err
		}
		switch a.TypeName {
		case "numeric":
			if _, err := strconv.ParseFloat(strings.Replace(v, ",", ".", 1), 64); err != nil {
				return nil, fmt.Errorf("attribute %s: %q is not a number", a.Name, v)
			}
		case "date", "datetime":
			if _, _, err := ParseTime(v, time.UTC); err != nil {
				return nil, fmt.Errorf("attribute %s: %v", a.Name, err)
			}
		case "email":
			e, err := normalize.Email(v)
			if err != nil {
				return nil, fmt.Errorf("attribute %s: %q is not an e-mail address", a.Name, v)
			}
			v = e
		}
		out = append(out, v)
	}
	return out, nil
}

// ---------------------------------------------------------------- rows

// buildRow turns a row of any Metrica format into an *Order or *Contact.
func buildRow(src rowSource, f *MetricaFormat) (any, error) {
	b := rowBuilder{src: src, f: f}
	var row any
	if f.Intake == ContactsUp {
		row = b.contact()
	} else {
		row = b.order()
	}
	if b.err != nil {
		return nil, b.err
	}
	return row, nil
}

type rowBuilder struct {
	src rowSource
	f   *MetricaFormat
	err *RowError
}

func (b *rowBuilder) fail(field string, format string, args ...any) {
	if b.err == nil {
		b.err = &RowError{Line: b.src.line(), Column: b.src.column(field), Message: fmt.Sprintf(format, args...)}
	}
}

func (b *rowBuilder) text(field string, max int) string {
	v := b.src.str(field)
	if err := checkText(v); err != nil {
		b.fail(field, "%v", err)
	}
	if utf8.RuneCountInString(v) > max {
		b.fail(field, "is longer than %d characters", max)
	}
	return v
}

func (b *rowBuilder) time(field string) time.Time {
	if !b.src.has(field) {
		return time.Time{}
	}
	t, _, err := ParseTime(b.src.str(field), b.f.Location)
	if err != nil {
		b.fail(field, "%v", err)
	}
	return t
}

func (b *rowBuilder) money(field string) int64 {
	v, err := ParseMoney(b.src.str(field))
	switch {
	case err != nil:
		b.fail(field, "%v", err)
	case v < 0:
		b.fail(field, "%q is negative", b.src.str(field))
	}
	return v
}

func (b *rowBuilder) listOf(field string, norm func([]string) ([]string, error)) []string {
	vals, err := norm(b.src.list(field))
	if err != nil {
		b.fail(field, "%v", err)
	}
	return vals
}

// keys reads the identifier lists shared by contacts and simple orders.
func (b *rowBuilder) keys(has *Field, clientIDs, phones, emails, phonesMD5, emailsMD5 *[]string) {
	for _, k := range []struct {
		field string
		bit   Field
		dst   *[]string
		norm  func([]string) ([]string, error)
	}{
		{"client_ids", FClientIDs, clientIDs, normalizeIDs},
		{"phones", FPhones, phones, normalizePhones},
		{"emails", FEmails, emails, normalizeEmails},
		{"phones_md5", FPhonesMD5, phonesMD5, normalizeHashes},
		{"emails_md5", FEmailsMD5, emailsMD5, normalizeHashes},
	} {
		if b.src.has(k.field) {
			*k.dst = b.listOf(k.field, k.norm)
			*has |= k.bit
		}
	}
}

// attributes reads the row's custom attribute values.
func (b *rowBuilder) attributes() map[string][]string {
	attrs, err := b.src.attributes()
	var re *RowError
	switch {
	case errors.As(err, &re):
		b.err = re
	case err != nil:
		b.fail("attribute_values", "%v", err)
	}
	return attrs
}

func (b *rowBuilder) order() *Order {
	o := &Order{}
	simple := b.f.Intake == SimpleOrders
	o.ID = b.text("id", 255)
	if o.ID == "" && !simple {
		b.fail("id", "the order id is empty")
	}
	if !b.src.has("create_date_time") {
		b.fail("create_date_time", "the order's creation date is required")
	}
	o.CreatedAt = b.time("create_date_time")
	if b.src.has("client_uniq_id") {
		o.ContactID, o.Has = b.text("client_uniq_id", 255), o.Has|FContact
	} else if !simple {
		b.fail("client_uniq_id", "the customer's id is required")
	}
	if !simple {
		if ct := b.src.str("client_type"); !strings.EqualFold(ct, "CONTACT") {
			b.fail("client_type", "%q: the only client type is CONTACT", ct)
		}
		if !b.src.has("order_status") {
			b.fail("order_status", "the order status is required")
		}
	}
	if b.src.has("order_status") {
		// Kept as sent: "paid" may be a status the counter maps; unmapped, a
		// type's name in any case is that type (builtinType).
		o.Status, o.Has = b.text("order_status", 255), o.Has|FStatus
	}
	if b.src.has("update_date_time") {
		o.UpdatedAt, o.Has = b.time("update_date_time"), o.Has|FUpdatedAt
	}
	if b.src.has("finish_date_time") {
		o.FinishedAt, o.Has = b.time("finish_date_time"), o.Has|FFinishedAt
	}
	if b.src.has("revenue") {
		o.Revenue, o.Has = b.money("revenue"), o.Has|FRevenue
	}
	if b.src.has("cost") {
		o.Cost, o.Has = b.money("cost"), o.Has|FCost
	}
	if b.src.has("currency") {
		o.Currency, o.Has = strings.ToUpper(b.src.str("currency")), o.Has|FCurrency
		if !currencyRE.MatchString(o.Currency) {
			b.fail("currency", "%q is not an ISO 4217 code such as RUB", b.src.str("currency"))
		}
	}
	if b.src.has("user_comment") {
		o.Comment, o.Has = b.text("user_comment", 4096), o.Has|FComment
	}
	if b.src.has("products") {
		p, err := b.src.products("products")
		if err != nil {
			b.fail("products", "%v", err)
		}
		o.Products, o.Has = p, o.Has|FProducts
	}
	if b.src.has("goals") {
		g, err := b.src.goals("goals")
		if err != nil {
			b.fail("goals", "%v", err)
		}
		o.Goals, o.Has = g, o.Has|FGoals
	}
	if simple {
		b.keys(&o.Has, &o.ClientIDs, &o.Phones, &o.Emails, &o.PhonesMD5, &o.EmailsMD5)
	}
	attrs := b.attributes()
	if len(attrs) > 0 {
		o.Attributes, o.Has = attrs, o.Has|FAttributes
	}
	if simple && o.ID == "" && b.err == nil {
		// Metrica inserts such rows anew each time they are sent; naming them
		// by their content instead makes a re-sent file change nothing.
		o.ID, o.IDGenerated = generatedID(o), true
	}
	return o
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// generatedID names a simple order sent without an id by a hash of the row.
func generatedID(o *Order) string {
	sum := sha256.Sum256(appendOrder(nil, o))
	return "auto-" + hex.EncodeToString(sum[:10])
}

func (b *rowBuilder) contact() *Contact {
	c := &Contact{}
	c.UniqID = b.text("uniq_id", 255)
	if c.UniqID == "" {
		b.fail("uniq_id", "the customer's id is empty")
	}
	if b.src.has("name") {
		c.Name, c.Has = b.text("name", 1000), c.Has|FName
	}
	if b.src.has("create_date_time") {
		c.CreatedAt, c.Has = b.time("create_date_time"), c.Has|FCreatedAt
	}
	if b.src.has("update_date_time") {
		c.UpdatedAt, c.Has = b.time("update_date_time"), c.Has|FUpdatedAt
	}
	b.keys(&c.Has, &c.ClientIDs, &c.Phones, &c.Emails, &c.PhonesMD5, &c.EmailsMD5)
	if b.src.has("user_ids") {
		c.UserIDs, c.Has = b.listOf("user_ids", normalizeIDs), c.Has|FUserIDs
	}
	if b.src.has("birth_date") {
		t, err := ParseDate(b.src.str("birth_date"))
		if err != nil {
			b.fail("birth_date", "%v", err)
		}
		c.BirthDate, c.Has = t.Format(time.DateOnly), c.Has|FBirthDate
	}
	if b.src.has("company_uniq_id") {
		c.CompanyID, c.Has = b.text("company_uniq_id", 255), c.Has|FCompany
	}
	if b.src.has("user_comment") {
		c.Comment, c.Has = b.text("user_comment", 4096), c.Has|FComment
	}
	attrs := b.attributes()
	if len(attrs) > 0 {
		c.Attributes, c.Has = attrs, c.Has|FAttributes
	}
	return c
}
