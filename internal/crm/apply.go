package crm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/store"
)

// The second pass of an import: the spooled rows are applied in one
// transaction, in batches. For each batch the stored rows with the same ids
// are read, each row is merged into its stored version (merge mode), and
// only what changed is written: new rows are inserted (COPY on PostgreSQL),
// changed rows upserted, unchanged rows — same content hash — skipped. A
// re-import of an unchanged file therefore only reads.

// batchRows is how many rows are looked up and written together.
const batchRows = 4000

// rowsPerStatement keeps multi-row statements under SQLite's limit of
// 32,766 parameters (31 columns × 1000 rows would pass it).
const rowsPerStatement = 500

// DefaultMaxOrdersPerContact is Metrica's limit of orders per customer.
const DefaultMaxOrdersPerContact = 100_000

// crmLock is the first key of the PostgreSQL advisory lock that serialises
// imports into one counter (the second key is the counter id).
const crmLock = 0x63726d // "crm"

type applier struct {
	ctx       context.Context
	d         store.Dialect
	conn      *sql.Conn
	tx        *sql.Tx
	counterID int64
	opt       Options
	res       *Result
	importID  string
	now       time.Time

	statuses    statusMap
	multivalued map[string]bool // declared attributes that hold several values
	fresh       *seenFilter     // the ids written so far, when the counter had no orders before
	inflight    chan error      // the result of the write in flight (writeAsync)

	orders   []pendingOrder
	contacts []pendingContact
	ids      map[string]bool // order ids in the current batch
	cids     map[string]bool // contact ids in the current batch (an upload may mix both: a RetailCRM run)
	stmts    map[int]*sql.Stmt
	buf      []byte
}

type pendingOrder struct {
	o    *Order
	line int
}

type pendingContact struct {
	c    *Contact
	line int
}

// apply runs the second pass. A row rejected here (over the per-contact
// limit) is reported like a rejected row of the first pass.
func apply(ctx context.Context, db *store.DB, counterID int64, sr *spoolReader, opt Options, res *Result) error {
	conn, err := db.Writer().Conn(ctx)
	if err != nil {
		return fmt.Errorf("crm: apply: %w", err)
	}
	defer conn.Close()
	if db.Dialect() == store.SQLite {
		// A long transaction keeps its changed pages in the page cache until
		// it spills them; the writer's usual 64 MiB cache (sized for the
		// collector) makes a million-row import's RSS ~180 MB. 32 MiB keeps it
		// near 110 MB at the same speed.
		var prev int
		if err := conn.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&prev); err != nil {
			return fmt.Errorf("crm: apply: %w", err)
		}
		if _, err := conn.ExecContext(ctx, `PRAGMA cache_size = -32768`); err != nil {
			return fmt.Errorf("crm: apply: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`PRAGMA cache_size = %d`, prev))
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("crm: apply: begin: %w", err)
	}
	defer tx.Rollback()
	a := &applier{ctx: ctx, d: db.Dialect(), conn: conn, tx: tx, counterID: counterID, opt: opt, res: res,
		importID: res.ID, now: time.Now().UTC().Truncate(time.Microsecond),
		ids: map[string]bool{}, cids: map[string]bool{}, stmts: map[int]*sql.Stmt{}}
	defer func() {
		a.waitWrite() // before the rollback: a write may still use the transaction
		for _, st := range a.stmts {
			st.Close()
		}
	}()
	if a.d == store.Postgres {
		// One import at a time per counter: the lookups below decide insert
		// or update, and a concurrent import of the same ids would break that.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, crmLock, int32(counterID)); err != nil {
			return fmt.Errorf("crm: apply: lock: %w", err)
		}
		if err := matching.LockLateData(ctx, tx, a.d, counterID); err != nil {
			return fmt.Errorf("crm: apply: %w", err)
		}
		// The lookups probe the primary key once per id whatever the
		// statistics say (see queryIDs), so one plan serves every batch:
		// planning each of a million-row import's thousand lookups anew
		// (the pool's custom-plan setting) made a re-import 7% slower.
		if _, err := tx.ExecContext(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
			return fmt.Errorf("crm: apply: %w", err)
		}
	}
	if a.statuses, err = loadStatusMap(ctx, tx, counterID); err != nil {
		return err
	}
	if a.multivalued, err = loadMultivalued(ctx, tx, counterID); err != nil {
		return err
	}
	if opt.Intake != ContactsUp {
		var any int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM crm_orders WHERE counter_id = $1 LIMIT 1) AS o`, counterID).Scan(&any)
		if err != nil {
			return fmt.Errorf("crm: apply: %w", err)
		}
		if any == 0 {
			a.fresh = newSeenFilter(res.Read)
		}
	}
	// The spool is decoded in the background, so that decoding overlaps the
	// database's work on the batches.
	done := make(chan struct{})
	defer close(done)
	n := 0
	for chunk := range readAhead(sr, done) {
		for _, r := range chunk.rows {
			var err error
			switch row := r.row.(type) {
			case *Order:
				err = a.addOrder(row, r.line)
			case *Contact:
				err = a.addContact(row, r.line)
			}
			if err != nil {
				return err
			}
			if n++; opt.Progress != nil && n%progressEvery == 0 {
				opt.Progress(Progress{Phase: PhaseApply, Rows: n})
			}
		}
		if chunk.err != nil {
			return chunk.err
		}
	}
	if err := a.flushOrders(); err != nil {
		return err
	}
	if err := a.flushContacts(); err != nil {
		return err
	}
	if err := a.waitWrite(); err != nil {
		return err
	}
	if res.Rejected > 0 && !opt.SkipBadRows {
		return &RejectedError{Rejected: res.Rejected, First: res.Errors}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("crm: apply: commit: %w", err)
	}
	if a.d == store.Postgres && res.Inserted+res.Updated >= analyzeAfterRows {
		// Give the planner the table's new size now rather than whenever
		// autovacuum gets to it: reports read these rows next.
		// Best effort: the import has committed, and autovacuum will
		// analyse the tables anyway.
		for _, table := range []string{"crm_orders", "crm_contacts"} {
			conn.ExecContext(context.WithoutCancel(ctx), `ANALYZE `+table)
		}
	}
	return nil
}

// analyzeAfterRows is how many changed rows make an import refresh the
// table statistics on PostgreSQL.
const analyzeAfterRows = 50_000

type spooledRow struct {
	row  any
	line int
}

type spoolChunk struct {
	rows []spooledRow
	err  error // the read error that ended the spool early
}

// readAhead decodes the spool in a goroutine and hands the rows over in
// chunks, until the spool ends or done is closed.
func readAhead(sr *spoolReader, done <-chan struct{}) <-chan spoolChunk {
	out := make(chan spoolChunk, 8)
	go func() {
		defer close(out)
		defer func() {
			if p := recover(); p != nil {
				select {
				case out <- spoolChunk{err: fmt.Errorf("crm: read spool: panic: %v", p)}:
				case <-done:
				}
			}
		}()
		for {
			var c spoolChunk
			for len(c.rows) < 512 {
				row, line, err := sr.next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					c.err = err
					break
				}
				c.rows = append(c.rows, spooledRow{row, line})
			}
			if len(c.rows) == 0 && c.err == nil {
				return
			}
			select {
			case out <- c:
			case <-done:
				return
			}
			if c.err != nil || len(c.rows) < 512 {
				return
			}
		}
	}()
	return out
}

func loadMultivalued(ctx context.Context, tx *sql.Tx, counterID int64) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT entity_type, name FROM crm_attributes WHERE counter_id = $1 AND multivalued`, counterID)
	if err != nil {
		return nil, fmt.Errorf("crm: load attributes: %w", err)
	}
	defer rows.Close()
	m := map[string]bool{}
	for rows.Next() {
		var entity, name string
		if err := rows.Scan(&entity, &name); err != nil {
			return nil, fmt.Errorf("crm: load attributes: %w", err)
		}
		m[entity+"/"+name] = true
	}
	return m, rows.Err()
}

func (a *applier) addOrder(o *Order, line int) error {
	if a.ids[o.ID] || len(a.orders) == batchRows {
		// A second row with the same id merges into the first one's
		// result: write the batch so far, then look it up like any other.
		if err := a.flushOrders(); err != nil {
			return err
		}
	}
	a.orders = append(a.orders, pendingOrder{o, line})
	a.ids[o.ID] = true
	return nil
}

func (a *applier) addContact(c *Contact, line int) error {
	if a.cids[c.UniqID] || len(a.contacts) == batchRows {
		if err := a.flushContacts(); err != nil {
			return err
		}
	}
	a.contacts = append(a.contacts, pendingContact{c, line})
	a.cids[c.UniqID] = true
	return nil
}

type storedOrder struct {
	o    *Order
	hash int64
}

func (a *applier) flushOrders() error {
	if len(a.orders) == 0 {
		return nil
	}
	batch := a.orders
	a.orders = a.orders[:0]
	clear(a.ids)
	ids := make([]string, 0, len(batch))
	for _, p := range batch {
		if a.fresh == nil || a.fresh.mayContain(p.o.ID) {
			ids = append(ids, p.o.ID)
		}
	}
	stored := map[string]storedOrder{}
	var same map[string]bool // rows whose content, as sent, is what is stored
	if len(ids) > 0 {
		if err := a.waitWrite(); err != nil { // the lookup must see every earlier row
			return err
		}
		var err error
		if a.opt.Mode == Save {
			// A re-sent feed is mostly unchanged rows: compare the hash of
			// each row as sent with the stored hash first, and read more of
			// the stored order only for the rows that differ.
			if same, ids, err = a.unchangedOrders(batch, ids); err != nil {
				return err
			}
		}
		if len(ids) > 0 {
			if stored, err = a.loadOrders(ids); err != nil {
				return err
			}
		}
	}
	var inserts, updates []*Order
	var insertHashes, updateHashes []int64
	var moved []pendingOrder // rows that add an order to a contact
	for _, p := range batch {
		if same[p.o.ID] {
			a.res.Unchanged++
			continue
		}
		prev, exists := stored[p.o.ID]
		m := mergeOrder(prev.o, p.o, a.opt.Mode, a.multivalued)
		a.deriveOrder(m, prev.o)
		var h int64
		h, a.buf = orderHash(m, a.buf)
		if exists && h == prev.hash {
			a.res.Unchanged++
			continue
		}
		m.ImportID, m.ChangedAt, m.ImportedAt = a.importID, a.now, a.now
		if m.ContactID != "" && (!exists || prev.o.ContactID != m.ContactID) {
			moved = append(moved, pendingOrder{m, p.line})
		}
		if exists {
			updates, updateHashes = append(updates, m), append(updateHashes, h)
		} else {
			inserts, insertHashes = append(inserts, m), append(insertHashes, h)
		}
		if a.fresh != nil {
			a.fresh.add(m.ID)
		}
	}
	if len(moved) > 0 {
		if err := a.waitWrite(); err != nil {
			return err
		}
		over, err := a.overContactLimit(moved)
		if err != nil {
			return err
		}
		if len(over) > 0 {
			inserts, insertHashes = dropOrders(inserts, insertHashes, over)
			updates, updateHashes = dropOrders(updates, updateHashes, over)
		}
	}
	a.res.Inserted += len(inserts)
	a.res.Updated += len(updates)
	if err := a.waitWrite(); err != nil {
		return err
	}
	// New and changed orders are to be matched (in this transaction: an
	// import that rolls back leaves the queue as it was).
	changed := make([]string, 0, len(inserts)+len(updates))
	for _, o := range inserts {
		changed = append(changed, o.ID)
	}
	for _, o := range updates {
		changed = append(changed, o.ID)
	}
	if err := matching.Enqueue(a.ctx, a.tx, a.d, a.counterID, changed, a.now); err != nil {
		return err
	}
	// Write this batch while the next one is read from the spool, merged
	// and hashed: the database and Go then work at the same time.
	a.writeAsync(func() error {
		if err := a.writeOrders(inserts, insertHashes, !a.useCopy()); err != nil {
			return err
		}
		return a.writeOrders(updates, updateHashes, true)
	})
	return nil
}

// writeAsync starts fn, a write on the import's connection, in the
// background. One write is in flight at a time, and nothing else uses the
// connection meanwhile: every other statement waits for it (waitWrite).
func (a *applier) writeAsync(fn func() error) {
	ch := make(chan error, 1)
	a.inflight = ch
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- fmt.Errorf("crm: write: panic: %v", p)
			}
		}()
		ch <- fn()
	}()
}

// waitWrite waits for the write in flight, if any, and returns its error.
func (a *applier) waitWrite() error {
	if a.inflight == nil {
		return nil
	}
	err := <-a.inflight
	a.inflight = nil
	return err
}

func (a *applier) useCopy() bool { return a.d == store.Postgres }

// unchangedOrders reads the stored hashes of ids and returns the rows of
// batch whose hash, as sent, equals the stored one — unchanged, whatever
// the stored order's other fields — and the ids still to look up in full.
func (a *applier) unchangedOrders(batch []pendingOrder, ids []string) (map[string]bool, []string, error) {
	rows, err := a.queryIDs(`order_id, row_hash`, "crm_orders", "order_id", ids)
	if err != nil {
		return nil, nil, fmt.Errorf("crm: look up %d orders: %w", len(ids), err)
	}
	hashes := make(map[string]int64, len(ids))
	for rows.Next() {
		var id string
		var h int64
		if err := rows.Scan(&id, &h); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("crm: look up orders: %w", err)
		}
		hashes[id] = h
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("crm: look up orders: %w", err)
	}
	same := map[string]bool{}
	var rest []string
	for _, p := range batch {
		stored, ok := hashes[p.o.ID]
		if !ok {
			continue // new: nothing more to read
		}
		m := *p.o
		a.deriveOrder(&m, nil)
		var h int64
		h, a.buf = orderHash(&m, a.buf)
		if h == stored {
			same[p.o.ID] = true
		} else {
			rest = append(rest, p.o.ID)
		}
	}
	return same, rest, nil
}

// loadOrders reads the stored orders with the given ids. In SAVE mode a row
// replaces the stored order, so only what survives it is read: the creation
// time (which never changes), the finish time and the content hash.
func (a *applier) loadOrders(ids []string) (map[string]storedOrder, error) {
	cols := orderColumns
	if a.opt.Mode == Save {
		cols = `order_id, contact_id, created_at, finished_at, row_hash`
	}
	rows, err := a.queryIDs(cols, "crm_orders", "order_id", ids)
	if err != nil {
		return nil, fmt.Errorf("crm: look up %d orders: %w", len(ids), err)
	}
	defer rows.Close()
	out := make(map[string]storedOrder, len(ids))
	for rows.Next() {
		var s storedOrder
		if a.opt.Mode == Save {
			s.o = &Order{}
			var finished sql.NullTime
			err = rows.Scan(&s.o.ID, &s.o.ContactID, &s.o.CreatedAt, &finished, &s.hash)
			s.o.FinishedAt = finished.Time
		} else {
			s.o, s.hash, err = scanOrder(rows)
		}
		if err != nil {
			return nil, fmt.Errorf("crm: look up orders: %w", err)
		}
		out[s.o.ID] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("crm: look up orders: %w", err)
	}
	return out, nil
}

// queryIDs selects columns of the counter's rows in table whose key is one
// of ids.
//
// On PostgreSQL each id probes the primary key on its own (a LATERAL
// subquery with LIMIT, which the planner cannot flatten into a join). The
// plain "key = ANY($2)" is planned from the table's statistics, and a table
// that grew since it was last analysed — a first import grows it from nothing
// inside its own transaction — looks tiny: the planner then reads all of the
// counter's rows once per batch, quadratic in the import (seen: 2 minutes
// for 300,000 rows). A probe by the whole primary key is right at any size.
func (a *applier) queryIDs(columns, table, key string, ids []string) (*sql.Rows, error) {
	if a.d == store.Postgres {
		return a.tx.QueryContext(a.ctx, `SELECT t.* FROM unnest($2::text[]) AS k(lookup_id)
			CROSS JOIN LATERAL (SELECT `+columns+` FROM `+table+`
				WHERE counter_id = $1 AND `+key+` = k.lookup_id LIMIT 1) AS t`, a.counterID, ids)
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, a.counterID)
	for _, id := range ids {
		args = append(args, id)
	}
	return a.tx.QueryContext(a.ctx, `SELECT `+columns+` FROM `+table+` WHERE counter_id = ? AND `+key+` IN (`+a.d.Params(2, len(ids))+`)`, args...)
}

// mergeOrder combines an uploaded row with its stored version (nil when new).
func mergeOrder(prev, row *Order, mode MergeMode, multivalued map[string]bool) *Order {
	m := *row
	if prev == nil {
		return &m
	}
	// The creation time of an order never changes once stored (Metrica's
	// rule); a row with another one is accepted and keeps the stored time.
	m.CreatedAt = prev.CreatedAt
	if mode == Save {
		return &m
	}
	m = *prev
	m.CreatedAt = prev.CreatedAt
	f := row.Has
	app := mode == Append
	if f&FContact != 0 {
		m.ContactID = row.ContactID
	}
	if f&FUpdatedAt != 0 {
		m.UpdatedAt = row.UpdatedAt
	}
	if f&FFinishedAt != 0 {
		m.FinishedAt = row.FinishedAt
	}
	if f&FStatus != 0 {
		m.Status = row.Status
	}
	if f&FRevenue != 0 {
		m.Revenue = row.Revenue
	}
	if f&FCost != 0 {
		m.Cost = row.Cost
	}
	if f&FMargin != 0 {
		m.Margin = row.Margin
	}
	if f&FItems != 0 {
		m.Items = row.Items
	}
	if f&FCurrency != 0 {
		m.Currency = row.Currency
	}
	if f&FComment != 0 {
		m.Comment = row.Comment
	}
	if f&FType != 0 {
		m.Type = row.Type
	} else {
		m.Type = "" // derived again (deriveOrder): the merged keys may say otherwise now
	}
	if f&FSID != 0 {
		m.SID = row.SID
	}
	if f&FCallerPhone != 0 {
		m.CallerPhone = row.CallerPhone
	}
	mergeList(&m.ClientIDs, row.ClientIDs, f&FClientIDs != 0, app)
	mergeList(&m.Phones, row.Phones, f&FPhones != 0, app)
	mergeList(&m.Emails, row.Emails, f&FEmails != 0, app)
	mergeList(&m.PhonesMD5, row.PhonesMD5, f&FPhonesMD5 != 0, app)
	mergeList(&m.EmailsMD5, row.EmailsMD5, f&FEmailsMD5 != 0, app)
	if f&FProducts != 0 {
		m.Products = row.Products
		if app { // the stored products stay; a product sent again takes the new quantity
			m.Products = make(map[string]float64, len(prev.Products)+len(row.Products))
			for id, q := range prev.Products {
				m.Products[id] = q
			}
			for id, q := range row.Products {
				m.Products[id] = q
			}
		}
	}
	if f&FGoals != 0 {
		m.Goals = row.Goals
		if app { // the stored goals stay; a goal sent again takes the new price
			m.Goals = append([]Goal(nil), prev.Goals...)
			for _, g := range row.Goals {
				if i := slices.IndexFunc(m.Goals, func(have Goal) bool { return have.ID == g.ID }); i >= 0 {
					m.Goals[i] = g
				} else {
					m.Goals = append(m.Goals, g)
				}
			}
		}
	}
	if f&FAttributes != 0 {
		m.Attributes = mergeAttributes(prev.Attributes, row.Attributes, app, "ORDER", multivalued)
	}
	m.Has = prev.Has | row.Has
	m.IDGenerated = row.IDGenerated
	return &m
}

func mergeList(dst *[]string, vals []string, present, app bool) {
	switch {
	case !present:
	case app:
		*dst = union(*dst, vals)
	default:
		*dst = vals
	}
}

// mergeAttributes: in UPDATE the attributes a row names replace the stored
// ones; in APPEND a multi-valued attribute gains the new values.
func mergeAttributes(prev, row map[string][]string, app bool, entity string, multivalued map[string]bool) map[string][]string {
	out := make(map[string][]string, len(prev)+len(row))
	for k, v := range prev {
		out[k] = v
	}
	for k, v := range row {
		if app && multivalued[entity+"/"+k] {
			out[k] = union(out[k], v)
		} else {
			out[k] = v
		}
	}
	return out
}

// deriveOrder fills what an order's fields imply.
func (a *applier) deriveOrder(m, prev *Order) {
	if m.Currency == "" {
		m.Currency = "RUB" // Metrica: no currency means roubles
	}
	if m.Type == "" {
		m.Type = "offline"
		if m.SID != "" || len(m.ClientIDs) > 0 {
			m.Type = "online" // the K50 rule: an order with sid or uuid came from the site
		}
	}
	m.StatusType = a.statuses.resolve(m.Status)
	m.Intake = a.opt.Intake
	// Metrica: an order without a finish time is finished when it is first
	// uploaded in a paid status. (The K50 feed has no such notion.)
	if m.FinishedAt.IsZero() && m.StatusType == Paid && a.opt.Intake != K50Feed {
		if prev != nil && !prev.FinishedAt.IsZero() {
			m.FinishedAt = prev.FinishedAt
		} else {
			m.FinishedAt = a.now
		}
	}
}

// overContactLimit finds the rows that would give a contact more orders than
// the limit, reports them as rejected, and returns their ids.
func (a *applier) overContactLimit(moved []pendingOrder) (map[string]bool, error) {
	limit := a.opt.MaxOrdersPerContact
	if limit <= 0 {
		limit = DefaultMaxOrdersPerContact
	}
	var contacts []string
	counts := map[string]int{} // also the set of contacts listed (a batch has thousands)
	for _, p := range moved {
		if _, ok := counts[p.o.ContactID]; !ok {
			counts[p.o.ContactID] = 0
			contacts = append(contacts, p.o.ContactID)
		}
	}
	rows, err := a.countByContact(contacts)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		var n int
		if err := rows.Scan(&c, &n); err != nil {
			return nil, fmt.Errorf("crm: count orders per contact: %w", err)
		}
		counts[c] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("crm: count orders per contact: %w", err)
	}
	over := map[string]bool{}
	for _, p := range moved {
		counts[p.o.ContactID]++
		if counts[p.o.ContactID] > limit {
			over[p.o.ID] = true
			a.res.reject(&RowError{Line: p.line, Column: "client_uniq_id",
				Message: fmt.Sprintf("contact %q would have more than %d orders (Metrica's limit per customer)", p.o.ContactID, limit)})
		}
	}
	return over, nil
}

func (a *applier) countByContact(contacts []string) (*sql.Rows, error) {
	var rows *sql.Rows
	var err error
	if a.d == store.Postgres {
		rows, err = a.tx.QueryContext(a.ctx, `SELECT k.lookup_id, c.n FROM unnest($2::text[]) AS k(lookup_id)
			CROSS JOIN LATERAL (SELECT count(*) AS n FROM crm_orders
				WHERE counter_id = $1 AND contact_id = k.lookup_id AND contact_id <> '') AS c`, a.counterID, contacts)
	} else {
		args := []any{a.counterID}
		for _, c := range contacts {
			args = append(args, c)
		}
		rows, err = a.tx.QueryContext(a.ctx, `SELECT contact_id, count(*) FROM crm_orders
			WHERE counter_id = ? AND contact_id IN (`+a.d.Params(2, len(contacts))+`) AND contact_id <> '' GROUP BY contact_id`, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("crm: count orders per contact: %w", err)
	}
	return rows, nil
}

func dropOrders(os []*Order, hashes []int64, drop map[string]bool) ([]*Order, []int64) {
	var keptO []*Order
	var keptH []int64
	for i, o := range os {
		if !drop[o.ID] {
			keptO, keptH = append(keptO, o), append(keptH, hashes[i])
		}
	}
	return keptO, keptH
}

// writeOrders stores orders: with upsert as INSERT … ON CONFLICT DO UPDATE
// (the first import time stays), otherwise with COPY (PostgreSQL only).
func (a *applier) writeOrders(os []*Order, hashes []int64, upsert bool) error {
	if len(os) == 0 {
		return nil
	}
	if !upsert {
		rows := make([][]any, len(os))
		for i, o := range os {
			rows[i] = orderArgs(make([]any, 0, orderColumnCount+1), a.counterID, o, hashes[i])
		}
		return a.copy("crm_orders", "counter_id, "+orderColumns, rows)
	}
	for start := 0; start < len(os); start += rowsPerStatement {
		end := min(start+rowsPerStatement, len(os))
		args := make([]any, 0, (end-start)*(orderColumnCount+1))
		for i := start; i < end; i++ {
			args = orderArgs(args, a.counterID, os[i], hashes[i])
		}
		st, err := a.stmt(end-start, orderUpsertSQL, orderColumnCount+1)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(a.ctx, args...); err != nil {
			return fmt.Errorf("crm: write %d orders: %w", end-start, err)
		}
	}
	return nil
}

func orderUpsertSQL(values string) string {
	return `INSERT INTO crm_orders (counter_id, ` + orderColumns + `) VALUES ` + values + `
		ON CONFLICT (counter_id, order_id) DO UPDATE SET ` + excludedSet(orderColumns, "order_id", "imported_at")
}

// excludedSet writes "col = excluded.col, …" for each column but the skipped ones.
func excludedSet(columns string, skip ...string) string {
	var sets []string
	for c := range strings.SplitSeq(columns, ",") {
		c = strings.TrimSpace(c)
		if !slices.Contains(skip, c) {
			sets = append(sets, c+" = excluded."+c)
		}
	}
	return strings.Join(sets, ", ")
}

// stmt prepares (once per transaction) a multi-row statement of n rows.
// Distinct statements are few: full batches, and one last partial batch.
func (a *applier) stmt(n int, sqlFor func(values string) string, cols int) (*sql.Stmt, error) {
	key := n*1000 + cols
	if st, ok := a.stmts[key]; ok {
		return st, nil
	}
	st, err := a.tx.PrepareContext(a.ctx, sqlFor(a.d.Values(n, cols)))
	if err != nil {
		return nil, fmt.Errorf("crm: prepare: %w", err)
	}
	if len(a.stmts) > 16 { // partial batches of every size: do not hoard them
		for k, old := range a.stmts {
			old.Close()
			delete(a.stmts, k)
		}
	}
	a.stmts[key] = st
	return st, nil
}

// copy bulk-loads rows with PostgreSQL's COPY, inside the transaction.
func (a *applier) copy(table, columns string, rows [][]any) error {
	var cols []string
	for c := range strings.SplitSeq(columns, ",") {
		cols = append(cols, strings.TrimSpace(c))
	}
	err := a.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("not a pgx connection: %T", dc)
		}
		_, err := c.Conn().CopyFrom(a.ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return fmt.Errorf("crm: copy %d rows into %s: %w", len(rows), table, err)
	}
	return nil
}

type storedContact struct {
	c    *Contact
	hash int64
}

func (a *applier) flushContacts() error {
	if len(a.contacts) == 0 {
		return nil
	}
	if err := a.waitWrite(); err != nil {
		return err
	}
	batch := a.contacts
	a.contacts = a.contacts[:0]
	clear(a.cids)
	ids := make([]string, len(batch))
	for i, p := range batch {
		ids[i] = p.c.UniqID
	}
	rows, err := a.queryIDs(contactColumns, "crm_contacts", "uniq_id", ids)
	if err != nil {
		return fmt.Errorf("crm: look up %d contacts: %w", len(ids), err)
	}
	stored := map[string]storedContact{}
	for rows.Next() {
		c, h, err := scanContact(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("crm: look up contacts: %w", err)
		}
		stored[c.UniqID] = storedContact{c, h}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("crm: look up contacts: %w", err)
	}
	var args []any
	var changed []string // uniq ids: their contacts' orders may match differently now
	n := 0
	write := func() error {
		if n == 0 {
			return nil
		}
		st, err := a.stmt(n, contactUpsertSQL, contactColumnCount+1)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(a.ctx, args...); err != nil {
			return fmt.Errorf("crm: write %d contacts: %w", n, err)
		}
		args, n = args[:0], 0
		return nil
	}
	for _, p := range batch {
		prev, exists := stored[p.c.UniqID]
		m := mergeContact(prev.c, p.c, a.opt.Mode, a.multivalued)
		var h int64
		h, a.buf = contactHash(m, a.buf)
		if exists && h == prev.hash {
			a.res.Unchanged++
			continue
		}
		if exists {
			a.res.Updated++
		} else {
			a.res.Inserted++
		}
		m.ImportID, m.ChangedAt, m.ImportedAt = a.importID, a.now, a.now
		args = contactArgs(args, a.counterID, m, h)
		changed = append(changed, m.UniqID)
		if n++; n == rowsPerStatement {
			if err := write(); err != nil {
				return err
			}
		}
	}
	if err := write(); err != nil {
		return err
	}
	return matching.EnqueueByKeys(a.ctx, a.tx, a.d, a.counterID, matching.KeyContact, changed, a.now)
}

func contactUpsertSQL(values string) string {
	return `INSERT INTO crm_contacts (counter_id, ` + contactColumns + `) VALUES ` + values + `
		ON CONFLICT (counter_id, uniq_id) DO UPDATE SET ` + excludedSet(contactColumns, "uniq_id", "imported_at")
}

func mergeContact(prev, row *Contact, mode MergeMode, multivalued map[string]bool) *Contact {
	m := *row
	if prev == nil {
		return &m
	}
	keepCreated := func() {
		if !prev.CreatedAt.IsZero() {
			m.CreatedAt = prev.CreatedAt // never changes once set (Metrica)
		}
	}
	if mode == Save {
		keepCreated()
		return &m
	}
	m = *prev
	f := row.Has
	app := mode == Append
	if f&FName != 0 {
		m.Name = row.Name
	}
	if f&FCreatedAt != 0 {
		m.CreatedAt = row.CreatedAt
	}
	keepCreated()
	if f&FUpdatedAt != 0 {
		m.UpdatedAt = row.UpdatedAt
	}
	mergeList(&m.ClientIDs, row.ClientIDs, f&FClientIDs != 0, app)
	mergeList(&m.UserIDs, row.UserIDs, f&FUserIDs != 0, app)
	mergeList(&m.Phones, row.Phones, f&FPhones != 0, app)
	mergeList(&m.Emails, row.Emails, f&FEmails != 0, app)
	mergeList(&m.PhonesMD5, row.PhonesMD5, f&FPhonesMD5 != 0, app)
	mergeList(&m.EmailsMD5, row.EmailsMD5, f&FEmailsMD5 != 0, app)
	if f&FBirthDate != 0 {
		m.BirthDate = row.BirthDate
	}
	if f&FCompany != 0 {
		m.CompanyID = row.CompanyID
	}
	if f&FComment != 0 {
		m.Comment = row.Comment
	}
	if f&FAttributes != 0 {
		m.Attributes = mergeAttributes(prev.Attributes, row.Attributes, app, "CONTACT", multivalued)
	}
	m.Has = prev.Has | row.Has
	return &m
}
