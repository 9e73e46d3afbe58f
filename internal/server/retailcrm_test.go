package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/retailcrm"
	"github.com/throughline/throughline/internal/retailcrm/fakecrm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// A retailcrm import task through the API: the connection test's 400, the
// status pre-fill that keeps a user's mapping, the scheduler's run, tenant
// walls, and the API key never in an answer or a log line.
func TestRetailCRMImportTask(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixtureWith(t, db, Config{Imports: ImportsConfig{AllowPrivateFeeds: true, Poll: 50 * time.Millisecond,
			RetailCRM: retailcrm.Options{MaxAttempts: 2, BaseBackoff: time.Millisecond}}})
		fake := fakecrm.New()
		defer fake.Close()
		const key = "rcrm-SECRET-key-0123456789"
		fake.SetKeys(key)
		fake.AddCustomField(fakecrm.CustomField{Entity: "order", Code: "tl_session_id", Name: "Session", Type: "string"})
		fake.AddOrder(fakecrm.O{"status": "complete", "totalSumm": 990, "customFields": fakecrm.O{"tl_session_id": "abc"}})
		api := "/api/v1/counters/" + id(f.a)
		var bodies []string
		do := func(method, path, token, body string) response {
			t.Helper()
			var r response
			if body == "" {
				r = f.do(t, method, path, token, nil)
			} else {
				r = f.do(t, method, path, token, strings.NewReader(body))
			}
			bodies = append(bodies, string(r.body))
			return r
		}

		r := do("POST", api+"/imports", f.tokA, `{"type": "retailcrm", "name": "CRM", "url": "`+fake.URL+`", "api_key": "wrong"}`)
		if r.status != 400 || !strings.Contains(string(r.body), `"field":"api_key"`) {
			t.Fatalf("bad key: %d %s", r.status, r.body)
		}
		r = do("POST", api+"/imports", f.tokA, `{"type": "retailcrm", "name": "CRM", "url": "`+fake.URL+`", "api_key": "`+key+`",
			"column_mapping": {"user_id": "customFields.nope"}}`)
		if r.status != 400 || !strings.Contains(string(r.body), `"field":"column_mapping.user_id"`) {
			t.Fatalf("unknown field: %d %s", r.status, r.body)
		}
		r = do("POST", api+"/imports", f.tokA, `{"type": "retailcrm", "name": "CRM", "url": "`+fake.URL+`", "api_key": "`+key+`",
			"active": false, "start_date": "2020-01-01"}`)
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var task struct {
			ID            int64                    `json:"id"`
			APIKey        string                   `json:"api_key"`
			ColumnMapping map[string]string        `json:"column_mapping"`
			LastRun       *struct{ Status string } `json:"last_run"`
			Notes         []string                 `json:"notes"`
		}
		decode(t, r.body, &task)
		// The account lacks tl_visitor_id: the default stays, with a note.
		if task.APIKey != "****6789" || task.ColumnMapping["session_id"] != "customFields.tl_session_id" ||
			task.ColumnMapping["user_id"] != "customFields.tl_visitor_id" || len(task.Notes) != 1 || !strings.Contains(task.Notes[0], "tl_visitor_id") {
			t.Errorf("created: %s", r.body)
		}
		tpath := fmt.Sprintf("%s/imports/%d", api, task.ID)

		// The user maps "new" as spam; the pre-fill adds the rest only.
		if r := do("PUT", api+"/order-statuses", f.tokA, `{"order_statuses": [{"id": "new", "type": "SPAM"}]}`); r.status != 200 {
			t.Fatalf("put statuses: %d %s", r.status, r.body)
		}
		var st struct {
			Statuses []struct {
				ID        string  `json:"id"`
				Group     string  `json:"group"`
				Suggested string  `json:"suggested_type"`
				Type      *string `json:"type"`
			} `json:"statuses"`
			Added []struct{ ID string } `json:"added"`
		}
		decode(t, do("GET", tpath+"/statuses", f.tokA, "").body, &st)
		for _, s := range st.Statuses {
			if (s.ID == "new") != (s.Type != nil) {
				t.Errorf("before the pre-fill: %+v", s)
			}
			if s.ID == "no-call" && (s.Suggested != "CANCELLED" || s.Group != "cancel") || s.ID == "complete" && s.Suggested != "PAID" {
				t.Errorf("suggestion: %+v", s)
			}
		}
		decode(t, do("POST", tpath+"/statuses", f.tokA, "").body, &st)
		if len(st.Added) != len(st.Statuses)-1 {
			t.Errorf("added %d of %d", len(st.Added), len(st.Statuses))
		}
		for _, s := range st.Statuses {
			if s.Type == nil || s.ID == "new" && *s.Type != "SPAM" || s.ID == "delivering" && *s.Type != "IN_PROGRESS" {
				t.Errorf("after the pre-fill: %+v", s)
			}
		}

		// Another counter's token sees nothing of it.
		for _, p := range []string{"GET " + tpath, "PATCH " + tpath, "POST " + tpath + "/run", "GET " + tpath + "/statuses",
			"POST " + tpath + "/statuses", "GET " + tpath + "/runs", "DELETE " + tpath} {
			method, path, _ := strings.Cut(p, " ")
			if r := do(method, path, f.tokB, `{}`); r.status != 404 && r.status != 403 {
				t.Errorf("%s with B's token: %d %s", p, r.status, r.body)
			}
		}
		if r := do("GET", "/api/v1/counters/"+id(f.b)+fmt.Sprintf("/imports/%d", task.ID), f.tokB, ""); r.status != 404 {
			t.Errorf("A's task under B: %d", r.status)
		}

		// Activating it makes the scheduler run it.
		if r := do("PATCH", tpath, f.tokA, `{"active": true}`); r.status != 200 {
			t.Fatalf("activate: %d %s", r.status, r.body)
		}
		waitFor(t, func() bool {
			decode(t, do("GET", tpath, f.tokA, "").body, &task)
			return task.LastRun != nil && task.LastRun.Status != "running"
		})
		if task.LastRun.Status != "passed" {
			t.Fatalf("scheduled run: %+v", task.LastRun)
		}
		if r := do("GET", api+"/orders/1", f.tokA, ""); r.status != 200 || !strings.Contains(string(r.body), `"sid":"abc"`) {
			t.Errorf("order: %d %s", r.status, r.body)
		}
		// Its orders are keyed by id now: the key's source stays.
		r = do("PATCH", tpath, f.tokA, `{"column_mapping": {"order_id": "number"}}`)
		if r.status != 400 || !strings.Contains(string(r.body), `"field":"column_mapping.order_id"`) || !strings.Contains(string(r.body), "count it twice") {
			t.Errorf("order_id changed after a run: %d %s", r.status, r.body)
		}
		// A run that fails says why.
		fake.SetAccountMissing(true)
		r = do("POST", tpath+"/run", f.tokA, "")
		if r.status != 422 || !strings.Contains(string(r.body), "account does not exist") {
			t.Errorf("failed run: %d %s", r.status, r.body)
		}
		do("GET", api+"/imports", f.tokA, "")
		for _, b := range append(bodies, f.logBuf.String()) {
			if strings.Contains(b, key) {
				t.Fatalf("the API key leaked: %s", b)
			}
		}
	})
}
