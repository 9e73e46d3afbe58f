package imports

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/retailcrm"
	"github.com/throughline/throughline/internal/secrets"
	"github.com/throughline/throughline/internal/store"
)

// Task types: TypeCSVFeed here, TypeRetailCRM in retailcrm.go.
const TypeCSVFeed = "csv_feed" // a K50:Tracker CSV feed fetched by URL

// Task is an import task: a feed fetched, or a RetailCRM account read,
// and imported every few hours.
type Task struct {
	ID             int64             `json:"id"`
	CounterID      int64             `json:"counter_id"`
	Name           string            `json:"name"`
	Active         bool              `json:"active"`
	Type           string            `json:"type"`
	URL            string            `json:"url"` // shown without its password; retailcrm: the account
	FrequencyHours int               `json:"frequency_hours"`
	ColumnMapping  map[string]string `json:"column_mapping"` // K50 column → the feed's header; retailcrm: parameter → order field
	SkipBadRows    bool              `json:"skip_bad_rows"`
	APIKey         string            `json:"api_key,omitempty"`    // retailcrm: masked, ****abcd
	StartDate      *time.Time        `json:"start_date,omitempty"` // retailcrm: the first run reads orders created from here
	NextRunAt      *time.Time        `json:"next_run_at"`          // null when inactive
	LastRun        *crm.Result       `json:"last_run"`
	Notes          []string          `json:"notes,omitempty"` // retailcrm: what the save's connection test found to fix, not fatal
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`

	url    string // with credentials, for fetching
	apiKey string // sealed
	cursor string // retailcrm: where the next run starts (JSON), "" before the first
	gen    int64  // the cursor's generation: bumped by each reset
	reset  bool   // apply reset the cursor: Update stores '' and bumps gen
}

// resetCursor makes the next run start over (another account, start date
// or mapping); a run in progress will not save its cursor over it.
func (t *Task) resetCursor() { t.cursor, t.reset = "", true }

// TaskInput creates or changes a task; nil fields are left as they are
// (on create: defaults).
type TaskInput struct {
	Name           *string            `json:"name"`
	Active         *bool              `json:"active"`
	Type           *string            `json:"type"`
	URL            *string            `json:"url"`
	FrequencyHours *int               `json:"frequency_hours"`
	ColumnMapping  *map[string]string `json:"column_mapping"`
	SkipBadRows    *bool              `json:"skip_bad_rows"`
	APIKey         *string            `json:"api_key"`    // retailcrm
	StartDate      *string            `json:"start_date"` // retailcrm: YYYY-MM-DD [HH:MM:SS] in the account's zone
}

// InvalidError names the field of a task that is wrong.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// ErrNotFound means the counter has no such task.
var ErrNotFound = errors.New("import task not found")

// MaxFrequencyHours is the longest period between runs: a week.
const MaxFrequencyHours = 7 * 24

// Tasks manages import tasks and knows whether private feed addresses are
// allowed (checked when a task is saved, and again at each connection).
type Tasks struct {
	DB           *store.DB
	AllowPrivate bool
	// Resolve looks host names up; nil means net.DefaultResolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Box seals the API keys of retailcrm tasks.
	Box *secrets.Box
	// RetailOptions are the base options of RetailCRM clients (tests
	// shorten the retries); the HTTP client defaults to the guarded one.
	RetailOptions retailcrm.Options
	// RetailRunDone, if set, hears how each retailcrm run spent its time.
	RetailRunDone func(RetailRun)
	// Log hears what a run notices but does not fail for; nil: slog.Default().
	Log *slog.Logger

	clientOnce sync.Once
	client     *http.Client
}

func (ts *Tasks) log() *slog.Logger {
	if ts.Log != nil {
		return ts.Log
	}
	return slog.Default()
}

// guardedClient is the HTTP client for RetailCRM accounts: the feed
// fetcher's, which refuses private addresses unless allowed.
func (ts *Tasks) guardedClient() *http.Client {
	ts.clientOnce.Do(func() {
		ts.client = NewFetcher(FetcherOptions{AllowPrivate: ts.AllowPrivate}).client
	})
	return ts.client
}

func (ts *Tasks) apply(ctx context.Context, t *Task, in TaskInput, creating bool) error {
	if in.Name != nil {
		t.Name = strings.TrimSpace(*in.Name)
	}
	if t.Name == "" || utf8.RuneCountInString(t.Name) > 200 || !utf8.ValidString(t.Name) {
		return &InvalidError{"name", "is required, up to 200 characters"}
	}
	if in.Type != nil {
		if !creating && *in.Type != t.Type {
			return &InvalidError{"type", "cannot be changed: create another task"}
		}
		t.Type = *in.Type
	}
	if t.Type != TypeCSVFeed && t.Type != TypeRetailCRM {
		return &InvalidError{"type", fmt.Sprintf("%q is not a task type: csv_feed (a K50 CSV feed by URL) or retailcrm (a RetailCRM account)", t.Type)}
	}
	if in.FrequencyHours != nil {
		t.FrequencyHours = *in.FrequencyHours
	}
	if t.FrequencyHours < 1 || t.FrequencyHours > MaxFrequencyHours {
		return &InvalidError{"frequency_hours", fmt.Sprintf("must be from 1 to %d", MaxFrequencyHours)}
	}
	if in.SkipBadRows != nil {
		t.SkipBadRows = *in.SkipBadRows
	}
	if t.Type == TypeRetailCRM {
		if err := ts.applyRetail(ctx, t, in, creating); err != nil {
			return err
		}
		if in.Active != nil {
			t.Active = *in.Active
		}
		return nil
	}
	if in.APIKey != nil || in.StartDate != nil {
		return &InvalidError{"api_key", "api_key and start_date are for retailcrm tasks"}
	}
	if in.URL != nil {
		u, err := CheckURL(*in.URL)
		if err != nil {
			return &InvalidError{"url", err.Error()}
		}
		if err := ts.checkHost(ctx, u.Hostname()); err != nil {
			return &InvalidError{"url", err.Error()}
		}
		t.url = u.String()
		t.URL = Redact(t.url)
	}
	if t.url == "" {
		return &InvalidError{"url", "is required: the address the feed is fetched from"}
	}
	if in.ColumnMapping != nil {
		t.ColumnMapping = map[string]string{}
		for k, v := range *in.ColumnMapping {
			name := ""
			for _, c := range crm.K50Columns {
				if strings.EqualFold(c, k) {
					name = c
				}
			}
			if name == "" {
				return &InvalidError{"column_mapping", fmt.Sprintf("%q is not a K50 feed column (%s)", k, strings.Join(crm.K50Columns, ", "))}
			}
			if strings.TrimSpace(v) == "" || len(v) > 200 {
				return &InvalidError{"column_mapping", fmt.Sprintf("the header for %s must be 1–200 characters", name)}
			}
			t.ColumnMapping[name] = strings.TrimSpace(v)
		}
	}
	if in.Active != nil {
		t.Active = *in.Active
	}
	return nil
}

// checkHost refuses, unless allowed, a host that is or resolves to a
// non-public address (CheckHost).
func (ts *Tasks) checkHost(ctx context.Context, host string) error {
	if ts.AllowPrivate {
		return nil
	}
	return CheckHost(ctx, host, ts.Resolve)
}

// Create stores a new task. An active task is due at once.
func (ts *Tasks) Create(ctx context.Context, counterID int64, in TaskInput) (*Task, error) {
	t := &Task{CounterID: counterID, Type: TypeCSVFeed, FrequencyHours: 1, Active: true, ColumnMapping: map[string]string{}}
	if in.Type != nil && *in.Type == TypeRetailCRM {
		// An API import must not stall on one order it cannot read: the
		// run skips it and its log says which and why.
		t.ColumnMapping, t.SkipBadRows = DefaultRetailMapping(), true
	}
	if err := ts.apply(ctx, t, in, true); err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	t.CreatedAt, t.UpdatedAt = now, now
	if t.Active {
		t.NextRunAt = &now
	}
	mapping, _ := json.Marshal(t.ColumnMapping)
	err := ts.DB.Writer().QueryRowContext(ctx, `INSERT INTO import_tasks (counter_id, name, active, type, url, frequency_hours,
		column_mapping, skip_bad_rows, next_run_at, created_at, updated_at, api_key, start_date, sync_cursor)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
		counterID, t.Name, t.Active, t.Type, t.url, t.FrequencyHours, string(mapping), t.SkipBadRows, nullTime(t.NextRunAt), now, now,
		t.apiKey, nullTime(t.StartDate), t.cursor).Scan(&t.ID)
	if err != nil {
		return nil, fmt.Errorf("imports: create task: %w", err)
	}
	t.URL = Redact(t.url)
	return t, nil
}

// present fills what a task shows of its sealed key.
func (ts *Tasks) present(t *Task) {
	if t.apiKey == "" || ts.Box == nil {
		return
	}
	if key, err := ts.Box.Opened(retailKeyPurpose, t.apiKey); err == nil {
		t.APIKey = MaskKey(key)
	} else {
		t.APIKey = "(cannot be opened: give it again)"
	}
}

// Update changes a task. Saving an active task whose feed, mapping or
// activity changed makes it due at once.
//
// Only what the user changed is written: the cursor only when it is reset
// (a run in progress then keeps its own, see runRetail), the due time only
// when it moves (the scheduler may have claimed the one read here while the
// connection test ran).
func (ts *Tasks) Update(ctx context.Context, counterID, id int64, in TaskInput) (*Task, error) {
	t, err := ts.get(ctx, ts.DB.Writer(), counterID, id)
	if err != nil {
		return nil, err
	}
	wasActive, oldURL, oldMapping := t.Active, t.url, maps.Clone(t.ColumnMapping)
	if err := ts.apply(ctx, t, in, false); err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	moveDue := true
	switch {
	case !t.Active:
		t.NextRunAt = nil
	case !wasActive || t.url != oldURL || !maps.Equal(t.ColumnMapping, oldMapping) || t.reset:
		t.NextRunAt = &now
	default:
		moveDue = false
	}
	mapping, _ := json.Marshal(t.ColumnMapping)
	reset := 0
	if t.reset {
		reset = 1
	}
	row := ts.DB.Writer().QueryRowContext(ctx, `UPDATE import_tasks SET name = $3, active = $4, type = $5, url = $6,
		frequency_hours = $7, column_mapping = $8, skip_bad_rows = $9,
		next_run_at = CASE WHEN $10 THEN $11 ELSE next_run_at END, updated_at = $12,
		api_key = $13, start_date = $14,
		sync_cursor = CASE WHEN $15 = 1 THEN '' ELSE sync_cursor END, cursor_gen = cursor_gen + $15
		WHERE counter_id = $1 AND id = $2 RETURNING next_run_at`,
		counterID, id, t.Name, t.Active, t.Type, t.url, t.FrequencyHours, string(mapping), t.SkipBadRows, moveDue, nullTime(t.NextRunAt), now,
		t.apiKey, nullTime(t.StartDate), reset)
	var next sql.NullTime
	if err := row.Scan(&next); errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound // deleted meanwhile
	} else if err != nil {
		return nil, fmt.Errorf("imports: update task %d: %w", id, err)
	}
	t.NextRunAt = nil
	if next.Valid {
		n := next.Time.UTC()
		t.NextRunAt = &n
	}
	t.UpdatedAt = now
	ts.present(t)
	return t, ts.withLastRun(ctx, t)
}

// Delete removes a task; the records of its runs stay.
func (ts *Tasks) Delete(ctx context.Context, counterID, id int64) error {
	res, err := ts.DB.Writer().ExecContext(ctx, `DELETE FROM import_tasks WHERE counter_id = $1 AND id = $2`, counterID, id)
	if err != nil {
		return fmt.Errorf("imports: delete task %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Get returns a task with its last run.
func (ts *Tasks) Get(ctx context.Context, counterID, id int64) (*Task, error) {
	t, err := ts.get(ctx, ts.DB.Reader(), counterID, id)
	if err != nil {
		return nil, err
	}
	ts.present(t)
	return t, ts.withLastRun(ctx, t)
}

const taskColumns = `id, counter_id, name, active, type, url, frequency_hours, column_mapping, skip_bad_rows, next_run_at, created_at, updated_at,
	api_key, start_date, sync_cursor, cursor_gen`

func scanTask(row interface{ Scan(...any) error }) (*Task, error) {
	t := &Task{}
	var mapping string
	var next, start sql.NullTime
	if err := row.Scan(&t.ID, &t.CounterID, &t.Name, &t.Active, &t.Type, &t.url, &t.FrequencyHours, &mapping,
		&t.SkipBadRows, &next, &t.CreatedAt, &t.UpdatedAt, &t.apiKey, &start, &t.cursor, &t.gen); err != nil {
		return nil, err
	}
	if next.Valid {
		t.NextRunAt = &next.Time
	}
	if start.Valid {
		s := start.Time.UTC()
		t.StartDate = &s
	}
	if err := json.Unmarshal([]byte(mapping), &t.ColumnMapping); err != nil {
		return nil, fmt.Errorf("task %d: column mapping: %w", t.ID, err)
	}
	t.URL = Redact(t.url)
	return t, nil
}

func (ts *Tasks) get(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, counterID, id int64) (*Task, error) {
	t, err := scanTask(q.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM import_tasks WHERE counter_id = $1 AND id = $2`, counterID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("imports: get task %d: %w", id, err)
	}
	return t, nil
}

func (ts *Tasks) withLastRun(ctx context.Context, t *Task) error {
	runs, err := crm.ListImports(ctx, ts.DB, t.CounterID, crm.ImportQuery{TaskID: t.ID, Limit: 1})
	if err != nil {
		return err
	}
	if len(runs) > 0 {
		t.LastRun = runs[0]
	}
	return nil
}

// List returns the counter's tasks with their last runs.
func (ts *Tasks) List(ctx context.Context, counterID int64) ([]*Task, error) {
	rows, err := ts.DB.Reader().QueryContext(ctx, `SELECT `+taskColumns+` FROM import_tasks WHERE counter_id = $1 ORDER BY id`, counterID)
	if err != nil {
		return nil, fmt.Errorf("imports: list tasks: %w", err)
	}
	out := []*Task{}
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("imports: list tasks: %w", err)
		}
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("imports: list tasks: %w", err)
	}
	for _, t := range out {
		ts.present(t)
		if err := ts.withLastRun(ctx, t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ErrRunning means the task has a run in progress (scheduled or started by
// hand): one run of a task at a time.
var ErrRunning = errors.New("this import task is running now (started by the schedule or by hand): wait for that run to finish — GET …/runs shows it — then start another if needed")

// runLease is how long a run holds its task: the run's deadline and a
// margin, or two hours when it has none. A lease past its time was held by
// a process that stopped.
func runLease(ctx context.Context) time.Time {
	until := time.Now().Add(2 * time.Hour)
	if d, ok := ctx.Deadline(); ok {
		until = d.Add(5 * time.Minute)
	}
	return until.UTC().Truncate(time.Microsecond)
}

// Run fetches the task's feed (or reads its RetailCRM account) and imports
// it, now, logging the run. It returns ErrRunning when the task is running
// already.
func (ts *Tasks) Run(ctx context.Context, f *Fetcher, t *Task, tempDir string) (*crm.Result, error) {
	lease := runLease(ctx)
	now := time.Now().UTC().Truncate(time.Microsecond)
	res, err := ts.DB.Writer().ExecContext(ctx, `UPDATE import_tasks SET run_lease_until = $3
		WHERE counter_id = $1 AND id = $2 AND (run_lease_until IS NULL OR run_lease_until < $4)`, t.CounterID, t.ID, lease, now)
	if err != nil {
		return nil, fmt.Errorf("imports: claim task %d: %w", t.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		if _, err := ts.get(ctx, ts.DB.Writer(), t.CounterID, t.ID); err != nil {
			return nil, err // deleted
		}
		return nil, ErrRunning
	}
	return ts.runLeased(ctx, f, t, tempDir, lease)
}

// runLeased runs a task whose lease the caller holds, from the task as
// stored now (a run that ended meanwhile may have moved its cursor), and
// lets the lease go.
func (ts *Tasks) runLeased(ctx context.Context, f *Fetcher, t *Task, tempDir string, lease time.Time) (*crm.Result, error) {
	defer func() {
		if _, err := ts.DB.Writer().ExecContext(context.WithoutCancel(ctx), `UPDATE import_tasks SET run_lease_until = NULL
			WHERE counter_id = $1 AND id = $2 AND run_lease_until = $3`, t.CounterID, t.ID, lease); err != nil {
			ts.log().Error("import task: release the run lease", "counter", t.CounterID, "task", t.ID, "err", err)
		}
	}()
	fresh, err := ts.get(ctx, ts.DB.Writer(), t.CounterID, t.ID)
	if err != nil {
		return nil, err
	}
	*t = *fresh
	return ts.run(ctx, f, t, tempDir)
}

func (ts *Tasks) run(ctx context.Context, f *Fetcher, t *Task, tempDir string) (*crm.Result, error) {
	if t.Type == TypeRetailCRM {
		return ts.runRetail(ctx, f, t, tempDir)
	}
	c, err := counter.Get(ctx, ts.DB, t.CounterID)
	if err != nil {
		return nil, err
	}
	var body interface{ Close() error }
	defer func() {
		if body != nil {
			body.Close()
		}
	}()
	return crm.Import(ctx, ts.DB, t.CounterID, crm.Options{
		Intake: crm.K50Feed, Format: "CSV", Source: "TASK", Origin: t.URL, TaskID: t.ID,
		SkipBadRows: t.SkipBadRows, TempDir: tempDir,
	}, func() (crm.RowReader, error) {
		b, err := f.Open(ctx, t.url)
		if err != nil {
			return nil, err
		}
		body = b
		return crm.NewK50Reader(b, c.Location(), t.ColumnMapping)
	})
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}
