package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/accounts"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// TestCreateCounterWithPersonalToken: an admin's personal API token creates
// counters (the admin becomes their owner); nobody else's does.
func TestCreateCounterWithPersonalToken(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		admin, _ := accounts.CreateUser(ctx, db, accounts.NewUser{Email: "admin@shop.test", Admin: true})
		ann, _ := accounts.CreateUser(ctx, db, accounts.NewUser{Email: "ann@shop.test"})
		_, adminTok, err := accounts.CreateToken(ctx, db, admin.ID, "script")
		if err != nil {
			t.Fatal(err)
		}
		_, annTok, _ := accounts.CreateToken(ctx, db, ann.ID, "script")
		body := `{"name": "New shop", "domain": "new.example.ru", "timezone": "Asia/Novosibirsk"}`
		h := []string{"Content-Type", "application/json"}

		if r := f.do(t, "POST", "/api/v1/counters", annTok, strings.NewReader(body), h...); r.status != http.StatusForbidden || r.errorCode(t) != "forbidden" {
			t.Fatalf("a person who is not an admin: %d %s", r.status, r.body)
		}
		if r := f.do(t, "POST", "/api/v1/counters", adminTok, strings.NewReader(`{"name": "", "domain": "x"}`), h...); r.status != 400 {
			t.Fatalf("bad counter: %d %s", r.status, r.body)
		}
		r := f.do(t, "POST", "/api/v1/counters", adminTok, strings.NewReader(body), h...)
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var created struct {
			ID       int64  `json:"id"`
			Name     string `json:"name"`
			Timezone string `json:"timezone"`
			Token    string `json:"token"`
		}
		decode(t, r.body, &created)
		if created.Name != "New shop" || created.Timezone != "Asia/Novosibirsk" || !strings.HasPrefix(created.Token, "tl_") {
			t.Fatalf("created %+v", created)
		}
		// The counter's own token reads it; the admin owns it.
		if r := f.do(t, "GET", "/api/v1/counters/"+itoa(created.ID), created.Token, nil); r.status != 200 {
			t.Errorf("the new counter's token: %d", r.status)
		}
		if role, err := accounts.RoleOn(ctx, db, accounts.User{ID: admin.ID}, created.ID); err != nil || role != accounts.Owner {
			t.Errorf("the admin's role on the new counter: %q, %v", role, err)
		}
		// Ann sees only what she has a role on.
		accounts.Grant(ctx, db, f.a.ID, ann.ID, accounts.Viewer)
		var list struct {
			Counters []struct {
				ID   int64  `json:"id"`
				Role string `json:"role"`
			} `json:"counters"`
		}
		decode(t, f.do(t, "GET", "/api/v1/counters", annTok, nil).body, &list)
		if len(list.Counters) != 1 || list.Counters[0].ID != f.a.ID || list.Counters[0].Role != "viewer" {
			t.Errorf("ann's counters: %+v", list.Counters)
		}
		// A revoked personal token is refused.
		toks, _ := accounts.ListTokens(ctx, db, admin.ID)
		accounts.RevokeToken(ctx, db, admin.ID, toks[0].ID)
		if r := f.do(t, "POST", "/api/v1/counters", adminTok, strings.NewReader(body), h...); r.status != 401 {
			t.Errorf("revoked token: %d", r.status)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
