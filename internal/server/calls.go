package server

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/leads"
	"github.com/throughline/throughline/internal/telephony"
)

// maxHookBody caps a telephony webhook's body.
const maxHookBody = 1 << 20

// callHook answers /hooks/calls/{provider}/{token}[/…]: a telephony
// provider reporting a call. The token finds the hook (an unknown one is 404
// with no hint whether the counter exists); the provider's signature is
// checked (401); a payload that cannot be read is 400 naming the field, and
// kept whole for the operator to replay. A call's events are stored and
// matched before the answer, so an acknowledged event is never lost.
func (s *Server) callHook(w http.ResponseWriter, r *http.Request) {
	hook, err := calltracking.HookByToken(r.Context(), s.db, r.PathValue("provider"), r.PathValue("token"))
	if errors.Is(err, calltracking.ErrNotFound) {
		writeError(w, errNotFound)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			writeError(w, &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Message: "a webhook is at most 1 MiB"})
			return
		}
		writeError(w, badRequest("body", "could not read the body: %v", err))
		return
	}
	subpath := ""
	if rest := r.PathValue("rest"); rest != "" {
		subpath = "/" + rest
	}
	f := &calltracking.Failure{Provider: hook.Provider, ReceivedAt: time.Now().UTC().Truncate(time.Microsecond), Method: r.Method,
		Subpath: subpath, URL: s.receivedURL(r), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)}
	reply, err := s.ingestHook(r, hook, f)
	if err == nil {
		writeReply(w, reply)
		return
	}
	var fe *telephony.FieldError
	var ie *calltracking.InvalidError
	switch {
	case errors.Is(err, telephony.ErrSignature):
		s.log.Warn("call webhook: bad signature", "counter", hook.CounterID, "hook", hook.ID, "provider", hook.Provider, "err", err)
		err = &Error{Status: http.StatusUnauthorized, Code: "bad_signature", Message: "the request's signature does not match this hook's secret"}
	case errors.As(err, &fe), errors.As(err, &ie):
		field, msg := "", err.Error()
		if fe != nil {
			field, msg = fe.Field, fe.Message
		} else {
			field, msg = ie.Field, ie.Message
		}
		f.Error, f.Field = msg, field
		if serr := calltracking.SaveFailure(r.Context(), s.db, hook, f); serr != nil {
			s.log.Error("call webhook: could not keep a failed request", "counter", hook.CounterID, "hook", hook.ID, "err", serr)
		}
		s.log.Warn("call webhook: malformed; kept for replay", "counter", hook.CounterID, "hook", hook.ID, "failure", f.ID, "field", field, "err", msg)
		err = badRequest(field, "%s (kept as failure %d for replay)", msg, f.ID)
	}
	// Twilio's Voice URL: put the call through whatever went wrong.
	if fwd, ok := telephony.ForwardReply(hook.Provider, telephony.Request{URL: f.URL, Subpath: f.Subpath},
		telephony.Config{ForwardTo: hook.ForwardTo}); ok {
		var apiErr *Error
		if !errors.As(err, &apiErr) {
			s.log.Error("call webhook failed; the call was forwarded untracked", "counter", hook.CounterID, "hook", hook.ID, "err", err)
		}
		writeReply(w, fwd)
		return
	}
	s.fail(w, r, err)
}

func writeReply(w http.ResponseWriter, reply telephony.Reply) {
	if reply.Status == 0 {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		return
	}
	if reply.ContentType != "" {
		w.Header().Set("Content-Type", reply.ContentType)
	}
	w.WriteHeader(reply.Status)
	w.Write(reply.Body)
}

// receivedURL is the URL the provider called, which Twilio signs: on the
// configured public URL (--public-url) when there is one — behind a reverse
// proxy the request's own host and scheme are the proxy's — else as the
// request says.
func (s *Server) receivedURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/") + r.URL.RequestURI()
	}
	u := url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	if r.TLS == nil && r.Header.Get("X-Forwarded-Proto") != "https" {
		u.Scheme = "http"
	}
	return u.String()
}

// ingestHook parses a webhook request (live, or a kept failure replayed)
// and stores its events. It opens the hook first (its credentials plain:
// calltracking.OpenHook).
func (s *Server) ingestHook(r *http.Request, hook *calltracking.Hook, f *calltracking.Failure) (telephony.Reply, error) {
	if err := calltracking.OpenHook(r.Context(), s.db, s.cfg.Secrets, hook); err != nil {
		return telephony.Reply{}, err
	}
	c, err := s.counters.Get(r.Context(), hook.CounterID)
	if err != nil {
		return telephony.Reply{}, err
	}
	events, reply, err := telephony.Parse(hook.Provider, telephony.Request{
		Method: f.Method, URL: f.URL, Subpath: f.Subpath, Header: f.Header, Body: []byte(f.Body),
	}, telephony.Config{Secret: hook.Secret, Key: hook.APIKey, Salt: hook.APISalt, Location: hook.Location(),
		ReceivedAt: f.ReceivedAt, ForwardTo: hook.ForwardTo})
	if err != nil {
		return reply, err
	}
	for _, ev := range events {
		_, err := calltracking.Ingest(r.Context(), s.db, c, calltracking.Event{
			Provider: ev.Provider, CallID: ev.CallID, Direction: ev.Direction, Caller: ev.Caller, Tracked: ev.Tracked,
			StartedAt: ev.StartedAt, Answered: ev.Answered, TalkSeconds: ev.TalkSeconds, WaitSeconds: ev.WaitSeconds,
			Disposition: ev.Disposition, RecordingURL: ev.RecordingURL, Employee: ev.Employee, Final: ev.Final,
		}, f.ReceivedAt)
		if err != nil {
			return reply, err
		}
	}
	return reply, nil
}

// Call tracking API: /api/v1/counters/{id}/calls, pools, numbers, hooks, hook-failures, leads.

func boolParam(w http.ResponseWriter, q url.Values, name string) (*bool, bool) {
	v := q.Get(name)
	if v == "" {
		return nil, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		writeError(w, badRequest(name, "%s must be true or false", name))
		return nil, false
	}
	return &b, true
}

func (s *Server) listCalls(w http.ResponseWriter, r *http.Request, id int64) {
	q, from, to, ok := s.queryRange(w, r, id)
	if !ok {
		return
	}
	limit, apiErr := pageSize(q.Get("limit"))
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	query := calltracking.CallQuery{From: from, To: to, Limit: limit, Cursor: q.Get("cursor")}
	if query.Answered, ok = boolParam(w, q, "answered"); !ok {
		return
	}
	if query.Unique, ok = boolParam(w, q, "unique"); !ok {
		return
	}
	if query.Matched, ok = boolParam(w, q, "matched"); !ok {
		return
	}
	calls, next, err := calltracking.Calls(r.Context(), s.db, id, query)
	if errors.Is(err, calltracking.ErrBadCursor) {
		writeError(w, badRequest("cursor", "%v", err))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writePage(w, "calls", calls, next)
}

func (s *Server) getCall(w http.ResponseWriter, r *http.Request, id int64) {
	n, err := strconv.ParseInt(r.PathValue("call"), 10, 64)
	if err != nil {
		writeError(w, errNotFound)
		return
	}
	c, err := calltracking.GetCall(r.Context(), s.db, id, n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func poolID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue("pool"), 10, 64)
	if err != nil {
		writeError(w, errNotFound)
		return 0, false
	}
	return n, true
}

func (s *Server) listPools(w http.ResponseWriter, r *http.Request, id int64) {
	ps, err := calltracking.Pools(r.Context(), s.db, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pools": ps})
}

func (s *Server) createPool(w http.ResponseWriter, r *http.Request, id int64) {
	var in calltracking.PoolInput
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, err)
		return
	}
	p, err := calltracking.CreatePool(r.Context(), s.db, id, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (s *Server) getPool(w http.ResponseWriter, r *http.Request, id int64) {
	pid, ok := poolID(w, r)
	if !ok {
		return
	}
	p, err := calltracking.GetPool(r.Context(), s.db, id, pid)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) updatePool(w http.ResponseWriter, r *http.Request, id int64) {
	pid, ok := poolID(w, r)
	if !ok {
		return
	}
	var in calltracking.PoolInput
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, err)
		return
	}
	p, err := calltracking.UpdatePool(r.Context(), s.db, id, pid, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) deletePool(w http.ResponseWriter, r *http.Request, id int64) {
	pid, ok := poolID(w, r)
	if !ok {
		return
	}
	if err := calltracking.DeletePool(r.Context(), s.db, id, pid); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listNumbers(w http.ResponseWriter, r *http.Request, id int64) {
	ns, err := calltracking.Numbers(r.Context(), s.db, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"numbers": ns})
}

// saveNumber answers POST /numbers (add or change, the number in the body)
// and PATCH /numbers/{number}.
func (s *Server) saveNumber(w http.ResponseWriter, r *http.Request, id int64) {
	var in calltracking.NumberInput
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if n := r.PathValue("number"); n != "" {
		if _, err := calltracking.GetNumber(r.Context(), s.db, id, n); err != nil {
			s.fail(w, r, err)
			return
		}
		in.Number = &n
	} else if in.Number != nil {
		status = http.StatusCreated
	}
	num, err := calltracking.SaveNumber(r.Context(), s.db, id, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, status, num)
}

func (s *Server) deleteNumber(w http.ResponseWriter, r *http.Request, id int64) {
	if err := calltracking.DeleteNumber(r.Context(), s.db, id, r.PathValue("number")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) numberLeases(w http.ResponseWriter, r *http.Request, id int64) {
	if _, err := calltracking.GetNumber(r.Context(), s.db, id, r.PathValue("number")); err != nil {
		s.fail(w, r, err)
		return
	}
	limit, apiErr := pageSize(r.URL.Query().Get("limit"))
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	ls, err := calltracking.Leases(r.Context(), s.db, id, r.PathValue("number"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"leases": ls})
}

func (s *Server) listHooks(w http.ResponseWriter, r *http.Request, id int64) {
	hs, err := calltracking.Hooks(r.Context(), s.db, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"hooks": hs})
}

func (s *Server) createHook(w http.ResponseWriter, r *http.Request, id int64) {
	var in calltracking.HookInput
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, err)
		return
	}
	c, err := counter.Get(r.Context(), s.db, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h, err := calltracking.CreateHook(r.Context(), s.db, s.cfg.Secrets, id, c.Timezone, in, telephony.Providers)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h)
}

func (s *Server) revokeHook(w http.ResponseWriter, r *http.Request, id int64) {
	if err := calltracking.RevokeHook(r.Context(), s.db, id, r.PathValue("hook")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listFailures(w http.ResponseWriter, r *http.Request, id int64) {
	limit, apiErr := pageSize(r.URL.Query().Get("limit"))
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	fs, err := calltracking.Failures(r.Context(), s.db, id, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for i, f := range fs {
		fs[i] = f.Masked()
	}
	writeJSON(w, http.StatusOK, map[string]any{"failures": fs})
}

// replayFailure runs a kept webhook request again (after its cause was
// fixed: a new adapter, a corrected hook). 200 with the outcome.
func (s *Server) replayFailure(w http.ResponseWriter, r *http.Request, id int64) {
	n, err := strconv.ParseInt(r.PathValue("failure"), 10, 64)
	if err != nil {
		writeError(w, errNotFound)
		return
	}
	f, err := calltracking.GetFailure(r.Context(), s.db, id, n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	hook, err := calltracking.GetHook(r.Context(), s.db, id, f.HookID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := calltracking.OpenHook(r.Context(), s.db, s.cfg.Secrets, hook); err != nil {
		s.fail(w, r, err)
		return
	}
	// The request as received: the Mango key it was kept without, back.
	_, err = s.ingestHook(r, hook, f.WithKey(hook.APIKey))
	msg := ""
	if err != nil {
		msg = err.Error()
		var fe *telephony.FieldError
		var ie *calltracking.InvalidError
		if !errors.As(err, &fe) && !errors.As(err, &ie) && !errors.Is(err, telephony.ErrSignature) {
			s.fail(w, r, err)
			return
		}
	}
	if err := calltracking.MarkReplayed(r.Context(), s.db, id, n, msg); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"replayed": msg == "", "error": msg})
}

func (s *Server) createLead(w http.ResponseWriter, r *http.Request, id int64) {
	var in leads.Input
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, err)
		return
	}
	l, err := leads.Create(r.Context(), s.db, id, in, "api", time.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, l)
}

func (s *Server) listLeads(w http.ResponseWriter, r *http.Request, id int64) {
	q, from, to, ok := s.queryRange(w, r, id)
	if !ok {
		return
	}
	limit, apiErr := pageSize(q.Get("limit"))
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	query := leads.Query{From: from, To: to, Type: strings.ToLower(q.Get("type")), Limit: limit, Cursor: q.Get("cursor")}
	if query.Session, ok = boolParam(w, q, "session"); !ok {
		return
	}
	ls, next, err := leads.List(r.Context(), s.db, id, query)
	if errors.Is(err, leads.ErrBadCursor) {
		writeError(w, badRequest("cursor", "%v", err))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writePage(w, "leads", ls, next)
}
