package crm

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/store"
)

// Status maps one of the counter's CRM status codes to a status type
// (Metrica's OrderStatus).
type Status struct {
	Code          string     `json:"id"`
	Type          StatusType `json:"type"`
	Humanized     string     `json:"humanized,omitempty"`
	GoalActionIDs []string   `json:"goal_action_ids"`
	Source        string     `json:"source"` // USER: set through the API; AUTO: by a connected CRM
}

// statusCodeRE is Metrica's pattern for goal ids and other schema names.
var statusCodeRE = regexp.MustCompile(`^[\p{L}\p{N}_\-:]{1,255}$`)

// validStatusCode accepts what CRMs use as status codes — Metrica's pattern
// and names with spaces ("Новый заказ") alike: 1–255 characters of text.
func validStatusCode(s string) bool {
	return s != "" && len(s) <= 255 && checkText(s) == nil && !strings.ContainsFunc(s, unicode.IsControl)
}

// MaxStatuses caps a counter's status mapping.
const MaxStatuses = 1000

// Validate checks a status and normalises its type.
func (s *Status) Validate(i int) error {
	field := func(f string) string { return fmt.Sprintf("order_statuses[%d].%s", i, f) }
	s.Code = strings.TrimSpace(s.Code)
	if !validStatusCode(s.Code) {
		return &FileError{Column: field("id"), Message: fmt.Sprintf("%q is not a status id: 1–255 characters of text", s.Code)}
	}
	t, ok := ParseStatusType(string(s.Type))
	if !ok {
		return &FileError{Column: field("type"), Message: fmt.Sprintf("%q is not one of PAID, IN_PROGRESS, CANCELLED, SPAM, OTHER", s.Type)}
	}
	s.Type = t
	if utf8.RuneCountInString(s.Humanized) > 4096 {
		return &FileError{Column: field("humanized"), Message: "is longer than 4096 characters"}
	}
	if len(s.GoalActionIDs) > 10 {
		return &FileError{Column: field("goal_action_ids"), Message: "has more than 10 goals"}
	}
	seen := map[string]bool{}
	for _, g := range s.GoalActionIDs {
		if !statusCodeRE.MatchString(g) || seen[g] {
			return &FileError{Column: field("goal_action_ids"), Message: fmt.Sprintf("%q is not a goal id, or appears twice", g)}
		}
		seen[g] = true
	}
	if s.GoalActionIDs == nil {
		s.GoalActionIDs = []string{}
	}
	return nil
}

// Statuses returns the counter's status mapping, by code.
func Statuses(ctx context.Context, db *store.DB, counterID int64) ([]Status, error) {
	rows, err := db.Reader().QueryContext(ctx,
		`SELECT code, type, humanized, goal_action_ids, source FROM crm_order_statuses WHERE counter_id = $1 ORDER BY code`, counterID)
	if err != nil {
		return nil, fmt.Errorf("crm: order statuses: %w", err)
	}
	defer rows.Close()
	out := []Status{}
	for rows.Next() {
		var s Status
		var goals string
		if err := rows.Scan(&s.Code, &s.Type, &s.Humanized, &goals, &s.Source); err != nil {
			return nil, fmt.Errorf("crm: order statuses: %w", err)
		}
		if err := json.Unmarshal([]byte(goals), &s.GoalActionIDs); err != nil {
			return nil, fmt.Errorf("crm: order status %s: goals: %w", s.Code, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("crm: order statuses: %w", err)
	}
	return out, nil
}

// SaveStatuses stores statuses by code (Metrica's POST schema/order_statuses:
// codes not in the list stay as they are). With replace, codes not in the
// list are removed (the counter's whole mapping becomes the list). Stored
// orders take their statuses' new types in the same transaction.
func SaveStatuses(ctx context.Context, db *store.DB, counterID int64, list []Status, replace bool) error {
	if len(list) > MaxStatuses {
		return &FileError{Column: "order_statuses", Message: fmt.Sprintf("has %d statuses; at most %d", len(list), MaxStatuses)}
	}
	seen := map[string]bool{}
	for i := range list {
		if err := list[i].Validate(i); err != nil {
			return err
		}
		if seen[list[i].Code] {
			return &FileError{Column: fmt.Sprintf("order_statuses[%d].id", i), Message: fmt.Sprintf("status %q appears twice", list[i].Code)}
		}
		seen[list[i].Code] = true
		if list[i].Source == "" {
			list[i].Source = "USER"
		}
	}
	now := time.Now().UTC()
	return db.Tx(ctx, func(tx *sql.Tx) error {
		if db.Dialect() == store.Postgres {
			// Wait for an import of this counter to finish (and hold the
			// next one back): it resolves types with the mapping it read at
			// its start, and would write the old ones over this change.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, crmLock, int32(counterID)); err != nil {
				return fmt.Errorf("crm: save order statuses: lock: %w", err)
			}
		}
		retype := map[string]StatusType{}
		if replace {
			codes, err := statusCodes(ctx, tx, counterID)
			if err != nil {
				return err
			}
			for _, code := range codes {
				if seen[code] {
					continue
				}
				if _, err := tx.ExecContext(ctx, `DELETE FROM crm_order_statuses WHERE counter_id = $1 AND code = $2`, counterID, code); err != nil {
					return fmt.Errorf("crm: delete order status %s: %w", code, err)
				}
				retype[code] = builtinType(code)
			}
		}
		for _, s := range list {
			goals, _ := json.Marshal(s.GoalActionIDs)
			if _, err := tx.ExecContext(ctx, `INSERT INTO crm_order_statuses (counter_id, code, type, humanized, goal_action_ids, source, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (counter_id, code) DO UPDATE SET type = excluded.type, humanized = excluded.humanized,
					goal_action_ids = excluded.goal_action_ids, source = excluded.source, updated_at = excluded.updated_at`,
				counterID, s.Code, string(s.Type), s.Humanized, string(goals), s.Source, now); err != nil {
				return fmt.Errorf("crm: save order status %s: %w", s.Code, err)
			}
			retype[s.Code] = s.Type
		}
		return retypeOrders(ctx, tx, db.Dialect(), counterID, retype)
	})
}

// AddMissingStatuses stores the statuses of list whose codes the counter has
// no mapping for yet, and returns them; a code already mapped — by a user
// or earlier — is left as it is. Orders already stored in an added code take
// its type. It is how a connected CRM offers its statuses pre-filled
// (source AUTO) without ever overwriting a user's choice.
func AddMissingStatuses(ctx context.Context, db *store.DB, counterID int64, list []Status) ([]Status, error) {
	for i := range list {
		if err := list[i].Validate(i); err != nil {
			return nil, err
		}
		if list[i].Source == "" {
			list[i].Source = "AUTO"
		}
	}
	var added []Status
	now := time.Now().UTC()
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		added = added[:0]
		if db.Dialect() == store.Postgres {
			// As SaveStatuses: an import resolves types with the mapping it
			// read at its start.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, crmLock, int32(counterID)); err != nil {
				return fmt.Errorf("crm: add order statuses: lock: %w", err)
			}
		}
		codes, err := statusCodes(ctx, tx, counterID)
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, c := range codes {
			have[c] = true
		}
		// Only the codes not mapped yet count against the cap: a CRM
		// offering the statuses it offered before adds nothing.
		var fresh []Status
		for _, s := range list {
			if !have[s.Code] {
				have[s.Code] = true
				fresh = append(fresh, s)
			}
		}
		if len(codes)+len(fresh) > MaxStatuses {
			return &FileError{Column: "order_statuses", Message: fmt.Sprintf("the counter would have %d statuses, more than %d: remove some with PUT …/order-statuses",
				len(codes)+len(fresh), MaxStatuses)}
		}
		retype := map[string]StatusType{}
		for _, s := range fresh {
			goals, _ := json.Marshal(s.GoalActionIDs)
			if _, err := tx.ExecContext(ctx, `INSERT INTO crm_order_statuses (counter_id, code, type, humanized, goal_action_ids, source, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, counterID, s.Code, string(s.Type), s.Humanized, string(goals), s.Source, now); err != nil {
				return fmt.Errorf("crm: add order status %s: %w", s.Code, err)
			}
			retype[s.Code] = s.Type
			added = append(added, s)
		}
		return retypeOrders(ctx, tx, db.Dialect(), counterID, retype)
	})
	if err != nil {
		return nil, err
	}
	return added, nil
}

func statusCodes(ctx context.Context, tx *sql.Tx, counterID int64) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT code FROM crm_order_statuses WHERE counter_id = $1`, counterID)
	if err != nil {
		return nil, fmt.Errorf("crm: order statuses: %w", err)
	}
	defer rows.Close()
	var codes []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("crm: order statuses: %w", err)
		}
		codes = append(codes, c)
	}
	return codes, rows.Err()
}

// retypeOrders gives the counter's orders in each status code its new type
// ("" = unmapped), in one pass over the counter's orders. The orders'
// content does not change, so neither does their hash.
func retypeOrders(ctx context.Context, tx *sql.Tx, d store.Dialect, counterID int64, types map[string]StatusType) error {
	if len(types) == 0 {
		return nil
	}
	var args []any
	for code, t := range types {
		var typ any
		if t != "" {
			typ = string(t)
		}
		args = append(args, code, typ)
	}
	args = append(args, counterID) // last: parameters are numbered in the order they appear
	_, err := tx.ExecContext(ctx, `WITH m(code, type) AS (VALUES `+d.TypedValues(len(types), "text", "text")+`)
		UPDATE crm_orders SET status_type = m.type FROM m
		WHERE crm_orders.counter_id = `+d.Param(len(args))+` AND crm_orders.status = m.code`, args...)
	if err != nil {
		return fmt.Errorf("crm: retype orders: %w", err)
	}
	// Their goals changed: match them again, so reports and the order
	// webhook see the new type.
	// (SQLite binds parameters in the order they are written.)
	queue := append(args[:len(args)-1:len(args)-1], time.Now().UTC(), counterID)
	_, err = tx.ExecContext(ctx, `WITH m(code, type) AS (VALUES `+d.TypedValues(len(types), "text", "text")+`)
		INSERT INTO match_queue (counter_id, order_id, queued_at)
		SELECT o.counter_id, o.order_id, `+d.Param(len(queue)-1)+` FROM crm_orders o JOIN m ON o.status = m.code
		WHERE o.counter_id = `+d.Param(len(queue))+`
		ON CONFLICT (counter_id, order_id) DO NOTHING`, queue...)
	if err != nil {
		return fmt.Errorf("crm: queue retyped orders for matching: %w", err)
	}
	return nil
}

// builtinType is the type a status has without a mapping: none is PAID (as in
// Metrica), a type's own name is that type, anything else is unmapped ("").
func builtinType(code string) StatusType {
	if code == "" {
		return Paid
	}
	t, _ := ParseStatusType(code)
	return t
}

// statusMap resolves status codes to types for one import.
type statusMap map[string]StatusType

func loadStatusMap(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, counterID int64) (statusMap, error) {
	rows, err := q.QueryContext(ctx, `SELECT code, type FROM crm_order_statuses WHERE counter_id = $1`, counterID)
	if err != nil {
		return nil, fmt.Errorf("crm: load order statuses: %w", err)
	}
	defer rows.Close()
	m := statusMap{}
	for rows.Next() {
		var code, typ string
		if err := rows.Scan(&code, &typ); err != nil {
			return nil, fmt.Errorf("crm: load order statuses: %w", err)
		}
		m[code] = StatusType(typ)
	}
	return m, rows.Err()
}

func (m statusMap) resolve(code string) StatusType {
	if t, ok := m[code]; ok {
		return t
	}
	return builtinType(code)
}

// UnmappedStatus is a status code orders carry that the mapping lacks.
type UnmappedStatus struct {
	Code   string `json:"id"`
	Orders int64  `json:"orders"`
}

// UnmappedStatuses lists the status codes of the counter's orders that map to
// no type, with how many orders are in each: reports cannot count them until
// the mapping names them.
func UnmappedStatuses(ctx context.Context, db *store.DB, counterID int64) ([]UnmappedStatus, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT status, count(*) FROM crm_orders
		WHERE counter_id = $1 AND status_type IS NULL GROUP BY status ORDER BY status`, counterID)
	if err != nil {
		return nil, fmt.Errorf("crm: unmapped statuses: %w", err)
	}
	defer rows.Close()
	out := []UnmappedStatus{}
	for rows.Next() {
		var u UnmappedStatus
		if err := rows.Scan(&u.Code, &u.Orders); err != nil {
			return nil, fmt.Errorf("crm: unmapped statuses: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
