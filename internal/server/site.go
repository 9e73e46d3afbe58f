package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/leads"
	"github.com/throughline/throughline/internal/tracker"
)

// What t.js sends besides hits: asking for the session's tracked number
// (dynamic number insertion), keeping it, giving it back; leads from
// throughline.sendLead; phones and e-mails typed into forms, for counters
// that capture them. Like /collect: JSON as text/plain (no CORS preflight),
// checked by the counter's domain, rate-limited per address.

type siteRequest struct {
	Counter tracker.FlexInt `json:"counter"`
	SID     string          `json:"sid"`
	UUID    string          `json:"uuid"`
	LeaseID string          `json:"lease_id"`
	// sendLead
	Type    string `json:"type"`
	Subject string `json:"subject"`
	Name    string `json:"name"`
	Phone   string `json:"phone"`
	Email   string `json:"email"`
	Comment string `json:"comment"`
	// form capture
	Phones []string `json:"phones"`
	Emails []string `json:"emails"`
}

// siteCall reads a t.js request and checks its counter, origin and ids.
func (s *Server) siteCall(w http.ResponseWriter, r *http.Request) (siteRequest, counter.Counter, bool) {
	var req siteRequest
	var c counter.Counter
	if _, ok := s.admit(w, r); !ok {
		return req, c, false
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			writeError(w, &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
				Message: fmt.Sprintf("the body is at most %d bytes", tracker.MaxBodyBytes)})
			return req, c, false
		}
		writeError(w, badRequest("body", "could not read the body: %v", err))
		return req, c, false
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, jsonError(err))
		return req, c, false
	}
	c, err = s.counters.Get(r.Context(), int64(req.Counter))
	if errors.Is(err, counter.ErrNotFound) {
		writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Field: "counter",
			Message: fmt.Sprintf("counter %d does not exist", req.Counter)})
		return req, c, false
	}
	if err != nil {
		s.fail(w, r, err)
		return req, c, false
	}
	if !s.allowOrigin(w, r, c) {
		writeError(w, &Error{Status: http.StatusForbidden, Code: "forbidden_origin",
			Message: fmt.Sprintf("pages on %q may not call counter %d, which is for %s", r.Header.Get("Origin"), c.ID, c.Domain)})
		return req, c, false
	}
	if !tracker.ValidID(req.SID) {
		writeError(w, badRequest("sid", "sid must be the session id t.js was given (a lowercase UUID)"))
		return req, c, false
	}
	if req.UUID != "" && !tracker.ValidID(req.UUID) {
		writeError(w, badRequest("uuid", "uuid must be a lowercase UUID"))
		return req, c, false
	}
	w.Header().Set("Cache-Control", "no-store")
	return req, c, true
}

// leaseResponse tells t.js what to replace and with what.
type leaseResponse struct {
	DNI          *dniSettings        `json:"dni"` // null: the counter does not replace its phone
	Number       *calltracking.Shown `json:"number"`
	HeartbeatS   int                 `json:"heartbeat_s"`
	CaptureForms bool                `json:"capture_forms"`
}

type dniSettings struct {
	Selector string `json:"selector,omitempty"` // elements whose phone text is replaced
	Phone    string `json:"phone,omitempty"`    // the site's own phone, normalised: replaced wherever it is written
}

// numberLease answers POST /numbers/lease: the number this session shows.
func (s *Server) numberLease(w http.ResponseWriter, r *http.Request) {
	if !s.leases.allow(clientIP(r, s.cfg.TrustedProxies), time.Now()) {
		w.Header().Set("Retry-After", "1")
		writeError(w, &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "too many number requests from this address"})
		return
	}
	req, c, ok := s.siteCall(w, r)
	if !ok {
		return
	}
	resp := leaseResponse{HeartbeatS: max(int(s.cfg.Heartbeat/time.Second), 1), CaptureForms: c.CaptureForms}
	if c.DNISelector != "" || c.DNIPhone != "" {
		resp.DNI = &dniSettings{Selector: c.DNISelector, Phone: c.DNIPhone}
		if req.UUID == "" {
			writeError(w, badRequest("uuid", "uuid is required to lend a number"))
			return
		}
		shown, err := calltracking.Assign(r.Context(), s.db, c, req.SID, req.UUID, time.Now())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		resp.Number = shown
	}
	writeJSON(w, http.StatusOK, resp)
}

// numberHeartbeat answers POST /numbers/heartbeat: 204, or 410 when the
// lease has ended (t.js then asks for a number again).
func (s *Server) numberHeartbeat(w http.ResponseWriter, r *http.Request) {
	req, c, ok := s.siteCall(w, r)
	if !ok {
		return
	}
	err := calltracking.Heartbeat(r.Context(), s.db, c, req.LeaseID, req.SID, time.Now())
	if errors.Is(err, calltracking.ErrGone) {
		writeError(w, &Error{Status: http.StatusGone, Code: "gone", Field: "lease_id", Message: "the lease has ended; ask for a number again"})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// numberRelease answers POST /numbers/release (the page is closing).
func (s *Server) numberRelease(w http.ResponseWriter, r *http.Request) {
	req, c, ok := s.siteCall(w, r)
	if !ok {
		return
	}
	err := calltracking.Release(r.Context(), s.db, c.ID, req.LeaseID, req.SID, "page closed", time.Now())
	if err != nil && !errors.Is(err, calltracking.ErrGone) {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// siteLead answers POST /leads/collect: throughline.sendLead from a page.
func (s *Server) siteLead(w http.ResponseWriter, r *http.Request) {
	req, c, ok := s.siteCall(w, r)
	if !ok {
		return
	}
	l, err := leads.Create(r.Context(), s.db, c.ID, leads.Input{Type: req.Type, Subject: req.Subject, Name: req.Name,
		Phone: req.Phone, Email: req.Email, Comment: req.Comment, SID: req.SID, UUID: req.UUID}, "site", time.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"id": l.ID})
}

// formCapture answers POST /forms/capture: the md5 of the phones and
// e-mails a visitor typed into a form is stored, nothing else.
func (s *Server) formCapture(w http.ResponseWriter, r *http.Request) {
	req, c, ok := s.siteCall(w, r)
	if !ok {
		return
	}
	if !c.CaptureForms {
		writeError(w, &Error{Status: http.StatusForbidden, Code: "capture_disabled",
			Message: "this counter does not capture forms (PATCH the counter with capture_forms: true)"})
		return
	}
	if len(req.Phones)+len(req.Emails) > 20 {
		writeError(w, badRequest("phones", "at most 20 phones and e-mails per form"))
		return
	}
	if _, err := leads.Capture(r.Context(), s.db, c.ID, req.SID, req.UUID, req.Phones, req.Emails, time.Now()); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
