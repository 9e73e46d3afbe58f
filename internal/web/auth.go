package web

import (
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/throughline/throughline/internal/accounts"
)

// register lists every route of the cabinet with who may reach it.
func (c *Cabinet) register() {
	c.routes = append(c.routes, Route{Pattern: "GET /static/{file}", Access: Public, Handler: http.HandlerFunc(serveStatic)})
	c.route("GET /{$}", Public, c.home)
	c.route("POST /lang", Public, c.setLanguage)
	c.route("GET /signin", Public, c.signInPage)
	c.route("POST /signin", Public, c.signInPost)
	c.route("GET /signin/link/{token}", Public, c.linkPage)
	c.route("POST /signin/link/{token}", Public, c.linkPost)
	c.route("GET /setup/{token}", Public, c.setupPage)
	c.route("POST /setup/{token}", Public, c.setupPost)
	c.route("GET /password/{token}", Public, c.passwordLinkPage)
	c.route("POST /password/{token}", Public, c.passwordLinkPost)
	c.route("POST /signout", Person, c.signOut)

	c.route("GET /account", Person, c.accountPage)
	c.route("POST /account/profile", Person, c.accountProfile)
	c.route("POST /account/password", Person, c.accountPassword)
	c.route("POST /account/tokens", Person, c.accountTokenCreate)
	c.route("POST /account/tokens/{token}/revoke", Person, c.accountTokenRevoke)

	c.route("GET /counters", Person, c.countersPage)
	c.route("GET /counters/new", Admin, c.counterNewPage)
	c.route("POST /counters/new", Admin, c.counterNewPost)

	c.route("GET /people", Admin, c.peoplePage)
	c.route("POST /people", Admin, c.peopleCreate)
	c.route("POST /people/{user}/link", Admin, c.peopleLink)
	c.route("POST /people/{user}/admin", Admin, c.peopleAdmin)

	c.route("GET /c/{id}/access", Owner, c.accessPage)
	c.route("POST /c/{id}/access", Owner, c.accessAdd)
	c.route("POST /c/{id}/access/{user}", Owner, c.accessChange)
	c.route("GET /c/{id}/settings", Editor, c.settingsPage)
	c.route("POST /c/{id}/settings", Editor, c.settingsPost)

	c.counterRoutes()
}

// home sends a signed-in person to their counters; a guest sees what this
// is and where to sign in.
func (c *Cabinet) home(w http.ResponseWriter, r *http.Request, p *page) error {
	if p.User != nil {
		return redirect(w, r, "/counters")
	}
	admins, err := accounts.CountAdmins(r.Context(), c.db)
	if err != nil {
		return err
	}
	p.Data = struct{ NoAdmin bool }{admins == 0}
	return c.render(w, p, "home")
}

// setLanguage remembers a guest's language choice in a cookie (a person's
// is in their account).
func (c *Cabinet) setLanguage(w http.ResponseWriter, r *http.Request, p *page) error {
	lang := r.PostFormValue("lang")
	if lang != "ru" && lang != "en" {
		return badParam("lang", "error.language")
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600, SameSite: http.SameSiteLaxMode,
		HttpOnly: true, Secure: c.secure || r.TLS != nil})
	return redirect(w, r, localPath(r.PostFormValue("next")))
}

func (c *Cabinet) signInPage(w http.ResponseWriter, r *http.Request, p *page) error {
	if p.User != nil {
		return redirect(w, r, localPath(r.URL.Query().Get("next")))
	}
	p.Title = p.L.T("signin.title")
	p.Form = &form{Values: map[string][]string{"next": {r.URL.Query().Get("next")}}}
	return c.render(w, p, "signin")
}

// throttleKey is the address sign-in failures are counted by: the client's
// IPv4 address, or its IPv6 /64 (one host usually has a whole /64).
func throttleKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		if pfx, err := a.Prefix(64); err == nil {
			return pfx.String()
		}
	}
	return a.String()
}

func (c *Cabinet) signInPost(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Title = p.L.T("signin.title")
	p.Form = newForm(r)
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	addr := throttleKey(c.cfg.ClientIP(r))
	if wait := c.throttle.Wait(addr, email); wait > 0 {
		minutes := int(math.Ceil(wait.Minutes()))
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		p.Form.Message = p.L.N("signin.throttled", minutes)
		return c.views.render(w, p, http.StatusTooManyRequests, "signin")
	}
	u, err := accounts.SignIn(r.Context(), c.db, email, r.PostFormValue("password"))
	if errors.Is(err, accounts.ErrBadCredentials) {
		c.throttle.Failed(addr, email)
		c.log.Info("sign-in refused", "email", email, "address", addr)
		p.Form.Message = p.L.T("signin.bad_credentials")
		return c.views.render(w, p, http.StatusUnauthorized, "signin")
	}
	if err != nil {
		return err
	}
	c.throttle.Succeeded(email)
	if err := c.signIn(w, r, u); err != nil {
		return err
	}
	c.log.Info("signed in", "user", u.ID, "email", u.Email)
	return redirect(w, r, localPath(r.PostFormValue("next")))
}

func (c *Cabinet) signOut(w http.ResponseWriter, r *http.Request, p *page) error {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if err := accounts.EndSession(r.Context(), c.db, ck.Value); err != nil {
			return err
		}
	}
	c.clearSession(w, r)
	return redirect(w, r, "/")
}

// linkPage asks to confirm a sign-in link: the link works on the POST, so a
// mail scanner or a browser's prefetch that opens it does not use it up.
func (c *Cabinet) linkPage(w http.ResponseWriter, r *http.Request, p *page) error {
	l, err := accounts.PeekLink(r.Context(), c.db, r.PathValue("token"), accounts.LinkSignIn)
	if err != nil {
		return c.linkFailed(w, p, err)
	}
	p.Title = p.L.T("link.title")
	p.Data = struct {
		Email, Next string
	}{l.User.Email, r.URL.Query().Get("next")}
	return c.render(w, p, "link")
}

func (c *Cabinet) linkPost(w http.ResponseWriter, r *http.Request, p *page) error {
	u, err := accounts.SignInByLink(r.Context(), c.db, r.PathValue("token"))
	if err != nil {
		return c.linkFailed(w, p, err)
	}
	if err := c.signIn(w, r, u); err != nil {
		return err
	}
	c.log.Info("signed in by link", "user", u.ID, "email", u.Email)
	return redirect(w, r, localPath(r.PostFormValue("next")))
}

// linkFailed shows a used or expired link as such (410), other errors as
// errors.
func (c *Cabinet) linkFailed(w http.ResponseWriter, p *page, err error) error {
	if !errors.Is(err, accounts.ErrLinkInvalid) {
		return err
	}
	p.Title = p.L.T("link.invalid_title")
	p.Data = struct {
		Status  int
		Message string
	}{http.StatusGone, p.L.T("link.invalid")}
	return c.views.render(w, p, http.StatusGone, "error")
}

func (c *Cabinet) setupPage(w http.ResponseWriter, r *http.Request, p *page) error {
	if _, err := accounts.PeekLink(r.Context(), c.db, r.PathValue("token"), accounts.LinkSetup); err != nil {
		return c.linkFailed(w, p, err)
	}
	p.Title = p.L.T("setup.title")
	return c.render(w, p, "setup")
}

func (c *Cabinet) setupPost(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Title = p.L.T("setup.title")
	p.Form = newForm(r)
	if r.PostFormValue("password") != r.PostFormValue("password2") {
		p.Form.Errors["password2"] = p.L.T("password.mismatch")
		return c.views.render(w, p, http.StatusBadRequest, "setup")
	}
	u, err := accounts.SetUp(r.Context(), c.db, r.PathValue("token"), accounts.NewUser{
		Email: r.PostFormValue("email"), Name: r.PostFormValue("name"), Password: r.PostFormValue("password")})
	if c.formError(p, err) {
		return c.views.render(w, p, http.StatusBadRequest, "setup")
	}
	if err != nil {
		return c.linkFailed(w, p, err)
	}
	c.log.Info("first admin created", "user", u.ID, "email", u.Email)
	if err := c.signIn(w, r, u); err != nil {
		return err
	}
	return redirect(w, r, "/counters")
}

func (c *Cabinet) passwordLinkPage(w http.ResponseWriter, r *http.Request, p *page) error {
	l, err := accounts.PeekLink(r.Context(), c.db, r.PathValue("token"), accounts.LinkPassword)
	if err != nil {
		return c.linkFailed(w, p, err)
	}
	p.Title = p.L.T("password.set_title")
	p.Data = struct{ Email string }{l.User.Email}
	return c.render(w, p, "password")
}

func (c *Cabinet) passwordLinkPost(w http.ResponseWriter, r *http.Request, p *page) error {
	l, err := accounts.PeekLink(r.Context(), c.db, r.PathValue("token"), accounts.LinkPassword)
	if err != nil {
		return c.linkFailed(w, p, err)
	}
	p.Title = p.L.T("password.set_title")
	p.Data = struct{ Email string }{l.User.Email}
	p.Form = newForm(r)
	if r.PostFormValue("password") != r.PostFormValue("password2") {
		p.Form.Errors["password2"] = p.L.T("password.mismatch")
		return c.views.render(w, p, http.StatusBadRequest, "password")
	}
	u, err := accounts.SetPasswordByLink(r.Context(), c.db, r.PathValue("token"), r.PostFormValue("password"))
	if c.formError(p, err) {
		return c.views.render(w, p, http.StatusBadRequest, "password")
	}
	if err != nil {
		return c.linkFailed(w, p, err)
	}
	if err := c.signIn(w, r, u); err != nil {
		return err
	}
	return redirect(w, r, "/counters")
}

// formError puts a field error of the domain beside its field on the form
// being shown again, and reports whether it did.
func (c *Cabinet) formError(p *page, err error) bool {
	var fe *accounts.FieldError
	if errors.As(err, &fe) {
		if key := "field." + fe.Field; p.L.has(key) {
			p.Form.Errors[fe.Field] = p.L.T(key) + ": " + fe.Message
		} else {
			p.Form.Errors[fe.Field] = fe.Message
		}
		return true
	}
	var pe *fieldError
	if errors.As(err, &pe) {
		p.Form.Errors[pe.Field] = pe.message(p.L)
		return true
	}
	return false
}

type accountData struct {
	Tokens   []accounts.Token
	NewToken string // a token's text, shown once after it was made
}

func (c *Cabinet) accountPage(w http.ResponseWriter, r *http.Request, p *page) error {
	return c.renderAccount(w, r, p, http.StatusOK, "")
}

func (c *Cabinet) renderAccount(w http.ResponseWriter, r *http.Request, p *page, status int, newToken string) error {
	tokens, err := accounts.ListTokens(r.Context(), c.db, p.User.ID)
	if err != nil {
		return err
	}
	p.Title = p.L.T("account.title")
	p.Data = accountData{Tokens: tokens, NewToken: newToken}
	if p.Form == nil {
		p.Form = &form{Values: map[string][]string{"name": {p.User.Name}, "language": {p.User.Language}}, Errors: map[string]string{}}
	}
	if done := r.URL.Query().Get("done"); done != "" && p.L.has("done."+done) {
		p.Notice = p.L.T("done." + done)
	}
	return c.views.render(w, p, status, "account")
}

func (c *Cabinet) accountProfile(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Form = newForm(r)
	err := accounts.SetProfile(r.Context(), c.db, p.User.ID, accounts.Profile{Name: r.PostFormValue("name"), Language: r.PostFormValue("language")})
	if c.formError(p, err) {
		return c.renderAccount(w, r, p, http.StatusBadRequest, "")
	}
	if err != nil {
		return err
	}
	return redirect(w, r, "/account?done=profile")
}

func (c *Cabinet) accountPassword(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Form = newForm(r)
	if _, err := accounts.SignIn(r.Context(), c.db, p.User.Email, r.PostFormValue("current")); err != nil {
		if !errors.Is(err, accounts.ErrBadCredentials) {
			return err
		}
		p.Form.Errors["current"] = p.L.T("password.wrong_current")
		return c.renderAccount(w, r, p, http.StatusBadRequest, "")
	}
	if r.PostFormValue("password") != r.PostFormValue("password2") {
		p.Form.Errors["password2"] = p.L.T("password.mismatch")
		return c.renderAccount(w, r, p, http.StatusBadRequest, "")
	}
	err := accounts.SetPassword(r.Context(), c.db, p.User.ID, r.PostFormValue("password"))
	if c.formError(p, err) {
		return c.renderAccount(w, r, p, http.StatusBadRequest, "")
	}
	if err != nil {
		return err
	}
	// Every session ended with the old password; this browser goes on.
	if err := c.signIn(w, r, *p.User); err != nil {
		return err
	}
	return redirect(w, r, "/account?done=password")
}

// accountTokenCreate shows the new token's text once, on the page that
// answers the post (it is never stored, so it cannot survive a redirect).
func (c *Cabinet) accountTokenCreate(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Form = newForm(r)
	_, text, err := accounts.CreateToken(r.Context(), c.db, p.User.ID, r.PostFormValue("token_name"))
	var fe *accounts.FieldError
	if errors.As(err, &fe) {
		p.Form.Errors["token_name"] = fe.Message
		return c.renderAccount(w, r, p, http.StatusBadRequest, "")
	}
	if err != nil {
		return err
	}
	p.Form = nil
	return c.renderAccount(w, r, p, http.StatusOK, text)
}

func (c *Cabinet) accountTokenRevoke(w http.ResponseWriter, r *http.Request, p *page) error {
	if err := accounts.RevokeToken(r.Context(), c.db, p.User.ID, r.PathValue("token")); errors.Is(err, accounts.ErrNotFound) {
		return errNotFound
	} else if err != nil {
		return err
	}
	return redirect(w, r, "/account?done=token_revoked")
}

// isNotFound reports the domain packages' not-found errors.
func isNotFound(err error) bool {
	return errors.Is(err, accounts.ErrNotFound)
}
