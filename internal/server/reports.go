package server

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/exports"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/reports"
	"github.com/throughline/throughline/internal/rollup"
)

func (s *Server) reportRoutes() {
	s.counterAPI("GET /api/v1/counters/{id}/reports/end-to-end", s.endToEndReport)
	s.counterAPI("GET /api/v1/counters/{id}/reports/daily", s.dailyReport)
	s.counterAPI("GET /api/v1/counters/{id}/orders/{order}/path", s.orderPath)
	s.counterAPI("GET /api/v1/counters/{id}/exports/metrica-offline-conversions", s.metricaConversions)
}

// reportQuery reads a report's counter and parameters, answering the
// request itself when it cannot.
func (s *Server) reportQuery(w http.ResponseWriter, r *http.Request, id int64) (counter.Counter, reports.Query, bool) {
	c, err := counter.Get(r.Context(), s.db, id)
	if err != nil {
		s.fail(w, r, err)
		return c, reports.Query{}, false
	}
	q, err := reports.ParseQuery(r.URL.Query().Get)
	if err != nil {
		s.failReport(w, r, err)
		return c, q, false
	}
	return c, q, true
}

func (s *Server) failReport(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *reports.InvalidError
	if errors.As(err, &invalid) {
		writeError(w, badRequest(invalid.Field, "%s", invalid.Error()))
		return
	}
	s.fail(w, r, err)
}

// endToEndReport answers GET …/reports/end-to-end?from=&to=&group=&model=&date=.
func (s *Server) endToEndReport(w http.ResponseWriter, r *http.Request, id int64) {
	c, q, ok := s.reportQuery(w, r, id)
	if !ok {
		return
	}
	rep, err := reports.EndToEnd(r.Context(), s.db, c.ID, c.Location(), q, time.Now())
	if err != nil {
		s.failReport(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// dailyReport answers GET …/reports/daily?from=&to=&model=&date=: the
// totals day by day.
func (s *Server) dailyReport(w http.ResponseWriter, r *http.Request, id int64) {
	c, q, ok := s.reportQuery(w, r, id)
	if !ok {
		return
	}
	d, err := reports.DailySeries(r.Context(), s.db, c.ID, c.Location(), q, time.Now())
	if err != nil {
		s.failReport(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// orderPath answers GET …/orders/{order}/path: how the order was matched
// and the touches that share its credit.
func (s *Server) orderPath(w http.ResponseWriter, r *http.Request, id int64) {
	orderID := r.PathValue("order")
	p, err := matching.OrderPath(r.Context(), s.db, id, orderID)
	if errors.Is(err, matching.ErrNotMatched) {
		// Known but not matched yet: say so, rather than 404.
		if _, err := crm.GetOrder(r.Context(), s.db, id, orderID); err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, matching.Path{OrderID: orderID, Evidence: []matching.Evidence{}, Touches: []matching.Touch{}, Queued: true})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// refreshRollups rebuilds the report rollups that new data made stale, in
// the background, so reports rarely wait for it.
func (s *Server) refreshRollups(ctx context.Context) error {
	start := time.Now()
	n, err := rollup.Refresh(ctx, s.db, func(id int64) (*time.Location, error) {
		c, err := s.counters.Get(ctx, id)
		if errors.Is(err, counter.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return c.Location(), nil
	})
	if n > 0 {
		s.log.Debug("report rollups refreshed", "periods", n, "took", time.Since(start).Round(time.Millisecond))
	}
	return err
}

// metricaConversions answers GET …/exports/metrica-offline-conversions
// ?from=&to=&goal=created|paid&target=&max_age_days= with a CSV file ready
// to upload to Metrica.
func (s *Server) metricaConversions(w http.ResponseWriter, r *http.Request, id int64) {
	q, from, to, ok := s.queryRange(w, r, id)
	if !ok {
		return
	}
	mq := exports.MetricaQuery{From: from, To: to, Goal: cmp.Or(q.Get("goal"), exports.GoalPaid), Target: q.Get("target"),
		MaxAgeDays: exports.MetricaWindowDays, Now: time.Now()}
	if mq.Target == "" {
		mq.Target = "crm_order_" + mq.Goal
	}
	if v := q.Get("max_age_days"); v != "" {
		var err error
		if mq.MaxAgeDays, err = strconv.Atoi(v); err != nil {
			writeError(w, badRequest("max_age_days", "max_age_days must be a whole number of days (0: no limit)"))
			return
		}
	}
	var invalid *exports.InvalidError
	if err := mq.Check(); errors.As(err, &invalid) {
		writeError(w, badRequest(invalid.Field, "%s", invalid.Error()))
		return
	}
	// Rows stream as they are read; an error after the first is logged.
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="offline-conversions-`+mq.Goal+`.csv"`)
	sw := &sentWriter{w: w}
	n, err := exports.MetricaOfflineConversions(r.Context(), s.db, id, mq, sw)
	if err != nil && !sw.sent {
		w.Header().Del("Content-Disposition")
		w.Header().Del("Content-Type")
		s.fail(w, r, err)
		return
	}
	if err != nil {
		s.log.Error("offline conversions export cut short", "counter", id, "rows", n, "err", err)
	}
}

// sentWriter tells whether anything reached the client: until then a
// failure can still be answered with an error.
type sentWriter struct {
	w    io.Writer
	sent bool
}

func (s *sentWriter) Write(p []byte) (int, error) {
	s.sent = true
	return s.w.Write(p)
}
