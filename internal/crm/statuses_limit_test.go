package crm_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// The status cap counts only the codes a pre-fill adds: offering again the
// statuses a counter near the cap already maps is no error, adding past it
// is.
func TestAddMissingStatusesCountsNewCodesOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := newCounter(t, db, "shop.example.ru")
		list := make([]crm.Status, crm.MaxStatuses-1)
		for i := range list {
			list[i] = crm.Status{Code: fmt.Sprint("s", i), Type: crm.InProgress}
		}
		if err := crm.SaveStatuses(ctx, db, c.ID, list, false); err != nil {
			t.Fatal(err)
		}
		offer := []crm.Status{{Code: "s1", Type: crm.Paid}, {Code: "s2", Type: crm.Paid}, {Code: "new", Type: crm.InProgress}}
		added, err := crm.AddMissingStatuses(ctx, db, c.ID, offer)
		if err != nil || len(added) != 1 || added[0].Code != "new" {
			t.Fatalf("one new code at %d: %v %+v", crm.MaxStatuses-1, err, added)
		}
		if added, err := crm.AddMissingStatuses(ctx, db, c.ID, offer); err != nil || len(added) != 0 {
			t.Fatalf("the same offer again at the cap: %v %+v", err, added)
		}
		if _, err := crm.AddMissingStatuses(ctx, db, c.ID, []crm.Status{{Code: "one-too-many", Type: crm.Paid}}); err == nil {
			t.Fatal("a status past the cap was added")
		}
	})
}
