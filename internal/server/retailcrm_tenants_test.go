package server

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/retailcrm"
	"github.com/throughline/throughline/internal/retailcrm/fakecrm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// While the scheduler runs a retailcrm task, a run by hand is refused with
// 409 saying so; and another counter's token, on its own counter's path,
// reaches nothing of the task (its statuses and runs read nothing from the
// account).
func TestRetailCRMImportTaskRunningAndTenants(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixtureWith(t, db, Config{Imports: ImportsConfig{AllowPrivateFeeds: true, Poll: 50 * time.Millisecond,
			RetailCRM: retailcrm.Options{MaxAttempts: 2, BaseBackoff: time.Millisecond}}})
		fake := fakecrm.New()
		defer fake.Close()
		fake.AddOrder(fakecrm.O{"status": "new", "totalSumm": 10})
		reading, release := make(chan struct{}), make(chan struct{})
		var blocked atomic.Bool
		fake.OnRequest(func(r fakecrm.Request) {
			if r.Path == "/api/v5/orders" && blocked.CompareAndSwap(false, true) {
				close(reading)
				<-release
			}
		})
		released := false
		defer func() {
			if !released {
				close(release)
			}
		}()
		api := "/api/v1/counters/" + id(f.a)
		r := f.do(t, "POST", api+"/imports", f.tokA, strings.NewReader(`{"type": "retailcrm", "name": "CRM", "url": "`+fake.URL+`", "api_key": "`+fake.Key()+`"}`))
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var task struct {
			ID int64 `json:"id"`
		}
		decode(t, r.body, &task)
		select {
		case <-reading:
		case <-time.After(10 * time.Second):
			t.Fatal("the scheduler did not run the task")
		}
		tpath := fmt.Sprintf("%s/imports/%d", api, task.ID)
		r = f.do(t, "POST", tpath+"/run", f.tokA, nil)
		if r.status != 409 || !strings.Contains(string(r.body), "running now") {
			t.Errorf("run while running: %d %s", r.status, r.body)
		}

		// B's token on B's path with A's task id.
		fake.ResetRequests()
		bpath := fmt.Sprintf("/api/v1/counters/%s/imports/%d", id(f.b), task.ID)
		for _, p := range []string{"GET " + bpath, "PATCH " + bpath, "POST " + bpath + "/run", "GET " + bpath + "/statuses",
			"POST " + bpath + "/statuses", "GET " + bpath + "/runs", "DELETE " + bpath} {
			method, path, _ := strings.Cut(p, " ")
			if r := f.do(t, method, path, f.tokB, strings.NewReader(`{}`)); r.status != 404 {
				t.Errorf("%s with B's token: %d %s", p, r.status, r.body)
			}
		}
		if n := fake.RequestCount(); n != 0 {
			t.Errorf("B's requests reached A's account %d times", n)
		}
		close(release)
		released = true
		waitFor(t, func() bool {
			return f.do(t, "POST", tpath+"/run", f.tokA, nil).status == 200
		})
	})
}
