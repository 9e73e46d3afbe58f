package crm

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/throughline/throughline/internal/cursor"
	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/store"
)

// OrderView is an order as the API shows it: money in major units (exact
// decimals), the margin or cost derived when the CRM gave the other two, and
// the md5 of every phone and e-mail, given or computed.
type OrderView struct {
	ID          string              `json:"id"`
	ContactID   string              `json:"contact_id"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   *time.Time          `json:"updated_at"`
	FinishedAt  *time.Time          `json:"finished_at"`
	Status      string              `json:"status"`
	StatusType  *StatusType         `json:"status_type"` // null: the status is not mapped
	Revenue     *json.Number        `json:"revenue"`
	Cost        *json.Number        `json:"cost"`
	Margin      *json.Number        `json:"margin"`
	Items       *int64              `json:"items"`
	Currency    string              `json:"currency"`
	Comment     string              `json:"comment"`
	Type        string              `json:"type"`
	SID         string              `json:"sid"`
	CallerPhone string              `json:"caller_phone"`
	ClientIDs   []string            `json:"client_ids"`
	Phones      []string            `json:"phones"`
	Emails      []string            `json:"emails"`
	PhonesMD5   []string            `json:"phones_md5"`
	EmailsMD5   []string            `json:"emails_md5"`
	Products    map[string]float64  `json:"products"`
	Goals       []GoalView          `json:"goals"`
	Attributes  map[string][]string `json:"attributes"`
	Intake      Intake              `json:"intake"`
	IDGenerated bool                `json:"id_generated"`
	ImportID    string              `json:"import_id"`
	ImportedAt  time.Time           `json:"imported_at"`
	ChangedAt   time.Time           `json:"changed_at"`
}

// GoalView is a goal with its price in major units.
type GoalView struct {
	ID    string       `json:"goal_action_id"`
	Price *json.Number `json:"price,omitempty"`
}

func money(v int64) *json.Number {
	n := json.Number(FormatMoney(v))
	return &n
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// View turns a stored order into its API form.
func (o *Order) View() OrderView {
	v := OrderView{ID: o.ID, ContactID: o.ContactID, CreatedAt: o.CreatedAt,
		UpdatedAt: timePtr(o.UpdatedAt), FinishedAt: timePtr(o.FinishedAt),
		Status: o.Status, Currency: o.Currency, Comment: o.Comment, Type: o.Type,
		SID: o.SID, CallerPhone: o.CallerPhone,
		ClientIDs: nonNil(o.ClientIDs), Phones: nonNil(o.Phones), Emails: nonNil(o.Emails),
		PhonesMD5: withMD5(o.PhonesMD5, o.Phones), EmailsMD5: withMD5(o.EmailsMD5, o.Emails),
		Products: o.Products, Attributes: o.Attributes, Goals: []GoalView{},
		Intake: o.Intake, IDGenerated: o.IDGenerated, ImportID: o.ImportID, ImportedAt: o.ImportedAt, ChangedAt: o.ChangedAt}
	if o.StatusType != "" {
		t := o.StatusType
		v.StatusType = &t
	}
	rev, cost, margin := o.Has&FRevenue != 0, o.Has&FCost != 0, o.Has&FMargin != 0
	if rev {
		v.Revenue = money(o.Revenue)
	}
	switch {
	case cost:
		v.Cost = money(o.Cost)
	case rev && margin:
		v.Cost = money(o.Revenue - o.Margin)
	}
	switch {
	case margin:
		v.Margin = money(o.Margin)
	case rev && cost:
		v.Margin = money(o.Revenue - o.Cost)
	}
	if o.Has&FItems != 0 {
		n := o.Items
		v.Items = &n
	}
	for _, g := range o.Goals {
		gv := GoalView{ID: g.ID}
		if g.HasPrice {
			gv.Price = money(g.Price)
		}
		v.Goals = append(v.Goals, gv)
	}
	if v.Products == nil {
		v.Products = map[string]float64{}
	}
	if v.Attributes == nil {
		v.Attributes = map[string][]string{}
	}
	return v
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// withMD5 is the given hashes plus the md5 of each plain value.
func withMD5(given, plain []string) []string {
	out := append([]string{}, given...)
	for _, p := range plain {
		out = appendUnique(out, normalize.MD5(p))
	}
	return out
}

// GetOrder returns one of the counter's orders.
func GetOrder(ctx context.Context, db *store.DB, counterID int64, id string) (*Order, error) {
	o, _, err := scanOrder(db.Reader().QueryRowContext(ctx,
		`SELECT `+orderColumns+` FROM crm_orders WHERE counter_id = $1 AND order_id = $2`, counterID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("crm: get order %q: %w", id, err)
	}
	return o, nil
}

// OrderQuery selects orders by creation time, newest first.
type OrderQuery struct {
	From, To   time.Time // created_at in [From, To); zero: unbounded
	StatusType string    // a type, "UNMAPPED" for orders whose status maps to none, "" for all
	// Matched: true keeps the orders matching found evidence for, false
	// those it found none for or has not matched yet; nil keeps all.
	Matched *bool
	Limit   int // 0: all (for exports)
	Cursor  string
}

// ErrBadCursor means a cursor this API did not issue.
var ErrBadCursor = cursor.ErrBad

// ListOrders calls fn for each of the counter's orders the query selects,
// newest first, and returns the cursor of the next page ("" on the last).
// Rows stream to fn, so an export of every order holds one at a time.
func ListOrders(ctx context.Context, db *store.DB, counterID int64, q OrderQuery, fn func(*Order) error) (string, error) {
	f := store.NewFilter(counterID)
	if !q.From.IsZero() {
		f.Add("created_at >= " + f.Arg(q.From))
	}
	if !q.To.IsZero() {
		f.Add("created_at < " + f.Arg(q.To))
	}
	switch q.StatusType {
	case "":
	case "UNMAPPED":
		f.Add("status_type IS NULL")
	default:
		f.Add("status_type = " + f.Arg(q.StatusType))
	}
	if q.Matched != nil {
		// internal/matching's table: an order is matched when its match
		// found evidence.
		found := `EXISTS (SELECT 1 FROM order_matches m WHERE m.counter_id = crm_orders.counter_id
			AND m.order_id = crm_orders.order_id AND m.rung <> 'not_found')`
		if !*q.Matched {
			found = "NOT " + found
		}
		f.Add(found)
	}
	if q.Cursor != "" {
		at, id, err := cursor.Decode(q.Cursor)
		if err != nil {
			return "", err
		}
		f.Before("created_at", "order_id", at, id)
	}
	limit := ""
	if q.Limit > 0 {
		limit = " LIMIT " + f.Arg(q.Limit+1)
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+orderColumns+` FROM crm_orders WHERE `+f.SQL()+`
		ORDER BY created_at DESC, order_id DESC`+limit, f.Args...)
	if err != nil {
		return "", fmt.Errorf("crm: list orders: %w", err)
	}
	defer rows.Close()
	n := 0
	var last *Order
	for rows.Next() {
		o, _, err := scanOrder(rows)
		if err != nil {
			return "", fmt.Errorf("crm: list orders: %w", err)
		}
		if n++; q.Limit > 0 && n > q.Limit {
			return cursor.Encode(last.CreatedAt, last.ID), rows.Err()
		}
		if err := fn(o); err != nil {
			return "", err
		}
		last = o
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("crm: list orders: %w", err)
	}
	return "", nil
}

// ContactView is a contact as the API shows it, with its orders' ids.
type ContactView struct {
	UniqID     string              `json:"uniq_id"`
	Name       string              `json:"name"`
	CreatedAt  *time.Time          `json:"created_at"`
	UpdatedAt  *time.Time          `json:"updated_at"`
	ClientIDs  []string            `json:"client_ids"`
	UserIDs    []string            `json:"user_ids"`
	Phones     []string            `json:"phones"`
	Emails     []string            `json:"emails"`
	PhonesMD5  []string            `json:"phones_md5"`
	EmailsMD5  []string            `json:"emails_md5"`
	BirthDate  string              `json:"birth_date,omitempty"`
	CompanyID  string              `json:"company_uniq_id,omitempty"`
	Comment    string              `json:"user_comment,omitempty"`
	Attributes map[string][]string `json:"attributes"`
	Orders     []string            `json:"orders"` // ids of the contact's orders, newest first
	ImportID   string              `json:"import_id"`
	ImportedAt time.Time           `json:"imported_at"`
	ChangedAt  time.Time           `json:"changed_at"`
}

// GetContact returns one of the counter's contacts with its orders' ids.
func GetContact(ctx context.Context, db *store.DB, counterID int64, uniqID string) (*ContactView, error) {
	c, _, err := scanContact(db.Reader().QueryRowContext(ctx,
		`SELECT `+contactColumns+` FROM crm_contacts WHERE counter_id = $1 AND uniq_id = $2`, counterID, uniqID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("crm: get contact %q: %w", uniqID, err)
	}
	v := &ContactView{UniqID: c.UniqID, Name: c.Name, CreatedAt: timePtr(c.CreatedAt), UpdatedAt: timePtr(c.UpdatedAt),
		ClientIDs: nonNil(c.ClientIDs), UserIDs: nonNil(c.UserIDs), Phones: nonNil(c.Phones), Emails: nonNil(c.Emails),
		PhonesMD5: withMD5(c.PhonesMD5, c.Phones), EmailsMD5: withMD5(c.EmailsMD5, c.Emails),
		BirthDate: c.BirthDate, CompanyID: c.CompanyID, Comment: c.Comment, Attributes: c.Attributes,
		Orders: []string{}, ImportID: c.ImportID, ImportedAt: c.ImportedAt, ChangedAt: c.ChangedAt}
	if v.Attributes == nil {
		v.Attributes = map[string][]string{}
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT order_id FROM crm_orders
		WHERE counter_id = $1 AND contact_id = $2 AND contact_id <> '' ORDER BY created_at DESC, order_id DESC LIMIT 1000`, counterID, uniqID)
	if err != nil {
		return nil, fmt.Errorf("crm: contact %q orders: %w", uniqID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("crm: contact %q orders: %w", uniqID, err)
		}
		v.Orders = append(v.Orders, id)
	}
	return v, rows.Err()
}
