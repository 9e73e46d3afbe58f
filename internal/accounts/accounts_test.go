package accounts

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

var ctx = context.Background()

func mustUser(t *testing.T, db *store.DB, email, password string, admin bool) User {
	t.Helper()
	u, err := CreateUser(ctx, db, NewUser{Email: email, Password: password, Admin: admin})
	if err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
	return u
}

func mustCounter(t *testing.T, db *store.DB, name string) int64 {
	t.Helper()
	c, _, err := counter.Create(ctx, db, counter.NewCounter{Name: name, Domain: "shop.example"})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func fieldOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

func TestPasswordHash(t *testing.T) {
	h := hashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not argon2id with the documented parameters", h)
	}
	if h == hashPassword("correct horse battery") {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		ok, err := verifyPassword(h, pw)
		if err != nil || ok != want {
			t.Errorf("check %q = %v, %v; want %v", pw, ok, err, want)
		}
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=1,t=1,p=0$AA$AA", "$bcrypt$x", "$argon2id$v=19$m=19456,t=2,p=1$!!$AA"} {
		if _, err := verifyPassword(bad, "x"); err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}

func TestUsersAndSignIn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := mustUser(t, db, "  Anna@Shop.RU ", "длинный пароль", false)
		if u.Email != "anna@shop.ru" || !u.HasPassword || u.Admin {
			t.Fatalf("created %+v", u)
		}
		if _, err := CreateUser(ctx, db, NewUser{Email: "ANNA@shop.ru", Password: "another password"}); fieldOf(err) != "email" {
			t.Errorf("second person with the same e-mail: %v, want a conflict on email", err)
		}
		for _, c := range []struct {
			n     NewUser
			field string
		}{
			{NewUser{Email: "not-an-email", Password: "long enough pw"}, "email"},
			{NewUser{Email: "b@shop.ru", Password: "short"}, "password"},
			{NewUser{Email: "b@shop.ru", Password: strings.Repeat("x", MaxPassword+1)}, "password"},
			{NewUser{Email: "b@shop.ru", Password: "long enough\x00pw"}, "password"},
			{NewUser{Email: "b@shop.ru", Name: "a\x00b", Password: "long enough pw"}, "name"},
			{NewUser{Email: "b@shop.ru", Name: "a\xffb", Password: "long enough pw"}, "name"},
		} {
			if _, err := CreateUser(ctx, db, c.n); fieldOf(err) != c.field {
				t.Errorf("create %+v: %v, want an error on %s", c.n, err, c.field)
			}
		}
		if got, err := SignIn(ctx, db, "ANNA@shop.ru", "длинный пароль"); err != nil || got.ID != u.ID {
			t.Fatalf("sign in: %+v, %v", got, err)
		}
		wrong := []struct{ email, pw string }{{"anna@shop.ru", "wrong password"}, {"nobody@shop.ru", "длинный пароль"}, {"", ""}, {"anna@shop.ru", ""}}
		for _, w := range wrong {
			if _, err := SignIn(ctx, db, w.email, w.pw); !errors.Is(err, ErrBadCredentials) {
				t.Errorf("sign in %q/%q: %v, want ErrBadCredentials", w.email, w.pw, err)
			}
		}
		// A person without a password (invited) cannot sign in with an empty one.
		inv := mustUser(t, db, "invited@shop.ru", "", false)
		if inv.HasPassword {
			t.Error("an invited person has a password")
		}
		if _, err := SignIn(ctx, db, "invited@shop.ru", ""); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("empty password of an invited person: %v", err)
		}
	})
}

func TestSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := mustUser(t, db, "s@shop.ru", "long enough pw", false)
		a, err := StartSession(ctx, db, u.ID, "Mozilla", "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := StartSession(ctx, db, u.ID, "Mozilla", "192.0.2.1")
		if len(a) != 43 || a == b {
			t.Fatalf("session ids %q, %q: want two distinct 256-bit ids", a, b)
		}
		var stored int
		db.Reader().QueryRow(`SELECT count(*) FROM web_sessions WHERE id_hash = $1`, []byte(a)).Scan(&stored)
		if stored != 0 {
			t.Error("the cookie's value is stored as it is")
		}
		if got, err := SessionUser(ctx, db, a); err != nil || got.ID != u.ID {
			t.Fatalf("session user: %+v, %v", got, err)
		}
		for _, bad := range []string{"", "x", strings.Repeat("A", 43), a[:42] + "!"} {
			if _, err := SessionUser(ctx, db, bad); !errors.Is(err, ErrNoSession) {
				t.Errorf("cookie %q: %v", bad, err)
			}
		}
		// Idle past 14 days: gone.
		if _, err := db.Writer().Exec(`UPDATE web_sessions SET last_seen_at = $2 WHERE id_hash = $1`,
			hashSecret(b), time.Now().UTC().Add(-SessionIdle-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := SessionUser(ctx, db, b); !errors.Is(err, ErrNoSession) {
			t.Errorf("idle session: %v, want ErrNoSession", err)
		}
		// Used 13 days ago: alive, and renewed.
		if _, err := db.Writer().Exec(`UPDATE web_sessions SET last_seen_at = $2 WHERE id_hash = $1`,
			hashSecret(a), time.Now().UTC().Add(-13*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := SessionUser(ctx, db, a); err != nil {
			t.Fatalf("13-day-old session: %v", err)
		}
		var seen time.Time
		db.Reader().QueryRow(`SELECT last_seen_at FROM web_sessions WHERE id_hash = $1`, hashSecret(a)).Scan(&seen)
		if time.Since(seen) > time.Minute {
			t.Errorf("last seen %v after use: not renewed", seen)
		}
		// Sign-out ends one session.
		if err := EndSession(ctx, db, a); err != nil {
			t.Fatal(err)
		}
		if _, err := SessionUser(ctx, db, a); !errors.Is(err, ErrNoSession) {
			t.Errorf("after sign-out: %v", err)
		}
		// A password change ends all of them.
		c, _ := StartSession(ctx, db, u.ID, "", "")
		d, _ := StartSession(ctx, db, u.ID, "", "")
		if err := SetPassword(ctx, db, u.ID, "a new long password"); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{c, d} {
			if _, err := SessionUser(ctx, db, s); !errors.Is(err, ErrNoSession) {
				t.Errorf("session after a password change: %v", err)
			}
		}
		if _, err := SignIn(ctx, db, u.Email, "long enough pw"); !errors.Is(err, ErrBadCredentials) {
			t.Error("the old password still works")
		}
		if _, err := SignIn(ctx, db, u.Email, "a new long password"); err != nil {
			t.Errorf("the new password: %v", err)
		}
	})
}

func TestRoles(t *testing.T) {
	if !Owner.Allows(Editor) || !Editor.Allows(Viewer) || Viewer.Allows(Editor) || Editor.Allows(Owner) || Role("").Allows(Viewer) {
		t.Fatal("role order is wrong")
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		admin := mustUser(t, db, "admin@shop.ru", "long enough pw", true)
		ann := mustUser(t, db, "ann@shop.ru", "long enough pw", false)
		bob := mustUser(t, db, "bob@shop.ru", "long enough pw", false)
		c1, c2 := mustCounter(t, db, "One"), mustCounter(t, db, "Two")
		if err := Grant(ctx, db, c1, ann.ID, Owner); err != nil {
			t.Fatal(err)
		}
		if err := Grant(ctx, db, c1, bob.ID, Viewer); err != nil {
			t.Fatal(err)
		}
		if r, err := RoleOn(ctx, db, bob, c1); err != nil || r != Viewer {
			t.Errorf("bob on c1: %q, %v", r, err)
		}
		if _, err := RoleOn(ctx, db, bob, c2); !errors.Is(err, ErrNoRole) {
			t.Errorf("bob on c2: %v, want ErrNoRole", err)
		}
		if r, err := RoleOn(ctx, db, admin, c2); err != nil || r != Owner {
			t.Errorf("admin on c2: %q, %v", r, err)
		}
		if _, err := RoleOn(ctx, db, admin, 999); !errors.Is(err, ErrNoRole) {
			t.Errorf("admin on a counter that does not exist: %v", err)
		}
		cs, _ := Counters(ctx, db, bob)
		if len(cs) != 1 || cs[0].CounterID != c1 {
			t.Errorf("bob sees %+v", cs)
		}
		cs, _ = Counters(ctx, db, admin)
		if len(cs) != 2 {
			t.Errorf("admin sees %+v", cs)
		}
		// The last owner stays.
		if err := Revoke(ctx, db, c1, ann.ID); fieldOf(err) != "role" {
			t.Errorf("revoke the only owner: %v", err)
		}
		if err := ChangeRole(ctx, db, c1, ann.ID, Editor); fieldOf(err) != "role" {
			t.Errorf("demote the only owner: %v", err)
		}
		if err := Grant(ctx, db, c1, bob.ID, Owner); err != nil {
			t.Fatal(err)
		}
		if err := ChangeRole(ctx, db, c1, ann.ID, Editor); err != nil {
			t.Errorf("demote one of two owners: %v", err)
		}
		if err := Revoke(ctx, db, c1, ann.ID); err != nil {
			t.Errorf("revoke an editor: %v", err)
		}
		if err := Grant(ctx, db, c1, ann.ID, "superuser"); fieldOf(err) != "role" {
			t.Errorf("grant an unknown role: %v", err)
		}
		if err := Grant(ctx, db, 999, ann.ID, Viewer); !errors.Is(err, ErrNotFound) {
			t.Errorf("grant on a missing counter: %v", err)
		}
		// The last admin stays.
		if err := SetAdmin(ctx, db, admin.ID, false); fieldOf(err) != "admin" {
			t.Errorf("demote the only admin: %v", err)
		}
		ms, _ := Members(ctx, db, c1)
		if len(ms) != 1 || ms[0].Email != "bob@shop.ru" || ms[0].Role != Owner {
			t.Errorf("members of c1: %+v", ms)
		}
	})
}

func TestLinks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		first, err := NewSetupLink(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		second, _ := NewSetupLink(ctx, db)
		if _, err := PeekLink(ctx, db, first, LinkSetup); !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("an earlier setup link still works: %v", err)
		}
		if _, err := PeekLink(ctx, db, second, LinkSignIn); !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("a setup link used as a sign-in link: %v", err)
		}
		// A bad field leaves the link usable.
		if _, err := SetUp(ctx, db, second, NewUser{Email: "root@shop.ru", Password: "short"}); fieldOf(err) != "password" {
			t.Fatalf("set up with a short password: %v", err)
		}
		// Two browsers at once: one admin.
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = SetUp(ctx, db, second, NewUser{Email: "root@shop.ru", Password: "long enough pw"})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if !errors.Is(err, ErrLinkInvalid) {
				t.Errorf("concurrent setup: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d setups succeeded with one link", ok)
		}
		if n, _ := CountAdmins(ctx, db); n != 1 {
			t.Errorf("%d admins", n)
		}
		if _, err := NewSetupLink(ctx, db); fieldOf(err) != "setup" {
			t.Errorf("setup link with an admin: %v", err)
		}
		// Sign-in links work once.
		u := mustUser(t, db, "demo@shop.ru", "", false)
		link, err := NewLink(ctx, db, LinkSignIn, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if l, err := PeekLink(ctx, db, link, LinkSignIn); err != nil || l.User.ID != u.ID {
			t.Fatalf("peek: %+v, %v", l, err)
		}
		if got, err := SignInByLink(ctx, db, link); err != nil || got.ID != u.ID {
			t.Fatalf("sign in by link: %+v, %v", got, err)
		}
		if _, err := SignInByLink(ctx, db, link); !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("a sign-in link used twice: %v", err)
		}
		// Expired links do not work.
		pw, _ := NewLink(ctx, db, LinkPassword, u.ID)
		db.Writer().Exec(`UPDATE user_links SET expires_at = $2 WHERE token_hash = $1`, hashSecret(pw), time.Now().UTC().Add(-time.Second))
		if _, err := SetPasswordByLink(ctx, db, pw, "long enough pw"); !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("expired password link: %v", err)
		}
		pw, _ = NewLink(ctx, db, LinkPassword, u.ID)
		s, _ := StartSession(ctx, db, u.ID, "", "")
		if _, err := SetPasswordByLink(ctx, db, pw, "long enough pw"); err != nil {
			t.Fatal(err)
		}
		if _, err := SessionUser(ctx, db, s); !errors.Is(err, ErrNoSession) {
			t.Error("a password set by link left the old sessions")
		}
		if _, err := SignIn(ctx, db, "demo@shop.ru", "long enough pw"); err != nil {
			t.Errorf("sign in with the password set by link: %v", err)
		}
	})
}

func TestPersonalTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := mustUser(t, db, "admin@shop.ru", "long enough pw", true)
		tok, text, err := CreateToken(ctx, db, u.ID, "deploy script")
		if err != nil {
			t.Fatal(err)
		}
		if !IsUserToken(text) {
			t.Fatalf("token %q lacks its prefix", text)
		}
		if got, err := TokenUser(ctx, db, text); err != nil || got.ID != u.ID {
			t.Fatalf("token user: %+v, %v", got, err)
		}
		flipped := text[:len(text)-1] + map[bool]string{true: "1", false: "0"}[strings.HasSuffix(text, "0")]
		for _, bad := range []string{"", text + "x", strings.Replace(text, "tlu_", "tl_", 1), flipped} {
			if _, err := TokenUser(ctx, db, bad); !errors.Is(err, ErrBadCredentials) {
				t.Errorf("token %q: %v", bad, err)
			}
		}
		if err := RevokeToken(ctx, db, u.ID, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := TokenUser(ctx, db, text); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("revoked token: %v", err)
		}
	})
}

func TestThrottle(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	th := &Throttle{Now: func() time.Time { return now }}
	for range 10 {
		if th.Wait("192.0.2.1", "a@shop.ru") != 0 {
			t.Fatal("throttled before the limit")
		}
		th.Failed("192.0.2.1", "a@shop.ru")
	}
	if w := th.Wait("198.51.100.7", "a@shop.ru"); w != 15*time.Minute {
		t.Errorf("11th attempt into the account from elsewhere waits %v, want 15m", w)
	}
	if th.Wait("192.0.2.1", "b@shop.ru") != 0 {
		t.Error("another account from the same address is throttled after 10 failures")
	}
	// 50 failures from one address throttle it for every account.
	for i := range 40 {
		th.Failed("192.0.2.1", string(rune('c'+i%20))+"@shop.ru")
	}
	if th.Wait("192.0.2.1", "fresh@shop.ru") == 0 {
		t.Error("an address with 50 failures is not throttled")
	}
	now = now.Add(15 * time.Minute)
	if th.Wait("192.0.2.1", "a@shop.ru") != 0 {
		t.Error("still throttled after the window")
	}
	th.Failed("192.0.2.2", "z@shop.ru")
	th.Succeeded("z@shop.ru")
	if len(th.accounts) != 41 && th.accounts["z@shop.ru"] != nil {
		t.Error("success kept the account's failures")
	}
}
