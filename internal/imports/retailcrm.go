package imports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/retailcrm"
)

// TypeRetailCRM is an import task that reads orders from a RetailCRM
// account's API (seed 001, spec §11).
const TypeRetailCRM = "retailcrm"

// retailKeyPurpose binds a sealed API key to its column.
const retailKeyPurpose = "retailcrm.api_key"

// Scopes a key needs for the import: orders, and the reference data that
// says what each status means (spec §8.4).
var retailScopes = []string{"order_read", "reference_read"}

const (
	// DefaultStartDays is how far back the first run reads when no start
	// date is given (spec §11.2's example).
	DefaultStartDays = 90
	// historyOverlap is how long before a backfill starts its history walk
	// begins: our clock and RetailCRM's may differ, and an order read twice
	// is only an unchanged row.
	historyOverlap = 10 * time.Minute
)

// retailCursor is where the next run of a retailcrm task starts (spec
// §11.2): the first run reads orders by creation date and leaves
// HistoryStart; later runs walk /orders/history from it, then from the
// largest history id seen.
type retailCursor struct {
	HistorySinceID int64     `json:"history_since_id,omitempty"`
	HistoryStart   time.Time `json:"history_start,omitzero"`
}

func (c retailCursor) empty() bool { return c.HistorySinceID == 0 && c.HistoryStart.IsZero() }

// RetailRun describes how a retailcrm run spent its time, for logs and the
// benchmark: Waited is the time the import spent blocked on RetailCRM
// (its answers and our request limiter), the rest of Wall was ours.
type RetailRun struct {
	TaskID  int64
	Orders  int // orders read (before the import checked them)
	Wall    time.Duration
	Waited  time.Duration
	Read    time.Duration // from the start until the last page was read; the rest of Wall is applying
	Initial bool          // the first run (by creation date), not an incremental one
}

// MaskKey shows an API key as the API may: its last four characters.
func MaskKey(key string) string {
	if len(key) <= 8 {
		return "****"
	}
	return "****" + key[len(key)-4:]
}

// retailClient returns a client of the account; quick is for the
// connection test, which must answer while the user waits.
func (ts *Tasks) retailClient(hc *http.Client, baseURL, key string, quick bool) (*retailcrm.Client, error) {
	o := ts.RetailOptions
	if o.HTTPClient == nil {
		o.HTTPClient = hc
	}
	o.HTTPClient = sameOriginRedirects(o.HTTPClient)
	o.AllowHTTP = o.AllowHTTP || ts.AllowPrivate
	if quick {
		o.MaxAttempts, o.MaxRetryTime = 3, 15*time.Second
	}
	return retailcrm.New(baseURL, key, o)
}

// sameOriginRedirects is hc refusing redirects to another host or port, or
// from https to http: Go sends custom headers such as X-API-KEY on to any
// host a redirect names, and RetailCRM has no reason to send us elsewhere.
func sameOriginRedirects(hc *http.Client) *http.Client {
	c := *hc
	next := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		from := via[0].URL
		if !strings.EqualFold(req.URL.Host, from.Host) {
			return fmt.Errorf("refused a redirect to another host (%s): the API key is only sent to the account's own address", req.URL.Host)
		}
		if req.URL.Scheme != from.Scheme && req.URL.Scheme != "https" {
			return fmt.Errorf("refused a redirect from %s to %s", from.Scheme, req.URL.Scheme)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// retailFieldError turns a failed connection test into the field to fix.
func retailFieldError(err error) *InvalidError {
	switch {
	case errors.Is(err, retailcrm.ErrInvalidKey), errors.Is(err, retailcrm.ErrMissingKey), errors.Is(err, retailcrm.ErrAccessDenied):
		return &InvalidError{"api_key", retailErrorText(err)}
	case errors.Is(err, ErrPrivateAddress):
		return &InvalidError{"url", ErrPrivateAddress.Error()}
	default:
		return &InvalidError{"url", retailErrorText(err)}
	}
}

// retailErrorText says what went wrong and what to do: the error class's
// advice first, then what RetailCRM answered.
func retailErrorText(err error) string {
	for _, class := range []error{retailcrm.ErrInvalidKey, retailcrm.ErrMissingKey, retailcrm.ErrAccessDenied,
		retailcrm.ErrAccountNotFound, retailcrm.ErrBadResponse, retailcrm.ErrRateLimited, retailcrm.ErrUnavailable} {
		if errors.Is(err, class) {
			return class.Error() + " (" + err.Error() + ")"
		}
	}
	return err.Error()
}

// retailRunError is a run's failure as the import log shows it: what to
// fix, then what RetailCRM answered.
type retailRunError struct{ err error }

func (e *retailRunError) Error() string { return retailErrorText(e.err) }
func (e *retailRunError) Unwrap() error { return e.err }

// retailConnection is what a connection test learnt.
type retailConnection struct {
	client       *retailcrm.Client
	loc          *time.Location
	customFields map[string]bool // nil when the key may not list them
}

// connectRetail is the connection test (spec §8.4, §8.5): the key's
// credentials and scopes, the account's time zone, its order custom fields.
func (ts *Tasks) connectRetail(ctx context.Context, baseURL, key string) (*retailConnection, error) {
	c, err := ts.retailClient(ts.guardedClient(), baseURL, key, true)
	if err != nil {
		return nil, &InvalidError{"url", err.Error()}
	}
	cred, err := c.Credentials(ctx)
	if err != nil {
		return nil, retailFieldError(err)
	}
	var missing []string
	for _, s := range retailScopes {
		if !cred.HasScope(s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return nil, &InvalidError{"api_key", fmt.Sprintf("the key lacks the scopes %s: allow them in RetailCRM, Administration → Integration → API access keys (it has: %s)",
			strings.Join(missing, ", "), strings.Join(cred.Scopes, ", "))}
	}
	loc, err := c.Location(ctx)
	if err != nil {
		return nil, retailFieldError(err)
	}
	conn := &retailConnection{client: c, loc: loc}
	fields, err := c.CustomFields(ctx, "order")
	switch {
	case errors.Is(err, retailcrm.ErrAccessDenied):
		// Custom field codes cannot be checked now; a wrong one reads empty.
	case err != nil:
		return nil, retailFieldError(err)
	default:
		conn.customFields = map[string]bool{}
		for _, f := range fields {
			conn.customFields[f.Code] = true
		}
	}
	return conn, nil
}

// applyRetail checks and applies the retailcrm fields of a task input, and
// runs the connection test when what it depends on changed.
func (ts *Tasks) applyRetail(ctx context.Context, t *Task, in TaskInput, creating bool) error {
	changed := creating
	if in.URL != nil {
		u, err := retailcrm.NormalizeBaseURL(*in.URL, ts.AllowPrivate)
		if err != nil {
			return &InvalidError{"url", err.Error()}
		}
		parsed, err := url.Parse(u)
		if err != nil {
			return &InvalidError{"url", err.Error()}
		}
		if err := ts.checkHost(ctx, parsed.Hostname()); err != nil {
			return &InvalidError{"url", err.Error()}
		}
		if u != t.url {
			if !creating && in.APIKey == nil {
				// The stored key is the old account's: it is never sent
				// anywhere else.
				return &InvalidError{"api_key", "is required when the url changes: give the new account's key (the stored key is only ever sent to " + t.URL + ")"}
			}
			t.url, changed = u, true // another account: start over
			t.resetCursor()
		}
		t.URL = t.url
	}
	if t.url == "" {
		return &InvalidError{"url", "is required: the RetailCRM account's address, e.g. https://shop.retailcrm.ru"}
	}
	var key string
	if in.APIKey != nil {
		key = strings.TrimSpace(*in.APIKey)
		if key == "" || len(key) > 200 || strings.ContainsFunc(key, unicode.IsSpace) || strings.ContainsFunc(key, unicode.IsControl) {
			return &InvalidError{"api_key", "must be the key from RetailCRM, Administration → Integration → API access keys (1–200 characters, no spaces)"}
		}
		changed = true
	} else if t.apiKey != "" {
		var err error
		if key, err = ts.Box.Opened(retailKeyPurpose, t.apiKey); err != nil {
			return &InvalidError{"api_key", "the stored key cannot be opened (" + err.Error() + "): give it again"}
		}
	} else {
		return &InvalidError{"api_key", "is required: the key from RetailCRM, Administration → Integration → API access keys"}
	}
	if in.ColumnMapping != nil {
		merged := maps.Clone(t.ColumnMapping)
		maps.Copy(merged, *in.ColumnMapping)
		if err := ts.checkOrderIDSource(ctx, t, merged["order_id"], creating); err != nil {
			return err
		}
		if !maps.Equal(merged, t.ColumnMapping) {
			t.ColumnMapping = merged
			t.resetCursor() // orders read before must be read again with the new mapping
			changed = true
		}
	}
	if in.StartDate != nil || (in.Active != nil && *in.Active && !t.Active) {
		changed = true
	}
	if !changed {
		// Nothing the connection depends on changed (a rename, a new
		// frequency, deactivation): no need to reach the account.
		if _, err := compileMapping(t.ColumnMapping, nil); err != nil {
			return err
		}
		return nil
	}
	conn, err := ts.connectRetail(ctx, t.url, key)
	if err != nil {
		return err
	}
	// A custom field the account lacks is refused when the user named it;
	// the default session and visitor fields are kept with a note (the
	// site may not fill them yet: they read empty until it does).
	known := conn.customFields
	var codes []string
	t.Notes, codes = missingDefaultFields(t.ColumnMapping, conn.customFields, func(p string) bool {
		if in.ColumnMapping == nil {
			return false
		}
		_, given := (*in.ColumnMapping)[p]
		return given
	})
	if len(codes) > 0 {
		known = maps.Clone(known)
		for _, c := range codes {
			known[c] = true
		}
	}
	if _, err := compileMapping(t.ColumnMapping, known); err != nil {
		return err
	}
	if in.StartDate != nil {
		d, err := parseStartDate(*in.StartDate, conn.loc)
		if err != nil {
			return &InvalidError{"start_date", err.Error()}
		}
		if t.StartDate == nil || !d.Equal(*t.StartDate) {
			t.resetCursor()
		}
		t.StartDate = &d
	}
	if t.StartDate == nil {
		y, m, d := time.Now().In(conn.loc).AddDate(0, 0, -DefaultStartDays).Date()
		start := time.Date(y, m, d, 0, 0, 0, 0, conn.loc).UTC()
		t.StartDate = &start
	}
	if in.APIKey != nil {
		sealed, err := ts.Box.Seal(retailKeyPurpose, key)
		if err != nil {
			return fmt.Errorf("imports: seal the API key: %w", err)
		}
		t.apiKey = sealed
	}
	t.APIKey = MaskKey(key)
	return nil
}

// checkOrderIDSource refuses changing where the order id comes from once
// the task has imported orders: every order would be read again under a new
// id and stored beside its old row, which nothing removes (imported orders
// are not deleted), so reports would count each twice.
func (ts *Tasks) checkOrderIDSource(ctx context.Context, t *Task, next string, creating bool) error {
	prev := strings.TrimSpace(t.ColumnMapping["order_id"])
	if creating || strings.TrimSpace(next) == prev {
		return nil
	}
	var n int
	if err := ts.DB.Reader().QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM crm_imports
		WHERE counter_id = $1 AND task_id = $2 AND status = $3 AND inserted > 0 LIMIT 1) AS x`,
		t.CounterID, t.ID, crm.StatusPassed).Scan(&n); err != nil {
		return fmt.Errorf("imports: task %d: look up its imports: %w", t.ID, err)
	}
	if n == 0 {
		return nil
	}
	to := strings.TrimSpace(next)
	return &InvalidError{"column_mapping.order_id", fmt.Sprintf("cannot change from %q to %q: this task has imported orders keyed by %q, "+
		"and reading them again keyed by %q would store each beside its old row, so reports would count it twice. "+
		"Imported orders cannot be deleted yet, so keep order_id %q (a new task in this counter keyed by %q would duplicate them the same way)",
		prev, to, prev, to, prev, to)}
}

// missingDefaultFields notes each default session or visitor custom field
// the mapping reads that the account (fields; nil when unknown) lacks,
// unless given (the user named it in this request).
func missingDefaultFields(mapping map[string]string, fields map[string]bool, given func(string) bool) (notes, codes []string) {
	if fields == nil {
		return nil, nil
	}
	for _, d := range [...]struct{ p, code string }{{"session_id", DefaultSessionField}, {"user_id", DefaultVisitorField}} {
		p, code := d.p, d.code
		if mapping[p] == "customFields."+code && !fields[code] && !given(p) {
			notes = append(notes, fmt.Sprintf("%s: the account has no order custom field %q yet, so orders import without it; create it in RetailCRM (Administration → Settings → Custom fields) and have the site fill it, or map %s to another field",
				p, code, p))
			codes = append(codes, code)
		}
	}
	return notes, codes
}

// parseStartDate reads a start date: YYYY-MM-DD (midnight) or YYYY-MM-DD
// HH:MM:SS in the account's zone, or RFC 3339.
func parseStartDate(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{retailcrm.DateLayout, retailcrm.DateTimeLayout, "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return checkStart(t.UTC())
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return checkStart(t.UTC())
	}
	return time.Time{}, fmt.Errorf("%q is not a date: YYYY-MM-DD or YYYY-MM-DD HH:MM:SS in the account's time zone", s)
}

func checkStart(t time.Time) (time.Time, error) {
	if t.Year() < 2000 || t.After(time.Now().Add(24*time.Hour)) {
		return time.Time{}, fmt.Errorf("%s is out of range: from 2000 up to today", t.Format(retailcrm.DateLayout))
	}
	return t, nil
}

// runRetail imports a retailcrm task's orders: on the first run those
// created from the start date, later those the order history says changed.
// The cursor moves only after the run's orders are committed; a run that
// fails leaves it, so the next run reads the same again.
func (ts *Tasks) runRetail(ctx context.Context, f *Fetcher, t *Task, tempDir string) (*crm.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the page reader if the import ends early
	var cur retailCursor
	if t.cursor != "" {
		if err := json.Unmarshal([]byte(t.cursor), &cur); err != nil {
			return nil, fmt.Errorf("imports: task %d: cursor: %w", t.ID, err)
		}
	}
	started := time.Now()
	var r *retailReader
	next := &retailCursor{}
	hc := ts.guardedClient()
	if f != nil {
		hc = f.client
	}
	res, err := crm.Import(ctx, ts.DB, t.CounterID, crm.Options{
		Intake: crm.RetailCRM, Format: "API", Source: "TASK", Origin: t.URL, TaskID: t.ID,
		SkipBadRows: t.SkipBadRows, TempDir: tempDir,
	}, func() (crm.RowReader, error) {
		key, err := ts.Box.Opened(retailKeyPurpose, t.apiKey)
		if err != nil {
			return nil, fmt.Errorf("the stored API key cannot be opened: %w; save the task with the key again", err)
		}
		c, err := ts.retailClient(hc, t.url, key, false)
		if err != nil {
			return nil, err
		}
		r, err = ts.startRetailReader(ctx, c, t, cur, next)
		if err != nil {
			return nil, &retailRunError{err}
		}
		return r, nil
	})
	if r != nil && ts.RetailRunDone != nil {
		ts.RetailRunDone(RetailRun{TaskID: t.ID, Orders: r.n, Wall: time.Since(started), Waited: r.waited,
			Read: r.readDone.Sub(started), Initial: cur.empty()})
	}
	if err != nil {
		return res, err
	}
	b, _ := json.Marshal(next)
	// Only if nobody reset the cursor while the run went (another account,
	// start date or mapping): the reset's run must start over.
	saved, err := ts.DB.Writer().ExecContext(context.WithoutCancel(ctx), `UPDATE import_tasks SET sync_cursor = $4
		WHERE counter_id = $1 AND id = $2 AND cursor_gen = $3`, t.CounterID, t.ID, t.gen, string(b))
	if err != nil {
		// The orders are stored; the next run reads them again, unchanged.
		return res, fmt.Errorf("imports: task %d: save cursor: %w", t.ID, err)
	}
	if n, _ := saved.RowsAffected(); n != 1 {
		ts.log().Info("import task: the cursor was reset during the run; the next run starts over", "counter", t.CounterID, "task", t.ID)
		return res, nil
	}
	t.cursor = string(b)
	return res, nil
}

// startRetailReader reads the account's reference data, offers its statuses
// to the counter's mapping, and starts reading orders in the background.
func (ts *Tasks) startRetailReader(ctx context.Context, c *retailcrm.Client, t *Task, cur retailCursor, next *retailCursor) (*retailReader, error) {
	loc, err := c.Location(ctx)
	if err != nil {
		return nil, err
	}
	// An order without a currency is in the account's (spec §8.5); RUB,
	// crm.Import's default, only when the account names none.
	currency, err := c.DefaultCurrency(ctx)
	if err != nil {
		return nil, err
	}
	statuses, err := c.Statuses(ctx)
	if err != nil {
		return nil, err
	}
	groups, err := c.StatusGroups(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := crm.AddMissingStatuses(ctx, ts.DB, t.CounterID, SuggestStatuses(statuses, groups)); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		// The pre-fill is an offer: orders import without it, and
		// GET …/order-statuses lists their statuses as unmapped.
		ts.log().Warn("import task: statuses not pre-filled", "counter", t.CounterID, "task", t.ID, "err", err)
	}
	rm, err := compileMapping(t.ColumnMapping, nil)
	if err != nil {
		return nil, err
	}
	never := func(string) bool { return false }
	if notes, _ := missingDefaultFields(t.ColumnMapping, map[string]bool{}, never); len(notes) > 0 { // it reads a default field
		// Said at save, and again each run until the account has them.
		if fields, err := c.CustomFields(ctx, "order"); err == nil {
			have := map[string]bool{}
			for _, f := range fields {
				have[f.Code] = true
			}
			notes, _ := missingDefaultFields(t.ColumnMapping, have, never)
			for _, note := range notes {
				ts.log().Warn("import task: "+note, "counter", t.CounterID, "task", t.ID)
			}
		}
	}
	r := &retailReader{rm: rm, loc: loc, currency: currency, groups: map[string]string{}, pages: make(chan retailPage, 2), contacts: map[string]bool{}}
	for code, s := range statuses {
		r.groups[code] = s.Group
	}
	produce := func() error { return r.backfill(ctx, c, *t.StartDate, next) }
	if !cur.empty() {
		r.notBefore = *t.StartDate
		produce = func() error { return r.changed(ctx, c, cur, next) }
	}
	go func() {
		defer close(r.pages)
		if err := produce(); err != nil {
			select {
			case r.pages <- retailPage{err: &retailRunError{err}}:
			case <-ctx.Done():
			}
		}
	}()
	return r, nil
}

// maxRewalks bounds how often a first run walks the orders again when
// pages shifted under it.
const maxRewalks = 3

// backfill is a first run's walk (spec §11.2 step 2) of the orders created
// from start up to the run's start by RetailCRM's clock (a history page's
// generatedAt), where later runs' history walk begins, less an overlap.
// The set cannot grow during the walk, but the order it is listed in is not
// known (spec §3, §14.4): an order that changes may move and shift another
// into a page already read. Distinct orders read are counted against the
// answer's totalCount, and the pages are walked again for any missed (as
// retailsync's first pull does).
func (r *retailReader) backfill(ctx context.Context, c *retailcrm.Client, start time.Time, next *retailCursor) error {
	now := time.Now()
	if h, err := c.History(ctx, retailcrm.HistoryFilter{StartDate: now}, 1, 20); err != nil {
		return err
	} else if !h.GeneratedAt.IsZero() {
		now = h.GeneratedAt.Time
	}
	now = now.Truncate(time.Second).UTC()
	*next = retailCursor{HistoryStart: now.Add(-historyOverlap)}
	f := retailcrm.OrdersFilter{CreatedAtFrom: start, CreatedAtTo: now}
	seen := map[int64]struct{}{}
	send := r.send(ctx)
	for walk := 0; ; walk++ {
		total := 0
		for page := 1; ; page++ {
			list, pg, err := c.Orders(ctx, f, page, retailcrm.PageLimit)
			if err != nil {
				return err
			}
			fresh := list[:0:0]
			for _, o := range list {
				if _, ok := seen[o.ID]; !ok {
					seen[o.ID] = struct{}{}
					fresh = append(fresh, o)
				}
			}
			if len(fresh) > 0 {
				if err := send(fresh); err != nil {
					return err
				}
			}
			total = pg.TotalCount
			if len(list) == 0 || max(pg.CurrentPage, page) >= pg.TotalPageCount {
				break
			}
		}
		switch {
		case len(seen) >= total:
			return nil
		case walk == maxRewalks:
			return fmt.Errorf("the orders kept changing during the first run: %d of %d read after %d walks; the next run tries again", len(seen), total, walk+1)
		}
	}
}

// changed reads the orders the history says changed since cur (spec §11.2,
// step 3): the ids from every history page, then the orders themselves,
// 100 a request. History records carry partial orders; the order is read
// whole. next is the largest history id seen (or cur when none).
func (r *retailReader) changed(ctx context.Context, c *retailcrm.Client, cur retailCursor, next *retailCursor) error {
	*next = cur
	var ids []int64
	seen := map[int64]bool{}
	err := c.EachHistoryPage(ctx, retailcrm.HistoryFilter{SinceID: cur.HistorySinceID, StartDate: cur.HistoryStart}, func(p retailcrm.HistoryPage) error {
		for _, h := range p.History {
			if h.ID > next.HistorySinceID {
				next.HistorySinceID, next.HistoryStart = h.ID, time.Time{}
			}
			// A deleted order cannot be read again; Throughline keeps it
			// as last imported.
			if id := h.Order.ID; id != 0 && !h.Deleted && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for batch := range slices.Chunk(ids, retailcrm.PageLimit) {
		if err := c.EachOrderPage(ctx, retailcrm.OrdersFilter{IDs: batch}, r.send(ctx)); err != nil {
			return err
		}
	}
	return nil
}

type retailPage struct {
	orders []retailcrm.Order
	err    error
}

// retailReader hands the orders of a run to crm.Import as rows, each
// order followed by its customer (once a run) as a contact. Pages are
// read by a goroutine, so the next request waits on the rate limit while
// this page is checked.
type retailReader struct {
	rm        *retailMapping
	loc       *time.Location
	currency  string            // the account's default currency, for orders without one
	groups    map[string]string // status code → group
	notBefore time.Time         // orders created earlier are skipped (incremental runs)
	pages     chan retailPage
	buf       []retailcrm.Order
	rows      []any
	n         int
	contacts  map[string]bool
	waited    time.Duration
	readDone  time.Time
}

func (r *retailReader) send(ctx context.Context) func([]retailcrm.Order) error {
	return func(orders []retailcrm.Order) error {
		select {
		case r.pages <- retailPage{orders: orders}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Next returns the next order or contact; its "line" is the order's
// number in the run.
func (r *retailReader) Next() (any, int, error) {
	for len(r.rows) == 0 {
		if len(r.buf) == 0 {
			t0 := time.Now()
			p, ok := <-r.pages
			r.waited += time.Since(t0)
			if !ok {
				r.readDone = time.Now()
				return nil, r.n, io.EOF
			}
			if p.err != nil {
				return nil, r.n, p.err
			}
			r.buf = p.orders
			continue
		}
		o := &r.buf[0]
		r.buf = r.buf[1:]
		if !r.notBefore.IsZero() && o.CreatedAt.Before(r.notBefore) {
			continue // changed, but created before the task's start date
		}
		r.n++
		order, contact, err := r.rm.order(r.n, o, r.groups, r.loc)
		if err != nil {
			return nil, r.n, err
		}
		if order.Currency == "" {
			order.Currency = r.currency
		}
		r.rows = append(r.rows, order)
		if contact != nil && !r.contacts[contact.UniqID] {
			r.contacts[contact.UniqID] = true
			r.rows = append(r.rows, contact)
		}
	}
	row := r.rows[0]
	r.rows = r.rows[1:]
	return row, r.n, nil
}

// StatusSuggestion is a RetailCRM status with the type it is offered as,
// and the counter's current mapping of it.
type StatusSuggestion struct {
	Code      string          `json:"id"`
	Name      string          `json:"name"`
	Group     string          `json:"group"`
	GroupName string          `json:"group_name"`
	Active    bool            `json:"active"`
	Suggested crm.StatusType  `json:"suggested_type"`
	Type      *crm.StatusType `json:"type"`             // the counter's mapping; null when none
	Source    string          `json:"source,omitempty"` // USER or AUTO, when mapped
}

// suggestedType is the type a status is offered as: complete → PAID,
// cancel → CANCELLED, every other group IN_PROGRESS (issue 7).
func suggestedType(group string) crm.StatusType {
	switch group {
	case "complete":
		return crm.Paid
	case "cancel":
		return crm.Cancelled
	}
	return crm.InProgress
}

// SuggestStatuses is the account's statuses as a pre-filled mapping, in the
// order RetailCRM shows them.
func SuggestStatuses(statuses map[string]retailcrm.Status, groups map[string]retailcrm.StatusGroup) []crm.Status {
	var out []crm.Status
	for _, s := range retailcrm.SortedStatuses(statuses, groups) {
		out = append(out, crm.Status{Code: s.Code, Type: suggestedType(s.Group), Humanized: s.Name, GoalActionIDs: []string{}, Source: "AUTO"})
	}
	return out
}

// RetailStatuses connects to the task's account and lists its statuses
// with their suggested types and the counter's mapping. With apply, the
// suggestions for codes the counter has not mapped are stored (never
// overwriting a mapping); added lists them.
func (ts *Tasks) RetailStatuses(ctx context.Context, counterID, id int64, apply bool) (list []StatusSuggestion, added []crm.Status, err error) {
	t, err := ts.get(ctx, ts.DB.Reader(), counterID, id)
	if err != nil {
		return nil, nil, err
	}
	if t.Type != TypeRetailCRM {
		return nil, nil, &InvalidError{"type", "status suggestions are for retailcrm tasks"}
	}
	key, err := ts.Box.Opened(retailKeyPurpose, t.apiKey)
	if err != nil {
		return nil, nil, &InvalidError{"api_key", "the stored key cannot be opened: save the task with the key again"}
	}
	c, err := ts.retailClient(ts.guardedClient(), t.url, key, true)
	if err != nil {
		return nil, nil, &InvalidError{"url", err.Error()}
	}
	statuses, err := c.Statuses(ctx)
	if err != nil {
		return nil, nil, retailFieldError(err)
	}
	groups, err := c.StatusGroups(ctx)
	if err != nil {
		return nil, nil, retailFieldError(err)
	}
	suggested := SuggestStatuses(statuses, groups)
	if apply {
		if added, err = crm.AddMissingStatuses(ctx, ts.DB, counterID, slices.Clone(suggested)); err != nil {
			return nil, nil, err
		}
	}
	mapped, err := crm.Statuses(ctx, ts.DB, counterID)
	if err != nil {
		return nil, nil, err
	}
	byCode := map[string]crm.Status{}
	for _, s := range mapped {
		byCode[s.Code] = s
	}
	for _, s := range suggested {
		st := statuses[s.Code]
		sg := StatusSuggestion{Code: s.Code, Name: st.Name, Group: st.Group, GroupName: groups[st.Group].Name, Active: st.Active, Suggested: s.Type}
		if m, ok := byCode[s.Code]; ok {
			sg.Type, sg.Source = &m.Type, m.Source
		}
		list = append(list, sg)
	}
	if added == nil {
		added = []crm.Status{}
	}
	return list, added, nil
}
