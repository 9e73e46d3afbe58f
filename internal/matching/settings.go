package matching

import (
	"context"
	"database/sql"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/rollup"
	"github.com/throughline/throughline/internal/store"
)

// SettingsChange is what changing a counter's settings set in motion.
type SettingsChange struct {
	Old, New counter.Counter
	// Requeued orders are matched again: the lookback window changed what
	// counts as evidence for every order. The caller kicks the worker.
	Requeued int64
}

// UpdateCounter changes a counter's settings with what the change implies,
// for the API and the cabinet alike: a new lookback window queues every
// order for matching again (in the same transaction), a new time zone
// forgets the report rollups (its days begin at other hours).
func UpdateCounter(ctx context.Context, db *store.DB, id int64, p counter.Patch) (SettingsChange, error) {
	var ch SettingsChange
	c, err := counter.UpdateThen(ctx, db, id, p, func(tx *sql.Tx, old, c counter.Counter) (err error) {
		ch.Old = old
		if c.LookbackDays != old.LookbackDays {
			ch.Requeued, err = EnqueueAll(ctx, tx, id, time.Now())
		}
		return err
	})
	if err != nil {
		return ch, err
	}
	ch.New = c
	if c.Timezone != ch.Old.Timezone {
		if err := rollup.Forget(ctx, db, id); err != nil {
			return ch, err
		}
	}
	return ch, nil
}
