package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/throughline/throughline/internal/retailsync"
)

// The two-way RetailCRM integration of a counter (seed 004):
// /api/v1/counters/{id}/integrations/retailcrm and its push log.

func (s *Server) retailSyncRoutes() {
	s.counterAPI("GET /api/v1/counters/{id}/integrations/retailcrm", s.getRetailSync)
	s.counterAPI("PUT /api/v1/counters/{id}/integrations/retailcrm", s.putRetailSync)
	s.counterAPI("DELETE /api/v1/counters/{id}/integrations/retailcrm", s.deleteRetailSync)
	s.counterAPI("GET /api/v1/counters/{id}/integrations/retailcrm/pushes", s.listRetailPushes)
}

// failRetailSync answers the retailsync package's errors: a bad field is
// 400 naming it, no connection 404.
func (s *Server) failRetailSync(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *retailsync.InvalidError
	switch {
	case errors.As(err, &invalid):
		writeError(w, badRequest(invalid.Field, "%s", invalid.Message))
	case errors.Is(err, retailsync.ErrNotFound):
		writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "the counter is not connected to RetailCRM"})
	default:
		s.fail(w, r, err)
	}
}

func (s *Server) getRetailSync(w http.ResponseWriter, r *http.Request, id int64) {
	in, err := retailsync.Get(r.Context(), s.db, id)
	if err != nil {
		s.failRetailSync(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

// putRetailSync answers PUT …/integrations/retailcrm {"url", "api_key",
// "names"?}: 202, the connection being set up in the background (GET shows
// when it is active, or why it failed).
func (s *Server) putRetailSync(w http.ResponseWriter, r *http.Request, id int64) {
	var in retailsync.Input
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, err)
		return
	}
	got, err := retailsync.Connect(r.Context(), s.db, s.cfg.Secrets, s.retailSync.Guard, id, in, time.Now())
	if err != nil {
		s.failRetailSync(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, got)
}

func (s *Server) deleteRetailSync(w http.ResponseWriter, r *http.Request, id int64) {
	if err := retailsync.Disconnect(r.Context(), s.db, id, time.Now()); err != nil {
		s.failRetailSync(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listRetailPushes answers GET …/pushes?status=&limit=: the latest pushes,
// newest first.
func (s *Server) listRetailPushes(w http.ResponseWriter, r *http.Request, id int64) {
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > retailsync.MaxPushes {
			writeError(w, badRequest("limit", "must be a whole number from 1 to %d", retailsync.MaxPushes))
			return
		}
		limit = n
	}
	ps, err := retailsync.ListPushes(r.Context(), s.db, id, q.Get("status"), limit)
	if err != nil {
		s.failRetailSync(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pushes": ps})
}
