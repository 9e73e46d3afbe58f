package server

import (
	"database/sql"
	"net/http"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/rollup"
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
	old, err := counter.Get(r.Context(), s.db, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var requeued int64
	c, err := counter.UpdateThen(r.Context(), s.db, id, p, func(tx *sql.Tx, old, c counter.Counter) (err error) {
		if c.LookbackDays != old.LookbackDays {
			// A different window changes what counts as evidence for
			// every order: all are matched again.
			requeued, err = matching.EnqueueAll(r.Context(), tx, id, time.Now())
		}
		return err
	})
	s.counters.Forget(id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if c.Timezone != old.Timezone {
		// Its days begin at other hours: the report rollups are rebuilt.
		if err := rollup.Forget(r.Context(), s.db, id); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if c.LookbackDays != old.LookbackDays {
		s.log.Info("lookback window changed: matching all orders again", "counter", id, "days", c.LookbackDays, "orders", requeued)
		s.matcher.Kick()
	}
	writeJSON(w, http.StatusOK, c)
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
