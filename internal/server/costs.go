package server

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/throughline/throughline/internal/costs"
	"github.com/throughline/throughline/internal/crm"
)

// Ad costs: /api/v1/counters/{id}/costs.

func (s *Server) costRoutes() {
	// A CSV upload may be as large, and take as long, as any import.
	// counterAPI gives a route the JSON API's body limits, so they are
	// raised while this one route is registered; postCosts caps a JSON body
	// at the JSON API's size limit itself.
	s.withBodyLimit(max(s.cfg.Imports.MaxBytes, s.cfg.MaxBody), s.cfg.BodyTimeouts.Upload, func() {
		s.counterAPI("POST /api/v1/counters/{id}/costs", s.postCosts)
	})
	s.counterAPI("GET /api/v1/counters/{id}/costs", s.listCosts)
}

// withBodyLimit runs register with limit and within as the body limits of
// the routes it registers (they take s.cfg.MaxBody and
// s.cfg.BodyTimeouts.API when registered).
func (s *Server) withBodyLimit(limit int64, within time.Duration, register func()) {
	savedLimit, savedTime := s.cfg.MaxBody, s.cfg.BodyTimeouts.API
	s.cfg.MaxBody, s.cfg.BodyTimeouts.API = limit, within
	defer func() { s.cfg.MaxBody, s.cfg.BodyTimeouts.API = savedLimit, savedTime }()
	register()
}

// postCosts answers POST /api/v1/counters/{id}/costs[?skip_bad_rows=true]:
// a cost CSV as the body (Content-Type text/csv), or JSON {"costs": [rows]}.
// 200 with what the import did; 400 naming the file's problem, or the bad
// rows (line and column) when none was applied.
func (s *Server) postCosts(w http.ResponseWriter, r *http.Request, id int64) {
	skip, ok := boolParam(w, r.URL.Query(), "skip_bad_rows")
	if !ok {
		return
	}
	opt := costs.Options{SkipBadRows: skip != nil && *skip, TempDir: s.cfg.Imports.TempDir}
	var res *costs.Result
	var err error
	switch mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt {
	case "text/csv", "application/csv", "text/plain", "application/vnd.ms-excel":
		res, err = costs.ImportWith(r.Context(), s.db, id, r.Body, opt)
	case "application/json", "":
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		var req struct {
			Costs []costs.Row `json:"costs"`
		}
		if e := decodeJSON(r, &req); e != nil {
			writeError(w, e)
			return
		}
		if req.Costs == nil {
			writeError(w, badRequest("costs", "costs is required: a list of {day, source, medium, campaign, content, term, cost, clicks, impressions, currency}"))
			return
		}
		res, err = costs.ImportRowsWith(r.Context(), s.db, id, req.Costs, opt)
	default:
		writeError(w, &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: fmt.Sprintf("Content-Type %q: send a cost CSV as text/csv, or JSON {\"costs\": […]} as application/json", r.Header.Get("Content-Type"))})
		return
	}
	if err == nil {
		writeJSON(w, http.StatusOK, res)
		return
	}
	var rejected *crm.RejectedError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Message: fmt.Sprintf("the upload is larger than the limit of %d bytes (--max-import-size)", tooLarge.Limit)})
	case errors.As(err, &rejected):
		// The error shape, with every reported row: a client fixes them all
		// at once rather than one per attempt.
		first := rejected.First[0]
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": struct {
			Code     string         `json:"code"`
			Message  string         `json:"message"`
			Field    string         `json:"field,omitempty"`
			Line     int            `json:"line"`
			Rejected int            `json:"rejected"`
			Errors   []crm.RowError `json:"errors"`
		}{"bad_request", rejected.Error(), first.Column, first.Line, rejected.Rejected, rejected.First}})
	default:
		s.fail(w, r, err) // *crm.FileError is a 400 naming the column
	}
}

// listCosts answers GET /api/v1/counters/{id}/costs?from=&to= (days in the
// counter's time zone, both included): {"costs": [rows]} by day and key.
func (s *Server) listCosts(w http.ResponseWriter, r *http.Request, id int64) {
	q := r.URL.Query()
	days := map[string]string{}
	for _, field := range []string{"from", "to"} {
		v := q.Get(field)
		if v == "" {
			continue
		}
		day, err := costs.ParseDay(v)
		if err != nil {
			writeError(w, badRequest(field, "%s must be a day such as 2024-03-01: %v", field, err))
			return
		}
		days[field] = day
	}
	if days["from"] != "" && days["to"] != "" && days["to"] < days["from"] {
		writeError(w, badRequest("to", "to must not be before from"))
		return
	}
	rows, err := costs.List(r.Context(), s.db, id, days["from"], days["to"])
	var invalid *costs.InvalidError
	if errors.As(err, &invalid) {
		writeError(w, badRequest(invalid.Field, "%s", invalid.Error()))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"costs": rows})
}
