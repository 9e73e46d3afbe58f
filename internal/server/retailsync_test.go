package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/retailcrm/fakecrm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func TestRetailSyncAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixtureWith(t, db, Config{Imports: ImportsConfig{AllowPrivateFeeds: true}})
		crm := fakecrm.New()
		defer crm.Close()
		path := "/api/v1/counters/" + id(f.a) + "/integrations/retailcrm"
		other := "/api/v1/counters/" + id(f.b) + "/integrations/retailcrm"

		if r := f.do(t, "GET", path, f.tokA, nil); r.status != 404 || r.errorCode(t) != "not_found" {
			t.Fatalf("before connecting: %d %s", r.status, r.body)
		}
		r := f.do(t, "PUT", path, f.tokA, strings.NewReader(`{"url": "`+crm.URL+`", "api_key": "`+crm.Key()+`"}`))
		if r.status != 202 {
			t.Fatalf("connect: %d %s", r.status, r.body)
		}
		if strings.Contains(string(r.body), crm.Key()) || strings.Contains(string(r.body), "api_key") {
			t.Fatalf("the API key is shown: %s", r.body)
		}
		var got struct{ State, URL string }
		if err := json.Unmarshal(r.body, &got); err != nil || got.URL != crm.URL || (got.State != "setting_up" && got.State != "active") {
			t.Fatalf("connect answered %s", r.body)
		}
		if r := f.do(t, "GET", path+"/pushes?status=done", f.tokA, nil); r.status != 200 || !strings.Contains(string(r.body), `"pushes":[]`) {
			t.Fatalf("pushes: %d %s", r.status, r.body)
		}
		if r := f.do(t, "GET", path+"/pushes?status=odd", f.tokA, nil); r.status != 400 {
			t.Fatalf("pushes with a bad status: %d %s", r.status, r.body)
		}
		if r := f.do(t, "PUT", path, f.tokA, strings.NewReader(`{"url": "`+crm.URL+`"}`)); r.status != 400 || !strings.Contains(string(r.body), `"field":"api_key"`) {
			t.Fatalf("connect without a key: %d %s", r.status, r.body)
		}

		// Tenants are walls: B's token sees nothing of A's connection and
		// cannot change it; A's token cannot touch B's counter.
		for _, c := range []struct{ method, path, token string }{
			{"GET", path, f.tokB}, {"PUT", path, f.tokB}, {"DELETE", path, f.tokB}, {"GET", path + "/pushes", f.tokB},
			{"PUT", other, f.tokA}, {"GET", other + "/pushes", f.tokA},
		} {
			r := f.do(t, c.method, c.path, c.token, strings.NewReader(`{"url": "`+crm.URL+`", "api_key": "x"}`))
			if r.status != 404 {
				t.Fatalf("%s %s with another counter's token: %d %s", c.method, c.path, r.status, r.body)
			}
		}
		if r := f.do(t, "GET", other, f.tokB, nil); r.status != 404 {
			t.Fatalf("B is connected after A's token tried: %d %s", r.status, r.body)
		}
		if r := f.do(t, "GET", path, f.tokA, nil); r.status != 200 {
			t.Fatalf("A's connection after B's tries: %d %s", r.status, r.body)
		}

		if r := f.do(t, "DELETE", path, f.tokA, nil); r.status != 204 {
			t.Fatalf("disconnect: %d %s", r.status, r.body)
		}
		if r := f.do(t, "GET", path, f.tokA, nil); r.status != 404 {
			t.Fatalf("after disconnecting: %d %s", r.status, r.body)
		}
	})
}
