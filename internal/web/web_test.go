package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/accounts"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func TestCatalogsHaveEveryKeyInBothLanguages(t *testing.T) {
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string][]string{"ru": {"one", "few", "many", "other"}, "en": {"one", "other"}}
	for _, a := range langs {
		for key, v := range cats[a] {
			for _, b := range langs {
				if _, ok := cats[b][key]; !ok {
					t.Errorf("%q is in %s.json, not in %s.json", key, a, b)
				}
			}
			var plural map[string]string
			if json.Unmarshal(v, &plural) == nil {
				for _, f := range forms[a] {
					if plural[f] == "" {
						t.Errorf("%s.json %q lacks the plural form %q", a, key, f)
					}
				}
			}
		}
	}
}

func TestLocaleFormats(t *testing.T) {
	cats, _ := loadCatalogs()
	c := &Cabinet{catalogs: cats, missing: map[string]bool{}}
	moscow, _ := time.LoadLocation("Europe/Moscow")
	ru, en := c.locale("ru", moscow), c.locale("en", moscow)
	one := 0.125
	at := time.Date(2026, 12, 7, 9, 3, 0, 0, time.UTC)
	for _, tc := range []struct{ got, want string }{
		{ru.Num(int64(1234567)), "1\u00a0234\u00a0567"},
		{en.Num(int64(1234567)), "1,234,567"},
		{ru.Num(2.5), "2,5"},
		{ru.Money(json.Number("1234567.40"), "RUB"), "1\u00a0234\u00a0567\u00a0₽"},
		{en.Money(json.Number("1234567.40"), "RUB"), "₽1,234,567"},
		{en.Money(json.Number("-950.5"), "USD"), "-$950.50"},
		{ru.Money(json.Number("12"), "XYZ"), "12\u00a0XYZ"},
		{ru.Pct(&one), "12,5\u00a0%"},
		{en.Pct(&one), "12.5%"},
		{en.Pct(nil), "—"},
		{ru.Date("2026-12-07"), "7\u00a0дек.\u00a02026"},
		{en.Date("2026-12-07"), "Dec 7, 2026"},
		{ru.Time(at), "7\u00a0дек.\u00a02026, 12:03"}, // Moscow is UTC+3
		{ru.N("ago.days", int64(1)), "1 день назад"},
		{ru.N("ago.days", int64(3)), "3 дня назад"},
		{ru.N("ago.days", int64(11)), "11 дней назад"},
		{ru.N("ago.days", int64(21)), "21 день назад"},
		{en.N("ago.days", int64(1)), "1 day ago"},
		{en.N("ago.days", int64(2)), "2 days ago"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if ru.T("no.such.key") != "no.such.key" || !c.missing["no.such.key"] {
		t.Error("a missing key is neither shown as itself nor recorded")
	}
}

func TestPickLanguage(t *testing.T) {
	for _, tc := range []struct {
		personal, cookie, accept, want string
	}{
		{"", "", "ru-RU,ru;q=0.9,en;q=0.8", "ru"},
		{"", "", "en-GB,en;q=0.9", "en"},
		{"", "", "de-DE,de;q=0.9", "en"},
		{"", "", "", "en"},
		{"", "", "garbage;;q=x", "en"},
		{"", "ru", "en", "ru"},
		{"en", "ru", "ru", "en"},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Language", tc.accept)
		if tc.cookie != "" {
			r.AddCookie(&http.Cookie{Name: langCookie, Value: tc.cookie})
		}
		if got := pickLanguage(r, tc.personal); got != tc.want {
			t.Errorf("%+v: %s", tc, got)
		}
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/c/1/report?from=2026-01-01": "/c/1/report?from=2026-01-01",
		"":                            "/",
		"https://evil.example/":       "/",
		"//evil.example/x":            "/",
		"/\\evil.example":             "/",
		"javascript:alert(1)":         "/",
		"/ok\r\nSet-Cookie: x=1":      "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePeriod(t *testing.T) {
	today := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	d := func(s string) time.Time { v, _ := time.Parse(time.DateOnly, s); return v }
	for _, tc := range []struct {
		query                      string
		from, to, prevFrom, prevTo string
	}{
		{"", "2026-11-08", "2026-12-07", "2026-10-09", "2026-11-07"},
		{"period=today", "2026-12-07", "2026-12-07", "2026-12-06", "2026-12-06"},
		{"period=yesterday", "2026-12-06", "2026-12-06", "2026-12-05", "2026-12-05"},
		{"period=7d", "2026-12-01", "2026-12-07", "2026-11-24", "2026-11-30"},
		{"period=this_month", "2026-12-01", "2026-12-07", "2026-11-24", "2026-11-30"},
		{"period=last_month", "2026-11-01", "2026-11-30", "2026-10-01", "2026-10-31"},
		{"from=2026-02-01&to=2026-02-28", "2026-02-01", "2026-02-28", "2026-01-04", "2026-01-31"},
	} {
		q, _ := url.ParseQuery(tc.query)
		p, err := parsePeriod(q, today)
		if err != nil || !p.From.Equal(d(tc.from)) || !p.To.Equal(d(tc.to)) || !p.PrevFrom.Equal(d(tc.prevFrom)) || !p.PrevTo.Equal(d(tc.prevTo)) {
			t.Errorf("%q: %v %v..%v prev %v..%v", tc.query, err, p.FromText(), p.ToText(), p.PrevFrom, p.PrevTo)
		}
	}
	for query, field := range map[string]string{
		"period=fortnight":                  "period",
		"from=2026-13-01&to=2026-12-01":     "from",
		"from=2026-12-01":                   "to",
		"from=2026-12-02&to=2026-12-01":     "to",
		"from=0001-01-01&to=2026-12-01":     "from",
		"from=2000-01-01&to=2099-12-31":     "to",
		"from=" + strings.Repeat("9", 5000): "from",
	} {
		q, _ := url.ParseQuery(query)
		_, err := parsePeriod(q, today)
		fe, ok := err.(*fieldError)
		if !ok || fe.Field != field {
			t.Errorf("%.60q: %v, want an error on %s", query, err, field)
		}
	}
}

// TestCabinet runs the cabinet's flows over the demo's week on each engine.
func TestCabinet(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newCabinet(t, db)
		t.Run("guest", func(t *testing.T) { testGuest(t, f) })
		t.Run("sign in and out", func(t *testing.T) { testSignInOut(t, f) })
		t.Run("throttle", func(t *testing.T) { testThrottle(t, f) })
		t.Run("cross origin", func(t *testing.T) { testCrossOrigin(t, f) })
		t.Run("setup", func(t *testing.T) { testSetup(t, f) })
		t.Run("links", func(t *testing.T) { testLinks(t, f) })
		t.Run("account", func(t *testing.T) { testAccount(t, f) })
		t.Run("counters", func(t *testing.T) { testCounters(t, f) })
		t.Run("people and access", func(t *testing.T) { testPeopleAccess(t, f) })
		t.Run("settings", func(t *testing.T) { testSettings(t, f) })
		t.Run("bad input", func(t *testing.T) { testBadInput(t, f) })
	})
}

func testGuest(t *testing.T, f *cabinet) {
	b := f.browser(t)
	home := b.get("/")
	if home.status != 200 || !strings.Contains(home.body, `href="/signin"`) || strings.Contains(home.body, "Demo shop") {
		t.Fatalf("home for a guest: %d %s", home.status, home.body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if home.header.Get(h) == "" {
			t.Errorf("home lacks %s", h)
		}
	}
	if !strings.Contains(home.header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("CSP %q", home.header.Get("Content-Security-Policy"))
	}
	dash := "/c/" + strconv.FormatInt(f.demo.CounterID, 10) + "/?period=7d"
	r := b.get(dash)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/signin?next="+url.QueryEscape(dash) {
		t.Fatalf("a counter's page for a guest: %d → %q", r.status, r.header.Get("Location"))
	}
	// Static files carry a content hash and are cached forever.
	css := regexp.MustCompile(`/static/app\.[0-9a-f]{10}\.css`).FindString(home.body)
	if css == "" {
		t.Fatal("no hashed stylesheet in the page")
	}
	s := b.get(css)
	if s.status != 200 || !strings.Contains(s.header.Get("Cache-Control"), "immutable") || !strings.HasPrefix(s.header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %v", s.status, s.header)
	}
	if b.get("/static/app.0000000000.css").status != 404 {
		t.Error("an unknown static file is served")
	}
}

func testSignInOut(t *testing.T, f *cabinet) {
	b := f.browser(t)
	wrong := b.post("/signin", url.Values{"email": {"viewer@shop.test"}, "password": {"wrong password"}})
	unknown := b.post("/signin", url.Values{"email": {"nobody@shop.test"}, "password": {"wrong password"}})
	if wrong.status != 401 || unknown.status != 401 || !strings.Contains(wrong.body, "Wrong e-mail or password") ||
		!strings.Contains(unknown.body, "Wrong e-mail or password") {
		t.Fatalf("wrong password %d, unknown e-mail %d: the same 401 and message expected", wrong.status, unknown.status)
	}
	if !strings.Contains(wrong.body, `value="viewer@shop.test"`) {
		t.Error("the refused form lost the e-mail typed")
	}
	next := "/c/" + strconv.FormatInt(f.demo.CounterID, 10) + "/report"
	r := b.post("/signin", url.Values{"email": {"Viewer@Shop.test"}, "password": {password}, "next": {next}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != next {
		t.Fatalf("sign in: %d → %q", r.status, r.header.Get("Location"))
	}
	ck := r.header.Get("Set-Cookie")
	for _, attr := range []string{"tl_session=", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(ck, attr) {
			t.Errorf("session cookie %q lacks %s", ck, attr)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Error("Secure cookie over plain HTTP without a public https URL")
	}
	if c := b.get("/counters"); c.status != 200 || !strings.Contains(c.body, "Demo shop") || strings.Contains(c.body, "Other shop") {
		t.Fatalf("counters of a viewer: %d", c.status)
	}
	// An open redirect through next is refused.
	b2 := f.browser(t)
	r = b2.post("/signin", url.Values{"email": {"viewer@shop.test"}, "password": {password}, "next": {"https://evil.example/"}})
	if r.header.Get("Location") != "/" {
		t.Errorf("next to another site: redirected to %q", r.header.Get("Location"))
	}
	// Sign-out ends the session on the server: the old cookie is dead.
	cookie := b.client.Jar.Cookies(mustURL(f.url))
	if r := b.post("/signout", nil); r.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", r.status)
	}
	replay := f.browser(t)
	replay.client.Jar.SetCookies(mustURL(f.url), cookie)
	if r := replay.get("/counters"); r.status != http.StatusSeeOther {
		t.Errorf("the signed-out cookie still works: %d", r.status)
	}
}

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }

func testThrottle(t *testing.T, f *cabinet) {
	b := f.browser(t)
	// Failures into one account from different addresses (the test server
	// sees one address, so the account's limit, 10, comes first).
	for i := range 10 {
		if r := b.post("/signin", url.Values{"email": {"editor@shop.test"}, "password": {"nope " + strconv.Itoa(i)}}); r.status != 401 {
			t.Fatalf("attempt %d: %d", i+1, r.status)
		}
	}
	r := b.post("/signin", url.Values{"email": {"editor@shop.test"}, "password": {password}})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "Too many attempts") {
		t.Fatalf("11th attempt, right password: %d %q", r.status, r.header.Get("Retry-After"))
	}
	// An unknown account is throttled the same way: no enumeration.
	for i := range 10 {
		b.post("/signin", url.Values{"email": {"ghost@shop.test"}, "password": {"nope " + strconv.Itoa(i)}})
	}
	if r := b.post("/signin", url.Values{"email": {"ghost@shop.test"}, "password": {"x"}}); r.status != http.StatusTooManyRequests {
		t.Errorf("unknown account after 10 failures: %d", r.status)
	}
	f.c.throttle = &accounts.Throttle{} // the other subtests sign in
}

func testCrossOrigin(t *testing.T, f *cabinet) {
	b := f.as(t, "owner")
	id := strconv.FormatInt(f.demo.CounterID, 10)
	form := url.Values{"name": {"Hijacked"}, "domain": {"demo.throughline.local"}, "timezone": {"Europe/Moscow"}}
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"},
		{"Sec-Fetch-Site", "", "Origin", "https://evil.example"},
	} {
		r := b.post("/c/"+id+"/settings", form, h...)
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "another site") {
			t.Errorf("cross-origin post %v: %d", h, r.status)
		}
	}
	if cn, _ := f.c.counters.Get(ctx, f.demo.CounterID); cn.Name == "Hijacked" {
		t.Fatal("a cross-origin post changed the counter")
	}
	// Sign-out too is refused cross-site (a forced sign-out is a nuisance).
	if r := b.post("/signout", nil, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"); r.status != http.StatusForbidden {
		t.Errorf("cross-site sign-out: %d", r.status)
	}
}

func testSetup(t *testing.T, f *cabinet) {
	// The fixture has an admin: no setup link can be made.
	if _, err := accounts.NewSetupLink(ctx, f.db); err == nil {
		t.Fatal("a setup link while an admin exists")
	}
	// Without admins (demote by SQL: the last admin cannot be demoted
	// through the API), the setup link works once.
	if _, err := f.db.Writer().Exec(`UPDATE users SET is_admin = false`); err != nil {
		t.Fatal(err)
	}
	defer f.db.Writer().Exec(`UPDATE users SET is_admin = true WHERE email = 'admin@shop.test'`)
	token, err := accounts.NewSetupLink(ctx, f.db)
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	if r := b.get("/"); !strings.Contains(r.body, "one-time link") {
		t.Error("home does not say where the setup link is")
	}
	if r := b.get("/setup/" + token); r.status != 200 || !strings.Contains(r.body, `name="password2"`) {
		t.Fatalf("setup page: %d", r.status)
	}
	r := b.post("/setup/"+token, url.Values{"email": {"root@shop.test"}, "password": {"long enough pw"}, "password2": {"different pw!"}})
	if r.status != 400 || !strings.Contains(r.body, "differ") || !strings.Contains(r.body, `value="root@shop.test"`) {
		t.Fatalf("mismatched passwords: %d", r.status)
	}
	r = b.post("/setup/"+token, url.Values{"email": {"root@shop.test"}, "password": {"short"}, "password2": {"short"}})
	if r.status != 400 || !strings.Contains(r.body, "at least 10") {
		t.Fatalf("short password: %d %s", r.status, r.body)
	}
	r = b.post("/setup/"+token, url.Values{"email": {"root@shop.test"}, "password": {"long enough pw"}, "password2": {"long enough pw"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("setup: %d %s", r.status, r.body)
	}
	if p := b.get("/people"); p.status != 200 || !strings.Contains(p.body, "root@shop.test") {
		t.Fatalf("the new admin's people page: %d", p.status)
	}
	if r := f.browser(t).get("/setup/" + token); r.status != http.StatusGone {
		t.Errorf("a used setup link: %d", r.status)
	}
	f.db.Writer().Exec(`DELETE FROM users WHERE email = 'root@shop.test'`)
}

func testLinks(t *testing.T, f *cabinet) {
	token, err := accounts.NewLink(ctx, f.db, accounts.LinkSignIn, f.people["viewer"].ID)
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	next := "/c/" + strconv.FormatInt(f.demo.CounterID, 10) + "/"
	// Opening the link (a mail scanner, a prefetch) does not use it.
	for range 2 {
		if r := b.get("/signin/link/" + token + "?next=" + url.QueryEscape(next)); r.status != 200 || !strings.Contains(r.body, "viewer@shop.test") {
			t.Fatalf("link page: %d", r.status)
		}
	}
	r := b.post("/signin/link/"+token, url.Values{"next": {next}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != next {
		t.Fatalf("use link: %d → %q", r.status, r.header.Get("Location"))
	}
	if r := b.get(next + "?period=7d"); r.status != 200 {
		t.Fatalf("dashboard after the link: %d", r.status)
	}
	if r := f.browser(t).post("/signin/link/"+token, nil); r.status != http.StatusGone {
		t.Errorf("a used link: %d", r.status)
	}
	if r := f.browser(t).get("/signin/link/not-a-token"); r.status != http.StatusGone {
		t.Errorf("a made-up link: %d", r.status)
	}
}

func testAccount(t *testing.T, f *cabinet) {
	u, err := accounts.CreateUser(ctx, f.db, accounts.NewUser{Email: "pat@shop.test", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.post("/signin", url.Values{"email": {u.Email}, "password": {password}})
	other := f.browser(t)
	other.post("/signin", url.Values{"email": {u.Email}, "password": {password}})

	if r := b.post("/account/profile", url.Values{"name": {"Pat"}, "language": {"ru"}}); r.status != http.StatusSeeOther {
		t.Fatalf("profile: %d", r.status)
	}
	if r := b.get("/account"); !strings.Contains(r.body, "Учётная запись") || !strings.Contains(r.body, `lang="ru"`) {
		t.Error("the language chosen in the profile is not the page's")
	}
	if r := b.post("/account/profile", url.Values{"name": {"a\x00b"}}); r.status != 400 {
		t.Errorf("a name with NUL: %d", r.status)
	}
	r := b.post("/account/password", url.Values{"current": {"wrong"}, "password": {"new long password"}, "password2": {"new long password"}})
	if r.status != 400 {
		t.Fatalf("password change with a wrong current one: %d", r.status)
	}
	r = b.post("/account/password", url.Values{"current": {password}, "password": {"new long password"}, "password2": {"new long password"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("password change: %d %s", r.status, r.body)
	}
	if r := b.get("/account"); r.status != 200 {
		t.Errorf("the browser that changed the password was signed out: %d", r.status)
	}
	if r := other.get("/account"); r.status != http.StatusSeeOther {
		t.Errorf("another browser survived the password change: %d", r.status)
	}
	// Personal tokens: shown once, listed, revoked.
	r = b.post("/account/tokens", url.Values{"token_name": {"deploy"}})
	tok := regexp.MustCompile(`tlu_\d+_[0-9a-f]{16}_[0-9a-f]{40}`).FindString(r.body)
	if r.status != 200 || tok == "" {
		t.Fatalf("token: %d", r.status)
	}
	if again := b.get("/account"); strings.Contains(again.body, tok) {
		t.Error("the token's text is shown again")
	}
	toks, _ := accounts.ListTokens(ctx, f.db, u.ID)
	if r := b.post("/account/tokens/"+toks[0].ID+"/revoke", nil); r.status != http.StatusSeeOther {
		t.Errorf("revoke: %d", r.status)
	}
	if _, err := accounts.TokenUser(ctx, f.db, tok); err == nil {
		t.Error("the revoked token works")
	}
	// Someone else's token cannot be revoked through one's own account.
	_, _, _ = accounts.CreateToken(ctx, f.db, f.people["admin"].ID, "admin's")
	adminToks, _ := accounts.ListTokens(ctx, f.db, f.people["admin"].ID)
	if r := b.post("/account/tokens/"+adminToks[0].ID+"/revoke", nil); r.status != 404 {
		t.Errorf("revoking another person's token: %d", r.status)
	}
}

func testCounters(t *testing.T, f *cabinet) {
	viewer := f.as(t, "viewer")
	r := viewer.get("/counters")
	if !strings.Contains(r.body, "Demo shop") || strings.Contains(r.body, "Other shop") || strings.Contains(r.body, "/counters/new") {
		t.Fatalf("viewer's counters page shows the wrong counters or the admin's button")
	}
	if r := viewer.get("/counters/new"); r.status != 403 {
		t.Errorf("a viewer opens the new-counter form: %d", r.status)
	}
	admin := f.as(t, "admin")
	if r := admin.get("/counters"); !strings.Contains(r.body, "Other shop") || !strings.Contains(r.body, "Demo shop") {
		t.Error("the admin does not see every counter")
	}
	r = admin.post("/counters/new", url.Values{"name": {"New shop"}, "domain": {"https://New.Example.RU/"}, "timezone": {"Mars/Olympus"}})
	if r.status != 400 || !strings.Contains(r.body, "IANA") || !strings.Contains(r.body, `value="New shop"`) {
		t.Fatalf("bad time zone: %d", r.status)
	}
	r = admin.post("/counters/new", url.Values{"name": {"New shop"}, "domain": {"https://New.Example.RU/"}, "timezone": {"Asia/Yekaterinburg"}})
	if r.status != 200 || !strings.Contains(r.body, `data-counter=`) || !regexp.MustCompile(`tl_\d+_`).MatchString(r.body) {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
}

func testPeopleAccess(t *testing.T, f *cabinet) {
	id := strconv.FormatInt(f.demo.CounterID, 10)
	owner := f.as(t, "owner")
	r := owner.post("/c/"+id+"/access", url.Values{"email": {"newcomer@shop.test"}, "role": {"viewer"}})
	link := regexp.MustCompile(`/password/[A-Za-z0-9_-]{43}`).FindString(r.body)
	if r.status != 200 || link == "" {
		t.Fatalf("invite: %d", r.status)
	}
	nb := f.browser(t)
	if r := nb.get(link); r.status != 200 || !strings.Contains(r.body, "newcomer@shop.test") {
		t.Fatalf("password link page: %d", r.status)
	}
	if r := nb.post(link, url.Values{"password": {"newcomer password"}, "password2": {"other password!"}}); r.status != 400 {
		t.Fatalf("mismatched passwords by link: %d", r.status)
	}
	if r := nb.post(link, url.Values{"password": {"newcomer password"}, "password2": {"newcomer password"}}); r.status != http.StatusSeeOther {
		t.Fatalf("set password by link: %d", r.status)
	}
	if r := nb.get("/c/" + id + "/?period=7d"); r.status != 200 {
		t.Fatalf("newcomer's dashboard: %d", r.status)
	}
	if r := nb.get("/c/" + id + "/access"); r.status != 403 {
		t.Errorf("a viewer opens the access page: %d", r.status)
	}
	nc, _ := accounts.UserByEmail(ctx, f.db, "newcomer@shop.test")
	if r := owner.post("/c/"+id+"/access/"+strconv.FormatInt(nc.ID, 10), url.Values{"action": {"remove"}}); r.status != http.StatusSeeOther {
		t.Fatalf("remove: %d", r.status)
	}
	if r := nb.get("/c/" + id + "/?period=7d"); r.status != 404 {
		t.Errorf("removed person's dashboard: %d", r.status)
	}
	// The owner cannot demote the counter's only owner (themselves).
	if r := owner.post("/c/"+id+"/access/"+strconv.FormatInt(f.people["owner"].ID, 10), url.Values{"role": {"viewer"}}); r.status != 409 {
		t.Errorf("demote the only owner: %d", r.status)
	}
	// A person of another counter in the path: not found.
	if r := owner.post("/c/"+strconv.FormatInt(f.other.ID, 10)+"/access", url.Values{"email": {"x@shop.test"}, "role": {"owner"}}); r.status != 404 {
		t.Errorf("owner of the demo granting on another counter: %d", r.status)
	}
	// Admin's people page: create, link.
	admin := f.as(t, "admin")
	r = admin.post("/people", url.Values{"email": {"analyst@agency.test"}, "name": {"Analyst"}})
	if r.status != 200 || !regexp.MustCompile(`/password/[A-Za-z0-9_-]{43}`).MatchString(r.body) {
		t.Fatalf("people create: %d", r.status)
	}
	if r := admin.post("/people", url.Values{"email": {"analyst@agency.test"}}); r.status != 400 || !strings.Contains(r.body, "already exists") {
		t.Errorf("same e-mail twice: %d", r.status)
	}
	if r := admin.post("/people/"+strconv.FormatInt(f.people["admin"].ID, 10)+"/admin", url.Values{}); r.status != 409 {
		t.Errorf("demote the only admin: %d", r.status)
	}
	if r := owner.get("/people"); r.status != 403 {
		t.Errorf("an owner opens the people page: %d", r.status)
	}
}

func testSettings(t *testing.T, f *cabinet) {
	id := strconv.FormatInt(f.demo.CounterID, 10)
	if r := f.as(t, "viewer").get("/c/" + id + "/settings"); r.status != 403 || !strings.Contains(r.body, "role") {
		t.Errorf("a viewer's settings: %d", r.status)
	}
	ed := f.as(t, "editor")
	if r := ed.post("/c/"+id+"/settings", url.Values{"name": {"Demo shop"}, "lookback_days": {"zero"}}); r.status != 400 {
		t.Errorf("lookback 'zero': %d", r.status)
	}
	if r := ed.post("/c/"+id+"/settings", url.Values{"name": {"Demo shop"}, "lookback_days": {"0"}}); r.status != 400 || !strings.Contains(r.body, "between 1 and 3650") {
		t.Errorf("lookback 0: %d", r.status)
	}
	if r := ed.post("/c/"+id+"/settings", url.Values{"name": {"Demo furniture"}}); r.status != http.StatusSeeOther {
		t.Fatalf("save: %d", r.status)
	}
	if r := ed.get("/c/" + id + "/settings?done=saved"); !strings.Contains(r.body, "Demo furniture") || !strings.Contains(r.body, "Saved.") {
		t.Error("the saved name is not shown")
	}
	ed.post("/c/"+id+"/settings", url.Values{"name": {"Demo shop"}})
}

func testBadInput(t *testing.T, f *cabinet) {
	b := f.as(t, "viewer")
	id := strconv.FormatInt(f.demo.CounterID, 10)
	for path, want := range map[string]int{
		"/c/" + id + "/?from=2026-13-45&to=2026-04-01":  400,
		"/c/" + id + "/?period=forever":                 400,
		"/c/" + id + "/?from=1900-01-01&to=2026-04-01":  400,
		"/c/" + id + "/?from=2026-04-02&to=2026-04-01":  400,
		"/c/" + strconv.FormatInt(f.other.ID, 10) + "/": 404,
		"/c/999999/": 404,
		"/c/abc/":    404,
		"/c/-1/":     404,
		"/c/" + id + "/?from=" + strings.Repeat("%00", 3000): 400,
	} {
		r := b.get(path)
		if r.status != want {
			t.Errorf("%.80s: %d, want %d", path, r.status, want)
		}
		if strings.Contains(r.body, "Other shop") {
			t.Errorf("%.80s shows another counter's name", path)
		}
		if len(r.body) > 20000 {
			t.Errorf("%.80s: the error page is %d bytes (echoes the input?)", path, len(r.body))
		}
	}
}
