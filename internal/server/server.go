// Package server wires Throughline's HTTP interface: routes, authentication,
// JSON errors, request logging and metrics. Handlers stay thin; the domain
// packages own the rules and the SQL.
package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/throughline/throughline/internal/secrets"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/imports"
	"github.com/throughline/throughline/internal/leads"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/retailcrm"
	"github.com/throughline/throughline/internal/retailsync"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/tracker"
	"github.com/throughline/throughline/internal/web"
	"github.com/throughline/throughline/internal/webhooks"
)

// DefaultMaxBody caps request bodies on routes that do not set their own limit.
const DefaultMaxBody = 1 << 20

// Config is what the server needs besides the database.
type Config struct {
	Version string
	Logger  *slog.Logger
	// MaxBody caps JSON API request bodies; zero means DefaultMaxBody.
	MaxBody int64
	// BodyTimeouts bound the time request bodies may take to arrive.
	BodyTimeouts BodyTimeouts

	// Collector tunes the hit collector's group commit.
	Collector tracker.Config
	// CollectRate limits hits per second from one client address (with
	// bursts of CollectBurst); zero means no limit.
	CollectRate  float64
	CollectBurst int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix

	// Imports configures CRM uploads and import tasks.
	Imports ImportsConfig

	// PublicURL is where providers reach this server (https://tl.shop.ru):
	// behind a reverse proxy it is how the URLs providers sign are rebuilt.
	PublicURL string

	// Heartbeat is how often t.js renews a number lease (a minute when 0).
	Heartbeat time.Duration

	// MatchPoll is how often queued orders are matched (2 s when 0).
	MatchPoll time.Duration

	// WebhookPoll is how often due order webhook deliveries are looked for
	// (5 s when 0).
	WebhookPoll time.Duration

	// Secrets seals the credentials the server stores (CRM API keys). serve
	// passes the configured key; nil means a random key for this process
	// only (tests).
	Secrets *secrets.Box
}

// ImportsConfig configures CRM uploads (the Metrica-compatible API) and the
// import tasks that fetch feeds.
type ImportsConfig struct {
	// AllowPrivateFeeds lets feed URLs reach loopback and private addresses.
	AllowPrivateFeeds bool
	// MaxBytes caps one upload or feed; zero means imports.DefaultMaxFeedBytes.
	MaxBytes int64
	// TempDir holds uploads' spool files (the system's temporary directory when empty).
	TempDir string
	// Poll is how often the scheduler looks for due tasks (a minute when zero).
	Poll time.Duration
	// RetailCRM are the base options of retailcrm tasks' API clients
	// (tests shorten the retries); zero values are the client's defaults.
	RetailCRM retailcrm.Options
}

// Server is Throughline's HTTP handler.
type Server struct {
	db        *store.DB
	log       *slog.Logger
	cfg       Config
	mux       *http.ServeMux
	metrics   *metrics
	quiet     map[string]bool   // route patterns logged at debug level only
	guards    map[string]string // how each route checks who asks: "token", "cdp", "web"; "" for public routes
	counters  *counter.Cache
	collector *tracker.Collector
	limiter   *ipLimiter
	leases    *ipLimiter // /numbers/lease: a page asks once per visit

	tasks     *imports.Tasks
	fetcher   *imports.Fetcher
	scheduler *imports.Scheduler
	stopSched context.CancelFunc
	schedDone chan struct{}

	matcher     *matching.Worker
	matcherDone chan struct{}

	sender     *webhooks.Sender
	senderDone chan struct{}

	retailSync     *retailsync.Worker
	retailSyncDone chan struct{}

	web *web.Cabinet // the cabinet's pages, on the same router
}

// New builds the server and its routes.
func New(db *store.DB, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	cfg.BodyTimeouts = cfg.BodyTimeouts.withDefaults()
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = calltracking.HeartbeatSeconds * time.Second
	}
	if cfg.Secrets == nil {
		key := make([]byte, 32)
		rand.Read(key)
		cfg.Secrets, _ = secrets.New(key)
	}
	s := &Server{
		db:      db,
		log:     cfg.Logger,
		cfg:     cfg,
		mux:     http.NewServeMux(),
		metrics: newMetrics(db, cfg.Version),
		quiet:   map[string]bool{},
		guards:  map[string]string{},
		// Counters change rarely; another process's change shows within a minute.
		counters: counter.NewCache(db, time.Minute),
		limiter:  newIPLimiter(cfg.CollectRate, cfg.CollectBurst),
		// A page asks for a number once per visit: one a second per address
		// (bursts of 30) serves an office behind one address and keeps a
		// script from draining a pool.
		leases: newIPLimiter(1, 30),
	}
	cfg.Collector.Logger = cmp.Or(cfg.Collector.Logger, cfg.Logger)
	cfg.Collector.Registerer = s.metrics.reg
	s.collector = tracker.NewCollector(db, cfg.Collector)
	if s.cfg.Imports.MaxBytes <= 0 {
		s.cfg.Imports.MaxBytes = imports.DefaultMaxFeedBytes
	}
	s.tasks = &imports.Tasks{DB: db, AllowPrivate: cfg.Imports.AllowPrivateFeeds, Box: cfg.Secrets, RetailOptions: cfg.Imports.RetailCRM, Log: cfg.Logger}
	s.fetcher = imports.NewFetcher(imports.FetcherOptions{AllowPrivate: cfg.Imports.AllowPrivateFeeds, MaxBytes: s.cfg.Imports.MaxBytes})
	s.scheduler = &imports.Scheduler{Tasks: s.tasks, Fetcher: s.fetcher, Log: cfg.Logger, TempDir: cfg.Imports.TempDir, Poll: cfg.Imports.Poll}
	s.scheduler.Init()
	var schedCtx context.Context
	schedCtx, s.stopSched = context.WithCancel(context.Background())
	s.schedDone = make(chan struct{})
	go func() {
		defer close(s.schedDone)
		s.scheduler.Run(schedCtx)
	}()
	s.matcher = matching.NewWorker(db, cfg.Logger, cfg.MatchPoll)
	s.matcher.Then = s.refreshRollups
	s.matcherDone = make(chan struct{})
	go func() {
		defer close(s.matcherDone)
		s.matcher.Run(schedCtx)
	}()
	s.sender = &webhooks.Sender{DB: db, Log: cfg.Logger, Guard: webhooks.Guard{AllowPrivate: cfg.Imports.AllowPrivateFeeds}, Box: cfg.Secrets}
	s.senderDone = make(chan struct{})
	go func() {
		defer close(s.senderDone)
		s.sender.Run(schedCtx, cfg.WebhookPoll)
	}()
	s.retailSync = &retailsync.Worker{DB: db, Box: cfg.Secrets, Log: cfg.Logger, Guard: webhooks.Guard{AllowPrivate: cfg.Imports.AllowPrivateFeeds}}
	s.retailSyncDone = make(chan struct{})
	go func() {
		defer close(s.retailSyncDone)
		s.retailSync.Run(schedCtx, 0)
	}()
	cab, err := web.New(db, s.counters, web.Config{Logger: cfg.Logger, PublicURL: cfg.PublicURL, Version: cfg.Version,
		ClientIP: func(r *http.Request) netip.Addr { return clientIP(r, cfg.TrustedProxies) }, KickMatcher: s.matcher.Kick})
	if err != nil {
		// The pages are embedded: only a broken build gets here, and it
		// must not start.
		panic(err)
	}
	s.web = cab
	s.routes()
	return s
}

// Close stops the import scheduler (a run in progress is cancelled and
// rolled back, and logged as failed), the matching worker and the collector, after committing the
// hits it holds. Call it after the HTTP server has stopped taking requests,
// before closing the database.
func (s *Server) Close(ctx context.Context) error {
	s.stopSched()
	for _, done := range []chan struct{}{s.schedDone, s.matcherDone, s.senderDone, s.retailSyncDone} {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	return s.collector.Close(ctx)
}

func (s *Server) routes() {
	// The cabinet: the pages people use in a browser.
	for _, rt := range s.web.Routes() {
		s.handle(rt.Pattern, rt.Handler.ServeHTTP)
		s.guards[rt.Pattern] = "web"
	}
	s.handleQuiet("GET /healthz", s.healthz)
	s.handleQuiet("GET /metrics", s.metrics.handler().ServeHTTP)
	s.handle("GET /api/v1/openapi.json", s.openAPI)

	s.personAPI("POST /api/v1/counters", true, s.createCounter)
	s.personAPI("GET /api/v1/counters", false, s.listCounters)
	s.counterAPI("GET /api/v1/counters/{id}", s.getCounter)
	s.counterAPI("PATCH /api/v1/counters/{id}", s.patchCounter)
	s.counterAPI("GET /api/v1/counters/{id}/tokens", s.listTokens)
	s.counterAPI("POST /api/v1/counters/{id}/tokens", s.createToken)
	s.counterAPI("DELETE /api/v1/counters/{id}/tokens/{token}", s.revokeToken)

	// The visit tracker: the script, and the collector it sends hits to.
	s.handle("GET /t.js", tracker.ServeScript)
	small := s.cfg.BodyTimeouts.Small
	s.handleLimited("POST /collect", tracker.MaxBodyBytes, small, s.collect, true)
	s.handleLimited("GET /collect.gif", tracker.MaxBodyBytes, small, s.collectGIF, true)
	s.handleQuiet("OPTIONS /collect", s.collectPreflight)
	s.counterAPI("GET /api/v1/counters/{id}/sessions", s.listSessions)
	s.counterAPI("GET /api/v1/counters/{id}/sessions/{sid}", s.getSession)

	// CRM data: orders, contacts, the status mapping, and how they got here.
	s.counterAPI("GET /api/v1/counters/{id}/orders", s.listOrders)
	s.counterAPI("GET /api/v1/counters/{id}/orders/{order}", s.getOrder)
	s.counterAPI("GET /api/v1/counters/{id}/contacts/{contact}", s.getContact)
	s.counterAPI("GET /api/v1/counters/{id}/order-statuses", s.getOrderStatuses)
	s.counterAPI("PUT /api/v1/counters/{id}/order-statuses", s.putOrderStatuses)
	s.counterAPI("GET /api/v1/counters/{id}/import-log", s.importLog)
	s.counterAPI("GET /api/v1/counters/{id}/imports", s.listTasks)
	s.counterAPI("POST /api/v1/counters/{id}/imports", s.createTask)
	s.counterAPI("GET /api/v1/counters/{id}/imports/{task}", s.getTask)
	s.counterAPI("PATCH /api/v1/counters/{id}/imports/{task}", s.updateTask)
	s.counterAPI("DELETE /api/v1/counters/{id}/imports/{task}", s.deleteTask)
	s.counterAPI("POST /api/v1/counters/{id}/imports/{task}/run", s.runTask)
	s.counterAPI("GET /api/v1/counters/{id}/imports/{task}/runs", s.listTaskRuns)
	s.counterAPI("GET /api/v1/counters/{id}/imports/{task}/statuses", s.taskStatuses)
	s.counterAPI("POST /api/v1/counters/{id}/imports/{task}/statuses", s.taskStatuses)

	// Yandex Metrica's CRM upload API, for uploaders written for Metrica.
	s.cdpRoutes()

	// The end-to-end report, and how each order was matched.
	s.reportRoutes()

	// Call tracking and leads: what t.js asks for, what telephony providers
	// report, and the API over both.
	for path, h := range map[string]http.HandlerFunc{
		"/numbers/lease": s.numberLease, "/numbers/heartbeat": s.numberHeartbeat, "/numbers/release": s.numberRelease,
		"/leads/collect": s.siteLead, "/forms/capture": s.formCapture,
	} {
		s.handleLimited("POST "+path, tracker.MaxBodyBytes, small, h, true)
		s.handleQuiet("OPTIONS "+path, s.collectPreflight)
	}
	for _, m := range []string{"GET", "POST"} {
		s.handleLimited(m+" /hooks/calls/{provider}/{token}", maxHookBody, small, s.callHook, false)
		s.handleLimited(m+" /hooks/calls/{provider}/{token}/{rest...}", maxHookBody, small, s.callHook, false)
	}
	s.counterAPI("GET /api/v1/counters/{id}/calls", s.listCalls)
	s.counterAPI("GET /api/v1/counters/{id}/calls/{call}", s.getCall)
	s.counterAPI("GET /api/v1/counters/{id}/pools", s.listPools)
	s.counterAPI("POST /api/v1/counters/{id}/pools", s.createPool)
	s.counterAPI("GET /api/v1/counters/{id}/pools/{pool}", s.getPool)
	s.counterAPI("PATCH /api/v1/counters/{id}/pools/{pool}", s.updatePool)
	s.counterAPI("DELETE /api/v1/counters/{id}/pools/{pool}", s.deletePool)
	s.counterAPI("GET /api/v1/counters/{id}/numbers", s.listNumbers)
	s.counterAPI("POST /api/v1/counters/{id}/numbers", s.saveNumber)
	s.counterAPI("PATCH /api/v1/counters/{id}/numbers/{number}", s.saveNumber)
	s.counterAPI("DELETE /api/v1/counters/{id}/numbers/{number}", s.deleteNumber)
	s.counterAPI("GET /api/v1/counters/{id}/numbers/{number}/leases", s.numberLeases)
	s.counterAPI("GET /api/v1/counters/{id}/hooks", s.listHooks)
	s.counterAPI("POST /api/v1/counters/{id}/hooks", s.createHook)
	s.counterAPI("DELETE /api/v1/counters/{id}/hooks/{hook}", s.revokeHook)
	s.counterAPI("GET /api/v1/counters/{id}/hook-failures", s.listFailures)
	s.counterAPI("POST /api/v1/counters/{id}/hook-failures/{failure}/replay", s.replayFailure)
	s.counterAPI("GET /api/v1/counters/{id}/leads", s.listLeads)
	s.counterAPI("POST /api/v1/counters/{id}/leads", s.createLead)

	// Anything else under /api/ answers in JSON, as the API promises.
	s.handle("/api/", s.apiFallback)
	s.costRoutes()
	s.webhookRoutes()
	s.retailSyncRoutes()
}

// handle registers a route with the JSON API's body limits.
func (s *Server) handle(pattern string, h http.HandlerFunc) {
	s.handleLimited(pattern, s.cfg.MaxBody, s.cfg.BodyTimeouts.API, h, false)
}

// handleLimited registers a route whose request body may be up to limit
// bytes, arriving within the time given (see BodyTimeouts); quiet routes
// are logged at debug level (see handleQuiet).
func (s *Server) handleLimited(pattern string, limit int64, within time.Duration, h http.HandlerFunc, quiet bool) {
	s.quiet[pattern] = quiet
	limited := http.MaxBytesHandler(h, limit)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if b, ok := r.Body.(*timedBody); ok { // set by ServeHTTP
			b.allow(within)
		}
		limited.ServeHTTP(w, r)
	})
}

// handleQuiet registers a route polled by machines (probes, scrapers) whose
// requests are logged at debug level so they do not drown the log.
func (s *Server) handleQuiet(pattern string, h http.HandlerFunc) {
	s.handleLimited(pattern, s.cfg.MaxBody, s.cfg.BodyTimeouts.API, h, true)
}

// counterAPI registers a route under /api/v1/counters/{id}/… that requires a
// token of that counter. This is the tenant wall, in one place: the handler
// runs only when the token is valid and acts for the counter in the path, and
// receives that counter's id. A token of another counter gets 404, not 403,
// so it cannot learn which counter ids exist.
func (s *Server) counterAPI(pattern string, h func(w http.ResponseWriter, r *http.Request, counterID int64)) {
	s.guards[pattern] = "token"
	s.handle(pattern, func(w http.ResponseWriter, r *http.Request) {
		tokenCounter, err := s.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		id, perr := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if perr != nil || id != tokenCounter {
			writeError(w, errNotFound)
			return
		}
		h(w, r, id)
	})
}

// authenticate returns the counter the request's token acts for. The token
// comes as "Authorization: Bearer <token>" or, as Metrica's API accepts,
// "Authorization: OAuth <token>".
func (s *Server) authenticate(r *http.Request) (int64, error) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth")) {
		return 0, errUnauthorized
	}
	id, err := counter.Authenticate(r.Context(), s.db, strings.TrimSpace(tok))
	if errors.Is(err, counter.ErrUnauthorized) {
		return 0, errUnauthorized
	}
	return id, err
}

// fail answers with err: an *Error as it is, a domain error mapped to its
// status, anything else as a logged 500 that reveals nothing.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var apiErr *Error
	var invalid *counter.InvalidError
	var fileErr *crm.FileError
	var taskErr *imports.InvalidError
	var callErr *calltracking.InvalidError
	var leadErr *leads.InvalidError
	switch {
	case errors.As(err, &callErr):
		writeError(w, badRequest(callErr.Field, "%s", callErr.Error()))
	case errors.As(err, &leadErr):
		writeError(w, badRequest(leadErr.Field, "%s", leadErr.Error()))
	case errors.As(err, &apiErr):
		if apiErr.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="throughline"`)
		}
		writeError(w, apiErr)
	case errors.As(err, &invalid):
		writeError(w, badRequest(invalid.Field, "%s", invalid.Error()))
	case errors.As(err, &fileErr):
		writeError(w, badRequest(fileErr.Column, "%s", fileErr.Message))
	case errors.As(err, &taskErr):
		writeError(w, badRequest(taskErr.Field, "%s", taskErr.Error()))
	case errors.Is(err, counter.ErrNotFound), errors.Is(err, crm.ErrNotFound), errors.Is(err, imports.ErrNotFound),
		errors.Is(err, calltracking.ErrNotFound), errors.Is(err, leads.ErrNotFound):
		writeError(w, errNotFound)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; there is nobody to answer.
	default:
		s.log.Error("request failed", "method", r.Method, "path", logPath(r), "err", err)
		writeError(w, errInternal)
	}
}

// apiFallback answers unknown API paths with a JSON 404, and known paths
// asked with the wrong method with a JSON 405 listing the allowed ones.
func (s *Server) apiFallback(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/api/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such API endpoint: " + r.URL.Path})
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Message: fmt.Sprintf("%s is not allowed here; use %s", r.Method, strings.Join(allow, ", "))})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		s.log.Warn("health check: database does not answer", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": "down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "database": string(s.db.Dialect())})
}

// ServeHTTP runs a request through the middleware: panic recovery, then
// a deadline for the body, then routing, then access log and metrics keyed
// by the matched route pattern.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	// Every body has the short budget unless its route allows more
	// (handleLimited); so does a request no route takes.
	body := timeBody(rec, r, s.cfg.BodyTimeouts.Small)
	defer body.finish(rec, s.cfg.BodyTimeouts.Small)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", logPath(r),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.wrote {
				writeError(rec, errInternal)
			}
		}
		s.observe(r, rec, time.Since(start))
	}()
	s.mux.ServeHTTP(rec, r)
}

// logPath is the request's path for the log: a telephony hook's token —
// which authenticates the provider, and is the only proof a generic hook
// without a secret has — is hidden.
func logPath(r *http.Request) string {
	// /hooks/calls/{provider}/{token}[/…], matched or not (a wrong method).
	parts := strings.SplitN(r.URL.Path, "/", 6)
	if len(parts) >= 5 && parts[1] == "hooks" && parts[2] == "calls" && parts[4] != "" {
		parts[4] = "xxxxx"
		return strings.Join(parts, "/")
	}
	return r.URL.Path
}

func (s *Server) observe(r *http.Request, rec *statusRecorder, d time.Duration) {
	route := r.Pattern // set by the mux on this same request
	if route == "" {
		route = "unmatched"
	}
	s.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
	s.metrics.duration.WithLabelValues(route, r.Method).Observe(d.Seconds())

	level := slog.LevelInfo
	switch {
	case rec.status >= 500:
		level = slog.LevelError
	case s.quiet[r.Pattern]:
		level = slog.LevelDebug
	}
	s.log.LogAttrs(r.Context(), level, "request",
		slog.String("method", r.Method),
		slog.String("path", logPath(r)),
		slog.String("route", route),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Float64("ms", float64(d.Microseconds())/1000),
	)
}

// statusRecorder remembers the status and size of a response. Unwrap lets
// http.ResponseController reach the underlying writer's Flush and deadlines.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
