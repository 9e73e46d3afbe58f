package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/throughline/throughline/internal/webhooks"
)

// Order webhooks: /api/v1/counters/{id}/webhooks, and their delivery logs.

func (s *Server) webhookRoutes() {
	s.counterAPI("GET /api/v1/counters/{id}/webhooks", s.listWebhooks)
	s.counterAPI("POST /api/v1/counters/{id}/webhooks", s.createWebhook)
	s.counterAPI("GET /api/v1/counters/{id}/webhooks/{webhook}", s.getWebhook)
	s.counterAPI("PATCH /api/v1/counters/{id}/webhooks/{webhook}", s.updateWebhook)
	s.counterAPI("DELETE /api/v1/counters/{id}/webhooks/{webhook}", s.deleteWebhook)
	s.counterAPI("GET /api/v1/counters/{id}/webhooks/{webhook}/deliveries", s.listWebhookDeliveries)
	s.counterAPI("POST /api/v1/counters/{id}/webhooks/{webhook}/deliveries/{delivery}/redeliver", s.redeliverWebhook)
}

// failWebhook answers the webhooks package's errors (s.fail does not know
// them): a bad field is 400 naming it, a webhook or delivery of no such id
// — or of another counter — 404.
func (s *Server) failWebhook(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *webhooks.InvalidError
	switch {
	case errors.As(err, &invalid):
		writeError(w, badRequest(invalid.Field, "%s", invalid.Error()))
	case errors.Is(err, webhooks.ErrNotFound):
		writeError(w, errNotFound)
	case errors.Is(err, webhooks.ErrBadCursor):
		writeError(w, badRequest("cursor", "%v", err))
	default:
		s.fail(w, r, err)
	}
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, id int64) {
	hs, err := webhooks.List(r.Context(), s.db, s.cfg.Secrets, id)
	if err != nil {
		s.failWebhook(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": hs})
}

// createWebhook answers POST …/webhooks {"url", "secret"?, "active"?}: 201
// with the webhook, its secret whole this once.
func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, id int64) {
	var in webhooks.Input
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, err)
		return
	}
	h, err := webhooks.Create(r.Context(), s.db, s.cfg.Secrets, id, in, s.sender.Guard)
	if err != nil {
		s.failWebhook(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h)
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, id int64) {
	h, err := webhooks.Get(r.Context(), s.db, s.cfg.Secrets, id, r.PathValue("webhook"))
	if err != nil {
		s.failWebhook(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// updateWebhook answers PATCH …/webhooks/{webhook}: url, secret ("" makes
// a new one, shown in the answer), active.
func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request, id int64) {
	var in webhooks.Input
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, err)
		return
	}
	h, err := webhooks.Update(r.Context(), s.db, s.cfg.Secrets, id, r.PathValue("webhook"), in, s.sender.Guard)
	if err != nil {
		s.failWebhook(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, id int64) {
	if err := webhooks.Delete(r.Context(), s.db, id, r.PathValue("webhook")); err != nil {
		s.failWebhook(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listWebhookDeliveries answers GET …/webhooks/{webhook}/deliveries?limit=&cursor=:
// the delivery log, newest first.
func (s *Server) listWebhookDeliveries(w http.ResponseWriter, r *http.Request, id int64) {
	q := r.URL.Query()
	limit, apiErr := pageSize(q.Get("limit"))
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	ds, next, err := webhooks.ListDeliveries(r.Context(), s.db, id, r.PathValue("webhook"), limit, q.Get("cursor"))
	if err != nil {
		s.failWebhook(w, r, err)
		return
	}
	writePage(w, "deliveries", ds, next)
}

// redeliverWebhook answers POST …/deliveries/{delivery}/redeliver: the
// delivery is queued again, due now, with the whole retry schedule ahead.
func (s *Server) redeliverWebhook(w http.ResponseWriter, r *http.Request, id int64) {
	n, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	if err != nil {
		writeError(w, errNotFound)
		return
	}
	d, err := webhooks.Redeliver(r.Context(), s.db, id, r.PathValue("webhook"), n)
	if err != nil {
		s.failWebhook(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}
