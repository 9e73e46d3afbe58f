package server

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/tracker"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// listSessions answers GET /api/v1/counters/{id}/sessions?from=&to=&limit=&cursor=.
func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, id int64) {
	q, from, to, ok := s.queryRange(w, r, id)
	if !ok {
		return
	}
	limit, apiErr := pageSize(q.Get("limit"))
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	sessions, next, err := tracker.ListSessions(r.Context(), s.db, id, tracker.ListQuery{From: from, To: to, Limit: limit, Cursor: q.Get("cursor")})
	if errors.Is(err, tracker.ErrBadCursor) {
		writeError(w, badRequest("cursor", "%v", err))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writePage(w, "sessions", sessions, next)
}

// getSession answers GET /api/v1/counters/{id}/sessions/{sid} with its hits.
func (s *Server) getSession(w http.ResponseWriter, r *http.Request, id int64) {
	sess, err := tracker.GetSession(r.Context(), s.db, id, r.PathValue("sid"))
	if errors.Is(err, tracker.ErrNotFound) {
		writeError(w, errNotFound)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sess)
}

// queryRange reads a list's query and its from/to (days in the counter's
// time zone), answering the error itself when it returns !ok.
func (s *Server) queryRange(w http.ResponseWriter, r *http.Request, id int64) (q url.Values, from, to time.Time, ok bool) {
	c, err := counter.Get(r.Context(), s.db, id)
	if err != nil {
		s.fail(w, r, err)
		return nil, from, to, false
	}
	q = r.URL.Query()
	from, to, apiErr := timeRange(q.Get("from"), q.Get("to"), c.Location())
	if apiErr != nil {
		writeError(w, apiErr)
		return nil, from, to, false
	}
	return q, from, to, true
}

// timeRange reads from/to query values: RFC 3339 times, or dates
// (YYYY-MM-DD) in the counter's time zone, with to's date included whole.
// It returns the half-open range [from, to); zero times mean unbounded.
func timeRange(fromText, toText string, loc *time.Location) (from, to time.Time, e *Error) {
	parse := func(field, v string, endOfDay bool) (time.Time, *Error) {
		if v == "" {
			return time.Time{}, nil
		}
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t.UTC(), nil
		}
		d, err := time.ParseInLocation(time.DateOnly, v, loc)
		if err != nil {
			return time.Time{}, badRequest(field, "%s must be a date (2026-11-22) or an RFC 3339 time (2026-11-22T10:00:00+03:00), not %q", field, v)
		}
		if endOfDay {
			d = d.AddDate(0, 0, 1)
		}
		return d.UTC(), nil
	}
	if from, e = parse("from", fromText, false); e != nil {
		return
	}
	if to, e = parse("to", toText, true); e != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return from, to, badRequest("to", "to must be after from")
	}
	return from, to, nil
}

func pageSize(v string) (int, *Error) {
	if v == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, badRequest("limit", "limit must be a whole number from 1 to %d", maxPageSize)
	}
	return n, nil
}
