package crm

import (
	"context"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// On PostgreSQL a status mapping waits for an import of the same counter to
// end: the import resolves types with the mapping it read at its start and
// would write the old types over the change (found by review).
func TestSaveStatusesWaitsForAnImport(t *testing.T) {
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	c, _, err := counter.Create(ctx, db, counter.NewCounter{Name: "l", Domain: "shop.ru"})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Writer().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, crmLock, int32(c.ID)); err != nil { // as apply takes it
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- SaveStatuses(ctx, db, c.ID, []Status{{Code: "new", Type: InProgress}}, false) }()
	select {
	case err := <-done:
		t.Fatalf("the mapping was saved while an import held the counter: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	tx.Rollback()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
