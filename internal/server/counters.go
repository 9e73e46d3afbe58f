package server

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/throughline/throughline/internal/accounts"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/matching"
)

func (s *Server) getCounter(w http.ResponseWriter, r *http.Request, id int64) {
	c, err := counter.Get(r.Context(), s.db, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) patchCounter(w http.ResponseWriter, r *http.Request, id int64) {
	var p counter.Patch
	if err := decodeJSON(r, &p); err != nil {
		writeError(w, err)
		return
	}
	ch, err := matching.UpdateCounter(r.Context(), s.db, id, p)
	s.counters.Forget(id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ch.New.LookbackDays != ch.Old.LookbackDays {
		s.log.Info("lookback window changed: matching all orders again", "counter", id, "days", ch.New.LookbackDays, "orders", ch.Requeued)
		s.matcher.Kick()
	}
	writeJSON(w, http.StatusOK, ch.New)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, id int64) {
	ts, err := counter.ListTokens(r.Context(), s.db, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ts == nil {
		ts = []counter.Token{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, id int64) {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	t, text, err := counter.CreateToken(r.Context(), s.db, id, req.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The token's text is in this response and nowhere else, ever.
	writeJSON(w, http.StatusCreated, newToken{t, text})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, id int64) {
	if err := counter.RevokeToken(r.Context(), s.db, id, r.PathValue("token")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// newToken is a token as answered once, at creation: with its text.
type newToken struct {
	counter.Token
	Text string `json:"token"`
}

// personAPI registers an instance-level route that takes a person's
// personal API token ("tlu_…"); admin routes need an admin's. A counter's
// machine token is refused with 403: it acts for one counter only.
func (s *Server) personAPI(pattern string, admin bool, h func(w http.ResponseWriter, r *http.Request, u accounts.User)) {
	s.guards[pattern] = "person"
	s.handle(pattern, func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			s.fail(w, r, errUnauthorized)
			return
		}
		if !accounts.IsUserToken(tok) {
			writeError(w, &Error{Status: http.StatusForbidden, Code: "forbidden",
				Message: "this route needs a person's API token (tlu_…, made on the cabinet's Account page); a counter's token acts for that counter only"})
			return
		}
		u, err := accounts.TokenUser(r.Context(), s.db, tok)
		if errors.Is(err, accounts.ErrBadCredentials) {
			s.fail(w, r, errUnauthorized)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if admin && !u.Admin {
			writeError(w, &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "only an admin of this Throughline may do this"})
			return
		}
		h(w, r, u)
	})
}

// counterWithToken is a counter just created, with its first API token
// (shown once).
type counterWithToken struct {
	counter.Counter
	Token string `json:"token"`
}

// createCounter creates a counter for an admin, who becomes its owner.
func (s *Server) createCounter(w http.ResponseWriter, r *http.Request, u accounts.User) {
	var n struct {
		Name     string `json:"name"`
		Domain   string `json:"domain"`
		Timezone string `json:"timezone"`
	}
	if err := decodeJSON(r, &n); err != nil {
		writeError(w, err)
		return
	}
	c, tok, err := counter.Create(r.Context(), s.db, counter.NewCounter{Name: n.Name, Domain: n.Domain, Timezone: n.Timezone})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := accounts.Grant(r.Context(), s.db, c.ID, u.ID, accounts.Owner); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("counter created", "counter", c.ID, "by", u.Email)
	w.Header().Set("Location", "/api/v1/counters/"+strconv.FormatInt(c.ID, 10))
	writeJSON(w, http.StatusCreated, counterWithToken{c, tok})
}

// listCounters lists the counters the person may see, with their role.
func (s *Server) listCounters(w http.ResponseWriter, r *http.Request, u accounts.User) {
	roles, err := accounts.Counters(r.Context(), s.db, u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	type item struct {
		counter.Counter
		Role accounts.Role `json:"role"`
	}
	out := make([]item, 0, len(roles))
	for _, cr := range roles {
		c, err := counter.Get(r.Context(), s.db, cr.CounterID)
		if errors.Is(err, counter.ErrNotFound) {
			continue
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out = append(out, item{c, cr.Role})
	}
	writeJSON(w, http.StatusOK, map[string]any{"counters": out})
}
