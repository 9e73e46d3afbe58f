package retailsync

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/retailcrm"
	"github.com/throughline/throughline/internal/secrets"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/webhooks"
)

// Worker defaults.
const (
	DefaultDelay     = time.Minute      // a lead is pushed a minute after it arrives (seed 004)
	DefaultPullEvery = 30 * time.Minute // deals are refreshed every 30 minutes (seed 004)
	DefaultPoll      = 5 * time.Second
	DefaultBatch     = 20
	// lease is how long a process holds a setup, a pull or a batch of
	// pushes before another may take it over (it stopped, or hangs).
	lease = 15 * time.Minute
)

// setupBackoff is when setup is tried again after a failure that may pass
// (the account unreachable, rate limited); after the last the connection is
// failed.
var setupBackoff = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour}

// Worker sets connections up, pushes calls and leads, and pulls deals.
// Several processes may run one each on the same database: setups and pulls
// are claimed per connection, pushes per row, each with a lease.
type Worker struct {
	DB    *store.DB
	Box   *secrets.Box
	Log   *slog.Logger
	Guard webhooks.Guard // which account URLs may be reached
	// Client is the template of the RetailCRM clients' options (limits,
	// retries); HTTPClient defaults to the Guard's, AllowHTTP to
	// Guard.AllowPrivate (a local fake in tests and development).
	Client retailcrm.Options
	// Now is the clock (time.Now when nil): tests move it instead of waiting.
	Now       func() time.Time
	Delay     time.Duration // DefaultDelay when 0
	PullEvery time.Duration // DefaultPullEvery when 0
	Batch     int           // pushes claimed at once; DefaultBatch when 0
}

func (w *Worker) init() {
	if w.Log == nil {
		w.Log = slog.Default()
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Delay <= 0 {
		w.Delay = DefaultDelay
	}
	if w.PullEvery <= 0 {
		w.PullEvery = DefaultPullEvery
	}
	if w.Batch <= 0 {
		w.Batch = DefaultBatch
	}
	if w.Client.HTTPClient == nil {
		w.Client.HTTPClient = w.Guard.Client(retailcrm.DefaultRequestTimeout)
		w.Client.AllowHTTP = w.Client.AllowHTTP || w.Guard.AllowPrivate
	}
}

func (w *Worker) now() time.Time { return w.Now().UTC().Truncate(time.Microsecond) }

// Run works until ctx ends, every poll (DefaultPoll when 0). Pushes
// (with setups and the outbox) and pulls run in loops of their own, so that
// a long pull never holds back the pushes' minute.
func (w *Worker) Run(ctx context.Context, poll time.Duration) {
	if poll <= 0 {
		poll = DefaultPoll
	}
	w.init()
	var wg sync.WaitGroup
	loop := func(name string, once func(context.Context) error) {
		defer wg.Done()
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := once(ctx); err != nil && ctx.Err() == nil {
				w.Log.Error("retailcrm sync failed; will retry", "loop", name, "err", err)
			}
			t.Reset(poll)
		}
	}
	wg.Add(2)
	go loop("push", w.RunPushes)
	go loop("pull", w.RunPulls)
	wg.Wait()
}

// RunOnce does what is due: setups, then taking new calls and leads into
// the outbox, pushes, and pulls.
func (w *Worker) RunOnce(ctx context.Context) error {
	return errors.Join(w.RunPushes(ctx), w.RunPulls(ctx))
}

// RunPushes does the setups that are due, takes new calls and leads into
// the outbox and pushes what is due.
func (w *Worker) RunPushes(ctx context.Context) error {
	w.init()
	return errors.Join(w.setups(ctx), w.enqueue(ctx), w.pushes(ctx))
}

// RunPulls pulls the deals of the connections that are due.
func (w *Worker) RunPulls(ctx context.Context) error {
	w.init()
	return w.pulls(ctx)
}

// client returns a RetailCRM client for the connection.
func (w *Worker) client(in *Integration) (*retailcrm.Client, error) {
	key, err := w.Box.Opened(keyPurpose, in.sealedKey)
	if err != nil {
		return nil, fmt.Errorf("retailsync: counter %d: API key: %w", in.counterID, err)
	}
	o := w.Client
	if in.Timezone != "" {
		if loc, err := time.LoadLocation(in.Timezone); err == nil {
			o.Location = loc
		}
	}
	return retailcrm.New(in.URL, key, o)
}

// claim takes the connection for this process until the lease ends, if
// cond (SQL on its columns) holds and no other process holds it.
func (w *Worker) claim(ctx context.Context, counterID int64, cond string, now time.Time) (time.Time, bool, error) {
	until := now.Add(lease)
	res, err := w.DB.Writer().ExecContext(ctx, `UPDATE retailcrm_integrations SET lease_until = $2
		WHERE counter_id = $1 AND (lease_until IS NULL OR lease_until <= $3) AND `+cond, counterID, until, now)
	if err != nil {
		return until, false, fmt.Errorf("retailsync: claim counter %d: %w", counterID, err)
	}
	n, _ := res.RowsAffected()
	return until, n == 1, nil
}

// due lists the connections for which cond holds at now.
func (w *Worker) due(ctx context.Context, cond string, now time.Time) ([]*Integration, error) {
	rows, err := w.DB.Reader().QueryContext(ctx, `SELECT `+integrationColumns+` FROM retailcrm_integrations
		WHERE `+cond+` AND (lease_until IS NULL OR lease_until <= $1) ORDER BY counter_id`, now)
	if err != nil {
		return nil, fmt.Errorf("retailsync: due connections: %w", err)
	}
	defer rows.Close()
	var out []*Integration
	for rows.Next() {
		in, err := scanIntegration(rows)
		if err != nil {
			return nil, fmt.Errorf("retailsync: due connections: %w", err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

const setupDue = `state = 'setting_up' AND next_setup_at <= $1`

func (w *Worker) setups(ctx context.Context) error {
	now := w.now()
	list, err := w.due(ctx, setupDue, now)
	if err != nil {
		return err
	}
	var errs []error
	for _, in := range list {
		until, ok, err := w.claim(ctx, in.counterID, strings.ReplaceAll(setupDue, "$1", "$3"), now)
		if err != nil || !ok {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, w.setup(ctx, in, until))
	}
	return errors.Join(errs...)
}

// requiredScopes are the scopes the integration cannot work without, by
// the names the spec confirms (§8.4); inferredScopes are the others it
// uses, whose names are inferred: their absence is a warning, and a real
// 403 names what is missing.
var (
	requiredScopes = []string{"order_read", "customer_read", "reference_read"}
	inferredScopes = []string{"order_write", "customer_write", "custom_fields_read", "custom_fields_write", "user_read"}
)

// reference is what setup learns of the account.
type reference struct {
	timezone string
	site     string
	sites    []string
	closed   []string
	statuses map[string]retailcrm.Status
	groups   map[string]retailcrm.StatusGroup
	note     string
}

// setup checks the connection and prepares the account, then records the
// outcome: active, failed, or to be tried again.
func (w *Worker) setup(ctx context.Context, in *Integration, until time.Time) error {
	ref, err := w.prepare(ctx, in)
	now := w.now()
	if err == nil {
		err = w.mapStatuses(ctx, in.counterID, ref)
	}
	if err == nil {
		sites, _ := json.Marshal(ref.sites)
		closed, _ := json.Marshal(ref.closed)
		var res sql.Result
		res, err = w.DB.Writer().ExecContext(ctx, `UPDATE retailcrm_integrations SET state = 'active', error = '', note = $8,
				next_setup_at = NULL, site = $3, sites = $4, closed_statuses = $5, timezone = $6, next_pull_at = $7,
				lease_until = NULL, updated_at = $7
			WHERE counter_id = $1 AND lease_until = $2`,
			in.counterID, until, ref.site, string(sites), string(closed), ref.timezone, now, ref.note)
		if err != nil {
			return fmt.Errorf("retailsync: counter %d: record setup: %w", in.counterID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("retailsync: counter %d: record setup: %w", in.counterID, errLeaseLost)
		}
		if ref.note != "" {
			w.Log.Warn("retailcrm connection active with a warning", "counter", in.counterID, "url", in.URL, "note", ref.note)
		}
		w.Log.Info("retailcrm connection active", "counter", in.counterID, "url", in.URL, "site", ref.site)
		return nil
	}
	if ctx.Err() != nil {
		return nil // shutting down: the lease ends and setup runs again
	}
	state, next, msg := StateFailed, any(nil), describe(err)
	if retailcrm.Retryable(err) && in.SetupAttempts < len(setupBackoff) {
		state, next = StateSettingUp, now.Add(setupBackoff[in.SetupAttempts])
		msg = "will retry: " + msg
	}
	w.Log.Warn("retailcrm setup failed", "counter", in.counterID, "url", in.URL, "state", state, "err", msg)
	res, dberr := w.DB.Writer().ExecContext(context.WithoutCancel(ctx), `UPDATE retailcrm_integrations SET state = $3, error = $4,
			setup_attempts = setup_attempts + 1, next_setup_at = $5, lease_until = NULL, updated_at = $6
		WHERE counter_id = $1 AND lease_until = $2`, in.counterID, until, state, msg, next, now)
	if dberr != nil {
		return fmt.Errorf("retailsync: counter %d: record setup: %w", in.counterID, dberr)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("retailsync: counter %d: record failed setup: %w", in.counterID, errLeaseLost)
	}
	return nil
}

// prepare does the work of setup in the account (spec §12): access, time
// zone, reference data, custom fields.
func (w *Worker) prepare(ctx context.Context, in *Integration) (*reference, error) {
	c, err := w.client(in)
	if err != nil {
		return nil, err
	}
	creds, err := c.Credentials(ctx)
	if err != nil {
		return nil, err
	}
	var missing, unsure []string
	for _, s := range requiredScopes {
		if !creds.HasScope(s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the API key lacks the access the integration needs: %s; allow it in the key's settings in RetailCRM", strings.Join(missing, ", "))
	}
	for _, s := range inferredScopes {
		if !creds.HasScope(s) {
			unsure = append(unsure, s)
		}
	}
	ref, err := loadReference(ctx, c)
	if err != nil {
		return nil, err
	}
	if len(unsure) > 0 {
		ref.note = fmt.Sprintf("the API key's scopes do not list %s (names not confirmed by RetailCRM's docs); if pushes or pulls fail with \"access denied\", allow them in the key's settings", strings.Join(unsure, ", "))
	}
	sites, err := c.Sites(ctx)
	if err != nil {
		return nil, err
	}
	first, ok := retailcrm.FirstSite(sites)
	if !ok {
		return nil, errors.New("the RetailCRM account has no store to create orders in")
	}
	ref.site = first.Code
	for code := range sites {
		ref.sites = append(ref.sites, code)
	}
	sort.Strings(ref.sites)
	return ref, ensureFields(ctx, c)
}

// loadReference reads the account's time zone, statuses and status groups
// (spec §8.2, §8.5). A time zone that is missing or unknown fails: every
// date the account sends would be misread.
func loadReference(ctx context.Context, c *retailcrm.Client) (*reference, error) {
	settings, err := c.Settings(ctx)
	if err != nil {
		return nil, err
	}
	if settings.Timezone == "" {
		return nil, errors.New("the RetailCRM account has no time zone in its settings: set it in RetailCRM, Settings → System settings")
	}
	if _, err := time.LoadLocation(settings.Timezone); err != nil {
		return nil, fmt.Errorf("the RetailCRM account's time zone %q is not one Throughline knows: set it in RetailCRM, Settings → System settings", settings.Timezone)
	}
	ref := &reference{timezone: settings.Timezone}
	if ref.statuses, err = c.Statuses(ctx); err != nil {
		return nil, err
	}
	if ref.groups, err = c.StatusGroups(ctx); err != nil {
		return nil, err
	}
	for code := range retailcrm.ClosedStatuses(ref.groups) {
		ref.closed = append(ref.closed, code)
	}
	sort.Strings(ref.closed)
	return ref, nil
}

// reloadReference reads the account's time zone, statuses and groups again
// at the start of a pull (spec §8.2: every sync cycle; §8.5 asks for the
// settings daily, and one request per pull is cheaper than keeping a
// date): the closed statuses and the zone are stored, and status codes new
// to the counter get the pre-filled mapping (a user's mapping stays).
func (w *Worker) reloadReference(ctx context.Context, in *Integration) error {
	c, err := w.client(&Integration{counterID: in.counterID, URL: in.URL, sealedKey: in.sealedKey})
	if err != nil {
		return err
	}
	ref, err := loadReference(ctx, c)
	if err != nil {
		return err
	}
	if err := w.mapStatuses(ctx, in.counterID, ref); err != nil {
		return err
	}
	closed, _ := json.Marshal(ref.closed)
	if _, err := w.DB.Writer().ExecContext(ctx, `UPDATE retailcrm_integrations SET closed_statuses = $2, timezone = $3
		WHERE counter_id = $1`, in.counterID, string(closed), ref.timezone); err != nil {
		return fmt.Errorf("retailsync: counter %d: store reference data: %w", in.counterID, err)
	}
	in.ClosedStatuses, in.Timezone = ref.closed, ref.timezone
	return nil
}

// ensureFields creates the order custom fields that are missing. A field
// that exists with a text type is reused if it can be filtered by (pushes
// find their orders by it, §10.5); with another type, or not in filters,
// setup fails naming it.
func ensureFields(ctx context.Context, c *retailcrm.Client) error {
	have, err := c.CustomFields(ctx, "order")
	if err != nil {
		return err
	}
	byCode := map[string]retailcrm.CustomField{}
	for _, f := range have {
		byCode[f.Code] = f
	}
	for i, f := range customFields {
		if old, ok := byCode[f.Code]; ok {
			if old.Type != "string" && old.Type != "text" {
				return fmt.Errorf("the order field %q exists in RetailCRM with type %q; the integration needs it to be a string: change or remove it", f.Code, old.Type)
			}
			if !old.InFilter {
				return fmt.Errorf("the order field %q exists in RetailCRM but is not available in filters; the integration finds orders by it: tick \"Display in filters\" in the field's settings", f.Code)
			}
			continue
		}
		f.Type, f.DisplayArea, f.ViewMode = "string", "customer", "editable"
		f.InFilter, f.InList, f.Ordering = true, true, 100+i
		if _, err := c.CustomFieldCreate(ctx, "order", f); err != nil {
			return err
		}
	}
	return nil
}

// mapStatuses adds the account's status codes the counter's mapping lacks
// (complete → PAID, cancel → CANCELLED, the rest IN_PROGRESS, as the
// import offers them); codes already mapped keep their type.
func (w *Worker) mapStatuses(ctx context.Context, counterID int64, ref *reference) error {
	have, err := crm.Statuses(ctx, w.DB, counterID)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, s := range have {
		known[s.Code] = true
	}
	var add []crm.Status
	for _, s := range retailcrm.SortedStatuses(ref.statuses, ref.groups) {
		if known[s.Code] {
			continue
		}
		t := crm.InProgress
		switch s.Group {
		case "complete":
			t = crm.Paid
		case "cancel":
			t = crm.Cancelled
		}
		add = append(add, crm.Status{Code: s.Code, Type: t, Humanized: s.Name, GoalActionIDs: []string{}, Source: "AUTO"})
	}
	if len(add) == 0 {
		return nil
	}
	if err := crm.SaveStatuses(ctx, w.DB, counterID, add, false); err != nil {
		return fmt.Errorf("retailsync: counter %d: status mapping: %w", counterID, err)
	}
	return nil
}

// describe says what went wrong in words that say what to fix: the class
// of a RetailCRM error first, then what it answered.
func describe(err error) string {
	var ae *retailcrm.APIError
	if errors.As(err, &ae) && ae.Class != nil && ae.Class != retailcrm.ErrAPI {
		return ae.Class.Error() + " (" + ae.Error() + ")"
	}
	return err.Error()
}

// broken reports whether err means the connection itself no longer works:
// pushes and pulls stop until the user connects again.
func broken(err error) bool {
	return errors.Is(err, retailcrm.ErrInvalidKey) || errors.Is(err, retailcrm.ErrMissingKey) ||
		errors.Is(err, retailcrm.ErrAccountNotFound) || errors.Is(err, secrets.ErrOpen)
}

// fail marks an active connection failed with the reason.
func (w *Worker) fail(ctx context.Context, counterID int64, err error) error {
	msg := describe(err)
	w.Log.Warn("retailcrm connection failed", "counter", counterID, "err", msg)
	_, dberr := w.DB.Writer().ExecContext(context.WithoutCancel(ctx), `UPDATE retailcrm_integrations SET state = 'failed', error = $2, updated_at = $3
		WHERE counter_id = $1 AND state = 'active'`, counterID, msg, w.now())
	if dberr != nil {
		return fmt.Errorf("retailsync: counter %d: record failure: %w", counterID, dberr)
	}
	return nil
}
