// Package crm holds the CRM side of Throughline: contacts (the CRM's
// customers), their orders, and the mapping of the CRM's order statuses to
// the five status types reports use. Orders arrive through several intakes —
// the K50:Tracker CSV feed, Metrica's CRM upload formats (contacts, orders,
// simple orders; CSV or JSON) — and every intake ends in Import, which
// validates the whole upload first and then applies it in one transaction.
package crm

import (
	"fmt"
	"strings"
	"time"
)

// StatusType is what an order's CRM status means for reports and goals
// (Metrica's status types).
type StatusType string

const (
	Paid       StatusType = "PAID"        // goals "CRM: order created" and "CRM: order paid"
	InProgress StatusType = "IN_PROGRESS" // goal "CRM: order created"
	Cancelled  StatusType = "CANCELLED"   // no goal
	Spam       StatusType = "SPAM"        // no goal
	Other      StatusType = "OTHER"
)

// StatusTypes lists the types in the order reports show them.
var StatusTypes = []StatusType{Paid, InProgress, Cancelled, Spam, Other}

// ParseStatusType reads a type name case-insensitively; Metrica's older
// spelling CANCELED is CANCELLED.
func ParseStatusType(s string) (StatusType, bool) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if u == "CANCELED" {
		return Cancelled, true
	}
	for _, t := range StatusTypes {
		if string(t) == u {
			return t, true
		}
	}
	return "", false
}

// MergeMode says how an uploaded row combines with what is stored under the
// same id (Metrica's merge_mode).
type MergeMode string

const (
	// Save replaces the stored record with the row: fields the row does not
	// carry become empty.
	Save MergeMode = "SAVE"
	// Update overwrites the fields the row carries and keeps the others.
	Update MergeMode = "UPDATE"
	// Append is Update, except that multi-valued fields (phones, e-mails,
	// client ids, multi-valued attributes) gain the new values.
	Append MergeMode = "APPEND"
)

// ParseMergeMode reads a merge mode case-insensitively.
func ParseMergeMode(s string) (MergeMode, bool) {
	switch m := MergeMode(strings.ToUpper(strings.TrimSpace(s))); m {
	case Save, Update, Append:
		return m, true
	}
	return "", false
}

// Intake names the path an order or contact came in by.
type Intake string

const (
	K50Feed      Intake = "k50"           // K50:Tracker CSV feed (file, URL or import task)
	SimpleOrders Intake = "simple_orders" // Metrica's simple orders CSV
	OrdersUpload Intake = "orders"        // Metrica's orders CSV or JSON
	ContactsUp   Intake = "contacts"      // Metrica's contacts CSV or JSON
	RetailCRM    Intake = "retailcrm"     // a RetailCRM account's API (import task retailcrm)
)

// Field is one optional field of a row, as a bit: a row records which
// fields it carried, because UPDATE and APPEND keep the fields it did not.
type Field uint32

// Order fields. An order's id and creation time are always present.
const (
	FContact Field = 1 << iota
	FUpdatedAt
	FFinishedAt
	FStatus
	FRevenue
	FCost
	FMargin
	FItems
	FCurrency
	FComment
	FType
	FSID
	FCallerPhone
	FClientIDs
	FPhones
	FEmails
	FPhonesMD5
	FEmailsMD5
	FProducts
	FGoals
	FAttributes
	// Contact-only fields.
	FName
	FUserIDs
	FBirthDate
	FCompany
	FCreatedAt // a contact's creation time is optional
)

// Order is one CRM order as an intake read it, or as stored.
type Order struct {
	ID  string
	Has Field // the optional fields the row carried

	ContactID  string // the CRM customer's id (uniq_id), "" when none
	CreatedAt  time.Time
	UpdatedAt  time.Time // zero when unknown
	FinishedAt time.Time // zero when unknown

	Status string // the CRM's status code as given; "" means none (→ PAID)

	// Money in minor units (kopecks). Margin = revenue − cost; the K50 feed
	// gives margin, Metrica gives cost: the missing one is derived when the
	// other two are known.
	Revenue, Cost, Margin int64
	Items                 int64
	Currency              string // ISO 4217; "" until defaulted to RUB
	Comment               string

	Type string // "online" or "offline"; derived when not given

	// Matching keys carried by the order itself.
	SID         string
	CallerPhone string   // normalised, "" when none
	ClientIDs   []string // visitor ids: Throughline's uuid (K50), or the site's client ids
	Phones      []string // normalised
	Emails      []string // normalised
	PhonesMD5   []string // given as md5 (lower-case hex)
	EmailsMD5   []string

	Products   map[string]float64 // product id → quantity
	Goals      []Goal
	Attributes map[string][]string // custom attributes, by name

	// Set when stored.
	StatusType  StatusType // "" when the status is not mapped
	Intake      Intake
	ImportedAt  time.Time // first stored
	ChangedAt   time.Time // content last changed
	ImportID    string    // the import that last changed it
	IDGenerated bool      // a simple-orders row without id: the id is a hash of the row
}

// Goal is a JS-event goal reached with an order (Metrica's goals), with an
// optional price in minor units.
type Goal struct {
	ID       string `json:"goal_action_id"`
	Price    int64  `json:"-"`
	HasPrice bool   `json:"-"`
}

// Contact is a CRM customer.
type Contact struct {
	UniqID string
	Has    Field

	Name      string
	CreatedAt time.Time // zero when unknown
	UpdatedAt time.Time

	ClientIDs []string
	UserIDs   []string
	Phones    []string
	Emails    []string
	PhonesMD5 []string
	EmailsMD5 []string

	BirthDate string // YYYY-MM-DD
	CompanyID string
	Comment   string

	Attributes map[string][]string

	ImportedAt time.Time
	ChangedAt  time.Time
	ImportID   string
}

// RowError is a rejected row: its line in the file (or its index in a JSON
// list, from 1), the column or field at fault, and why.
type RowError struct {
	Line    int    `json:"line"`
	Column  string `json:"column,omitempty"`
	Message string `json:"message"`
}

func (e *RowError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Message)
	}
	return fmt.Sprintf("line %d, column %s: %s", e.Line, e.Column, e.Message)
}

// FileError is a problem with the upload as a whole (no header, a missing
// required column, not UTF-8): nothing of it can be read.
type FileError struct {
	Column  string // the column or parameter at fault, if any
	Message string
}

func (e *FileError) Error() string {
	if e.Column == "" {
		return e.Message
	}
	return e.Column + ": " + e.Message
}
