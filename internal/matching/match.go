package matching

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/throughline/throughline/internal/attribution"
	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/rollup"
	"github.com/throughline/throughline/internal/store"
)

// Rungs of the ladder, strongest first; an order's rung is the strongest
// that found evidence.
const (
	RungSID         = "sid"          // the order's session id
	RungUUID        = "uuid"         // the order's visitor / client ids
	RungCallerPhone = "caller_phone" // the number the customer called from
	RungPhone       = "phone"        // a phone of the order or its contact, found on a lead or call
	RungEmail       = "email"        // an e-mail of the order or its contact, found on a lead
	RungHash        = "hash"         // an md5 of a phone or e-mail: leads, calls, form captures
	RungContact     = "contact"      // the contact's client ids
	RungNotFound    = "not_found"
)

// Rungs lists the rungs in ladder order, for reports.
var Rungs = []string{RungSID, RungUUID, RungCallerPhone, RungPhone, RungEmail, RungHash, RungContact, RungNotFound}

func rungRank(r string) int { return slices.Index(Rungs, r) }

// maxTouches caps an order's path: a visitor with thousands of sessions (a
// shop's own staff, a monitoring robot) would otherwise dominate reports.
const maxTouches = 100

// BatchSize is how many orders one transaction matches.
const BatchSize = 1000

// Evidence is one thing that tied an order to a visit, call or lead.
type Evidence struct {
	Rung  string    `json:"rung"`
	Key   string    `json:"key"`   // what of the order matched: sid, uuid, caller_phone, phone, email, phone_md5, email_md5, client_id
	Value string    `json:"value"` // its value
	Kind  string    `json:"kind"`  // what it matched: session, call, lead, capture
	Ref   string    `json:"ref"`   // that thing's id
	At    time.Time `json:"at"`

	visitor string // the visitor it names, '' when none
}

// Traffic is a touch's source.
type Traffic struct {
	Type     string `json:"type"`
	Source   string `json:"source"`
	Medium   string `json:"medium"`
	Campaign string `json:"campaign"`
	Content  string `json:"content"`
	Term     string `json:"term"`
}

// Touch is a step of an order's path.
type Touch struct {
	Seq     int                `json:"seq"`
	Kind    string             `json:"kind"` // session, call, lead, none
	Ref     string             `json:"ref"`
	At      time.Time          `json:"at"`
	Traffic Traffic            `json:"traffic"`
	Weights map[string]float64 `json:"weights"` // by attribution model
}

// Stats counts what a run did.
type Stats struct {
	Orders   int            `json:"orders"`
	NotFound int            `json:"not_found"`
	Touches  int            `json:"touches"`
	ByRung   map[string]int `json:"by_rung"`
}

func (s *Stats) add(o Stats) {
	s.Orders += o.Orders
	s.NotFound += o.NotFound
	s.Touches += o.Touches
	if s.ByRung == nil {
		s.ByRung = map[string]int{}
	}
	for k, v := range o.ByRung {
		s.ByRung[k] += v
	}
}

// Run matches the queued orders of counterID (of every counter when 0)
// until the queue is empty, a batch of BatchSize orders a transaction.
// Several processes may run at once: each takes its own batch.
func Run(ctx context.Context, db *store.DB, counterID int64) (Stats, error) {
	return RunProgress(ctx, db, counterID, nil)
}

// RunProgress is Run that calls progress with the running totals after
// each batch.
//
// On PostgreSQL two batches run at once: most of a batch's time is the
// server's, answering lookups, and two let one batch's Go work overlap the
// other's queries (batches never share an order: SKIP LOCKED). SQLite has
// one writer, so one batch at a time.
func RunProgress(ctx context.Context, db *store.DB, counterID int64, progress func(Stats)) (Stats, error) {
	workers := 1
	if db.Dialect() == store.Postgres {
		workers = 2
	}
	var mu sync.Mutex
	total := Stats{ByRung: map[string]int{}}
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for {
				if err := ctx.Err(); err != nil {
					errs <- err
					return
				}
				st, n, err := runBatch(ctx, db, counterID)
				if err != nil || n == 0 {
					errs <- err
					return
				}
				mu.Lock()
				total.add(st)
				if progress != nil {
					progress(total)
				}
				mu.Unlock()
			}
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return total, first
}

type queued struct {
	counter int64
	order   string
}

func runBatch(ctx context.Context, db *store.DB, counterID int64) (Stats, int, error) {
	conn, err := db.Writer().Conn(ctx)
	if err != nil {
		return Stats{}, 0, fmt.Errorf("matching: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return Stats{}, 0, fmt.Errorf("matching: begin: %w", err)
	}
	defer tx.Rollback()
	d := db.Dialect()
	lock := ""
	if d == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED" // another process takes other orders
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if d == store.Postgres {
		// A batch is one counter's, matched under that counter's shared
		// late-data lock (see LockLateData).
		if counterID, err = lockCounter(ctx, tx, counterID, now); err != nil || counterID == 0 {
			return Stats{}, 0, err
		}
	}
	rows, err := tx.QueryContext(ctx, `DELETE FROM match_queue WHERE (counter_id, order_id) IN (
		SELECT counter_id, order_id FROM match_queue WHERE ($1 = 0 OR counter_id = $1) AND queued_at <= $3 ORDER BY queued_at LIMIT $2`+lock+`)
		RETURNING counter_id, order_id`, counterID, BatchSize, now)
	if err != nil {
		return Stats{}, 0, fmt.Errorf("matching: take a batch: %w", err)
	}
	var batch []queued
	for rows.Next() {
		var q queued
		if err := rows.Scan(&q.counter, &q.order); err != nil {
			rows.Close()
			return Stats{}, 0, fmt.Errorf("matching: take a batch: %w", err)
		}
		batch = append(batch, q)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Stats{}, 0, fmt.Errorf("matching: take a batch: %w", err)
	}
	if len(batch) == 0 {
		return Stats{}, 0, nil
	}
	byCounter := map[int64][]string{}
	for _, q := range batch {
		byCounter[q.counter] = append(byCounter[q.counter], q.order)
	}
	var st Stats
	// Counters in order: the rollup marks of two batches are then taken in
	// the same order (no deadlock between them on PostgreSQL).
	for _, c := range slices.Sorted(maps.Keys(byCounter)) {
		m := &matcher{ctx: ctx, tx: tx, conn: conn, d: d, counter: c, now: now, prev: map[string]previous{}}
		s, err := m.match(byCounter[c])
		if err != nil {
			tx.Rollback()
			return Stats{}, 0, postpone(ctx, conn, batch, now, err)
		}
		st.add(s)
	}
	if err := tx.Commit(); err != nil {
		return Stats{}, 0, fmt.Errorf("matching: commit: %w", err)
	}
	return st, len(batch), nil
}

// lockCounter takes the late-data lock of counterID shared, waiting for it;
// with counterID 0, of the first counter with due orders whose lock is free
// now (tried in due order, stopping at the first taken). It returns the
// counter locked, 0 when none.
func lockCounter(ctx context.Context, tx *sql.Tx, counterID int64, now time.Time) (int64, error) {
	if counterID != 0 {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared($1, ($2 % 2147483647)::int)`, lockClass, counterID); err != nil {
			return 0, fmt.Errorf("matching: lock counter %d: %w", counterID, err)
		}
		return counterID, nil
	}
	var locked int64
	err := tx.QueryRowContext(ctx, `SELECT counter_id FROM (
			SELECT counter_id, min(queued_at) AS due FROM match_queue WHERE queued_at <= $2 GROUP BY counter_id ORDER BY due LIMIT 100) c
		WHERE pg_try_advisory_xact_lock_shared($1, (counter_id % 2147483647)::int) LIMIT 1`, lockClass, now).Scan(&locked)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("matching: lock a counter: %w", err)
	}
	return locked, nil
}

// Retry is how long a batch that failed waits before it is taken again, so
// one order that cannot be matched does not stop the queue behind it.
const Retry = 10 * time.Minute

// postpone puts a failed batch's orders back at the end of the queue, due
// again after Retry, and returns the batch's error.
func postpone(ctx context.Context, conn *sql.Conn, batch []queued, now time.Time, cause error) error {
	if ctx.Err() != nil {
		return cause // the batch is still queued as it was
	}
	err := func() error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, q := range batch {
			if _, err := tx.ExecContext(ctx, `UPDATE match_queue SET queued_at = $3 WHERE counter_id = $1 AND order_id = $2`,
				q.counter, q.order, now.Add(Retry)); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		return fmt.Errorf("%w (and postponing the batch: %v)", cause, err)
	}
	return fmt.Errorf("%w (its %d orders are tried again in %v)", cause, len(batch), Retry)
}

type matcher struct {
	ctx      context.Context
	tx       *sql.Tx
	conn     *sql.Conn
	d        store.Dialect
	counter  int64
	now      time.Time
	lookback time.Duration
	changed  []time.Time // dates of touches removed and written: their rollups change
	prev     map[string]previous
}

// previous is what an order's last match said: a different rung or status
// type now is an event for the counter's webhooks.
type previous struct{ rung, status string }

// order is what matching needs of an order and its contact.
type order struct {
	id                   string
	created, from        time.Time
	sid                  string
	clientIDs            []string
	callerPhone          string
	phones, emails       []string
	phonesMD5, emailsMD5 []string
	contactID            string
	status               string // status type, '' when unmapped
	contactClientIDs     []string
	evidence             []Evidence
	visitors             map[string]string // uuid → the rung that found it
	extra                []Touch           // calls without a session (static numbers)
	rung                 string
}

type sessionRow struct {
	sid, uuid string
	at        time.Time
	t         Traffic
}

type callRow struct {
	id                int64
	caller, callerMD5 string
	at                time.Time
	sid, uuid         string
	t                 Traffic
}

type leadRow struct {
	id                               int64
	phone, email, phoneMD5, emailMD5 string
	at                               time.Time
	sid, uuid                        string
}

type captureRow struct {
	md5, sid, uuid string
	at             time.Time
}

func decodeList(s string) []string {
	if s == "" || s == "[]" {
		return nil
	}
	var l []string
	_ = json.Unmarshal([]byte(s), &l) // written by crm as JSON arrays of strings
	return l
}

func (m *matcher) match(ids []string) (Stats, error) {
	var days int
	if err := m.tx.QueryRowContext(m.ctx, `SELECT lookback_days FROM counters WHERE id = $1`, m.counter).Scan(&days); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Stats{}, nil // the counter is gone
		}
		return Stats{}, fmt.Errorf("matching: counter %d: %w", m.counter, err)
	}
	m.lookback = time.Duration(days) * 24 * time.Hour

	orders, err := m.loadOrders(ids)
	if err != nil {
		return Stats{}, err
	}
	if err := m.clear(ids); err != nil { // deleted orders leave no match behind
		return Stats{}, err
	}
	if len(orders) == 0 {
		return Stats{}, rollup.Mark(m.ctx, m.tx, m.d, m.counter, m.changed...)
	}
	if err := m.findEvidence(orders); err != nil {
		return Stats{}, err
	}
	sessions, err := m.visitorSessions(orders)
	if err != nil {
		return Stats{}, err
	}
	return m.write(orders, sessions)
}

// loadOrders reads the orders and their contacts' keys.
func (m *matcher) loadOrders(ids []string) ([]*order, error) {
	rows, err := m.byKeys(`order_id, created_at, sid, client_ids, caller_phone, phones, emails, phones_md5, emails_md5, contact_id,
		COALESCE(status_type, '')`,
		"crm_orders", "order_id", ids, "", nil)
	if err != nil {
		return nil, fmt.Errorf("matching: load orders: %w", err)
	}
	var orders []*order
	contacts := map[string][]*order{}
	for rows.Next() {
		o := &order{visitors: map[string]string{}}
		var clientIDs, phones, emails, phonesMD5, emailsMD5 string
		if err := rows.Scan(&o.id, &o.created, &o.sid, &clientIDs, &o.callerPhone, &phones, &emails, &phonesMD5, &emailsMD5, &o.contactID,
			&o.status); err != nil {
			rows.Close()
			return nil, fmt.Errorf("matching: load orders: %w", err)
		}
		o.clientIDs, o.phones, o.emails = decodeList(clientIDs), decodeList(phones), decodeList(emails)
		o.phonesMD5, o.emailsMD5 = decodeList(phonesMD5), decodeList(emailsMD5)
		o.from = o.created.Add(-m.lookback)
		orders = append(orders, o)
		if o.contactID != "" {
			contacts[o.contactID] = append(contacts[o.contactID], o)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("matching: load orders: %w", err)
	}
	if len(contacts) == 0 {
		return orders, nil
	}
	rows, err = m.byKeys(`uniq_id, client_ids, phones, emails, phones_md5, emails_md5`, "crm_contacts", "uniq_id", keysOf(contacts), "", nil)
	if err != nil {
		return nil, fmt.Errorf("matching: load contacts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, clientIDs, phones, emails, phonesMD5, emailsMD5 string
		if err := rows.Scan(&id, &clientIDs, &phones, &emails, &phonesMD5, &emailsMD5); err != nil {
			return nil, fmt.Errorf("matching: load contacts: %w", err)
		}
		for _, o := range contacts[id] {
			o.contactClientIDs = decodeList(clientIDs)
			o.phones = union(o.phones, decodeList(phones))
			o.emails = union(o.emails, decodeList(emails))
			o.phonesMD5 = union(o.phonesMD5, decodeList(phonesMD5))
			o.emailsMD5 = union(o.emailsMD5, decodeList(emailsMD5))
		}
	}
	return orders, rows.Err()
}

func union(a, b []string) []string {
	for _, v := range b {
		if !slices.Contains(a, v) {
			a = append(a, v)
		}
	}
	return a
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// clear removes what earlier matching wrote for the orders.
func (m *matcher) clear(ids []string) error {
	for _, table := range []string{"order_matches", "order_touches", "order_keys"} {
		if err := m.deleteKeys(table, ids); err != nil {
			return err
		}
	}
	return nil
}

// deleteKeys deletes the orders' rows of table; of order_touches it keeps
// the touches' dates, whose report rollups change.
func (m *matcher) deleteKeys(table string, ids []string) error {
	returning := ""
	switch table {
	case "order_touches":
		returning = " RETURNING at, order_created_at"
	case "order_matches":
		returning = " RETURNING order_id, rung, status_type"
	}
	var rows *sql.Rows
	var err error
	if m.d == store.Postgres {
		rows, err = m.tx.QueryContext(m.ctx, `DELETE FROM `+table+` WHERE counter_id = $1 AND order_id = ANY($2)`+returning, m.counter, ids)
	} else {
		args := []any{m.counter}
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err = m.tx.QueryContext(m.ctx, `DELETE FROM `+table+` WHERE counter_id = ? AND order_id IN (`+m.d.Params(2, len(ids))+`)`+returning, args...)
	}
	if err != nil {
		return fmt.Errorf("matching: clear %s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		if table == "order_matches" {
			var id string
			var p previous
			if err := rows.Scan(&id, &p.rung, &p.status); err != nil {
				return fmt.Errorf("matching: clear %s: %w", table, err)
			}
			m.prev[id] = p
			continue
		}
		var at, created time.Time
		if err := rows.Scan(&at, &created); err != nil {
			return fmt.Errorf("matching: clear %s: %w", table, err)
		}
		m.changed = append(m.changed, at, created)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("matching: clear %s: %w", table, err)
	}
	return nil
}

// byKeys selects columns of the counter's rows of table whose keyCol is one
// of keys, with an extra condition (its parameters numbered from 2, in
// extraArgs). Each key is probed on its own: on PostgreSQL a LATERAL
// subquery the planner cannot flatten, on SQLite a CROSS JOIN from the key
// list, whose order SQLite keeps. So stale or missing statistics cannot turn
// the lookup into a scan by time (see internal/crm's queryIDs): with an IN
// list SQLite chose leads_created over leads_phone and read a year of leads
// a batch (at 10 M sessions, 9× slower an order than at 1 M).
func (m *matcher) byKeys(columns, table, keyCol string, keys []string, extra string, extraArgs []any) (*sql.Rows, error) {
	if len(keys) == 0 {
		return m.tx.QueryContext(m.ctx, `SELECT `+columns+` FROM `+table+` WHERE 1 = 0`)
	}
	args := append([]any{m.counter}, extraArgs...)
	// Keys are never empty; saying so lets the planners use the partial
	// indexes (leads_phone … WHERE phone <> ''), which they cannot prove
	// apply to a key given as a parameter.
	cond := " AND " + keyCol + " <> ''"
	if extra != "" {
		cond += " AND " + extra
	}
	if m.d == store.Postgres {
		args = append(args, keys)
		return m.tx.QueryContext(m.ctx, `SELECT t.* FROM unnest($`+strconv.Itoa(len(args))+`::text[]) AS k(lookup_key)
			CROSS JOIN LATERAL (SELECT `+columns+` FROM `+table+` WHERE counter_id = $1 AND `+keyCol+` = k.lookup_key`+cond+`) AS t`, args...)
	}
	list, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	args = append(args, string(list))
	q := `SELECT ` + columns + ` FROM (SELECT value AS lookup_key FROM json_each(?` + strconv.Itoa(len(args)) + `)) AS k
		CROSS JOIN ` + table + ` WHERE counter_id = $1 AND ` + keyCol + ` = k.lookup_key` + cond
	return m.tx.QueryContext(m.ctx, sqliteNumbered(q, len(extraArgs)+1), args...)
}

// sqliteNumbered rewrites $1…$n of a SQLite statement as ?NNN, which binds
// by number whatever "?" follow (the key list's anonymous parameters then
// take the numbers after n).
func sqliteNumbered(q string, n int) string {
	for i := n; i >= 1; i-- {
		q = strings.ReplaceAll(q, "$"+strconv.Itoa(i), "?"+strconv.Itoa(i))
	}
	return q
}

// findEvidence walks the ladder for every order of the batch at once: one
// query per rung and key kind.
func (m *matcher) findEvidence(orders []*order) error {
	minFrom, maxAt := orders[0].from, orders[0].created
	for _, o := range orders {
		minFrom = minTime(minFrom, o.from)
		maxAt = maxTime(maxAt, o.created)
	}
	inWindow := func(o *order, at time.Time) bool { return !at.Before(o.from) && !at.After(o.created) }
	window := []any{minFrom, maxAt}

	// 1. The order's sid.
	bySID := map[string][]*order{}
	for _, o := range orders {
		if o.sid != "" {
			bySID[o.sid] = append(bySID[o.sid], o)
		}
	}
	rows, err := m.byKeys(`sid, uuid, started_at`, "sessions", "sid", keysOf(bySID), "", nil)
	if err != nil {
		return fmt.Errorf("matching: sessions by sid: %w", err)
	}
	for rows.Next() {
		var s sessionRow
		if err := rows.Scan(&s.sid, &s.uuid, &s.at); err != nil {
			rows.Close()
			return fmt.Errorf("matching: sessions by sid: %w", err)
		}
		for _, o := range bySID[s.sid] {
			if inWindow(o, s.at) {
				o.found(Evidence{Rung: RungSID, Key: "sid", Value: s.sid, Kind: "session", Ref: s.sid, At: s.at}, s.uuid)
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("matching: sessions by sid: %w", err)
	}

	// 2. and 5. Visitor ids: the order's, then its contact's (checked
	// against sessions in visitorSessions, which knows whether any exist).
	for _, o := range orders {
		for _, id := range o.clientIDs {
			if _, ok := o.visitors[id]; !ok {
				o.visitors[id] = RungUUID
			}
		}
		for _, id := range o.contactClientIDs {
			if _, ok := o.visitors[id]; !ok {
				o.visitors[id] = RungContact
			}
		}
	}

	// 3. and 4. Phones: the caller phone, then the order's and contact's
	// phones — the last call from each before the order.
	byPhone := map[string][]*order{}
	for _, o := range orders {
		if o.callerPhone != "" {
			byPhone[o.callerPhone] = append(byPhone[o.callerPhone], o)
		}
		for _, p := range o.phones {
			if p != o.callerPhone {
				byPhone[p] = append(byPhone[p], o)
			}
		}
	}
	calls, err := m.calls("caller", keysOf(byPhone), window)
	if err != nil {
		return err
	}
	for _, c := range calls {
		for _, o := range byPhone[c.caller] {
			rung, key := RungPhone, "phone"
			if c.caller == o.callerPhone {
				rung, key = RungCallerPhone, "caller_phone"
			}
			if inWindow(o, c.at) {
				o.lastCall(rung, key, c.caller, c)
			}
		}
	}
	// Hashed phones: calls whose caller has that md5.
	byPhoneMD5 := map[string][]*order{}
	for _, o := range orders {
		for _, h := range o.phonesMD5 {
			byPhoneMD5[h] = append(byPhoneMD5[h], o)
		}
	}
	if calls, err = m.calls("caller_md5", keysOf(byPhoneMD5), window); err != nil {
		return err
	}
	for _, c := range calls {
		for _, o := range byPhoneMD5[c.callerMD5] {
			if inWindow(o, c.at) {
				o.lastCall(RungHash, "phone_md5", c.callerMD5, c)
			}
		}
	}

	// 4. Leads by phone, e-mail and their md5; form captures by md5.
	byEmail, byEmailMD5 := map[string][]*order{}, map[string][]*order{}
	for _, o := range orders {
		for _, e := range o.emails {
			byEmail[e] = append(byEmail[e], o)
		}
		for _, h := range o.emailsMD5 {
			byEmailMD5[h] = append(byEmailMD5[h], o)
		}
	}
	for _, q := range []struct {
		col, key, rung string
		by             map[string][]*order
		val            func(*leadRow) string
	}{
		{"phone", "phone", RungPhone, byPhone, func(l *leadRow) string { return l.phone }},
		{"email", "email", RungEmail, byEmail, func(l *leadRow) string { return l.email }},
		{"phone_md5", "phone_md5", RungHash, byPhoneMD5, func(l *leadRow) string { return l.phoneMD5 }},
		{"email_md5", "email_md5", RungHash, byEmailMD5, func(l *leadRow) string { return l.emailMD5 }},
	} {
		leads, err := m.leads(q.col, keysOf(q.by), window)
		if err != nil {
			return err
		}
		for _, l := range leads {
			v := q.val(l)
			for _, o := range q.by[v] {
				if inWindow(o, l.at) {
					o.lastLead(q.rung, q.key, v, l)
				}
			}
		}
	}
	byMD5 := map[string][]*order{}
	for h, os := range byPhoneMD5 {
		byMD5[h] = append(byMD5[h], os...)
	}
	for h, os := range byEmailMD5 {
		byMD5[h] = append(byMD5[h], os...)
	}
	// Plain phones and e-mails hash to what a form capture stored.
	for _, o := range orders {
		for _, p := range o.phones {
			h := normalize.MD5(p)
			byMD5[h] = append(byMD5[h], o)
		}
		for _, e := range o.emails {
			h := normalize.MD5(e)
			byMD5[h] = append(byMD5[h], o)
		}
	}
	rows, err = m.byKeys(`md5, sid, uuid, captured_at`, "form_captures", "md5", keysOf(byMD5), "captured_at >= $2 AND captured_at <= $3", window)
	if err != nil {
		return fmt.Errorf("matching: form captures: %w", err)
	}
	for rows.Next() {
		var c captureRow
		if err := rows.Scan(&c.md5, &c.sid, &c.uuid, &c.at); err != nil {
			rows.Close()
			return fmt.Errorf("matching: form captures: %w", err)
		}
		for _, o := range byMD5[c.md5] {
			if inWindow(o, c.at) && c.uuid != "" {
				o.found(Evidence{Rung: RungHash, Key: "md5", Value: c.md5, Kind: "capture", Ref: c.sid, At: c.at}, c.uuid)
			}
		}
	}
	rows.Close()
	return rows.Err()
}

// found records evidence that names a visitor.
func (o *order) found(e Evidence, visitor string) {
	e.visitor = visitor
	o.evidence = append(o.evidence, e)
	if visitor == "" {
		o.note(e.Rung)
		return
	}
	if r, ok := o.visitors[visitor]; !ok || rungRank(e.Rung) < rungRank(r) {
		o.visitors[visitor] = e.Rung
	}
	o.note(e.Rung)
}

func (o *order) note(rung string) {
	if o.rung == "" || rungRank(rung) < rungRank(o.rung) {
		o.rung = rung
	}
}

// supersede reports whether evidence of kind found at at is newer than what
// the order already holds for the same rung and key, dropping the older one
// (and the touch it brought, whatever order the rows came in).
func (o *order) supersede(rung, kind, key string, at time.Time) bool {
	for i, e := range o.evidence {
		if e.Rung == rung && e.Kind == kind && e.Key == key {
			if !at.After(e.At) {
				return false
			}
			o.evidence = slices.Delete(o.evidence, i, i+1)
			if e.visitor != "" {
				o.revisit(e.visitor)
			}
			if !slices.ContainsFunc(o.evidence, func(x Evidence) bool { return x.Kind == kind && x.Ref == e.Ref }) {
				o.extra = slices.DeleteFunc(o.extra, func(t Touch) bool { return t.Kind == kind && t.Ref == e.Ref })
			}
			break
		}
	}
	return true
}

// revisit sets what found visitor v from the evidence left, so a visitor
// that only superseded evidence named leaves the path whatever order the
// rows came in.
func (o *order) revisit(v string) {
	delete(o.visitors, v)
	if slices.Contains(o.clientIDs, v) {
		o.visitors[v] = RungUUID
	} else if slices.Contains(o.contactClientIDs, v) {
		o.visitors[v] = RungContact
	}
	for _, e := range o.evidence {
		if r, ok := o.visitors[v]; e.visitor == v && (!ok || rungRank(e.Rung) < rungRank(r)) {
			o.visitors[v] = e.Rung
		}
	}
}

// lastCall keeps, per rung, the last call before the order.
func (o *order) lastCall(rung, key, value string, c *callRow) {
	if !o.supersede(rung, "call", key, c.at) {
		return
	}
	o.found(Evidence{Rung: rung, Key: key, Value: value, Kind: "call", Ref: strconv.FormatInt(c.id, 10), At: c.at}, c.uuid)
	if c.sid == "" && c.t.Source != "" {
		// A call to a static number has a source but no session: it is a
		// touch of its own, with the traffic stored on the call (offline:
		// calltracking.StaticTraffic).
		o.extra = slices.DeleteFunc(o.extra, func(t Touch) bool { return t.Kind == "call" && t.Ref == strconv.FormatInt(c.id, 10) })
		o.extra = append(o.extra, Touch{Kind: "call", Ref: strconv.FormatInt(c.id, 10), At: c.at, Traffic: c.t})
	}
}

// lastLead keeps, per rung and key, the last lead before the order.
func (o *order) lastLead(rung, key, value string, l *leadRow) {
	if !o.supersede(rung, "lead", key, l.at) {
		return
	}
	o.found(Evidence{Rung: rung, Key: key, Value: value, Kind: "lead", Ref: strconv.FormatInt(l.id, 10), At: l.at}, l.uuid)
}

func (m *matcher) calls(col string, keys []string, window []any) ([]*callRow, error) {
	rows, err := m.byKeys(`id, caller, caller_md5, started_at, sid, uuid, traffic_type, source, medium, campaign`, "calls", col, keys,
		"started_at >= $2 AND started_at <= $3 AND direction NOT IN ('out', 'internal')", window)
	if err != nil {
		return nil, fmt.Errorf("matching: calls by %s: %w", col, err)
	}
	defer rows.Close()
	var out []*callRow
	for rows.Next() {
		c := &callRow{}
		if err := rows.Scan(&c.id, &c.caller, &c.callerMD5, &c.at, &c.sid, &c.uuid, &c.t.Type, &c.t.Source, &c.t.Medium, &c.t.Campaign); err != nil {
			return nil, fmt.Errorf("matching: calls by %s: %w", col, err)
		}
		out = append(out, c)
	}
	// Oldest first, ties by id: which of two equal calls wins must not
	// depend on the order the engine returned them.
	slices.SortFunc(out, func(a, b *callRow) int { return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.id, b.id)) })
	return out, rows.Err()
}

func (m *matcher) leads(col string, keys []string, window []any) ([]*leadRow, error) {
	rows, err := m.byKeys(`id, phone, email, phone_md5, email_md5, created_at, sid, uuid`, "leads", col, keys,
		"created_at >= $2 AND created_at <= $3", window)
	if err != nil {
		return nil, fmt.Errorf("matching: leads by %s: %w", col, err)
	}
	defer rows.Close()
	var out []*leadRow
	for rows.Next() {
		l := &leadRow{}
		if err := rows.Scan(&l.id, &l.phone, &l.email, &l.phoneMD5, &l.emailMD5, &l.at, &l.sid, &l.uuid); err != nil {
			return nil, fmt.Errorf("matching: leads by %s: %w", col, err)
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *leadRow) int { return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.id, b.id)) })
	return out, rows.Err()
}

// visitorSessions reads the sessions of every visitor the batch's orders
// found, within the widest window (path keeps the latest maxTouches).
func (m *matcher) visitorSessions(orders []*order) (map[string][]sessionRow, error) {
	visitors := map[string]bool{}
	minFrom, maxAt := orders[0].from, orders[0].created
	for _, o := range orders {
		for v := range o.visitors {
			visitors[v] = true
		}
		minFrom = minTime(minFrom, o.from)
		maxAt = maxTime(maxAt, o.created)
	}
	rows, err := m.byKeys(`sid, uuid, started_at, traffic_type, source, medium, utm_campaign, utm_content, utm_term`, "sessions", "uuid",
		keysOf(visitors), "started_at >= $2 AND started_at <= $3", []any{minFrom, maxAt})
	if err != nil {
		return nil, fmt.Errorf("matching: visitors' sessions: %w", err)
	}
	defer rows.Close()
	out := map[string][]sessionRow{}
	for rows.Next() {
		var s sessionRow
		if err := rows.Scan(&s.sid, &s.uuid, &s.at, &s.t.Type, &s.t.Source, &s.t.Medium, &s.t.Campaign, &s.t.Content, &s.t.Term); err != nil {
			return nil, fmt.Errorf("matching: visitors' sessions: %w", err)
		}
		out[s.uuid] = append(out[s.uuid], s)
	}
	return out, rows.Err()
}

// path builds an order's touches (oldest first) from its visitors' sessions
// in its window and its session-less calls, and records visitor evidence.
func (o *order) path(sessions map[string][]sessionRow) []Touch {
	var ts []Touch
	seen := map[string]bool{}
	for _, v := range keysOf(o.visitors) {
		rung := o.visitors[v]
		first := true
		for _, s := range sessions[v] {
			if s.at.Before(o.from) || s.at.After(o.created) || seen[s.sid] {
				continue
			}
			seen[s.sid] = true
			ts = append(ts, Touch{Kind: "session", Ref: s.sid, At: s.at, Traffic: s.t})
			if first && (rung == RungUUID || rung == RungContact) {
				// A visitor id counts as evidence once it has a session in the window.
				key := "uuid"
				if rung == RungContact {
					key = "contact_client_id"
				}
				o.evidence = append(o.evidence, Evidence{Rung: rung, Key: key, Value: v, Kind: "session", Ref: s.sid, At: s.at})
				o.note(rung)
				first = false
			}
		}
	}
	ts = append(ts, o.extra...)
	slices.SortStableFunc(ts, func(a, b Touch) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Ref, b.Ref)) })
	if len(ts) > maxTouches {
		ts = ts[len(ts)-maxTouches:]
	}
	return ts
}

// write stores the batch's matches, touches with their weights, and keys.
func (m *matcher) write(orders []*order, sessions map[string][]sessionRow) (Stats, error) {
	st := Stats{ByRung: map[string]int{}}
	var matches, touches, keys [][]any
	var events [][2]string // order id, event
	for _, o := range orders {
		ts := o.path(sessions)
		for i := range ts {
			// As ad costs store them: utm tags compare case-insensitively.
			ts[i].Traffic.Source = strings.ToLower(strings.TrimSpace(ts[i].Traffic.Source))
			ts[i].Traffic.Medium = strings.ToLower(strings.TrimSpace(ts[i].Traffic.Medium))
		}
		if o.rung == "" {
			o.rung = RungNotFound
		}
		if len(ts) == 0 {
			// No touch: the order still shows in reports, under "not found"
			// (evidence without a visit — a lead without a session — too).
			t := Traffic{Type: "none", Source: "(not found)"}
			if o.rung != RungNotFound {
				t.Source = "(no visit)"
			}
			ts = []Touch{{Kind: "none", At: o.created, Traffic: t}}
		}
		at := make([]attribution.Touch, len(ts))
		for i, t := range ts {
			at[i] = attribution.Touch{At: t.At, Direct: t.Traffic.Type == "direct"}
		}
		weights := make([][]float64, len(attribution.Models))
		for i, model := range attribution.Models {
			weights[i] = attribution.Weights(model, at, o.created)
		}
		m.changed = append(m.changed, o.created)
		for i, t := range ts {
			m.changed = append(m.changed, t.At)
			row := []any{m.counter, o.id, i + 1, t.Kind, t.Ref, t.At, o.created,
				t.Traffic.Type, t.Traffic.Source, t.Traffic.Medium, t.Traffic.Campaign, t.Traffic.Content, t.Traffic.Term}
			for j := range attribution.Models {
				row = append(row, weights[j][i])
			}
			touches = append(touches, row)
		}
		slices.SortStableFunc(o.evidence, func(a, b Evidence) int { return cmp.Compare(rungRank(a.Rung), rungRank(b.Rung)) })
		ev, _ := json.Marshal(o.evidence)
		if o.evidence == nil {
			ev = []byte("[]")
		}
		matches = append(matches, []any{m.counter, o.id, o.rung, o.status, string(ev), len(ts), o.created, m.now})
		// An order found for the first time or by another rung is news; one
		// not found on its first match is not (every unmatched import would
		// post), until evidence comes or its status changes.
		if p, ok := m.prev[o.id]; (!ok && o.rung != RungNotFound) || (ok && p.rung != o.rung) {
			events = append(events, [2]string{o.id, "matched"})
		} else if ok && p.status != o.status {
			events = append(events, [2]string{o.id, "status"})
		}
		for _, k := range o.keys() {
			keys = append(keys, []any{m.counter, k[0], k[1], o.id})
		}
		st.Orders++
		st.ByRung[o.rung]++
		st.Touches += len(ts)
		if o.rung == RungNotFound {
			st.NotFound++
		}
	}
	if err := m.d.Insert(m.ctx, m.conn, m.tx, "order_matches",
		[]string{"counter_id", "order_id", "rung", "status_type", "evidence", "touches", "order_created_at", "matched_at"}, matches); err != nil {
		return st, fmt.Errorf("matching: %w", err)
	}
	cols := []string{"counter_id", "order_id", "seq", "kind", "ref", "at", "order_created_at",
		"traffic_type", "source", "medium", "campaign", "content", "term"}
	for _, model := range attribution.Models {
		cols = append(cols, "w_"+model)
	}
	if err := m.d.Insert(m.ctx, m.conn, m.tx, "order_touches", cols, touches); err != nil {
		return st, fmt.Errorf("matching: %w", err)
	}
	if err := m.d.Insert(m.ctx, m.conn, m.tx, "order_keys", []string{"counter_id", "kind", "value", "order_id"}, keys); err != nil {
		return st, fmt.Errorf("matching: %w", err)
	}
	if err := rollup.Mark(m.ctx, m.tx, m.d, m.counter, m.changed...); err != nil {
		return st, fmt.Errorf("matching: %w", err)
	}
	if err := m.notify(events); err != nil {
		return st, err
	}
	return st, nil
}

// notify queues a delivery of each event (order id, "matched" or "status")
// to each active webhook of the counter, in the matching transaction.
func (m *matcher) notify(events [][2]string) error {
	if len(events) == 0 {
		return nil
	}
	rows, err := m.tx.QueryContext(m.ctx, `SELECT id FROM webhooks WHERE counter_id = $1 AND active`, m.counter)
	if err != nil {
		return fmt.Errorf("matching: webhooks: %w", err)
	}
	var hooks []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("matching: webhooks: %w", err)
		}
		hooks = append(hooks, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(hooks) == 0 {
		return err
	}
	var deliveries [][]any
	for _, h := range hooks {
		for _, e := range events {
			deliveries = append(deliveries, []any{m.counter, h, e[0], e[1], "pending", 0, m.now, 0, "", m.now})
		}
	}
	if err := m.d.Insert(m.ctx, m.conn, m.tx, "webhook_deliveries", []string{"counter_id", "webhook_id", "order_id", "event",
		"status", "attempts", "next_attempt_at", "last_status", "last_error", "created_at"}, deliveries); err != nil {
		return fmt.Errorf("matching: queue webhook deliveries: %w", err)
	}
	return nil
}

// keys are the order's customer keys, for late data to find it.
func (o *order) keys() [][2]string {
	set := map[[2]string]bool{}
	add := func(kind, v string) {
		if v != "" {
			set[[2]string{kind, v}] = true
		}
	}
	add(KeyPhone, o.callerPhone)
	for _, p := range o.phones {
		add(KeyPhone, p)
		add(KeyPhoneMD5, normalize.MD5(p))
	}
	for _, e := range o.emails {
		add(KeyEmail, e)
		add(KeyEmailMD5, normalize.MD5(e))
	}
	for _, h := range o.phonesMD5 {
		add(KeyPhoneMD5, h)
	}
	for _, h := range o.emailsMD5 {
		add(KeyEmailMD5, h)
	}
	add(KeyContact, o.contactID)
	out := make([][2]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
