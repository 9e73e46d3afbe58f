package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/net/netutil"
)

// What keeps slow and idle clients from holding the server. A connection
// is held while its client sends headers (at most headerTimeout), sends a
// body (at most its route's BodyTimeouts), waits for the answer, and then
// idles between requests (at most idleTimeout); and at most maxConns are
// held at once. The cap keeps a flood of connections from exhausting the
// process's file descriptors; the deadlines keep the flood from holding the
// cap: a slot held by a stalled client is free again within seconds.
const (
	headerTimeout = 10 * time.Second
	idleTimeout   = time.Minute
	// maxConns is high enough for a busy site's browsers talking to the
	// collector directly (a browser keeps one connection per page, idle
	// between hits); behind a reverse proxy far fewer are needed. It is
	// lowered to fit the process's open-file limit (see connLimit).
	maxConns = 10_000
	// fdReserve are the descriptors kept for everything but clients: the
	// database's connections and files, spooled uploads, the listeners.
	fdReserve = 256
)

// BodyTimeouts bound the time a request's body may take to arrive, by the
// kind of route, from the moment its headers are read. A client that sends
// it slower, or not at all, is answered 408 and disconnected. Zero values
// are the defaults.
type BodyTimeouts struct {
	// Small bounds hits, leads, number leases, form captures and call
	// hooks — at most a few kilobytes, from browsers and providers' servers
	// — and any route's body that its handler left unread. 10 s when 0.
	Small time.Duration
	// API bounds JSON API requests (at most Config.MaxBody). A minute when 0.
	API time.Duration
	// Upload bounds CRM uploads (Metrica's CDP API) and cost files, up to
	// --max-import-size. 30 minutes when 0.
	Upload time.Duration
}

func (t BodyTimeouts) withDefaults() BodyTimeouts {
	if t.Small <= 0 {
		t.Small = 10 * time.Second
	}
	if t.API <= 0 {
		t.API = time.Minute
	}
	if t.Upload <= 0 {
		t.Upload = 30 * time.Minute
	}
	return t
}

// NewHTTPServer returns the http.Server that serves h: headers must arrive
// within 10 s and idle connections are closed after a minute. (The Server
// handler bounds each route's body itself; see BodyTimeouts.) Serve it on
// a listener from LimitConns.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// LimitConns caps the connections accepted from ln that are open at once
// (maxConns, or fewer to fit the open-file limit). Past the cap, new
// connections wait in the kernel's listen queue until one closes.
func LimitConns(ln net.Listener) net.Listener {
	return netutil.LimitListener(ln, connLimit())
}

// connLimit is maxConns, lowered to leave fdReserve of the process's open
// file limit to the rest of the server: a cap above it would let clients
// take the descriptors the database needs. (Go raises the soft limit to
// the hard one at start.)
func connLimit() int {
	fds, ok := openFileLimit()
	if !ok || fds >= maxConns+fdReserve {
		return maxConns
	}
	return max(int(fds)-fdReserve, 64)
}

// timedBody is a request body that must arrive by a deadline: a read
// deadline on the connection, set when the request comes in. Once the body
// has been read to its end, net/http lifts it (it reads on, without a
// deadline, to notice a client that hangs up), so a handler may take its
// time to answer.
type timedBody struct {
	io.ReadCloser
	rc     *http.ResponseController
	start  time.Time
	within time.Duration // the budget from start
	done   bool          // read to its end, or failed
	late   bool          // cut at the deadline
}

// timeBody bounds r's body to arrive within d. It returns nil, and leaves
// r as it is, when r has no body or w cannot take deadlines (a test's
// recorder).
func timeBody(w http.ResponseWriter, r *http.Request, d time.Duration) *timedBody {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b := &timedBody{ReadCloser: r.Body, rc: http.NewResponseController(w), start: time.Now(), within: d}
	if b.rc.SetReadDeadline(b.start.Add(d)) != nil {
		return nil
	}
	r.Body = b
	return b
}

// allow gives the body d from the request's start instead: the route's own
// budget.
func (b *timedBody) allow(d time.Duration) {
	if b.done || d == b.within {
		return
	}
	b.within = d
	b.rc.SetReadDeadline(b.start.Add(d))
}

// finish runs when the handler has returned. A body that did not arrive in
// time is answered 408 unless the handler answered: it may only have seen
// its context cancelled (net/http cancels it when a read fails) and left.
// net/http then reads and drops what is left of a body (up to 256 KB)
// before it answers: that gets at most d more, so a client that stalls a
// body its handler did not want — an upload without a token — is not kept
// for the upload's whole budget.
func (b *timedBody) finish(rec *statusRecorder, d time.Duration) {
	switch {
	case b == nil:
	case b.late:
		if !rec.wrote {
			writeError(rec, (&BodyTimeoutError{b.within}).answer())
		}
	case !b.done:
		if until := time.Now().Add(d); until.Before(b.start.Add(b.within)) {
			b.rc.SetReadDeadline(until)
		}
	}
}

func (b *timedBody) Read(p []byte) (int, error) {
	if b.late {
		return 0, &BodyTimeoutError{Within: b.within}
	}
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.done, b.late = true, true
		return n, &BodyTimeoutError{Within: b.within}
	default:
		b.done = true
	}
	return n, err
}

// BodyTimeoutError is a request body that did not arrive within its route's
// budget (BodyTimeouts).
type BodyTimeoutError struct{ Within time.Duration }

func (e *BodyTimeoutError) Error() string {
	return fmt.Sprintf("the request body did not arrive within %s", e.Within)
}

func (e *BodyTimeoutError) answer() *Error {
	return &Error{Status: http.StatusRequestTimeout, Code: "request_timeout", Message: e.Error()}
}

// bodyTimeout answers a body that did not arrive in time, if err says so.
func bodyTimeout(err error) (*Error, bool) {
	var te *BodyTimeoutError
	if !errors.As(err, &te) {
		return nil, false
	}
	return te.answer(), true
}
