package crm

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/store"
)

// Attribute is a custom attribute declared for contacts, orders or products
// (Metrica's schema/attributes). Uploads carry its values in a column (CSV)
// or in attribute_values (JSON) named after it.
type Attribute struct {
	Name          string `json:"name"`
	TypeName      string `json:"type_name"`
	TypeGroup     string `json:"type_group"`
	TypeHumanized string `json:"type_humanized,omitempty"`
	Multivalued   bool   `json:"multivalued"`
	Humanized     string `json:"humanized,omitempty"`
}

// Entity types of attributes.
const (
	EntityContact = "CONTACT"
	EntityOrder   = "ORDER"
	EntityProduct = "PRODUCT"
)

// ParseEntityType reads entity_type case-insensitively. Metrica also knows
// COMPANY and SIMPLE_ORDER; Throughline stores companies only as an id on the
// contact, and simple orders take no custom attributes.
func ParseEntityType(s string) (string, bool) {
	switch u := strings.ToUpper(strings.TrimSpace(s)); u {
	case EntityContact, EntityOrder, EntityProduct:
		return u, true
	}
	return "", false
}

// attributeTypes are the predefined types of custom attributes.
var attributeTypes = map[string]string{
	"numeric": "Число", "date": "Дата", "datetime": "Дата и время", "email": "E-mail", "text": "Текст", "product": "Товар",
}

// AttributeTypes lists the types (Metrica's schema/predefined_types).
func AttributeTypes() []Attribute {
	var out []Attribute
	for _, n := range []string{"numeric", "date", "datetime", "email", "text"} {
		out = append(out, Attribute{Name: n, TypeGroup: "PREDEFINED", TypeHumanized: attributeTypes[n]})
	}
	return out
}

// SystemAttributes are the fields an entity has without declaring them.
func SystemAttributes(entity string) []Attribute {
	var names []string
	switch entity {
	case EntityContact:
		names = contactFields
	case EntityOrder:
		names = orderFields
	case EntityProduct:
		names = []string{"name", "humanized"}
	}
	out := make([]Attribute, 0, len(names))
	for _, n := range names {
		a := Attribute{Name: n, TypeName: "text", TypeGroup: "PREDEFINED"}
		switch n {
		case "create_date_time", "update_date_time", "finish_date_time":
			a.TypeName = "datetime"
		case "birth_date":
			a.TypeName = "date"
		case "revenue", "cost":
			a.TypeName = "numeric"
		case "emails":
			a.TypeName, a.Multivalued = "email", true
		case "phones", "client_ids", "user_ids", "emails_md5", "phones_md5", "goals":
			a.Multivalued = true
		case "products":
			a.TypeName, a.TypeGroup, a.Multivalued = "product", "SYSTEM_LIST", true
		}
		a.TypeHumanized = attributeTypes[a.TypeName]
		out = append(out, a)
	}
	return out
}

func (a *Attribute) validate(entity string, i int) error {
	field := func(f string) string { return fmt.Sprintf("attributes[%d].%s", i, f) }
	a.Name = strings.TrimSpace(a.Name)
	if !statusCodeRE.MatchString(a.Name) {
		return &FileError{Column: field("name"), Message: fmt.Sprintf("%q is not a name: 1–255 letters, digits, '_', '-' or ':'", a.Name)}
	}
	for _, s := range SystemAttributes(entity) {
		if strings.EqualFold(s.Name, a.Name) {
			return &FileError{Column: field("name"), Message: fmt.Sprintf("%q is a system attribute of %s", a.Name, strings.ToLower(entity))}
		}
	}
	a.TypeName = strings.ToLower(strings.TrimSpace(a.TypeName))
	if a.TypeName == "" {
		a.TypeName = "text"
	}
	if _, ok := attributeTypes[a.TypeName]; !ok {
		return &FileError{Column: field("type_name"), Message: fmt.Sprintf("%q is not one of numeric, date, datetime, email, text, product", a.TypeName)}
	}
	a.TypeGroup = "PREDEFINED"
	if a.TypeName == "product" {
		a.TypeGroup = "SYSTEM_LIST"
	}
	a.TypeHumanized = attributeTypes[a.TypeName]
	if utf8.RuneCountInString(a.Humanized) > 4096 {
		return &FileError{Column: field("humanized"), Message: "is longer than 4096 characters"}
	}
	return nil
}

// Attributes returns the counter's custom attributes of an entity type.
func Attributes(ctx context.Context, db *store.DB, counterID int64, entity string) ([]Attribute, error) {
	return queryAttributes(ctx, db.Reader(), counterID, entity)
}

func queryAttributes(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, counterID int64, entity string) ([]Attribute, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, type_name, multivalued, humanized FROM crm_attributes
		WHERE counter_id = $1 AND entity_type = $2 ORDER BY name`, counterID, entity)
	if err != nil {
		return nil, fmt.Errorf("crm: attributes: %w", err)
	}
	defer rows.Close()
	out := []Attribute{}
	for rows.Next() {
		var a Attribute
		if err := rows.Scan(&a.Name, &a.TypeName, &a.Multivalued, &a.Humanized); err != nil {
			return nil, fmt.Errorf("crm: attributes: %w", err)
		}
		a.TypeGroup = "PREDEFINED"
		if a.TypeName == "product" {
			a.TypeGroup = "SYSTEM_LIST"
		}
		a.TypeHumanized = attributeTypes[a.TypeName]
		out = append(out, a)
	}
	return out, rows.Err()
}

// SaveAttributes declares custom attributes (upsert by name).
func SaveAttributes(ctx context.Context, db *store.DB, counterID int64, entity string, list []Attribute) error {
	seen := map[string]bool{}
	for i := range list {
		if err := list[i].validate(entity, i); err != nil {
			return err
		}
		if seen[list[i].Name] {
			return &FileError{Column: fmt.Sprintf("attributes[%d].name", i), Message: fmt.Sprintf("%q appears twice", list[i].Name)}
		}
		seen[list[i].Name] = true
	}
	return db.Tx(ctx, func(tx *sql.Tx) error {
		for _, a := range list {
			if _, err := tx.ExecContext(ctx, `INSERT INTO crm_attributes (counter_id, entity_type, name, type_name, multivalued, humanized)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (counter_id, entity_type, name) DO UPDATE SET type_name = excluded.type_name,
					multivalued = excluded.multivalued, humanized = excluded.humanized`,
				counterID, entity, a.Name, a.TypeName, a.Multivalued, a.Humanized); err != nil {
				return fmt.Errorf("crm: save attribute %s: %w", a.Name, err)
			}
		}
		return nil
	})
}

// Product is an item of the counter's product list.
type Product struct {
	Name      string `json:"name"`
	Humanized string `json:"humanized,omitempty"`
}

// MaxProducts is Metrica's limit on one product list upload.
const MaxProducts = 160_000

// SaveProducts stores products (upsert by name) and declares the product
// attributes.
func SaveProducts(ctx context.Context, db *store.DB, counterID int64, attrs []Attribute, items []Product) error {
	if len(items) > MaxProducts || len(attrs) > MaxProducts {
		return &FileError{Column: "items", Message: fmt.Sprintf("more than %d items or attributes", MaxProducts)}
	}
	for i := range items {
		items[i].Name = strings.TrimSpace(items[i].Name)
		if items[i].Name == "" || len(items[i].Name) > 255 || !utf8.ValidString(items[i].Name) {
			return &FileError{Column: fmt.Sprintf("items[%d].name", i), Message: "must be 1–255 characters"}
		}
		if utf8.RuneCountInString(items[i].Humanized) > 4096 {
			return &FileError{Column: fmt.Sprintf("items[%d].humanized", i), Message: "is longer than 4096 characters"}
		}
	}
	if len(attrs) > 0 {
		if err := SaveAttributes(ctx, db, counterID, EntityProduct, attrs); err != nil {
			return err
		}
	}
	return db.Tx(ctx, func(tx *sql.Tx) error {
		for _, p := range items {
			if _, err := tx.ExecContext(ctx, `INSERT INTO crm_products (counter_id, name, humanized) VALUES ($1, $2, $3)
				ON CONFLICT (counter_id, name) DO UPDATE SET humanized = excluded.humanized`, counterID, p.Name, p.Humanized); err != nil {
				return fmt.Errorf("crm: save product %s: %w", p.Name, err)
			}
		}
		return nil
	})
}
