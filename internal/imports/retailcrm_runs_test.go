package imports

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/retailcrm/fakecrm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// stored reads a task as the database has it (cursor and generation too).
func (f *retailFixture) stored(t *testing.T, id int64) *Task {
	t.Helper()
	tk, err := f.tasks.get(f.ctx, f.db.Reader(), f.c.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// once runs fn on the first request to path the fake answers, outside its
// lock: the account (or our database) changes between two requests.
func (f *retailFixture) once(path string, fn func()) {
	var done atomic.Bool
	f.crm.OnRequest(func(r fakecrm.Request) {
		if r.Path == path && done.CompareAndSwap(false, true) {
			fn()
		}
	})
}

// A start date changed while a run reads the orders resets the cursor; the
// run, when it ends, must not save its own over the reset, or the orders
// between the two start dates would never be read.
func TestRetailResetDuringRunKept(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRetailFixture(t, db)
		f.crm.GenerateOrders(150, fakecrm.Generate{Start: time.Now().AddDate(0, 0, -5)})
		task, err := f.create(TaskInput{StartDate: strp(time.Now().AddDate(0, 0, -10).Format("2006-01-02"))})
		if err != nil {
			t.Fatal(err)
		}
		var updateErr error
		f.once("/api/v5/orders", func() {
			_, updateErr = f.tasks.Update(f.ctx, f.c.ID, task.ID, TaskInput{StartDate: strp(time.Now().AddDate(0, 0, -30).Format("2006-01-02"))})
		})
		if _, err := f.run(t, task.ID); err != nil {
			t.Fatal(err)
		}
		f.crm.OnRequest(nil)
		if updateErr != nil {
			t.Fatal(updateErr)
		}
		if c := f.stored(t, task.ID).cursor; c != "" {
			t.Fatalf("the run saved its cursor %s over the reset", c)
		}
		// The next run starts over, and then saves its cursor.
		if _, err := f.run(t, task.ID); err != nil || f.stored(t, task.ID).cursor == "" {
			t.Fatalf("run after the reset: %v, cursor %q", err, f.stored(t, task.ID).cursor)
		}
	})
}

// Update writes the cursor only when it resets it and the due time only
// when it moves it: a run that saved its cursor, or a scheduler that claimed
// the due time, while the connection test ran keeps what it wrote.
func TestRetailUpdateKeepsRunState(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRetailFixture(t, db)
		task, err := f.create(TaskInput{})
		if err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		f.once("/api/credentials", func() {
			if _, err := db.Writer().Exec(`UPDATE import_tasks SET sync_cursor = '{"history_since_id":7}', next_run_at = $3
				WHERE counter_id = $1 AND id = $2`, f.c.ID, task.ID, later); err != nil {
				t.Error(err)
			}
		})
		key := f.crm.Key()
		got, err := f.tasks.Update(f.ctx, f.c.ID, task.ID, TaskInput{Name: strp("renamed"), APIKey: &key})
		f.crm.OnRequest(nil)
		if err != nil {
			t.Fatal(err)
		}
		st := f.stored(t, task.ID)
		if st.cursor != `{"history_since_id":7}` || st.NextRunAt == nil || !st.NextRunAt.Equal(later) || st.Name != "renamed" {
			t.Fatalf("after the update: cursor %q, next %v, name %q", st.cursor, st.NextRunAt, st.Name)
		}
		if got.NextRunAt == nil || !got.NextRunAt.Equal(later) {
			t.Errorf("the answer's next run: %v", got.NextRunAt)
		}
	})
}

// The stored key goes only to the account it was given for: a new url
// needs the key again (400 naming api_key, the new address not contacted),
// and a redirect to another host is not followed with the key.
func TestRetailKeyStaysWithItsAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRetailFixture(t, db)
		task, err := f.create(TaskInput{})
		if err != nil {
			t.Fatal(err)
		}
		var hits atomic.Int32
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			f.crm.ServeHTTP(w, r)
		}))
		defer other.Close()
		_, err = f.tasks.Update(f.ctx, f.c.ID, task.ID, TaskInput{URL: &other.URL})
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != "api_key" || !strings.Contains(ie.Message, "url changes") {
			t.Fatalf("new url without a key: %v", err)
		}
		if hits.Load() != 0 {
			t.Fatalf("the new url was contacted %d times", hits.Load())
		}
		key := f.crm.Key()
		if _, err := f.tasks.Update(f.ctx, f.c.ID, task.ID, TaskInput{URL: &other.URL, APIKey: &key}); err != nil || hits.Load() == 0 {
			t.Fatalf("new url with its key: %v (%d requests)", err, hits.Load())
		}

		// An account address that redirects elsewhere: the key is not
		// sent on.
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, f.crm.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		}))
		defer redirector.Close()
		f.crm.ResetRequests()
		_, err = f.create(TaskInput{URL: &redirector.URL})
		if !errors.As(err, &ie) || ie.Field != "url" || !strings.Contains(ie.Message, "another host") {
			t.Errorf("redirect to another host: %v", err)
		}
		if n := f.crm.RequestCount(); n != 0 {
			t.Errorf("the redirect was followed: %d requests with the key", n)
		}
	})
}

// A status pre-fill that cannot be stored (the counter maps as many
// statuses as it may) does not hold the orders back.
func TestRetailRunWithoutStatusPrefill(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRetailFixture(t, db)
		f.crm.GenerateOrders(30, fakecrm.Generate{Start: time.Now().AddDate(0, 0, -5)})
		full := make([]crm.Status, crm.MaxStatuses)
		for i := range full {
			full[i] = crm.Status{Code: fmt.Sprint("other-", i), Type: crm.InProgress}
		}
		if err := crm.SaveStatuses(f.ctx, db, f.c.ID, full, false); err != nil {
			t.Fatal(err)
		}
		task, err := f.create(TaskInput{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.run(t, task.ID)
		if err != nil || res.Status != crm.StatusPassed || res.Inserted < 30 {
			t.Fatalf("run at the status cap: %v %+v", err, res)
		}
	})
}

// Saving the mapping the task already has (a form sent whole) keeps the
// cursor; a change of one parameter starts over.
func TestRetailSameMappingKeepsCursor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRetailFixture(t, db)
		f.crm.GenerateOrders(10, fakecrm.Generate{Start: time.Now().AddDate(0, 0, -5)})
		task, err := f.create(TaskInput{ColumnMapping: &map[string]string{"comment": "customFields.promo"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.run(t, task.ID); err != nil {
			t.Fatal(err)
		}
		before := f.stored(t, task.ID)
		same := maps.Clone(before.ColumnMapping)
		if _, err := f.tasks.Update(f.ctx, f.c.ID, task.ID, TaskInput{ColumnMapping: &same}); err != nil {
			t.Fatal(err)
		}
		if after := f.stored(t, task.ID); after.cursor != before.cursor || before.cursor == "" {
			t.Fatalf("the same mapping reset the cursor: %q → %q", before.cursor, after.cursor)
		}
		if _, err := f.tasks.Update(f.ctx, f.c.ID, task.ID, TaskInput{ColumnMapping: &map[string]string{"comment": "managerComment"}}); err != nil {
			t.Fatal(err)
		}
		if after := f.stored(t, task.ID); after.cursor != "" {
			t.Fatalf("another mapping kept the cursor %q", after.cursor)
		}
	})
}

// One run of a task at a time: while a run by hand reads the account, a
// second one is refused with ErrRunning and the scheduler leaves the due
// time for after it.
func TestRetailRunsDoNotOverlap(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRetailFixture(t, db)
		f.crm.GenerateOrders(20, fakecrm.Generate{Start: time.Now().AddDate(0, 0, -5)})
		task, err := f.create(TaskInput{})
		if err != nil {
			t.Fatal(err)
		}
		reading, release := make(chan struct{}), make(chan struct{})
		f.once("/api/v5/orders", func() {
			close(reading)
			<-release
		})
		done := make(chan error, 1)
		go func() {
			tk, err := f.tasks.Get(f.ctx, f.c.ID, task.ID)
			if err == nil {
				_, err = f.tasks.Run(f.ctx, nil, tk, t.TempDir())
			}
			done <- err
		}()
		select {
		case <-reading:
		case err := <-done:
			t.Fatalf("the first run ended early: %v", err)
		}
		if _, err := f.run(t, task.ID); !errors.Is(err, ErrRunning) {
			close(release)
			t.Fatalf("a second run: %v", err)
		}
		s := &Scheduler{Tasks: f.tasks}
		s.Init()
		ran, err := s.RunDue(f.ctx)
		due := f.stored(t, task.ID).NextRunAt
		close(release)
		if err != nil || ran {
			t.Fatalf("the scheduler ran a running task: %v %v", ran, err)
		}
		if due == nil || due.After(time.Now()) {
			t.Fatalf("the due time moved: %v", due)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		f.crm.OnRequest(nil)
		// The lease is let go: the due run goes now.
		if ran, err := s.RunDue(f.ctx); err != nil || !ran {
			t.Fatalf("the due run after the first: %v %v", ran, err)
		}
		if _, err := f.run(t, task.ID); err != nil {
			t.Fatalf("a run after both: %v", err)
		}
	})
}

// The first run reads the orders created up to its start by RetailCRM's
// clock (createdAtTo; the history of later runs starts there), and when a
// status change moves an order to the end of the list mid-walk — shifting
// an unread one into a page already read — it walks again for the missed.
func TestRetailFirstRunSurvivesShiftingPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRetailFixture(t, db)
		first, _ := f.crm.GenerateOrders(250, fakecrm.Generate{Start: time.Now().AddDate(0, 0, -5)})
		task, err := f.create(TaskInput{})
		if err != nil {
			t.Fatal(err)
		}
		serverNow := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
		f.crm.SetClock(func() time.Time { return serverNow })
		f.crm.SetListOrder(fakecrm.ByStatusUpdatedAt)
		f.crm.ResetRequests()
		f.once("/api/v5/orders", func() {
			o, _ := f.crm.Order(first)
			status := "complete"
			if o["status"] == status {
				status = "new"
			}
			f.crm.UpdateOrder(first, fakecrm.O{"status": status})
		})
		res, err := f.run(t, task.ID)
		f.crm.OnRequest(nil)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM crm_orders WHERE counter_id = $1`, f.c.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 250 {
			t.Fatalf("%d of 250 orders imported: %+v", n, res)
		}
		want := retailFormat(serverNow, f.crm.Location())
		for _, r := range f.crm.Requests() {
			if r.Path == "/api/v5/orders" && r.Query.Get("filter[createdAtTo]") != want {
				t.Fatalf("createdAtTo %q, want the server's time %q", r.Query.Get("filter[createdAtTo]"), want)
			}
		}
		if c := f.stored(t, task.ID).cursor; !strings.Contains(c, serverNow.Add(-historyOverlap).UTC().Format(time.RFC3339)) {
			t.Errorf("cursor %s: the history should start at the server's time less the overlap", c)
		}
	})
}

func retailFormat(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04:05")
}

// An account without the default session and visitor fields: the defaults
// stay mapped with a note (in the save's answer, and in each run's log),
// and the same field named by the user is a 400.
func TestRetailMissingDefaultFields(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRetailFixture(t, db)
		f.crm = fakecrm.New() // no custom fields
		t.Cleanup(f.crm.Close)
		f.crm.AddOrder(fakecrm.O{"status": "new", "totalSumm": 10})
		var logs strings.Builder
		f.tasks.Log = slog.New(slog.NewTextHandler(&logs, nil))

		_, err := f.create(TaskInput{ColumnMapping: &map[string]string{"session_id": "customFields.tl_session_id"}})
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != "column_mapping.session_id" {
			t.Fatalf("a named missing field: %v", err)
		}
		task, err := f.create(TaskInput{})
		if err != nil {
			t.Fatal(err)
		}
		if task.ColumnMapping["session_id"] != "customFields.tl_session_id" || task.ColumnMapping["user_id"] != "customFields.tl_visitor_id" {
			t.Errorf("the defaults were dropped: %v", task.ColumnMapping)
		}
		if len(task.Notes) != 2 || !strings.Contains(task.Notes[0], `"tl_session_id" yet`) || !strings.Contains(task.Notes[1], "user_id") {
			t.Errorf("notes: %q", task.Notes)
		}
		if _, err := f.run(t, task.ID); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "tl_visitor_id") {
			t.Errorf("the run did not say the field is missing: %s", logs.String())
		}
		// Once the account has them, the notes go.
		f.crm.AddCustomField(fakecrm.CustomField{Entity: "order", Code: "tl_session_id", Name: "Session", Type: "string"})
		f.crm.AddCustomField(fakecrm.CustomField{Entity: "order", Code: "tl_visitor_id", Name: "Visitor", Type: "string"})
		key := f.crm.Key()
		if task, err = f.tasks.Update(f.ctx, f.c.ID, task.ID, TaskInput{APIKey: &key}); err != nil || len(task.Notes) != 0 {
			t.Errorf("after the fields were made: %v %q", err, task.Notes)
		}
	})
}
