package imports

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/retailcrm/fakecrm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// An order that leaves its completed status (complete → cancelled) is no
// longer finished: the next run clears its finish time. (A run stores in
// SAVE mode, where the row read replaces the stored order but for its
// creation time, so a row without a finish time clears it.)
func TestRetailFinishedAtClearedWhenNoLongerComplete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRetailFixture(t, db)
		id := f.crm.AddOrder(fakecrm.O{"createdAt": time.Now().Add(-time.Hour), "status": "complete", "totalSumm": 100})
		task, err := f.create(TaskInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.run(t, task.ID); err != nil {
			t.Fatal(err)
		}
		if o := f.order(t, itoa(id)); o.FinishedAt.IsZero() || o.StatusType != crm.Paid {
			t.Fatalf("complete order: %+v", o)
		}
		f.crm.UpdateOrder(id, fakecrm.O{"status": "cancel-other"})
		if res, err := f.run(t, task.ID); err != nil || res.Updated != 1 {
			t.Fatalf("second run: %v %+v", err, res)
		}
		if o := f.order(t, itoa(id)); !o.FinishedAt.IsZero() || o.StatusType != crm.Cancelled {
			t.Errorf("cancelled order: finished %v, type %s", o.FinishedAt, o.StatusType)
		}
	})
}

// An order without a currency is in the account's default currency
// (/settings default_currency, spec §8.5); RUB only when the account names
// none.
func TestRetailOrderCurrencyFromAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, tc := range []struct{ account, want string }{{"KZT", "KZT"}, {"", "RUB"}} {
			f := newRetailFixture(t, db)
			f.crm.SetDefaultCurrency(tc.account)
			created := time.Now().Add(-time.Hour)
			none := f.crm.AddOrder(fakecrm.O{"createdAt": created, "currency": nil, "totalSumm": 100})
			usd := f.crm.AddOrder(fakecrm.O{"createdAt": created, "currency": "usd", "totalSumm": 100})
			task, err := f.create(TaskInput{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.run(t, task.ID); err != nil {
				t.Fatal(err)
			}
			if got := f.order(t, itoa(none)).Currency; got != tc.want {
				t.Errorf("account currency %q: an order without one is in %q, want %q", tc.account, got, tc.want)
			}
			if got := f.order(t, itoa(usd)).Currency; got != "USD" {
				t.Errorf("account currency %q: an order in usd is in %q", tc.account, got)
			}
		}
	})
}

// Where the order id comes from cannot change once the task has imported
// orders (each would be stored again under its new id, beside the old row):
// a 400 naming column_mapping.order_id that says what to do. Before the
// first import it can.
func TestRetailOrderIDSourceFixedOnceImported(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRetailFixture(t, db)
		f.crm.AddOrder(fakecrm.O{"createdAt": time.Now().Add(-time.Hour), "totalSumm": 100})
		task, err := f.create(TaskInput{})
		if err != nil {
			t.Fatal(err)
		}
		// Nothing imported yet: free to change, and back.
		for _, src := range []string{"number", "id"} {
			if _, err := f.tasks.Update(f.ctx, f.c.ID, task.ID, TaskInput{ColumnMapping: &map[string]string{"order_id": src}}); err != nil {
				t.Fatalf("order_id %s before any import: %v", src, err)
			}
		}
		if _, err := f.run(t, task.ID); err != nil {
			t.Fatal(err)
		}
		_, err = f.tasks.Update(f.ctx, f.c.ID, task.ID, TaskInput{ColumnMapping: &map[string]string{"order_id": "number"}})
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != "column_mapping.order_id" || !strings.Contains(ie.Message, "count it twice") ||
			!strings.Contains(ie.Message, `keep order_id "id"`) {
			t.Fatalf("order_id changed after an import: %v", err)
		}
		if got := f.stored(t, task.ID).ColumnMapping["order_id"]; got != "id" {
			t.Errorf("order_id stored: %q", got)
		}
		// The same source, and other parameters, still change.
		if _, err := f.tasks.Update(f.ctx, f.c.ID, task.ID, TaskInput{ColumnMapping: &map[string]string{"order_id": " id ", "comment": "managerComment"}}); err != nil {
			t.Errorf("other parameters after an import: %v", err)
		}
	})
}
