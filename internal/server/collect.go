package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/tracker"
)

// sidHeader carries the session id back to t.js: hits are answered 204, with
// no body, and the browser reads this header (exposed through CORS).
// robotHeader tells it instead that the hit was a robot's and why, so that
// someone trying a site in a headless browser learns why nothing shows.
const (
	sidHeader   = "Throughline-Sid"
	robotHeader = "Throughline-Robot"
)

// transparentGIF is the 1×1 image answered to /collect.gif.
var transparentGIF = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// collect answers POST /collect: one hit as JSON, sent by t.js with fetch or
// navigator.sendBeacon (as text/plain, so browsers send it without a CORS
// preflight). 204 once the hit is committed.
func (s *Server) collect(w http.ResponseWriter, r *http.Request) {
	ip, ok := s.admit(w, r)
	if !ok {
		return
	}
	buf := bodies.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		bodies.Put(buf)
	}()
	_, err := buf.ReadFrom(r.Body)
	body := buf.Bytes()
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			writeError(w, &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
				Message: fmt.Sprintf("a hit is at most %d bytes", tracker.MaxBodyBytes)})
			return
		}
		if e, ok := bodyTimeout(err); ok {
			writeError(w, e)
			return
		}
		writeError(w, badRequest("body", "could not read the body: %v", err))
		return
	}
	p, err := tracker.ParseJSON(body)
	if err != nil {
		s.failHit(w, err)
		return
	}
	s.record(w, r, p, ip, false)
}

// bodies recycles the buffers hits are read into (at most 16 KB each): a
// hit's payload is parsed and copied out before the buffer goes back.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// collectGIF answers GET /collect.gif?…: the same hit in the query string,
// for senders that can only load an image.
func (s *Server) collectGIF(w http.ResponseWriter, r *http.Request) {
	ip, ok := s.admit(w, r)
	if !ok {
		return
	}
	if len(r.URL.RawQuery) > tracker.MaxBodyBytes {
		writeError(w, &Error{Status: http.StatusRequestURITooLong, Code: "uri_too_long",
			Message: fmt.Sprintf("a hit is at most %d bytes", tracker.MaxBodyBytes)})
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, badRequest("query", "malformed query string: %v", err))
		return
	}
	p, err := tracker.ParseQuery(q)
	if err != nil {
		s.failHit(w, err)
		return
	}
	s.record(w, r, p, ip, true)
}

// admit applies the rate limit per client: an IPv4 address or an IPv6 /64.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (netip.Addr, bool) {
	ip := clientIP(r, s.cfg.TrustedProxies)
	if !s.limiter.allow(ip, time.Now()) {
		w.Header().Set("Retry-After", "1")
		writeError(w, &Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Message: "too many hits from this address (or its IPv6 /64); slow down"})
		return ip, false
	}
	return ip, true
}

func (s *Server) record(w http.ResponseWriter, r *http.Request, p tracker.Payload, ip netip.Addr, gif bool) {
	c, err := s.counters.Get(r.Context(), int64(p.Counter))
	if errors.Is(err, counter.ErrNotFound) {
		writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Field: "counter",
			Message: fmt.Sprintf("counter %d does not exist", p.Counter)})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.allowOrigin(w, r, c) {
		writeError(w, &Error{Status: http.StatusForbidden, Code: "forbidden_origin",
			Message: fmt.Sprintf("pages on %q may not send hits to counter %d, which is for %s", r.Header.Get("Origin"), c.ID, c.Domain)})
		return
	}
	hit, err := p.Validate(c, time.Now())
	if err != nil {
		s.failHit(w, err)
		return
	}
	hit.UserAgent = r.UserAgent()
	hit.IP = ip
	res, err := s.collector.Collect(r.Context(), hit)
	switch {
	case errors.Is(err, tracker.ErrClosed):
		w.Header().Set("Retry-After", "5")
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Code: "shutting_down", Message: "the server is restarting; send the hit again"})
		return
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return // the sender is gone
	case errors.Is(err, tracker.ErrRefused):
		// The writer logged why; the other hits of its batch were stored.
		writeError(w, &Error{Status: http.StatusBadRequest, Code: "refused", Message: "the database refused to store this hit; sending it again will not help"})
		return
	case err != nil:
		// The writer logged it; the sender may retry — nothing was acknowledged.
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Code: "not_stored", Message: "the hit could not be stored; send it again"})
		return
	}
	if res.SID != "" {
		w.Header().Set(sidHeader, res.SID)
	}
	if res.Robot != "" {
		w.Header().Set(robotHeader, res.Robot)
	}
	w.Header().Set("Cache-Control", "no-store")
	if gif {
		w.Header().Set("Content-Type", "image/gif")
		w.Write(transparentGIF)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) failHit(w http.ResponseWriter, err error) {
	var fe *tracker.FieldError
	if errors.As(err, &fe) {
		writeError(w, badRequest(fe.Field, "%s", fe.Error()))
		return
	}
	writeError(w, badRequest("", "%v", err))
}

// allowOrigin lets pages of the counter's domain and its subdomains read the
// answer (CORS), and refuses hits from any other site's pages. Requests
// without an Origin (server-to-server senders) pass.
func (s *Server) allowOrigin(w http.ResponseWriter, r *http.Request, c counter.Counter) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	w.Header().Add("Vary", "Origin")
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	site := strings.TrimPrefix(c.Domain, "www.")
	if host != site && !strings.HasSuffix(host, "."+site) {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Expose-Headers", sidHeader+", "+robotHeader)
	return true
}

// collectPreflight answers OPTIONS /collect for senders that post JSON with
// Content-Type application/json. The counter is in the body, which a
// preflight lacks, so the origin is checked on the hit itself.
func (s *Server) collectPreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if origin := r.Header.Get("Origin"); origin != "" {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	}
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}
