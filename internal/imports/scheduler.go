package imports

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/throughline/throughline/internal/crm"
)

// Scheduler runs import tasks when they are due. Several serve processes
// may run one each on the same database: a process runs a task only after
// moving its due time forward with a compare-and-set, so each due time is
// run once, by whichever process claimed it.
type Scheduler struct {
	Tasks   *Tasks
	Fetcher *Fetcher
	Log     *slog.Logger
	TempDir string
	// Poll is how often the scheduler looks for due tasks (a minute when 0);
	// Wake makes it look at once.
	Poll time.Duration
	// RunTimeout bounds one run (an hour when 0). A run still "running"
	// twice as long after it started was cut off by a stopped process and is
	// marked failed.
	RunTimeout time.Duration

	wake chan struct{}
}

// Wake asks the scheduler to look for due tasks now (a task was saved).
func (s *Scheduler) Wake() {
	if s.wake == nil {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Init prepares Wake; call it before Run and before handing the scheduler out.
func (s *Scheduler) Init() {
	s.wake = make(chan struct{}, 1)
	if s.Poll <= 0 {
		s.Poll = time.Minute
	}
	if s.RunTimeout <= 0 {
		s.RunTimeout = time.Hour
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
}

// Run loops until ctx is done, running due tasks one at a time.
func (s *Scheduler) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.Log.Error("import scheduler: sweep interrupted runs", "err", err)
		}
		for ctx.Err() == nil {
			ran, err := s.RunDue(ctx)
			if err != nil && ctx.Err() == nil {
				s.Log.Error("import scheduler", "err", err)
			}
			if !ran {
				break
			}
		}
		t.Reset(s.Poll)
	}
}

// RunDue claims one due task and runs it; ran is false when none was due.
func (s *Scheduler) RunDue(ctx context.Context) (ran bool, err error) {
	db := s.Tasks.DB
	now := time.Now().UTC().Truncate(time.Microsecond)
	// A task running now (by hand, or elsewhere) stays due until it ends.
	rows, err := db.Reader().QueryContext(ctx, `SELECT `+taskColumns+` FROM import_tasks
		WHERE active AND next_run_at <= $1 AND (run_lease_until IS NULL OR run_lease_until < $1)
		ORDER BY next_run_at LIMIT 10`, now)
	if err != nil {
		return false, fmt.Errorf("imports: due tasks: %w", err)
	}
	var due []*Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			rows.Close()
			return false, fmt.Errorf("imports: due tasks: %w", err)
		}
		due = append(due, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("imports: due tasks: %w", err)
	}
	for _, t := range due {
		next := now.Add(time.Duration(t.FrequencyHours) * time.Hour)
		runCtx, cancel := context.WithTimeout(ctx, s.RunTimeout)
		lease := runLease(runCtx)
		// The due time and the task's run lease, claimed together: a
		// run by hand going on leaves the due time for after it.
		res, err := db.Writer().ExecContext(ctx, `UPDATE import_tasks SET next_run_at = $4, run_lease_until = $5
			WHERE counter_id = $1 AND id = $2 AND active AND next_run_at = $3 AND (run_lease_until IS NULL OR run_lease_until < $6)`,
			t.CounterID, t.ID, *t.NextRunAt, next, lease, now)
		if err != nil {
			cancel()
			return false, fmt.Errorf("imports: claim task %d: %w", t.ID, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			cancel()
			continue // another process claimed this due time, or the task changed or is running
		}
		s.run(runCtx, t, lease)
		cancel()
		return true, nil
	}
	return false, nil
}

func (s *Scheduler) run(ctx context.Context, t *Task, lease time.Time) {
	log := s.Log.With("counter", t.CounterID, "task", t.ID, "url", t.URL)
	defer func() {
		// A bug in one feed's run must not take the server down; the run's
		// record stays "running" and the sweep marks it failed.
		if p := recover(); p != nil {
			log.Error("import task: panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	log.Info("import task: running")
	res, err := s.Tasks.runLeased(ctx, s.Fetcher, t, s.TempDir, lease)
	switch {
	case res == nil:
		log.Error("import task: could not start", "err", err)
	case err != nil:
		log.Warn("import task: failed", "import", res.ID, "rows", res.Read, "rejected", res.Rejected, "err", err)
	default:
		log.Info("import task: done", "import", res.ID, "rows", res.Read, "inserted", res.Inserted,
			"updated", res.Updated, "unchanged", res.Unchanged, "rejected", res.Rejected)
	}
}

// sweep marks imports that have been "running" far longer than they may
// take as failed: the process running them stopped. A task's run is bounded
// by RunTimeout; an upload or a CLI import has no bound, so it is given a day.
func (s *Scheduler) sweep(ctx context.Context) error {
	now := time.Now().UTC()
	_, err := s.Tasks.DB.Writer().ExecContext(ctx, `UPDATE crm_imports SET status = $1, finished_at = $2,
		message = 'interrupted: the process running this import stopped before it finished; nothing of it was applied'
		WHERE status = $3 AND ((source = 'TASK' AND started_at < $4) OR started_at < $5)`,
		crm.StatusFailed, now, crm.StatusRunning, now.Add(-2*s.RunTimeout), now.Add(-24*time.Hour))
	if err != nil && !errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("imports: sweep: %w", err)
	}
	return nil
}
