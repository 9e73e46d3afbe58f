// Package calltracking ties phone calls to the visits behind them: the
// counter's tracked numbers (static ones bound to a source, and pools whose
// numbers are lent to one session at a time), the leases that record which
// session held which number when, and the calls the telephony providers
// report, each matched to the session — or the source — that explains it,
// with the reason kept. See shared/spec/telephony.md §1.
package calltracking

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/store"
)

// ErrNotFound means the counter has no such pool, number, call or hook.
var ErrNotFound = errors.New("not found")

// InvalidError names the field of an input that is wrong.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// Rule selects sessions by their traffic source; an empty field matches
// anything, so the zero Rule matches every session.
type Rule struct {
	TrafficType string `json:"traffic_type,omitempty"` // ad, organic, social, referral, internal, email, direct
	Source      string `json:"source,omitempty"`
	Medium      string `json:"medium,omitempty"`
	Campaign    string `json:"campaign,omitempty"`
}

// Matches reports whether a session with this traffic satisfies the rule
// (case-insensitively).
func (r Rule) Matches(t Traffic) bool {
	eq := func(want, have string) bool { return want == "" || strings.EqualFold(want, have) }
	return eq(r.TrafficType, t.Type) && eq(r.Source, t.Source) && eq(r.Medium, t.Medium) && eq(r.Campaign, t.Campaign)
}

func (r Rule) validate(field string) error {
	for _, v := range []string{r.TrafficType, r.Source, r.Medium, r.Campaign} {
		if len(v) > 200 || !utf8.ValidString(v) {
			return &InvalidError{field, "rule values are up to 200 characters of text"}
		}
	}
	return nil
}

// Traffic is a session's (or a static number's) source.
type Traffic struct {
	Type     string `json:"type"`
	Source   string `json:"source"`
	Medium   string `json:"medium"`
	Campaign string `json:"campaign"`
}

// OfflineType is the traffic type of a static number's calls.
const OfflineType = "offline"

// StaticTraffic is what a call to a static number with this source is
// credited to: the source, medium and campaign, of traffic type offline —
// the call has no visit behind it (a billboard, a flyer; or a number shown
// on the site, which many visits share). A number without a source credits
// nothing: its calls' source is unknown. This is the one derivation: it is
// stored on the call, and the reports and order matching read it there.
func StaticTraffic(src Traffic) Traffic {
	src.Type = ""
	if src.Source != "" {
		src.Type = OfflineType
	}
	return src
}

// Pool lends its numbers to the sessions its rule selects.
type Pool struct {
	ID             int64      `json:"id"`
	Name           string     `json:"name"`
	Priority       int        `json:"priority"` // pools are tried lowest first
	Rule           Rule       `json:"rule"`
	FallbackNumber string     `json:"fallback_number"` // shown when every number is taken
	Shortages      int64      `json:"shortages"`       // sessions that found every number taken: the pool is too small
	LastShortageAt *time.Time `json:"last_shortage_at"`
	Numbers        []string   `json:"numbers"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// PoolInput creates or changes a pool; nil fields stay as they are.
type PoolInput struct {
	Name           *string `json:"name"`
	Priority       *int    `json:"priority"`
	Rule           *Rule   `json:"rule"`
	FallbackNumber *string `json:"fallback_number"`
}

func (in PoolInput) apply(p *Pool) error {
	if in.Name != nil {
		p.Name = strings.TrimSpace(*in.Name)
	}
	if p.Name == "" || utf8.RuneCountInString(p.Name) > 200 || !utf8.ValidString(p.Name) {
		return &InvalidError{"name", "is required, up to 200 characters"}
	}
	if in.Priority != nil {
		p.Priority = *in.Priority
	}
	if in.Rule != nil {
		if err := in.Rule.validate("rule"); err != nil {
			return err
		}
		p.Rule = *in.Rule
	}
	if in.FallbackNumber != nil {
		p.FallbackNumber = ""
		if strings.TrimSpace(*in.FallbackNumber) != "" {
			n, err := normalize.Phone(*in.FallbackNumber, "")
			if err != nil {
				return &InvalidError{"fallback_number", fmt.Sprintf("%q is not a phone number", *in.FallbackNumber)}
			}
			p.FallbackNumber = n
		}
	}
	return nil
}

func encodeRule(r Rule) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func decodeRule(s string) (Rule, error) {
	var r Rule
	if s == "" {
		return r, nil
	}
	err := json.Unmarshal([]byte(s), &r)
	return r, err
}

// CreatePool stores a new pool.
func CreatePool(ctx context.Context, db *store.DB, counterID int64, in PoolInput) (*Pool, error) {
	p := &Pool{Numbers: []string{}}
	if err := in.apply(p); err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	p.CreatedAt, p.UpdatedAt = now, now
	err := db.Writer().QueryRowContext(ctx, `INSERT INTO number_pools (counter_id, name, priority, rule, fallback_number, shortages, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 0, $6, $7) RETURNING id`,
		counterID, p.Name, p.Priority, encodeRule(p.Rule), p.FallbackNumber, now, now).Scan(&p.ID)
	if err != nil {
		return nil, fmt.Errorf("calltracking: create pool: %w", err)
	}
	return p, nil
}

// UpdatePool changes a pool.
func UpdatePool(ctx context.Context, db *store.DB, counterID, id int64, in PoolInput) (*Pool, error) {
	p, err := GetPool(ctx, db, counterID, id)
	if err != nil {
		return nil, err
	}
	if err := in.apply(p); err != nil {
		return nil, err
	}
	p.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
	_, err = db.Writer().ExecContext(ctx, `UPDATE number_pools SET name = $3, priority = $4, rule = $5, fallback_number = $6, updated_at = $7
		WHERE counter_id = $1 AND id = $2`, counterID, id, p.Name, p.Priority, encodeRule(p.Rule), p.FallbackNumber, p.UpdatedAt)
	if err != nil {
		return nil, fmt.Errorf("calltracking: update pool %d: %w", id, err)
	}
	return p, nil
}

// DeletePool removes a pool. Its numbers stay, as static numbers without a
// source, so calls to them are still recorded; their lease history stays.
func DeletePool(ctx context.Context, db *store.DB, counterID, id int64) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM number_pools WHERE counter_id = $1 AND id = $2`, counterID, id)
		if err != nil {
			return fmt.Errorf("calltracking: delete pool %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tracked_numbers SET pool_id = NULL WHERE counter_id = $1 AND pool_id = $2`, counterID, id); err != nil {
			return fmt.Errorf("calltracking: delete pool %d: %w", id, err)
		}
		return nil
	})
}

const poolColumns = `id, name, priority, rule, fallback_number, shortages, last_shortage_at, created_at, updated_at`

func scanPool(row interface{ Scan(...any) error }) (*Pool, error) {
	p := &Pool{Numbers: []string{}}
	var rule string
	var last sql.NullTime
	if err := row.Scan(&p.ID, &p.Name, &p.Priority, &rule, &p.FallbackNumber, &p.Shortages, &last, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return nil, err
	}
	if last.Valid {
		p.LastShortageAt = &last.Time
	}
	var err error
	if p.Rule, err = decodeRule(rule); err != nil {
		return nil, fmt.Errorf("pool %d: rule: %w", p.ID, err)
	}
	return p, nil
}

// GetPool returns a pool with its numbers.
func GetPool(ctx context.Context, db *store.DB, counterID, id int64) (*Pool, error) {
	p, err := scanPool(db.Reader().QueryRowContext(ctx, `SELECT `+poolColumns+` FROM number_pools WHERE counter_id = $1 AND id = $2`, counterID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("calltracking: get pool %d: %w", id, err)
	}
	return p, poolNumbers(ctx, db.Reader(), counterID, []*Pool{p})
}

// Pools returns the counter's pools in the order they are tried.
func Pools(ctx context.Context, db *store.DB, counterID int64) ([]*Pool, error) {
	return queryPools(ctx, db.Reader(), counterID)
}

type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}

func queryPools(ctx context.Context, q querier, counterID int64) ([]*Pool, error) {
	pools, err := queryPoolsOnly(ctx, q, counterID)
	if err != nil {
		return nil, err
	}
	return pools, poolNumbers(ctx, q, counterID, pools)
}

// queryPoolsOnly reads the pools without their numbers.
func queryPoolsOnly(ctx context.Context, q querier, counterID int64) ([]*Pool, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+poolColumns+` FROM number_pools WHERE counter_id = $1 ORDER BY priority, id`, counterID)
	if err != nil {
		return nil, fmt.Errorf("calltracking: pools: %w", err)
	}
	out := []*Pool{}
	for rows.Next() {
		p, err := scanPool(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("calltracking: pools: %w", err)
		}
		out = append(out, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("calltracking: pools: %w", err)
	}
	return out, nil
}

func poolNumbers(ctx context.Context, q querier, counterID int64, pools []*Pool) error {
	if len(pools) == 0 {
		return nil
	}
	byID := map[int64]*Pool{}
	for _, p := range pools {
		byID[p.ID] = p
	}
	rows, err := q.QueryContext(ctx, `SELECT pool_id, number FROM tracked_numbers WHERE counter_id = $1 AND pool_id IS NOT NULL ORDER BY number`, counterID)
	if err != nil {
		return fmt.Errorf("calltracking: pool numbers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var n string
		if err := rows.Scan(&id, &n); err != nil {
			return fmt.Errorf("calltracking: pool numbers: %w", err)
		}
		if p := byID[id]; p != nil {
			p.Numbers = append(p.Numbers, n)
		}
	}
	return rows.Err()
}

// Number is a tracked number: in a pool, or static with the source its calls
// are credited to.
type Number struct {
	Number    string    `json:"number"`  // normalised: 74951112233
	Display   string    `json:"display"` // +7 495 111-22-33
	PoolID    *int64    `json:"pool_id"` // nil: a static number
	Source    Traffic   `json:"source"`  // static numbers: where their calls come from (its type is derived: StaticTraffic)
	Rule      *Rule     `json:"rule"`    // static numbers shown on the site: the sessions that see it; nil = not shown (a flyer, a billboard)
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
}

// NumberInput creates or changes a number.
type NumberInput struct {
	Number *string  `json:"number"`
	PoolID *int64   `json:"pool_id"`
	Static *bool    `json:"static"` // true: take the number out of its pool
	Source *Traffic `json:"source"`
	Rule   *Rule    `json:"rule"`
	Active *bool    `json:"active"`
}

// Display formats a normalised number for people: "+7 495 111-22-33".
func Display(number string) string {
	n, err := phonenumbers.Parse("+"+number, normalize.DefaultRegion)
	if err != nil {
		return "+" + number
	}
	return phonenumbers.Format(n, phonenumbers.INTERNATIONAL)
}

const numberColumns = `number, pool_id, source, medium, campaign, rule, active, created_at`

func scanNumber(row interface{ Scan(...any) error }) (*Number, error) {
	n := &Number{}
	var pool sql.NullInt64
	var rule string
	if err := row.Scan(&n.Number, &pool, &n.Source.Source, &n.Source.Medium, &n.Source.Campaign, &rule, &n.Active, &n.CreatedAt); err != nil {
		return nil, err
	}
	n.Display = Display(n.Number)
	if pool.Valid {
		n.PoolID = &pool.Int64
	} else {
		n.Source = StaticTraffic(n.Source)
	}
	if rule != "" {
		r, err := decodeRule(rule)
		if err != nil {
			return nil, fmt.Errorf("number %s: rule: %w", n.Number, err)
		}
		n.Rule = &r
	}
	return n, nil
}

// Numbers returns the counter's tracked numbers.
func Numbers(ctx context.Context, db *store.DB, counterID int64) ([]*Number, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+numberColumns+` FROM tracked_numbers WHERE counter_id = $1 ORDER BY number`, counterID)
	if err != nil {
		return nil, fmt.Errorf("calltracking: numbers: %w", err)
	}
	defer rows.Close()
	out := []*Number{}
	for rows.Next() {
		n, err := scanNumber(rows)
		if err != nil {
			return nil, fmt.Errorf("calltracking: numbers: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// GetNumber returns one tracked number.
func GetNumber(ctx context.Context, db *store.DB, counterID int64, number string) (*Number, error) {
	n, err := scanNumber(db.Reader().QueryRowContext(ctx, `SELECT `+numberColumns+` FROM tracked_numbers WHERE counter_id = $1 AND number = $2`, counterID, number))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("calltracking: get number %s: %w", number, err)
	}
	return n, nil
}

// SaveNumber adds a tracked number, or changes it when it exists.
func SaveNumber(ctx context.Context, db *store.DB, counterID int64, in NumberInput) (*Number, error) {
	if in.Number == nil {
		return nil, &InvalidError{"number", "is required"}
	}
	num, err := normalize.Phone(*in.Number, "")
	if err != nil {
		return nil, &InvalidError{"number", fmt.Sprintf("%q is not a phone number", *in.Number)}
	}
	n, err := GetNumber(ctx, db, counterID, num)
	isNew := errors.Is(err, ErrNotFound)
	if err != nil && !isNew {
		return nil, err
	}
	if isNew {
		n = &Number{Number: num, Display: Display(num), Active: true}
	}
	if in.PoolID != nil {
		if _, err := GetPool(ctx, db, counterID, *in.PoolID); errors.Is(err, ErrNotFound) {
			return nil, &InvalidError{"pool_id", fmt.Sprintf("the counter has no pool %d", *in.PoolID)}
		} else if err != nil {
			return nil, err
		}
		n.PoolID = in.PoolID
	}
	if in.Static != nil && *in.Static {
		n.PoolID = nil
	}
	if in.Source != nil {
		if t := in.Source.Type; t != "" && !strings.EqualFold(t, OfflineType) {
			return nil, &InvalidError{"source.type", fmt.Sprintf("%q: a static number's calls are of traffic type %s (set its source, medium and campaign)", t, OfflineType)}
		}
		n.Source = *in.Source
		if err := (Rule{Source: n.Source.Source, Medium: n.Source.Medium, Campaign: n.Source.Campaign}).validate("source"); err != nil {
			return nil, err
		}
	}
	if in.Rule != nil {
		if err := in.Rule.validate("rule"); err != nil {
			return nil, err
		}
		r := *in.Rule
		n.Rule = &r
	}
	if in.Active != nil {
		n.Active = *in.Active
	}
	rule := ""
	if n.Rule != nil {
		rule = encodeRule(*n.Rule)
	}
	var pool any
	if n.PoolID != nil {
		pool = *n.PoolID
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if isNew {
		n.CreatedAt = now
		// A number added back after it was deleted remembers its last
		// lease, so it still rests before another visitor gets it.
		holder, leaseID, leaseEnd := "", "", time.Unix(0, 0).UTC()
		var released sql.NullTime
		var expires time.Time
		lerr := db.Reader().QueryRowContext(ctx, `SELECT uuid, id, expires_at, released_at FROM number_leases
			WHERE counter_id = $1 AND number = $2 ORDER BY leased_at DESC LIMIT 1`, counterID, num).Scan(&holder, &leaseID, &expires, &released)
		switch {
		case lerr == nil:
			leaseEnd = expires
			if released.Valid {
				leaseEnd = released.Time
			}
		case !errors.Is(lerr, sql.ErrNoRows):
			return nil, fmt.Errorf("calltracking: save number %s: %w", num, lerr)
		}
		_, err = db.Writer().ExecContext(ctx, `INSERT INTO tracked_numbers (counter_id, number, pool_id, source, medium, campaign, rule, active,
			holder_uuid, lease_id, lease_end, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			counterID, n.Number, pool, n.Source.Source, n.Source.Medium, n.Source.Campaign, rule, n.Active, holder, leaseID, leaseEnd, now)
	} else {
		_, err = db.Writer().ExecContext(ctx, `UPDATE tracked_numbers SET pool_id = $3, source = $4, medium = $5, campaign = $6, rule = $7, active = $8
			WHERE counter_id = $1 AND number = $2`, counterID, n.Number, pool, n.Source.Source, n.Source.Medium, n.Source.Campaign, rule, n.Active)
	}
	if err != nil {
		return nil, fmt.Errorf("calltracking: save number %s: %w", n.Number, err)
	}
	n.Source.Type = ""
	if n.PoolID == nil {
		n.Source = StaticTraffic(n.Source)
	}
	return n, nil
}

// DeleteNumber removes a tracked number; its lease history and calls stay.
// A number lent to a session right now is refused: deactivate it instead
// (active: false), and delete it once the lease has ended.
func DeleteNumber(ctx context.Context, db *store.DB, counterID int64, number string) error {
	var live int
	if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM number_leases
		WHERE counter_id = $1 AND number = $2 AND released_at IS NULL AND expires_at > $3`, counterID, number, time.Now().UTC()).Scan(&live); err != nil {
		return fmt.Errorf("calltracking: delete number %s: %w", number, err)
	}
	if live > 0 {
		return &InvalidError{"number", fmt.Sprintf("%s is lent to a session now: deactivate it (active: false) and delete it when the lease ends", number)}
	}
	res, err := db.Writer().ExecContext(ctx, `DELETE FROM tracked_numbers WHERE counter_id = $1 AND number = $2`, counterID, number)
	if err != nil {
		return fmt.Errorf("calltracking: delete number %s: %w", number, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
