package counter_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func TestCounterAndTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c, tok, err := counter.Create(ctx, db, counter.NewCounter{Name: "  Shop ", Domain: "https://Shop.Example.ru/"})
		if err != nil {
			t.Fatal(err)
		}
		if c.ID <= 0 || c.Name != "Shop" || c.Domain != "shop.example.ru" || c.Timezone != counter.DefaultTimezone {
			t.Fatalf("created %+v", c)
		}
		got, err := counter.Get(ctx, db, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got != c {
			t.Fatalf("Get returned %+v, created %+v", got, c)
		}

		id, err := counter.Authenticate(ctx, db, tok)
		if err != nil || id != c.ID {
			t.Fatalf("Authenticate(initial token) = %d, %v; want %d", id, err, c.ID)
		}

		// The secret is never stored: no column holds the token text.
		var stored int
		if err := db.Reader().QueryRowContext(ctx,
			`SELECT COUNT(*) FROM api_tokens WHERE name = $1 OR id = $1`, tok).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != 0 {
			t.Fatal("token text found in api_tokens")
		}

		second, tok2, err := counter.CreateToken(ctx, db, c.ID, "ci")
		if err != nil {
			t.Fatal(err)
		}
		if err := counter.RevokeToken(ctx, db, c.ID, second.ID); err != nil {
			t.Fatal(err)
		}
		if err := counter.RevokeToken(ctx, db, c.ID, second.ID); err != nil {
			t.Fatalf("revoking twice: %v", err)
		}
		if _, err := counter.Authenticate(ctx, db, tok2); !errors.Is(err, counter.ErrUnauthorized) {
			t.Fatalf("revoked token authenticated: %v", err)
		}
		if id, err := counter.Authenticate(ctx, db, tok); err != nil || id != c.ID {
			t.Fatalf("revoking one token broke another: %d, %v", id, err)
		}
		ts, err := counter.ListTokens(ctx, db, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 2 || ts[0].RevokedAt != nil || ts[1].ID != second.ID || ts[1].RevokedAt == nil {
			t.Fatalf("tokens: %+v", ts)
		}

		if _, _, err := counter.CreateToken(ctx, db, c.ID+1000, "x"); !errors.Is(err, counter.ErrNotFound) {
			t.Fatalf("token for a missing counter: %v", err)
		}
		if err := counter.RevokeToken(ctx, db, c.ID, "nosuchtoken00"); !errors.Is(err, counter.ErrNotFound) {
			t.Fatalf("revoke missing token: %v", err)
		}
		list, err := counter.List(ctx, db)
		if err != nil || len(list) != 1 || list[0] != c {
			t.Fatalf("List = %+v, %v", list, err)
		}
	})
}

// A token names its counter, but naming another counter does not make it
// valid there, and a tampered secret, key id or prefix is refused.
func TestAuthenticateRefusesForgeries(t *testing.T) {
	ctx := context.Background()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a, tokA, err := counter.Create(ctx, db, counter.NewCounter{Name: "A", Domain: "a.ru"})
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := counter.Create(ctx, db, counter.NewCounter{Name: "B", Domain: "b.ru"})
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(tokA, "_")
		flip := func(s string) string {
			if s[len(s)-1] == 'a' {
				return s[:len(s)-1] + "b"
			}
			return s[:len(s)-1] + "a"
		}
		forged := map[string]string{
			"other counter":  strings.Join([]string{parts[0], strconv.FormatInt(b.ID, 10), parts[2], parts[3]}, "_"),
			"changed secret": strings.Join([]string{parts[0], parts[1], parts[2], flip(parts[3])}, "_"),
			"changed key":    strings.Join([]string{parts[0], parts[1], flip(parts[2]), parts[3]}, "_"),
			"wrong prefix":   strings.Join([]string{"xx", parts[1], parts[2], parts[3]}, "_"),
			"truncated":      tokA[:len(tokA)-1],
			"empty":          "",
			"garbage":        "Bearer nonsense",
			"negative id":    strings.Join([]string{parts[0], "-" + parts[1], parts[2], parts[3]}, "_"),
		}
		for name, tok := range forged {
			if id, err := counter.Authenticate(ctx, db, tok); !errors.Is(err, counter.ErrUnauthorized) {
				t.Errorf("%s: Authenticate = %d, %v; want ErrUnauthorized", name, id, err)
			}
		}
		if id, err := counter.Authenticate(ctx, db, tokA); err != nil || id != a.ID {
			t.Fatalf("genuine token: %d, %v", id, err)
		}
	})
}

func TestNewCounterValidation(t *testing.T) {
	cases := []struct {
		in        counter.NewCounter
		field     string
		wantHost  string
		wantValid bool
	}{
		{counter.NewCounter{Name: "x", Domain: "магазин.рф"}, "", "xn--80aairftm.xn--p1ai", true},
		{counter.NewCounter{Name: "x", Domain: "HTTP://WWW.Shop.RU"}, "", "www.shop.ru", true},
		{counter.NewCounter{Name: "x", Domain: "localhost"}, "", "localhost", true},
		{counter.NewCounter{Name: "", Domain: "a.ru"}, "name", "", false},
		{counter.NewCounter{Name: strings.Repeat("я", 201), Domain: "a.ru"}, "name", "", false},
		{counter.NewCounter{Name: "x", Domain: ""}, "domain", "", false},
		{counter.NewCounter{Name: "x", Domain: "shop.ru/catalog"}, "domain", "", false},
		{counter.NewCounter{Name: "x", Domain: "shop.ru:8080"}, "domain", "", false},
		{counter.NewCounter{Name: "x", Domain: "shop"}, "domain", "", false},
		{counter.NewCounter{Name: "x", Domain: "a.ru", Timezone: "Moscow"}, "timezone", "", false},
		{counter.NewCounter{Name: "x", Domain: "a.ru", Timezone: "Local"}, "timezone", "", false},
	}
	for _, c := range cases {
		in := c.in
		err := in.Validate()
		if c.wantValid {
			if err != nil || in.Domain != c.wantHost {
				t.Errorf("%+v: got %q, %v; want %q", c.in, in.Domain, err, c.wantHost)
			}
			continue
		}
		var inv *counter.InvalidError
		if !errors.As(err, &inv) || inv.Field != c.field {
			t.Errorf("%+v: got %v, want an error on %q", c.in, err, c.field)
		}
	}
}
