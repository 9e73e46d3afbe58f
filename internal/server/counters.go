package server

import (
	"net/http"

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
