package crm

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
)

// How orders and contacts map to their tables' columns, both ways.

const orderColumns = `order_id, contact_id, created_at, updated_at, finished_at, status, status_type,
	revenue, cost, margin, items, currency, comment, order_type, sid, caller_phone,
	client_ids, phones, emails, phones_md5, emails_md5, products, goals, attributes,
	intake, id_generated, row_hash, import_id, imported_at, changed_at`

const orderColumnCount = 30

// orderArgs are an order's values for orderColumns, after counter_id.
func orderArgs(args []any, counterID int64, o *Order, hash int64) []any {
	var statusType any
	if o.StatusType != "" {
		statusType = string(o.StatusType)
	}
	return append(args, counterID, o.ID, o.ContactID, o.CreatedAt, nullTime(o.UpdatedAt), nullTime(o.FinishedAt),
		o.Status, statusType,
		nullInt(o.Has&FRevenue != 0, o.Revenue), nullInt(o.Has&FCost != 0, o.Cost),
		nullInt(o.Has&FMargin != 0, o.Margin), nullInt(o.Has&FItems != 0, o.Items),
		o.Currency, o.Comment, o.Type, o.SID, o.CallerPhone,
		encodeList(o.ClientIDs), encodeList(o.Phones), encodeList(o.Emails),
		encodeList(o.PhonesMD5), encodeList(o.EmailsMD5),
		encodeProducts(o.Products), encodeGoals(o.Goals), encodeAttributes(o.Attributes),
		string(o.Intake), o.IDGenerated, hash, o.ImportID, o.ImportedAt, o.ChangedAt)
}

type scanner interface{ Scan(...any) error }

// scanOrder reads a row of orderColumns, and the row's content hash.
func scanOrder(row scanner) (*Order, int64, error) {
	o := &Order{}
	var updated, finished sql.NullTime
	var statusType sql.NullString
	var revenue, cost, margin, items sql.NullInt64
	var clientIDs, phones, emails, phonesMD5, emailsMD5, products, goals, attrs, intake string
	var hash int64
	err := row.Scan(&o.ID, &o.ContactID, &o.CreatedAt, &updated, &finished, &o.Status, &statusType,
		&revenue, &cost, &margin, &items, &o.Currency, &o.Comment, &o.Type, &o.SID, &o.CallerPhone,
		&clientIDs, &phones, &emails, &phonesMD5, &emailsMD5, &products, &goals, &attrs,
		&intake, &o.IDGenerated, &hash, &o.ImportID, &o.ImportedAt, &o.ChangedAt)
	if err != nil {
		return nil, 0, err
	}
	o.UpdatedAt, o.FinishedAt = updated.Time, finished.Time
	o.StatusType = StatusType(statusType.String)
	o.Intake = Intake(intake)
	o.Revenue, o.Cost, o.Margin, o.Items = revenue.Int64, cost.Int64, margin.Int64, items.Int64
	for _, f := range []struct {
		bit   Field
		valid bool
	}{{FRevenue, revenue.Valid}, {FCost, cost.Valid}, {FMargin, margin.Valid}, {FItems, items.Valid}} {
		if f.valid {
			o.Has |= f.bit
		}
	}
	for _, l := range []struct {
		text string
		dst  *[]string
	}{{clientIDs, &o.ClientIDs}, {phones, &o.Phones}, {emails, &o.Emails}, {phonesMD5, &o.PhonesMD5}, {emailsMD5, &o.EmailsMD5}} {
		if *l.dst, err = decodeList(l.text); err != nil {
			return nil, 0, fmt.Errorf("order %s: %w", o.ID, err)
		}
	}
	if o.Products, err = decodeProducts(products); err != nil {
		return nil, 0, fmt.Errorf("order %s: products: %w", o.ID, err)
	}
	if o.Goals, err = decodeGoals(goals); err != nil {
		return nil, 0, fmt.Errorf("order %s: goals: %w", o.ID, err)
	}
	if o.Attributes, err = decodeAttributes(attrs); err != nil {
		return nil, 0, fmt.Errorf("order %s: attributes: %w", o.ID, err)
	}
	o.Has |= presentOrderFields(o)
	return o, hash, nil
}

// presentOrderFields are the fields of a stored order that hold a value, as
// a row carrying them would have them set.
func presentOrderFields(o *Order) Field {
	var f Field
	set := func(bit Field, present bool) {
		if present {
			f |= bit
		}
	}
	set(FContact, o.ContactID != "")
	set(FUpdatedAt, !o.UpdatedAt.IsZero())
	set(FFinishedAt, !o.FinishedAt.IsZero())
	set(FStatus, o.Status != "")
	set(FCurrency, o.Currency != "")
	set(FComment, o.Comment != "")
	set(FType, o.Type != "")
	set(FSID, o.SID != "")
	set(FCallerPhone, o.CallerPhone != "")
	set(FClientIDs, len(o.ClientIDs) > 0)
	set(FPhones, len(o.Phones) > 0)
	set(FEmails, len(o.Emails) > 0)
	set(FPhonesMD5, len(o.PhonesMD5) > 0)
	set(FEmailsMD5, len(o.EmailsMD5) > 0)
	set(FProducts, len(o.Products) > 0)
	set(FGoals, len(o.Goals) > 0)
	set(FAttributes, len(o.Attributes) > 0)
	return f
}

// orderHash is a 64-bit FNV-1a of an order's content — what the CRM said
// about it, not when or how it reached us — so a re-import can tell an
// unchanged row without writing it.
func orderHash(o *Order, buf []byte) (int64, []byte) {
	c := *o
	c.Has = c.Has&(FRevenue|FCost|FMargin|FItems) | presentOrderFields(&c)
	for _, n := range []struct {
		bit Field
		v   *int64
	}{{FRevenue, &c.Revenue}, {FCost, &c.Cost}, {FMargin, &c.Margin}, {FItems, &c.Items}} {
		if c.Has&n.bit == 0 {
			*n.v = 0
		}
	}
	c.StatusType, c.Intake, c.ImportID, c.ImportedAt, c.ChangedAt = "", "", "", time.Time{}, time.Time{}
	buf = appendOrder(buf[:0], &c)
	h := fnv.New64a()
	h.Write(buf)
	return int64(h.Sum64()), buf
}

const contactColumns = `uniq_id, name, created_at, updated_at, client_ids, user_ids, phones, emails,
	phones_md5, emails_md5, birth_date, company_id, comment, attributes, row_hash, import_id, imported_at, changed_at`

const contactColumnCount = 18

func contactArgs(args []any, counterID int64, c *Contact, hash int64) []any {
	return append(args, counterID, c.UniqID, c.Name, nullTime(c.CreatedAt), nullTime(c.UpdatedAt),
		encodeList(c.ClientIDs), encodeList(c.UserIDs), encodeList(c.Phones), encodeList(c.Emails),
		encodeList(c.PhonesMD5), encodeList(c.EmailsMD5), c.BirthDate, c.CompanyID, c.Comment,
		encodeAttributes(c.Attributes), hash, c.ImportID, c.ImportedAt, c.ChangedAt)
}

func scanContact(row scanner) (*Contact, int64, error) {
	c := &Contact{}
	var created, updated sql.NullTime
	var clientIDs, userIDs, phones, emails, phonesMD5, emailsMD5, attrs string
	var hash int64
	err := row.Scan(&c.UniqID, &c.Name, &created, &updated, &clientIDs, &userIDs, &phones, &emails,
		&phonesMD5, &emailsMD5, &c.BirthDate, &c.CompanyID, &c.Comment, &attrs, &hash, &c.ImportID, &c.ImportedAt, &c.ChangedAt)
	if err != nil {
		return nil, 0, err
	}
	c.CreatedAt, c.UpdatedAt = created.Time, updated.Time
	for _, l := range []struct {
		text string
		dst  *[]string
	}{{clientIDs, &c.ClientIDs}, {userIDs, &c.UserIDs}, {phones, &c.Phones}, {emails, &c.Emails}, {phonesMD5, &c.PhonesMD5}, {emailsMD5, &c.EmailsMD5}} {
		if *l.dst, err = decodeList(l.text); err != nil {
			return nil, 0, fmt.Errorf("contact %s: %w", c.UniqID, err)
		}
	}
	if c.Attributes, err = decodeAttributes(attrs); err != nil {
		return nil, 0, fmt.Errorf("contact %s: attributes: %w", c.UniqID, err)
	}
	c.Has = presentContactFields(c)
	return c, hash, nil
}

func presentContactFields(c *Contact) Field {
	var f Field
	set := func(bit Field, present bool) {
		if present {
			f |= bit
		}
	}
	set(FName, c.Name != "")
	set(FCreatedAt, !c.CreatedAt.IsZero())
	set(FUpdatedAt, !c.UpdatedAt.IsZero())
	set(FClientIDs, len(c.ClientIDs) > 0)
	set(FUserIDs, len(c.UserIDs) > 0)
	set(FPhones, len(c.Phones) > 0)
	set(FEmails, len(c.Emails) > 0)
	set(FPhonesMD5, len(c.PhonesMD5) > 0)
	set(FEmailsMD5, len(c.EmailsMD5) > 0)
	set(FBirthDate, c.BirthDate != "")
	set(FCompany, c.CompanyID != "")
	set(FComment, c.Comment != "")
	set(FAttributes, len(c.Attributes) > 0)
	return f
}

func contactHash(c *Contact, buf []byte) (int64, []byte) {
	x := *c
	x.Has = presentContactFields(&x)
	x.ImportID, x.ImportedAt, x.ChangedAt = "", time.Time{}, time.Time{}
	buf = appendContact(buf[:0], &x)
	h := fnv.New64a()
	h.Write(buf)
	return int64(h.Sum64()), buf
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func nullInt(valid bool, v int64) any {
	if !valid {
		return nil
	}
	return v
}

// encodeList writes a JSON array of strings. Values are normalised ids,
// phones, e-mails and hashes, but are escaped properly all the same.
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		q, _ := json.Marshal(v)
		b.Write(q)
	}
	b.WriteByte(']')
	return b.String()
}

func decodeList(s string) ([]string, error) {
	if s == "[]" || s == "" {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	return l, nil
}

func encodeProducts(p map[string]float64) string {
	if len(p) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(p) // keys come out sorted
	return string(b)
}

func decodeProducts(s string) (map[string]float64, error) {
	if s == "{}" || s == "" {
		return nil, nil
	}
	var p map[string]float64
	err := json.Unmarshal([]byte(s), &p)
	return p, err
}

// storedGoal is a goal in the goals column: the price in minor units.
type storedGoal struct {
	ID    string `json:"goal_action_id"`
	Price *int64 `json:"price,omitempty"`
}

func encodeGoals(gs []Goal) string {
	if len(gs) == 0 {
		return "[]"
	}
	out := make([]storedGoal, len(gs))
	for i, g := range gs {
		out[i].ID = g.ID
		if g.HasPrice {
			p := g.Price
			out[i].Price = &p
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func decodeGoals(s string) ([]Goal, error) {
	if s == "[]" || s == "" {
		return nil, nil
	}
	var in []storedGoal
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	out := make([]Goal, len(in))
	for i, g := range in {
		out[i].ID = g.ID
		if g.Price != nil {
			out[i].Price, out[i].HasPrice = *g.Price, true
		}
	}
	return out, nil
}

func encodeAttributes(a map[string][]string) string {
	if len(a) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(a)
	return string(b)
}

func decodeAttributes(s string) (map[string][]string, error) {
	if s == "{}" || s == "" {
		return nil, nil
	}
	var a map[string][]string
	err := json.Unmarshal([]byte(s), &a)
	return a, err
}

// quantity formats a product quantity without a needless ".0".
func quantity(q float64) string {
	return strconv.FormatFloat(q, 'f', -1, 64)
}
