package crm

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/throughline/throughline/internal/store"
)

// Options describe an import: where it comes from and how it applies.
type Options struct {
	Intake Intake
	Format string // CSV or JSON
	Source string // API, CLI or TASK
	Origin string // the file name or URL, for the log
	TaskID int64  // the import task running it, if any

	Mode MergeMode // how rows combine with stored ones; SAVE when empty
	// SkipBadRows applies the good rows of an upload that has bad ones.
	// Without it (strict, the default) one bad row refuses the whole upload
	// and nothing is applied.
	SkipBadRows bool

	// MaxOrdersPerContact is Metrica's limit (DefaultMaxOrdersPerContact when 0).
	MaxOrdersPerContact int
	// TempDir holds the spool file between the two passes (os.TempDir() when empty).
	TempDir string
	// Progress, when set, is called every few thousand rows.
	Progress func(Progress)
}

// Progress reports how far an import got.
type Progress struct {
	Phase string // PhaseCheck, then PhaseApply
	Rows  int
}

const (
	PhaseCheck = "checking"
	PhaseApply = "applying"
)

const progressEvery = 10_000

// MaxReportedErrors is how many rejected rows an import keeps for its report.
const MaxReportedErrors = 100

// Import statuses.
const (
	StatusRunning = "running"
	StatusPassed  = "passed"
	StatusFailed  = "failed"
)

// Result is the record of one import, as logged in crm_imports.
type Result struct {
	ID         string     `json:"id"`
	TaskID     *int64     `json:"task_id,omitempty"`
	Intake     Intake     `json:"intake"`
	Format     string     `json:"format"`
	Source     string     `json:"source"`
	MergeMode  MergeMode  `json:"merge_mode"`
	Origin     string     `json:"origin,omitempty"`
	Status     string     `json:"status"`
	Message    string     `json:"message,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Read       int        `json:"rows_read"`
	Inserted   int        `json:"inserted"`
	Updated    int        `json:"updated"`
	Unchanged  int        `json:"unchanged"`
	Rejected   int        `json:"rejected"`
	Errors     []RowError `json:"errors"` // the first MaxReportedErrors rejected rows
}

func (r *Result) reject(e *RowError) {
	r.Rejected++
	if len(r.Errors) < MaxReportedErrors {
		r.Errors = append(r.Errors, *e)
	}
}

// RejectedError refuses a strict upload that has bad rows: nothing of it
// was applied.
type RejectedError struct {
	Rejected int
	First    []RowError
}

func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d rows rejected, nothing applied", e.Rejected)
	for i, re := range e.First {
		if i == 3 {
			b.WriteString("; …")
			break
		}
		b.WriteString("; " + re.Error())
	}
	return b.String()
}

// Import reads an upload with the reader open returns and applies it to the
// counter's data, logging the run in crm_imports. It checks every row first
// (spooling the good ones to a temporary file), then applies them in one
// transaction, so an upload is applied whole or not at all: a bad row in a
// strict upload, a reader that fails half-way (a cut-off download) or a
// database error leave the stored data as it was. The returned Result is
// the log record; the error says why the import failed (*FileError: the
// input as a whole is unreadable; *RejectedError: bad rows in a strict
// upload).
func Import(ctx context.Context, db *store.DB, counterID int64, opt Options, open func() (RowReader, error)) (*Result, error) {
	if opt.Mode == "" {
		opt.Mode = Save
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("crm: import id: %w", err)
	}
	res := &Result{ID: id.String(), Intake: opt.Intake, Format: opt.Format, Source: opt.Source,
		MergeMode: opt.Mode, Origin: opt.Origin, Status: StatusRunning,
		StartedAt: time.Now().UTC().Truncate(time.Microsecond), Errors: []RowError{}}
	if opt.TaskID != 0 {
		res.TaskID = &opt.TaskID
	}
	if err := logImport(ctx, db, counterID, res, true); err != nil {
		return res, err
	}
	err = runImport(ctx, db, counterID, opt, open, res)
	finished := time.Now().UTC().Truncate(time.Microsecond)
	res.FinishedAt = &finished
	res.Status = StatusPassed
	switch {
	case err != nil:
		res.Status = StatusFailed
		res.Message = err.Error()
		res.Inserted, res.Updated, res.Unchanged = 0, 0, 0 // rolled back
	case res.Rejected > 0:
		res.Message = fmt.Sprintf("%d bad rows skipped", res.Rejected)
	}
	// Log the outcome even when the caller's context is done: a run must
	// not stay "running" because its client went away.
	if lerr := logImport(context.WithoutCancel(ctx), db, counterID, res, false); lerr != nil {
		return res, errors.Join(err, lerr)
	}
	return res, err
}

func runImport(ctx context.Context, db *store.DB, counterID int64, opt Options, open func() (RowReader, error), res *Result) error {
	r, err := open()
	if err != nil {
		return err
	}
	sp, err := newSpool(opt.TempDir)
	if err != nil {
		return err
	}
	defer sp.remove()
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("crm: import stopped: %w", err)
		}
		row, line, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *RowError
		if errors.As(err, &re) {
			res.Read++
			res.reject(re)
			continue
		}
		if err != nil {
			return err
		}
		res.Read++
		if err := sp.put(row, line); err != nil {
			return err
		}
		if opt.Progress != nil && res.Read%progressEvery == 0 {
			opt.Progress(Progress{Phase: PhaseCheck, Rows: res.Read})
		}
	}
	if res.Rejected > 0 && !opt.SkipBadRows {
		return &RejectedError{Rejected: res.Rejected, First: res.Errors}
	}
	sr, err := sp.reader()
	if err != nil {
		return err
	}
	return apply(ctx, db, counterID, sr, opt, res)
}

// logImport records the start of an import (insert) or its outcome.
func logImport(ctx context.Context, db *store.DB, counterID int64, r *Result, start bool) error {
	errs, _ := json.Marshal(r.Errors)
	var task any
	if r.TaskID != nil {
		task = *r.TaskID
	}
	var err error
	if start {
		_, err = db.Writer().ExecContext(ctx, `INSERT INTO crm_imports (counter_id, id, task_id, intake, format, source, merge_mode,
			origin, status, message, started_at, rows_read, inserted, updated, unchanged, rejected, errors)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, 0, 0, 0, 0, '[]')`,
			counterID, r.ID, task, string(r.Intake), r.Format, r.Source, string(r.MergeMode), r.Origin, r.Status, r.Message, r.StartedAt)
	} else {
		_, err = db.Writer().ExecContext(ctx, `UPDATE crm_imports SET status = $3, message = $4, finished_at = $5,
			rows_read = $6, inserted = $7, updated = $8, unchanged = $9, rejected = $10, errors = $11
			WHERE counter_id = $1 AND id = $2`,
			counterID, r.ID, r.Status, r.Message, r.FinishedAt, r.Read, r.Inserted, r.Updated, r.Unchanged, r.Rejected, string(errs))
	}
	if err != nil {
		return fmt.Errorf("crm: log import: %w", err)
	}
	return nil
}

const importColumns = `id, task_id, intake, format, source, merge_mode, origin, status, message,
	started_at, finished_at, rows_read, inserted, updated, unchanged, rejected, errors`

func scanImport(row scanner) (*Result, error) {
	r := &Result{}
	var task sql.NullInt64
	var finished sql.NullTime
	var intake, mode, errs string
	if err := row.Scan(&r.ID, &task, &intake, &r.Format, &r.Source, &mode, &r.Origin, &r.Status, &r.Message,
		&r.StartedAt, &finished, &r.Read, &r.Inserted, &r.Updated, &r.Unchanged, &r.Rejected, &errs); err != nil {
		return nil, err
	}
	r.Intake, r.MergeMode = Intake(intake), MergeMode(mode)
	if task.Valid {
		r.TaskID = &task.Int64
	}
	if finished.Valid {
		r.FinishedAt = &finished.Time
	}
	if err := json.Unmarshal([]byte(errs), &r.Errors); err != nil {
		return nil, fmt.Errorf("import %s: errors: %w", r.ID, err)
	}
	return r, nil
}

// ErrNotFound means the counter has no such order, contact or import.
var ErrNotFound = errors.New("not found")

// GetImport returns one import of the counter.
func GetImport(ctx context.Context, db *store.DB, counterID int64, id string) (*Result, error) {
	r, err := scanImport(db.Reader().QueryRowContext(ctx, `SELECT `+importColumns+` FROM crm_imports WHERE counter_id = $1 AND id = $2`, counterID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("crm: get import %s: %w", id, err)
	}
	return r, nil
}

// ImportQuery selects imports, newest first.
type ImportQuery struct {
	TaskID int64     // only this task's runs (0: all imports)
	Before time.Time // only imports started strictly before (zero: no bound)
	Source string    // only from this source ("": any)
	Limit  int
}

// ListImports returns the counter's imports, newest first.
func ListImports(ctx context.Context, db *store.DB, counterID int64, q ImportQuery) ([]*Result, error) {
	f := store.NewFilter(counterID)
	if q.TaskID != 0 {
		f.Add("task_id = " + f.Arg(q.TaskID))
	}
	if !q.Before.IsZero() {
		f.Add("started_at < " + f.Arg(q.Before))
	}
	if q.Source != "" {
		f.Add("source = " + f.Arg(q.Source))
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+importColumns+` FROM crm_imports WHERE `+f.SQL()+`
		ORDER BY started_at DESC, id DESC LIMIT `+f.Arg(q.Limit), f.Args...)
	if err != nil {
		return nil, fmt.Errorf("crm: list imports: %w", err)
	}
	defer rows.Close()
	out := []*Result{}
	for rows.Next() {
		r, err := scanImport(rows)
		if err != nil {
			return nil, fmt.Errorf("crm: list imports: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
