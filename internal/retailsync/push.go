package retailsync

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/retailcrm"
	"github.com/throughline/throughline/internal/store"
)

// Push statuses and outcomes.
const (
	statusPending = "pending"
	statusDone    = "done"
	statusFailed  = "failed"

	OutcomeCreated       = "created_order"  // a new order (no order, or the newest closed)
	OutcomeUpdated       = "updated_order"  // the newest open order got the lead's fields
	OutcomeAlreadyMarked = "already_marked" // the newest open order had them from an earlier lead
	OutcomeNoContact     = "no_contact"     // neither phone nor e-mail: nothing to look up
)

// pushBackoff is when a push that failed in a way that may pass is tried
// again; after the last it is failed (7 attempts over about 10 hours).
var pushBackoff = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour}

// scanOverlap is how far back each look for new calls and leads reaches
// behind the last one: a row is committed a little after its arrival time,
// and the primary key keeps the overlap from queueing anything twice.
const scanOverlap = 10 * time.Minute

// callWait is how long a push waits for its call to end (the pushed data is
// final then); a call reported without an end is pushed after it anyway.
const callWait = 3 * time.Hour

// enqueue puts the calls and leads that arrived since the last look into
// every connection's outbox — whatever the connection's state, so that
// nothing is lost while it is set up or failing. Only incoming calls count.
func (w *Worker) enqueue(ctx context.Context) error {
	now := w.now()
	rows, err := w.DB.Reader().QueryContext(ctx, `SELECT counter_id, connected_at, scanned_to FROM retailcrm_integrations ORDER BY counter_id`)
	if err != nil {
		return fmt.Errorf("retailsync: outbox: %w", err)
	}
	type conn struct {
		id       int64
		from, to time.Time
	}
	var list []conn
	for rows.Next() {
		var c conn
		if err := rows.Scan(&c.id, &c.from, &c.to); err != nil {
			rows.Close()
			return fmt.Errorf("retailsync: outbox: %w", err)
		}
		list = append(list, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("retailsync: outbox: %w", err)
	}
	for _, c := range list {
		from := c.from
		if t := c.to.Add(-scanOverlap); t.After(from) {
			from = t
		}
		err := w.DB.Tx(ctx, func(tx *sql.Tx) error {
			// "WHERE" before ON CONFLICT keeps SQLite from reading the
			// conflict clause as a join's.
			if _, err := tx.ExecContext(ctx, `INSERT INTO retailcrm_pushes (counter_id, kind, lead_id, lead_type, arrived_at,
					status, due_at, attempts, outcome, customer_created, error, updated_at)
				SELECT counter_id, 'call', id, 'call', created_at, 'pending', created_at, 0, '', false, '', $4 FROM calls
				WHERE counter_id = $1 AND created_at >= $2 AND created_at < $3 AND direction IN ('in', '')
				ON CONFLICT DO NOTHING`, c.id, from, now, now); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO retailcrm_pushes (counter_id, kind, lead_id, lead_type, arrived_at,
					status, due_at, attempts, outcome, customer_created, error, updated_at)
				SELECT counter_id, 'lead', id, type, received_at, 'pending', received_at, 0, '', false, '', $4 FROM leads
				WHERE counter_id = $1 AND received_at >= $2 AND received_at < $3
				ON CONFLICT DO NOTHING`, c.id, from, now, now); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE retailcrm_integrations SET scanned_to = $2 WHERE counter_id = $1 AND scanned_to < $2`, c.id, now)
			return err
		})
		if err != nil {
			return fmt.Errorf("retailsync: counter %d: outbox: %w", c.id, err)
		}
	}
	return nil
}

// push is a claimed row of the outbox.
type push struct {
	counterID int64
	kind      string // call, lead
	leadID    int64
	leadType  string
	arrivedAt time.Time
	attempts  int // this one included
	lease     time.Time
}

// key is the lead's id as written to the order's tl_lead_id field: calls
// and leads are numbered apart, so the kind is part of it.
func (p *push) key() string { return p.kind + "-" + strconv.FormatInt(p.leadID, 10) }

// result is what a push did.
type result struct {
	outcome         string
	customerID      int64
	customerCreated bool
	orderID         int64
}

// pushes claims due rows of active connections and pushes them one at a
// time: the account's rate limit is the bound, and one at a time keeps two
// leads of the same new customer from creating it twice. When an account
// is rate limiting or down, the rest of its rows go back and the account's
// pushes wait (push_after); rows not reached (shutdown, an error) go back
// at once.
func (w *Worker) pushes(ctx context.Context) error {
	for ctx.Err() == nil {
		now := w.now()
		claimed, err := w.claimPushes(ctx, now)
		if err != nil || len(claimed) == 0 {
			return err
		}
		conns := map[int64]*Integration{}
		paused := map[int64]time.Time{}
		for i, p := range claimed {
			if ctx.Err() != nil {
				return w.putBackAll(ctx, claimed[i:], w.now())
			}
			if until, ok := paused[p.counterID]; ok {
				if err := w.putBack(ctx, p, until, false); err != nil {
					return errors.Join(err, w.putBackAll(ctx, claimed[i+1:], w.now()))
				}
				continue
			}
			in, ok := conns[p.counterID]
			if !ok {
				in, err = get(ctx, w.DB.Reader(), p.counterID)
				if err != nil && !errors.Is(err, ErrNotFound) {
					return errors.Join(err, w.putBackAll(ctx, claimed[i:], w.now()))
				}
				conns[p.counterID] = in
			}
			if in == nil || in.State != StateActive {
				// Disconnected or failed since the claim: wait for it.
				if err := w.putBack(ctx, p, now.Add(w.Delay), false); err != nil {
					return errors.Join(err, w.putBackAll(ctx, claimed[i+1:], w.now()))
				}
				continue
			}
			// pushOne marks in failed when the connection breaks, so the
			// rest of the batch waits.
			pause, err := w.pushOne(ctx, in, p)
			if err != nil {
				return errors.Join(err, w.putBackAll(ctx, claimed[i+1:], w.now()))
			}
			if !pause.IsZero() {
				paused[p.counterID] = pause
			}
		}
		if len(claimed) < w.Batch {
			return nil
		}
	}
	return nil
}

// putBackAll returns claimed rows that were not tried.
func (w *Worker) putBackAll(ctx context.Context, list []*push, due time.Time) error {
	var errs []error
	for _, p := range list {
		errs = append(errs, w.putBack(ctx, p, due, false))
	}
	return errors.Join(errs...)
}

// claimPushes takes due pushes for this process by moving their due_at to
// the end of a lease and counting the attempt. SKIP LOCKED lets two
// PostgreSQL processes claim side by side; SQLite has one writer anyway.
func (w *Worker) claimPushes(ctx context.Context, now time.Time) ([]*push, error) {
	until := now.Add(lease)
	lock := ""
	if w.DB.Dialect() == store.Postgres {
		lock = " FOR UPDATE OF p SKIP LOCKED"
	}
	rows, err := w.DB.Writer().QueryContext(ctx, `UPDATE retailcrm_pushes SET due_at = $2, attempts = attempts + 1
		WHERE (counter_id, kind, lead_id) IN (
			SELECT p.counter_id, p.kind, p.lead_id FROM retailcrm_pushes p
			WHERE p.status = 'pending' AND p.due_at <= $1 AND p.arrived_at <= $3
				AND EXISTS (SELECT 1 FROM retailcrm_integrations i WHERE i.counter_id = p.counter_id AND i.state = 'active'
					AND (i.push_after IS NULL OR i.push_after <= $1))
			ORDER BY p.due_at, p.counter_id, p.kind, p.lead_id
			LIMIT $4`+lock+`)
		RETURNING counter_id, kind, lead_id, lead_type, arrived_at, attempts`, now, until, now.Add(-w.Delay), w.Batch)
	if err != nil {
		return nil, fmt.Errorf("retailsync: claim pushes: %w", err)
	}
	defer rows.Close()
	var out []*push
	for rows.Next() {
		p := &push{lease: until}
		if err := rows.Scan(&p.counterID, &p.kind, &p.leadID, &p.leadType, &p.arrivedAt, &p.attempts); err != nil {
			return nil, fmt.Errorf("retailsync: claim pushes: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("retailsync: claim pushes: %w", err)
	}
	return out, nil
}

// reclaim renews the claim on p just before it is pushed: a batch can take
// longer than a lease, and a row whose lease ran out may have been taken
// by another process. It reports false when the row is no longer ours.
func (w *Worker) reclaim(ctx context.Context, p *push) (bool, error) {
	until := w.now().Add(lease)
	res, err := w.DB.Writer().ExecContext(ctx, `UPDATE retailcrm_pushes SET due_at = $4
		WHERE counter_id = $1 AND kind = $2 AND lead_id = $3 AND status = 'pending' AND due_at = $5`,
		p.counterID, p.kind, p.leadID, until, p.lease)
	if err != nil {
		return false, fmt.Errorf("retailsync: renew the claim on push %s of counter %d: %w", p.key(), p.counterID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return false, err
	}
	p.lease = until
	return true, nil
}

// pushOne pushes a claimed row and records the outcome. A broken
// connection marks in failed (and in.State so). When the account is rate
// limiting or unavailable it returns when the account's pushes may go on.
func (w *Worker) pushOne(ctx context.Context, in *Integration, p *push) (time.Time, error) {
	ok, err := w.reclaim(ctx, p)
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		w.Log.Warn("retailcrm push skipped: its claim ran out and another process took it", "counter", p.counterID, "lead", p.key())
		return time.Time{}, nil
	}
	now := w.now()
	l, err := loadLead(ctx, w.DB, p)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, w.record(ctx, p, statusFailed, now, result{}, "the "+p.kind+" no longer exists")
	}
	if err != nil {
		return time.Time{}, errors.Join(err, w.putBack(ctx, p, now, false))
	}
	if p.kind == "call" && !l.ended && now.Sub(p.arrivedAt) < callWait {
		return time.Time{}, w.putBack(ctx, p, now.Add(time.Minute), false) // its data is final once it ends
	}
	var res result
	c, err := w.client(in)
	if err == nil {
		res, err = w.pushLead(ctx, c, in, p, l)
	}
	now = w.now()
	switch {
	case err == nil:
		w.Log.Info("retailcrm push", "counter", p.counterID, "lead", p.key(), "outcome", res.outcome,
			"customer", res.customerID, "customer_created", res.customerCreated, "order", res.orderID)
		return time.Time{}, w.record(ctx, p, statusDone, now, res, "")
	case ctx.Err() != nil:
		// A request may have gone out: the attempt counts, so the next
		// one looks the order up by our lead id first.
		return time.Time{}, w.putBack(ctx, p, now, true)
	case broken(err):
		in.State = StateFailed
		return time.Time{}, errors.Join(w.putBack(ctx, p, now.Add(w.Delay), true), w.fail(ctx, p.counterID, err))
	case retailcrm.Retryable(err) && p.attempts <= len(pushBackoff):
		w.Log.Warn("retailcrm push failed; will retry", "counter", p.counterID, "lead", p.key(), "attempt", p.attempts, "err", err)
		due := now.Add(pushBackoff[p.attempts-1])
		if err := w.record(ctx, p, statusPending, due, res, describe(err)); err != nil {
			return time.Time{}, err
		}
		if errors.Is(err, retailcrm.ErrRateLimited) || errors.Is(err, retailcrm.ErrUnavailable) {
			// The account, not the lead: its other pushes wait too.
			return due, w.pauseAccount(ctx, p.counterID, due)
		}
		return time.Time{}, nil
	default:
		w.Log.Warn("retailcrm push failed", "counter", p.counterID, "lead", p.key(), "attempt", p.attempts, "err", err)
		return time.Time{}, w.record(ctx, p, statusFailed, now, res, describe(err))
	}
}

// pauseAccount keeps the account's pushes from being claimed before until.
func (w *Worker) pauseAccount(ctx context.Context, counterID int64, until time.Time) error {
	_, err := w.DB.Writer().ExecContext(context.WithoutCancel(ctx), `UPDATE retailcrm_integrations SET push_after = $2
		WHERE counter_id = $1`, counterID, until)
	if err != nil {
		return fmt.Errorf("retailsync: counter %d: pause pushes: %w", counterID, err)
	}
	return nil
}

// record writes a push's outcome, if the row is still this process's
// claim; when it is not, the outcome is lost and that is an error.
func (w *Worker) record(ctx context.Context, p *push, status string, due time.Time, r result, msg string) error {
	var customer, order any
	if r.customerID != 0 {
		customer = r.customerID
	}
	if r.orderID != 0 {
		order = r.orderID
	}
	// The push happened: its outcome is written even when shutting down.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	res, err := w.DB.Writer().ExecContext(ctx, `UPDATE retailcrm_pushes SET status = $4, due_at = $5, outcome = $6, customer_id = $7,
			customer_created = $8, order_id = $9, error = $10, updated_at = $11
		WHERE counter_id = $1 AND kind = $2 AND lead_id = $3 AND status = 'pending' AND due_at = $12`,
		p.counterID, p.kind, p.leadID, status, due, r.outcome, customer, r.customerCreated, order, msg, w.now(), p.lease)
	if err != nil {
		return fmt.Errorf("retailsync: record push %s of counter %d: %w", p.key(), p.counterID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		w.Log.Error("retailcrm push outcome not recorded: the claim was lost", "counter", p.counterID, "lead", p.key(), "outcome", r.outcome, "order", r.orderID)
		return fmt.Errorf("retailsync: record push %s of counter %d (outcome %q, order %d): %w", p.key(), p.counterID, r.outcome, r.orderID, errLeaseLost)
	}
	return nil
}

// putBack returns a claimed row unpushed, due at due. The attempt is not
// counted when no request was sent for it; once one may have been, it
// is (so the next attempt looks the order up first).
func (w *Worker) putBack(ctx context.Context, p *push, due time.Time, sent bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	undo := 1
	if sent {
		undo = 0
	}
	res, err := w.DB.Writer().ExecContext(ctx, `UPDATE retailcrm_pushes SET due_at = $4, attempts = attempts - $6
		WHERE counter_id = $1 AND kind = $2 AND lead_id = $3 AND status = 'pending' AND due_at = $5`,
		p.counterID, p.kind, p.leadID, due, p.lease, undo)
	if err != nil {
		return fmt.Errorf("retailsync: put push %s of counter %d back: %w", p.key(), p.counterID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("retailsync: put push %s of counter %d back: %w", p.key(), p.counterID, errLeaseLost)
	}
	return nil
}

// lead is what a push sends of a call or a lead.
type lead struct {
	typ                     string // call, form, chat, email, callback
	phone, email            string // normalised
	name, subject, comment  string
	ended                   bool
	source, medium          string
	campaign, content, term string
}

// loadLead reads the call or lead of p, with the UTM tags of its session
// (or its traffic source when the session had none).
func loadLead(ctx context.Context, db *store.DB, p *push) (*lead, error) {
	l := &lead{typ: p.leadType}
	var src, med, camp, us, um, uc, uco, ut sql.Null[string]
	var err error
	if p.kind == "call" {
		err = db.Reader().QueryRowContext(ctx, `SELECT c.caller, c.ended, c.source, c.medium, c.campaign,
				s.utm_source, s.utm_medium, s.utm_campaign, s.utm_content, s.utm_term
			FROM calls c LEFT JOIN sessions s ON s.counter_id = c.counter_id AND s.sid = c.sid AND c.sid <> ''
			WHERE c.counter_id = $1 AND c.id = $2`, p.counterID, p.leadID).
			Scan(&l.phone, &l.ended, &src, &med, &camp, &us, &um, &uc, &uco, &ut)
	} else {
		l.ended = true
		err = db.Reader().QueryRowContext(ctx, `SELECT l.phone, l.email, l.name, l.subject, l.comment, l.source, l.medium, l.campaign,
				s.utm_source, s.utm_medium, s.utm_campaign, s.utm_content, s.utm_term
			FROM leads l LEFT JOIN sessions s ON s.counter_id = l.counter_id AND s.sid = l.sid AND l.sid <> ''
			WHERE l.counter_id = $1 AND l.id = $2`, p.counterID, p.leadID).
			Scan(&l.phone, &l.email, &l.name, &l.subject, &l.comment, &src, &med, &camp, &us, &um, &uc, &uco, &ut)
	}
	if err != nil {
		return nil, err
	}
	if us.V != "" || um.V != "" || uc.V != "" {
		l.source, l.medium, l.campaign, l.content, l.term = us.V, um.V, uc.V, uco.V, ut.V
	} else {
		l.source, l.medium, l.campaign = src.V, med.V, camp.V
	}
	return l, nil
}

// pushLead is the seed's procedure (spec §12.2): find or create the
// customer, then create an order or mark the newest open one once.
func (w *Worker) pushLead(ctx context.Context, c *retailcrm.Client, in *Integration, p *push, l *lead) (result, error) {
	if l.phone == "" && l.email == "" {
		return result{outcome: OutcomeNoContact}, nil
	}
	fields := w.orderFields(in, p, l)
	if p.attempts > 1 {
		// An earlier attempt may have created or marked the order and
		// stopped before recording it (spec §10.6).
		o, ok, err := orderOfLead(ctx, c, in, p)
		if err != nil {
			return result{}, err
		}
		if ok {
			r := result{outcome: OutcomeCreated, orderID: o.ID, customerID: customerOf(o)}
			if o.CreatedAt.Before(p.arrivedAt) {
				r.outcome = OutcomeUpdated // it was there before the lead
			}
			return r, nil
		}
	}
	res := result{}
	cust, ok, err := findCustomer(ctx, c, l)
	if err != nil {
		return res, err
	}
	if ok {
		res.customerID = cust.ID
	} else {
		id, err := c.CustomerCreate(ctx, in.Site, retailcrm.NewCustomer{FirstName: customerName(in.Names, l), Email: l.email, Phones: phones(l)})
		var ae *retailcrm.APIError
		if errors.As(err, &ae) && ae.MaybeApplied {
			// Created or not: the next attempt looks the customer up again.
			return res, err
		}
		if err != nil {
			return res, err
		}
		res.customerID, res.customerCreated = id, true
	}
	newest, ok, err := newestOrder(ctx, c, res.customerID)
	if err != nil {
		return res, err
	}
	closed := false
	for _, s := range in.ClosedStatuses {
		closed = closed || ok && newest.Status == s
	}
	switch {
	case ok && !closed && hasField(newest, FieldSiteID):
		res.outcome, res.orderID = OutcomeAlreadyMarked, newest.ID
		return res, nil
	case ok && !closed:
		patch := map[string]any{"customFields": fields}
		if newest.Source.IsZero() {
			// Never overwrite the shop's own attribution (spec §12.2.6).
			if s := source(l); s != nil {
				patch["source"] = s
			}
		}
		if _, err := c.OrderEdit(ctx, newest.Site, newest.ID, patch); err != nil {
			return res, err
		}
		res.outcome, res.orderID = OutcomeUpdated, newest.ID
		return res, nil
	}
	o, err := c.OrderCreate(ctx, in.Site, retailcrm.NewOrder{
		Customer: &retailcrm.EntityRef{ID: res.customerID}, FirstName: customerName(in.Names, l),
		Phone: l.phone, Email: l.email, CustomerComment: l.comment, Source: source(l), CustomFields: fields,
	})
	if err != nil {
		return res, err // MaybeApplied: the next attempt looks the order up first
	}
	res.outcome, res.orderID = OutcomeCreated, o.ID
	return res, nil
}

// orderFields are the custom fields a push writes (spec §12.1); empty UTM
// tags are left out.
func (w *Worker) orderFields(in *Integration, p *push, l *lead) map[string]any {
	f := map[string]any{FieldSiteID: strconv.FormatInt(in.counterID, 10), FieldLeadID: p.key()}
	for code, v := range map[string]string{"utm_source": l.source, "utm_medium": l.medium, "utm_campaign": l.campaign,
		"utm_content": l.content, "utm_term": l.term} {
		if v != "" {
			f[code] = v
		}
	}
	return f
}

// source is the lead's UTM tags as RetailCRM's own order fields.
func source(l *lead) *retailcrm.Source {
	s := retailcrm.Source{Source: l.source, Medium: l.medium, Campaign: l.campaign, Content: l.content, Keyword: l.term}
	if s.IsZero() {
		return nil
	}
	return &s
}

func phones(l *lead) []retailcrm.Phone {
	if l.phone == "" {
		return nil
	}
	return []retailcrm.Phone{{Number: "+" + l.phone}}
}

// orderOfLead finds the order that carries the lead's id, written by this
// counter: the filter's matching is not confirmed (spec §14.6), so the
// values are checked.
func orderOfLead(ctx context.Context, c *retailcrm.Client, in *Integration, p *push) (retailcrm.Order, bool, error) {
	list, _, err := c.Orders(ctx, retailcrm.OrdersFilter{CustomFields: map[string]string{FieldLeadID: p.key()}}, 1, 20)
	if err != nil {
		return retailcrm.Order{}, false, err
	}
	site := strconv.FormatInt(in.counterID, 10)
	for _, o := range list {
		key, _ := o.CustomFields.String(FieldLeadID)
		owner, _ := o.CustomFields.String(FieldSiteID)
		if key == p.key() && owner == site {
			return o, true, nil
		}
	}
	return retailcrm.Order{}, false, nil
}

func customerOf(o retailcrm.Order) int64 {
	if o.Customer != nil {
		return o.Customer.ID
	}
	return 0
}

// findCustomer finds the lead's customer: by phone when the lead has one,
// else by e-mail (seed 004); the API's search is loose, so only exact
// matches count; of several, the newest. A phone not found in its
// international form (79161234567) is looked for in the national one
// (89161234567), which customers are often stored with (spec §12.2).
func findCustomer(ctx context.Context, c *retailcrm.Client, l *lead) (retailcrm.Customer, bool, error) {
	if l.phone == "" {
		list, err := c.CustomersByEmail(ctx, l.email)
		if err != nil {
			return retailcrm.Customer{}, false, err
		}
		best, found := newestCustomer(list, l)
		return best, found, nil
	}
	forms := []string{l.phone}
	if len(l.phone) == 11 && strings.HasPrefix(l.phone, "7") {
		forms = append(forms, "8"+l.phone[1:])
	}
	for _, q := range forms {
		list, err := c.CustomersByPhone(ctx, q)
		if err != nil {
			return retailcrm.Customer{}, false, err
		}
		if best, found := newestCustomer(list, l); found {
			return best, true, nil
		}
	}
	return retailcrm.Customer{}, false, nil
}

func newestCustomer(list []retailcrm.Customer, l *lead) (retailcrm.Customer, bool) {
	var best retailcrm.Customer
	found := false
	for _, cu := range list {
		if !sameContact(cu, l) {
			continue
		}
		if !found || cu.CreatedAt.After(best.CreatedAt.Time) || cu.CreatedAt.Equal(best.CreatedAt.Time) && cu.ID > best.ID {
			best, found = cu, true
		}
	}
	return best, found
}

func sameContact(cu retailcrm.Customer, l *lead) bool {
	if l.phone == "" {
		e, err := normalize.Email(cu.Email)
		return err == nil && e == l.email
	}
	for _, ph := range cu.Phones {
		if n, err := normalize.Phone(ph.Number, normalize.DefaultRegion); err == nil && n == l.phone {
			return true
		}
	}
	return false
}

// newestOrder is the customer's newest order by creation, ties by id.
func newestOrder(ctx context.Context, c *retailcrm.Client, customerID int64) (retailcrm.Order, bool, error) {
	var best retailcrm.Order
	found := false
	err := c.EachOrderPage(ctx, retailcrm.OrdersFilter{CustomerID: customerID}, func(list []retailcrm.Order) error {
		for _, o := range list {
			if !found || o.CreatedAt.After(best.CreatedAt.Time) || o.CreatedAt.Equal(best.CreatedAt.Time) && o.ID > best.ID {
				best, found = o, true
			}
		}
		return nil
	})
	return best, found, err
}

func hasField(o retailcrm.Order, code string) bool {
	_, ok := o.CustomFields.String(code)
	return ok
}

// templates are the names of the customers a push creates (seed 004:
// «Звонок от <номер>», «<тема заявки> от <имя> <номер>», «Чат от <имя>
// <номер> <email>»), in the seed's Russian and in the spec's English.
var templates = map[string]struct{ call, chat, from, request string }{
	"ru": {call: "Звонок", chat: "Чат", from: "от", request: "Заявка"},
	"en": {call: "Call", chat: "Chat", from: "from", request: "Request"},
}

// customerName names a new customer after the lead: a call by its number; a
// request by its subject, the name and the phone (or the e-mail when it has
// no phone); a chat by the name, the phone and the e-mail.
func customerName(lang string, l *lead) string {
	t := templates[lang]
	phone := ""
	if l.phone != "" {
		phone = calltracking.Display(l.phone)
	}
	var parts []string
	switch {
	case l.typ == "call":
		parts = []string{t.call, t.from, phone}
	case l.typ == "chat":
		parts = []string{t.chat, t.from, l.name, phone, l.email}
	default:
		subject := cmp.Or(strings.TrimSpace(l.subject), t.request)
		contact := phone
		if contact == "" {
			contact = l.email
		}
		parts = []string{subject, t.from, l.name, contact}
	}
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}
