package retailsync

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/retailcrm"
)

// Intake names the orders pulled as deals, in crm_orders and the import
// log (whose source is "SYNC", whose origin is the account URL).
const Intake crm.Intake = "retailcrm_sync"

// LeadNotFound is the link of a deal no lead was found for: Calltouch puts
// this custom source («Лид не найден») in the deal's source, medium and
// campaign.
const LeadNotFound = "Lead not found"

// Attributes a deal carries on its order, beside the standard fields.
const (
	AttrNumber  = "retailcrm_number"  // the deal's name: the order number
	AttrManager = "retailcrm_manager" // the manager's name
	AttrFunnel  = "retailcrm_site"    // the deal's funnel: the store code
	AttrLead    = "retailcrm_lead"    // the link to a lead, in words, or LeadNotFound
)

// pullOverlap reaches each pull back behind the start of the last one: a
// change may be committed after its time, and clocks differ (spec §11.2).
const pullOverlap = 10 * time.Minute

// pullRetry is when a pull that failed is tried again (at most PullEvery).
const pullRetry = 5 * time.Minute

const pullDue = `state = 'active' AND next_pull_at <= $1`

func (w *Worker) pulls(ctx context.Context) error {
	now := w.now()
	list, err := w.due(ctx, pullDue, now)
	if err != nil {
		return err
	}
	var errs []error
	for _, in := range list {
		until, ok, err := w.claim(ctx, in.counterID, strings.ReplaceAll(pullDue, "$1", "$3"), now)
		if err != nil || !ok {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, w.pull(ctx, in, until))
	}
	return errors.Join(errs...)
}

// errLeaseLost means another process took over work this one held: it
// stops without recording anything.
var errLeaseLost = errors.New("retailsync: the lease ran out and another process took the work over")

// renew extends the lease on a connection (setup or pull) this process
// holds; it fails with errLeaseLost when the lease is no longer its own.
func (w *Worker) renew(ctx context.Context, counterID int64, until *time.Time) error {
	next := w.now().Add(lease)
	res, err := w.DB.Writer().ExecContext(ctx, `UPDATE retailcrm_integrations SET lease_until = $3
		WHERE counter_id = $1 AND lease_until = $2`, counterID, *until, next)
	if err != nil {
		return fmt.Errorf("retailsync: counter %d: renew lease: %w", counterID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("counter %d: %w", counterID, errLeaseLost)
	}
	*until = next
	return nil
}

// pull imports the orders as deals, in one crm.Import: a pull is stored
// whole or not at all. The first pull reads every order created before it
// started; later ones read the orders the order history shows were created
// or changed status since (like Calltouch's deals, an order's revenue is
// refreshed only when its status changes). The history is walked by
// sinceId — records are only ever appended, so nothing can shift under the
// walk — and the changed orders are then read by id.
func (w *Worker) pull(ctx context.Context, in *Integration, until time.Time) error {
	// The next pull is due PullEvery after this one started, however long
	// this one takes.
	start := w.now()
	r := &dealReader{ctx: ctx, w: w, in: in, until: until, start: start, users: map[int64]string{}, history: in.historyCursor}
	err := w.reloadReference(ctx, in)
	if err == nil {
		r.c, err = w.client(in)
	}
	if err == nil {
		// A deal without a currency is in the account's (cached with its
		// settings, so no extra request).
		r.currency, err = r.c.DefaultCurrency(ctx)
	}
	if err == nil {
		_, err = crm.Import(ctx, w.DB, in.counterID, crm.Options{Intake: Intake, Format: "JSON", Source: "SYNC", Origin: in.URL,
			Mode: crm.Save, SkipBadRows: true}, func() (crm.RowReader, error) { return r, nil })
	}
	now := w.now()
	if err == nil {
		var res sql.Result
		res, err = w.DB.Writer().ExecContext(ctx, `UPDATE retailcrm_integrations SET pull_cursor = $3, history_cursor = $4,
				last_pull_at = $5, next_pull_at = $6, pull_error = '', lease_until = NULL
			WHERE counter_id = $1 AND lease_until = $2`, in.counterID, r.until, start, r.history, now, start.Add(w.PullEvery))
		if err != nil {
			return fmt.Errorf("retailsync: counter %d: record pull: %w", in.counterID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			// The deals are stored (idempotently); the cursor is the
			// other process's to move.
			return fmt.Errorf("retailsync: counter %d: record pull: %w", in.counterID, errLeaseLost)
		}
		w.Log.Info("retailcrm pull", "counter", in.counterID, "deals", r.line)
		return nil
	}
	if errors.Is(err, errLeaseLost) {
		w.Log.Error("retailcrm pull abandoned", "counter", in.counterID, "err", err)
		return err
	}
	msg := describe(err)
	w.Log.Warn("retailcrm pull failed", "counter", in.counterID, "err", msg)
	res, dberr := w.DB.Writer().ExecContext(context.WithoutCancel(ctx), `UPDATE retailcrm_integrations SET pull_error = $3,
			next_pull_at = $4, lease_until = NULL
		WHERE counter_id = $1 AND lease_until = $2`, in.counterID, r.until, msg, now.Add(min(pullRetry, w.PullEvery)))
	if dberr != nil {
		return fmt.Errorf("retailsync: counter %d: record pull: %w", in.counterID, dberr)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("retailsync: counter %d: record failed pull: %w", in.counterID, errLeaseLost)
	}
	if broken(err) {
		return w.fail(ctx, in.counterID, err)
	}
	return nil
}

// maxRewalks bounds how often the first pull walks the orders again when
// pages shifted under it.
const maxRewalks = 3

// dealReader reads the orders page by page as crm.Import asks for rows,
// linking each page's new deals to leads before handing them over.
type dealReader struct {
	ctx   context.Context
	w     *Worker
	c     *retailcrm.Client
	in    *Integration
	until time.Time // the lease, renewed page by page
	start time.Time
	line  int
	buf   []any
	users map[int64]string // manager names, per pull
	// currency is the account's default, for deals that name none.
	currency string

	// The first pull: the walk of all orders created before start.
	page    int
	seen    map[int64]bool
	rewalks int
	// Later pulls: the history cursor, then the orders to read by id.
	history  int64
	walked   bool
	changed  []int64
	finished bool
}

func (r *dealReader) Next() (any, int, error) {
	for len(r.buf) == 0 {
		if r.finished {
			return nil, 0, io.EOF
		}
		if err := r.fetch(); err != nil {
			return nil, 0, err
		}
	}
	row := r.buf[0]
	r.buf = r.buf[1:]
	r.line++
	return row, r.line, nil
}

// fetch reads the next page of orders into buf (possibly none), renewing
// the lease first.
func (r *dealReader) fetch() error {
	if err := r.w.renew(r.ctx, r.in.counterID, &r.until); err != nil {
		return err
	}
	var list []retailcrm.Order
	var err error
	if r.in.pullFrom == nil {
		list, err = r.fetchAll()
	} else {
		list, err = r.fetchChanged()
	}
	if err != nil {
		return err
	}
	return r.add(list)
}

// fetchAll reads the next page of every order created up to the start.
// The set cannot grow during the walk (creation dates do not change), but
// the order it is listed in is not known (spec §3, §14.4): an order that
// changes may move and shift a row into a page already read. Every order
// read is counted, and when fewer were read than the set holds, the pages
// are walked again for the ones missed.
func (r *dealReader) fetchAll() ([]retailcrm.Order, error) {
	if r.seen == nil {
		r.seen = map[int64]bool{}
	}
	r.page++
	list, pg, err := r.c.Orders(r.ctx, retailcrm.OrdersFilter{CreatedAtTo: r.start}, r.page, retailcrm.PageLimit)
	if err != nil {
		return nil, err
	}
	fresh := list[:0:0]
	for _, o := range list {
		if !r.seen[o.ID] {
			r.seen[o.ID] = true
			fresh = append(fresh, o)
		}
	}
	if len(list) == 0 || pg.CurrentPage >= pg.TotalPageCount {
		switch {
		case len(r.seen) >= pg.TotalCount:
			r.finished = true
		case r.rewalks < maxRewalks:
			r.rewalks++
			r.page = 0
			r.w.Log.Info("retailcrm pull: orders moved during the walk; reading the pages again", "counter", r.in.counterID,
				"read", len(r.seen), "total", pg.TotalCount)
		default:
			return nil, fmt.Errorf("the orders kept changing during the first pull: %d of %d read; will retry", len(r.seen), pg.TotalCount)
		}
	}
	return fresh, nil
}

// fetchChanged walks the history from the cursor (first), collecting the
// orders created or whose status changed, then reads them 100 at a time.
func (r *dealReader) fetchChanged() ([]retailcrm.Order, error) {
	if !r.walked {
		f := retailcrm.HistoryFilter{SinceID: r.history}
		if f.SinceID == 0 {
			// No record seen yet: from the start of the last pull, less
			// the overlap (a skew of RetailCRM's clock against ours).
			f.StartDate = r.in.pullFrom.Add(-pullOverlap)
		}
		want := map[int64]bool{}
		err := r.c.EachHistoryPage(r.ctx, f, func(p retailcrm.HistoryPage) error {
			for _, h := range p.History {
				r.history = max(r.history, h.ID)
				if (h.Created || h.Field == "status") && h.Order.ID != 0 && !want[h.Order.ID] {
					want[h.Order.ID] = true
					r.changed = append(r.changed, h.Order.ID)
				}
			}
			return r.w.renew(r.ctx, r.in.counterID, &r.until)
		})
		if err != nil {
			return nil, err
		}
		r.walked = true
	}
	if len(r.changed) == 0 {
		r.finished = true
		return nil, nil
	}
	ids := r.changed[:min(len(r.changed), retailcrm.PageLimit)]
	r.changed = r.changed[len(ids):]
	list, _, err := r.c.Orders(r.ctx, retailcrm.OrdersFilter{IDs: ids}, 1, retailcrm.PageLimit)
	return list, err
}

func (r *dealReader) add(list []retailcrm.Order) error {
	links, err := r.w.link(r.ctx, r.in.counterID, list)
	if err != nil {
		return err
	}
	for _, o := range list {
		if o.CreatedAt.IsZero() {
			r.buf = append(r.buf, &crm.RowError{Line: r.line + len(r.buf) + 1, Column: "createdAt",
				Message: fmt.Sprintf("order %d has no creation date", o.ID)})
			continue
		}
		r.buf = append(r.buf, r.deal(o, links[o.ID]))
	}
	return nil
}

// deal is the order as Throughline stores it (seed 004's deal fields):
// id, number, manager, store (funnel), status code, total with discount,
// created, status changed — and its contacts and its lead's keys, so that
// matching finds the lead the deal is linked to.
func (r *dealReader) deal(o retailcrm.Order, l link) *crm.Order {
	d := &crm.Order{ID: strconv.FormatInt(o.ID, 10), CreatedAt: o.CreatedAt.UTC(), Status: o.Status, Revenue: int64(o.TotalSumm),
		Has: crm.FStatus | crm.FRevenue | crm.FPhones | crm.FEmails | crm.FAttributes}
	if o.Customer != nil && o.Customer.ID != 0 {
		d.ContactID, d.Has = strconv.FormatInt(o.Customer.ID, 10), d.Has|crm.FContact
	}
	if !o.StatusUpdatedAt.IsZero() {
		d.UpdatedAt, d.Has = o.StatusUpdatedAt.UTC(), d.Has|crm.FUpdatedAt
	}
	if cur := cmp.Or(o.Currency, r.currency); cur != "" {
		d.Currency, d.Has = strings.ToUpper(cur), d.Has|crm.FCurrency
	}
	d.Phones, d.Emails = contacts(o)
	switch l.kind {
	case "call":
		d.CallerPhone, d.Has = l.phone, d.Has|crm.FCallerPhone
	case "lead":
		d.Phones, d.Emails = addNew(d.Phones, l.phone), addNew(d.Emails, l.email)
	}
	d.Attributes = map[string][]string{AttrNumber: {o.Number}, AttrFunnel: {o.Site}, AttrLead: {l.reason}}
	if o.ManagerID != 0 {
		d.Attributes[AttrManager] = []string{r.manager(o.ManagerID)}
	}
	return d
}

// manager is the name of a manager. A user that cannot be read is shown by
// id: the name is not worth failing the pull.
func (r *dealReader) manager(id int64) string {
	if name, ok := r.users[id]; ok {
		return name
	}
	name := "#" + strconv.FormatInt(id, 10)
	if u, err := r.c.User(r.ctx, id); err == nil {
		name = u.Name()
	} else {
		r.w.Log.Debug("retailcrm: manager name not read", "counter", r.in.counterID, "user", id, "err", err)
	}
	r.users[id] = name
	return name
}

// contacts are the order's phones and e-mails, normalised: the customer's,
// the order's own and its contact person's (spec §12.3).
func contacts(o retailcrm.Order) (phones, emails []string) {
	addPhone := func(s string) {
		if n, err := normalize.Phone(s, normalize.DefaultRegion); err == nil {
			phones = addNew(phones, n)
		}
	}
	addEmail := func(s string) {
		if e, err := normalize.Email(s); err == nil {
			emails = addNew(emails, e)
		}
	}
	for _, c := range []*retailcrm.Customer{o.Customer, o.Contact} {
		if c == nil {
			continue
		}
		for _, p := range c.Phones {
			addPhone(p.Number)
		}
		addEmail(c.Email)
	}
	addPhone(o.Phone)
	addPhone(o.AdditionalPhone)
	addEmail(o.Email)
	return phones, emails
}

func addNew(list []string, v string) []string {
	if v == "" || slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

// link is a deal's link to a lead.
type link struct {
	kind   string // call, lead, "" (not found)
	leadID int64
	phone  string
	email  string
	reason string
}

// link returns the links of the orders' deals: stored ones as they are (a
// deal is linked once, when first pulled), new ones found and stored.
func (w *Worker) link(ctx context.Context, counterID int64, orders []retailcrm.Order) (map[int64]link, error) {
	if len(orders) == 0 {
		return nil, nil
	}
	links, err := w.storedLinks(ctx, counterID, orders)
	if err != nil {
		return nil, err
	}
	now := w.now()
	fresh := map[int64]link{}
	for _, o := range orders {
		if _, ok := links[o.ID]; ok {
			continue
		}
		if fresh[o.ID], err = w.findLead(ctx, counterID, o); err != nil {
			return nil, err
		}
	}
	if len(fresh) == 0 {
		return links, nil
	}
	err = w.DB.Tx(ctx, func(tx *sql.Tx) error {
		for id, l := range fresh {
			var lead any
			if l.leadID != 0 {
				lead = l.leadID
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO retailcrm_deals (counter_id, order_id, lead_kind, lead_id, phone, email, reason, linked_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
				counterID, strconv.FormatInt(id, 10), l.kind, lead, l.phone, l.email, l.reason, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retailsync: counter %d: store deal links: %w", counterID, err)
	}
	// Read back: another process may have linked one first, and its link stands.
	return w.storedLinks(ctx, counterID, orders)
}

func (w *Worker) storedLinks(ctx context.Context, counterID int64, orders []retailcrm.Order) (map[int64]link, error) {
	args := []any{counterID}
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = strconv.FormatInt(o.ID, 10)
	}
	rows, err := w.DB.Reader().QueryContext(ctx, `SELECT order_id, lead_kind, COALESCE(lead_id, 0), phone, email, reason
		FROM retailcrm_deals WHERE counter_id = $1 AND order_id IN (`+marks(&args, ids)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("retailsync: counter %d: deal links: %w", counterID, err)
	}
	defer rows.Close()
	out := map[int64]link{}
	for rows.Next() {
		var id string
		var l link
		if err := rows.Scan(&id, &l.kind, &l.leadID, &l.phone, &l.email, &l.reason); err != nil {
			return nil, fmt.Errorf("retailsync: counter %d: deal links: %w", counterID, err)
		}
		n, _ := strconv.ParseInt(id, 10, 64)
		out[n] = l
	}
	return out, rows.Err()
}

// findLead links a new deal (seed 004, spec §12.3): the lead named by the
// order's tl_lead_id if it is ours; else the latest call from one of the
// customer's phones, else the latest request with one of its phones or
// e-mails, within the 12 months before the order.
func (w *Worker) findLead(ctx context.Context, counterID int64, o retailcrm.Order) (link, error) {
	if key, ok := o.CustomFields.String(FieldLeadID); ok {
		if l, ok, err := w.leadByKey(ctx, counterID, key); err != nil || ok {
			return l, err
		}
	}
	phones, emails := contacts(o)
	if len(phones) == 0 && len(emails) == 0 {
		return link{reason: LeadNotFound}, nil
	}
	to := o.CreatedAt.UTC()
	from := to.AddDate(-1, 0, 0)
	db := w.DB.Reader()
	if len(phones) > 0 {
		args := []any{counterID, from, to}
		var l link
		// Only calls from the customer: not ours to them, nor internal ones.
		err := db.QueryRowContext(ctx, `SELECT id, caller FROM calls
			WHERE counter_id = $1 AND direction NOT IN ('out', 'internal') AND started_at >= $2 AND started_at <= $3 AND caller IN (`+marks(&args, phones)+`)
			ORDER BY started_at DESC, id DESC LIMIT 1`, args...).Scan(&l.leadID, &l.phone)
		if err == nil {
			l.kind, l.reason = "call", fmt.Sprintf("call %d by phone %s", l.leadID, calltracking.Display(l.phone))
			return l, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return link{}, fmt.Errorf("retailsync: counter %d: find a call: %w", counterID, err)
		}
	}
	args := []any{counterID, from, to}
	var conds []string
	if len(phones) > 0 {
		conds = append(conds, "phone IN ("+marks(&args, phones)+")")
	}
	if len(emails) > 0 {
		conds = append(conds, "email IN ("+marks(&args, emails)+")")
	}
	var l link
	err := db.QueryRowContext(ctx, `SELECT id, phone, email FROM leads
		WHERE counter_id = $1 AND created_at >= $2 AND created_at <= $3 AND (`+strings.Join(conds, " OR ")+`)
		ORDER BY created_at DESC, id DESC LIMIT 1`, args...).Scan(&l.leadID, &l.phone, &l.email)
	if errors.Is(err, sql.ErrNoRows) {
		return link{reason: LeadNotFound}, nil
	}
	if err != nil {
		return link{}, fmt.Errorf("retailsync: counter %d: find a request: %w", counterID, err)
	}
	l.kind = "lead"
	if l.phone != "" && slices.Contains(phones, l.phone) {
		l.reason = fmt.Sprintf("request %d by phone %s", l.leadID, calltracking.Display(l.phone))
		l.email = "" // the phone linked it
	} else {
		l.reason = fmt.Sprintf("request %d by e-mail %s", l.leadID, l.email)
		l.phone = ""
	}
	return l, nil
}

// leadByKey finds the call or lead a push wrote into an order's tl_lead_id.
func (w *Worker) leadByKey(ctx context.Context, counterID int64, key string) (link, bool, error) {
	kind, num, _ := strings.Cut(key, "-")
	id, err := strconv.ParseInt(num, 10, 64)
	if err != nil || (kind != "call" && kind != "lead") {
		return link{}, false, nil // not one of ours
	}
	l := link{kind: kind, leadID: id, reason: "lead id field (" + key + ")"}
	if kind == "call" {
		err = w.DB.Reader().QueryRowContext(ctx, `SELECT caller FROM calls WHERE counter_id = $1 AND id = $2`, counterID, id).Scan(&l.phone)
	} else {
		err = w.DB.Reader().QueryRowContext(ctx, `SELECT phone, email FROM leads WHERE counter_id = $1 AND id = $2`, counterID, id).Scan(&l.phone, &l.email)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return link{}, false, nil
	}
	if err != nil {
		return link{}, false, fmt.Errorf("retailsync: counter %d: lead %s: %w", counterID, key, err)
	}
	return l, true, nil
}

// marks appends vals to args and returns their placeholders.
func marks(args *[]any, vals []string) string {
	m := make([]string, len(vals))
	for i, v := range vals {
		*args = append(*args, v)
		m[i] = "$" + strconv.Itoa(len(*args))
	}
	return strings.Join(m, ", ")
}
