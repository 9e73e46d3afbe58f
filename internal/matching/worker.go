package matching

import (
	"context"
	"log/slog"
	"time"

	"github.com/throughline/throughline/internal/store"
)

// Worker matches queued orders in the background, as serve runs: it drains
// the queue, then waits Poll (or a Kick) before looking again.
type Worker struct {
	db   *store.DB
	log  *slog.Logger
	poll time.Duration
	kick chan struct{}

	// Then, when set, runs after each pass: serve refreshes the report
	// rollups the new matches changed.
	Then func(context.Context) error
}

// NewWorker returns a worker over db that looks at the queue every poll
// (2 s when 0).
func NewWorker(db *store.DB, log *slog.Logger, poll time.Duration) *Worker {
	if poll <= 0 {
		poll = 2 * time.Second
	}
	return &Worker{db: db, log: log, poll: poll, kick: make(chan struct{}, 1)}
}

// Kick makes the worker look at the queue now rather than at its next poll.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run works until ctx ends. A failed run is logged and tried again at the
// next poll: the queue keeps the orders it did not finish.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
		start := time.Now()
		st, err := Run(ctx, w.db, 0)
		if err != nil && ctx.Err() == nil {
			w.log.Error("matching failed; will retry", "err", err, "matched", st.Orders)
		} else if st.Orders > 0 {
			w.log.Info("orders matched", "orders", st.Orders, "not_found", st.NotFound, "touches", st.Touches,
				"by_rung", st.ByRung, "took", time.Since(start).Round(time.Millisecond))
		}
		if w.Then != nil && ctx.Err() == nil {
			if err := w.Then(ctx); err != nil && ctx.Err() == nil {
				w.log.Error("after matching", "err", err)
			}
		}
		t.Reset(w.poll)
	}
}
