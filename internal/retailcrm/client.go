// Package retailcrm is Throughline's own small client of the RetailCRM
// (Simla.com) API v5: the subset the order import and the two-way
// integration use — credentials, settings (the account's time zone),
// stores, statuses and groups, custom fields, orders (list, get, create,
// edit, history), customers (find by phone or e-mail, create) and users.
//
// It sends the X-API-KEY header, bracket filters on GET and form-encoded
// JSON entities on POST; walks pages to the end; keeps every account under
// its request rate (one limiter per base URL, shared by all clients in the
// process); retries rate limiting, server errors and network failures with
// exponential backoff; decodes every shape RetailCRM is known to send for
// the same field; and returns *APIError values classified for errors.Is.
//
// The API subset and its traps are described in shared/spec/retailcrm.md
// (§1–10, §13); comments cite its sections. Package fakecrm is a local
// server that follows the same spec, for tests.
package retailcrm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/throughline/throughline/internal/buildinfo"
)

// Defaults (spec §1, §2).
const (
	DefaultRequestsPerSecond = 8 // the API allows 10; stay under it (spec §2 design)
	MaxRequestsPerSecond     = 10
	DefaultMaxAttempts       = 8
	DefaultBaseBackoff       = 100 * time.Millisecond // 1 s / 10 rps, as the official client
	DefaultMaxBackoff        = 30 * time.Second
	DefaultMaxRetryTime      = 2 * time.Minute
	DefaultRequestTimeout    = 60 * time.Second // the official Go client's
	PageLimit                = 100              // the largest page every list method allows
	maxBodyBytes             = 64 << 20
	settingsTTL              = 24 * time.Hour // spec §8.5: re-read settings daily
)

// Options configure a Client; zero values mean the defaults.
type Options struct {
	// HTTPClient sends the requests. When the account URL comes from a user,
	// pass one whose dialer refuses private addresses, e.g.
	// webhooks.Guard{AllowPrivate: …}.Client(60 * time.Second) (the check of
	// imports.PublicAddr after name resolution). Default: a plain client;
	// each attempt is bounded by RequestTimeout either way.
	HTTPClient *http.Client
	// AllowHTTP accepts http:// base URLs (local fakes in tests). RetailCRM
	// itself is HTTPS only.
	AllowHTTP bool
	// Location is the account's time zone. Nil: read from /settings when
	// first needed and cached per account for a day.
	Location *time.Location
	// RequestsPerSecond for the account, shared by every Client of the same
	// base URL in the process (the first one sets it). Default 8, at most
	// 10; negative means unlimited (benchmarks of our own processing).
	RequestsPerSecond float64
	// Limiter, if set, is also waited on before every request: e.g. one
	// process-wide limiter per outgoing IP, as the documented limit is per IP.
	Limiter        *rate.Limiter
	MaxAttempts    int           // per request, the first included; default 8
	BaseBackoff    time.Duration // first retry delay, doubled each time; default 100 ms
	MaxBackoff     time.Duration // cap of one delay; default 30 s
	MaxRetryTime   time.Duration // cap of all attempts and delays of one request; default 2 min
	RequestTimeout time.Duration // one attempt; default 60 s
}

// Client talks to one RetailCRM account with one API key. It is safe for
// concurrent use.
type Client struct {
	base    string // "https://demo.retailcrm.ru", no trailing slash
	key     string
	hc      *http.Client
	acct    *account
	extra   *rate.Limiter
	o       Options
	sleepFn func(ctx context.Context, d time.Duration) error // tests
}

// account is what all clients of one base URL share: the rate limiter and
// the time zone.
type account struct {
	lim *rate.Limiter

	mu       sync.Mutex
	loc      *time.Location
	currency string // settings.default_currency; "" when the account gives none
	locAt    time.Time
}

var accounts sync.Map // normalised base URL → *account

func accountFor(base string, rps float64) *account {
	if a, ok := accounts.Load(base); ok {
		return a.(*account)
	}
	limit := rate.Limit(rps)
	if rps < 0 {
		limit = rate.Inf
	}
	// Burst 1: requests are spaced evenly, so no sliding one-second window
	// sees more than rps of them (a bigger burst would let 2×rps through in
	// the first second, which the API answers with 503).
	a, _ := accounts.LoadOrStore(base, &account{lim: rate.NewLimiter(limit, 1)})
	return a.(*account)
}

// NormalizeBaseURL turns what a user typed into the account's base URL:
// scheme added if missing, trailing "/" and a pasted "/api/v5" or "/api"
// removed, host lower-cased. It requires https unless allowHTTP.
func NormalizeBaseURL(raw string, allowHTTP bool) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("retailcrm: the account URL is empty")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("retailcrm: %q is not an account URL like https://demo.retailcrm.ru", raw)
	}
	if u.Scheme != "https" && !(allowHTTP && u.Scheme == "http") {
		return "", fmt.Errorf("retailcrm: the account URL must start with https:// (got %q)", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("retailcrm: the account URL must have no user, query or fragment (got %q)", raw)
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/api/v5")
	p = strings.TrimSuffix(p, "/api")
	return u.Scheme + "://" + strings.ToLower(u.Host) + strings.TrimRight(p, "/"), nil
}

// New returns a client of the account at baseURL with apiKey.
func New(baseURL, apiKey string, o Options) (*Client, error) {
	base, err := NormalizeBaseURL(baseURL, o.AllowHTTP)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(apiKey) == "" {
		return nil, fmt.Errorf("retailcrm: %w", ErrMissingKey)
	}
	if o.RequestsPerSecond == 0 {
		o.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if o.RequestsPerSecond > MaxRequestsPerSecond {
		o.RequestsPerSecond = MaxRequestsPerSecond
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = DefaultBaseBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxRetryTime <= 0 {
		o.MaxRetryTime = DefaultMaxRetryTime
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{
		base: base, key: strings.TrimSpace(apiKey), hc: hc,
		acct: accountFor(base, o.RequestsPerSecond), extra: o.Limiter, o: o,
		sleepFn: sleep,
	}, nil
}

// BaseURL is the normalised account URL.
func (c *Client) BaseURL() string { return c.base }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// call is one API request.
type call struct {
	method string // GET or POST
	path   string // "/api/v5/orders"
	query  url.Values
	form   url.Values
	// safe: repeating the request cannot do anything twice (reads, edits
	// that set fields). Unsafe requests (creates) are retried only when the
	// API certainly did not apply them: rate limited, or the connection was
	// never made.
	safe bool
}

// envelope is what every JSON answer has.
type envelope struct {
	Success  *bool      `json:"success"`
	ErrorMsg string     `json:"errorMsg"`
	Errors   FlexErrors `json:"errors"`
}

// do sends c, retrying as spec §2 says, and decodes a successful answer
// into out.
func (c *Client) do(ctx context.Context, k call, out any) error {
	endpoint := k.method + " " + k.path
	started := time.Now()
	var body string
	if k.form != nil {
		body = k.form.Encode()
	}
	for attempt := 1; ; attempt++ {
		status, data, retryAfter, err := c.once(ctx, k, body)
		var apiErr *APIError
		retry := false
		switch {
		case err != nil:
			if ctx.Err() != nil { // the caller gave up: not the API's failure
				return fmt.Errorf("retailcrm %s: %w", endpoint, ctx.Err())
			}
			apiErr = &APIError{Endpoint: endpoint, Class: ErrUnavailable, Err: err}
			retry = k.safe || notSent(err)
			apiErr.MaybeApplied = !retry
		case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
			// The rate limiter's answer, often an nginx HTML page: not applied.
			apiErr = &APIError{Endpoint: endpoint, HTTPStatus: status, Class: ErrRateLimited, Message: http.StatusText(status)}
			retry = true
		case status >= 500:
			apiErr = errorFromBody(endpoint, status, data)
			if !errors.Is(apiErr.Class, ErrUnavailable) { // a JSON error body with a known class
				apiErr.Class = ErrUnavailable
			}
			retry = k.safe
			apiErr.MaybeApplied = !k.safe
		default:
			if e := decodeAnswer(endpoint, status, data, out); e != nil {
				e.Attempts = attempt
				return e
			}
			return nil
		}
		apiErr.Attempts = attempt
		if !retry || attempt >= c.o.MaxAttempts {
			return apiErr
		}
		delay := c.o.BaseBackoff << (attempt - 1)
		if delay > c.o.MaxBackoff || delay <= 0 {
			delay = c.o.MaxBackoff
		}
		if retryAfter > delay {
			delay = retryAfter
		}
		if time.Since(started)+delay > c.o.MaxRetryTime {
			return apiErr
		}
		if err := c.sleepFn(ctx, delay); err != nil {
			return fmt.Errorf("retailcrm %s: %w", endpoint, err)
		}
	}
}

// once makes one attempt. err is a failure to get an answer at all.
func (c *Client) once(ctx context.Context, k call, body string) (status int, data []byte, retryAfter time.Duration, err error) {
	if err := c.acct.lim.Wait(ctx); err != nil {
		return 0, nil, 0, err
	}
	if c.extra != nil {
		if err := c.extra.Wait(ctx); err != nil {
			return 0, nil, 0, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.RequestTimeout)
	defer cancel()
	u := c.base + k.path
	if len(k.query) > 0 {
		u += "?" + k.query.Encode()
	}
	var rd io.Reader
	if k.method == http.MethodPost {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, u, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("X-API-KEY", c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Throughline/"+buildinfo.Version())
	if k.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	data, err = io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return 0, nil, 0, fmt.Errorf("reading the answer: %w", err)
	}
	if len(data) > maxBodyBytes {
		return 0, nil, 0, fmt.Errorf("the answer is larger than %d bytes", maxBodyBytes)
	}
	return resp.StatusCode, data, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), nil
}

// notSent reports whether a network error happened before the request
// left: the name did not resolve or the connection was refused. Such a
// request can be repeated even if it creates something.
func notSent(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// parseRetryAfter reads Retry-After: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 || math.IsNaN(n) {
			return 0
		}
		if n > 3600 { // nonsense or a day-long ban: the retry budget decides
			n = 3600
		}
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), time.Hour)
	}
	return 0
}

// decodeAnswer reads a non-5xx answer: the error it carries, or out.
func decodeAnswer(endpoint string, status int, data []byte, out any) *APIError {
	if status >= 400 || !looksJSON(data) {
		return errorFromBody(endpoint, status, data)
	}
	// Answers are decoded once: the out types embed the envelope, so a
	// page of orders is not read twice just to see "success".
	var env *envelope
	if a, ok := out.(answerer); ok {
		if err := json.Unmarshal(data, out); err != nil {
			// An error body need not fit the success shape: read it as one.
			var probe envelope
			if json.Unmarshal(data, &probe) == nil && probe.Success != nil && !*probe.Success {
				return errorFromBody(endpoint, status, data)
			}
			return &APIError{Endpoint: endpoint, HTTPStatus: status, Class: ErrBadResponse, Message: "unexpected answer: " + err.Error(), Err: err}
		}
		env = a.answer()
	} else {
		env = &envelope{}
		if err := json.Unmarshal(data, env); err != nil {
			return &APIError{Endpoint: endpoint, HTTPStatus: status, Class: ErrBadResponse, Message: "the answer is not valid JSON", Err: err}
		}
		if out != nil && (env.Success == nil || *env.Success) {
			if err := json.Unmarshal(data, out); err != nil {
				return &APIError{Endpoint: endpoint, HTTPStatus: status, Class: ErrBadResponse, Message: "unexpected answer: " + err.Error(), Err: err}
			}
		}
	}
	if env.Success != nil && !*env.Success {
		return errorFromBody(endpoint, status, data)
	}
	return nil
}

// answerer is an answer type that embeds the envelope.
type answerer interface{ answer() *envelope }

func (e *envelope) answer() *envelope { return e }

func looksJSON(data []byte) bool {
	data = bytes.TrimSpace(data)
	return len(data) > 0 && (data[0] == '{' || data[0] == '[')
}

func looksHTML(data []byte) bool {
	data = bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	return len(data) > 0 && data[0] == '<'
}

// errorFromBody classifies an error answer. An HTML body (outside 5xx and
// 429, where it is a proxy's page) means the account does not exist (§4.1).
func errorFromBody(endpoint string, status int, data []byte) *APIError {
	e := &APIError{Endpoint: endpoint, HTTPStatus: status}
	switch {
	case looksHTML(data):
		e.Class = ErrAccountNotFound
		if status >= 500 {
			e.Class = ErrUnavailable
		}
		e.Message = e.Class.Error()
		return e
	case !looksJSON(data):
		e.Class = classify(status, "")
		if e.Class == ErrAPI || status < 400 {
			e.Class = ErrBadResponse
		}
		e.Message = strings.TrimSpace(string(truncate(data, 200)))
		if e.Message == "" {
			e.Message = "empty answer"
		}
		return e
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		e.Class, e.Message, e.Err = ErrBadResponse, "the answer is not valid JSON", err
		return e
	}
	e.Message, e.Errors = env.ErrorMsg, env.Errors
	e.Class = classify(status, env.ErrorMsg)
	return e
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Location returns the account's time zone: Options.Location, or
// settings.timezone from /settings (cached per account for a day).
func (c *Client) Location(ctx context.Context) (*time.Location, error) {
	if c.o.Location != nil {
		return c.o.Location, nil
	}
	a := c.acct
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := c.readSettings(ctx); err != nil {
		return nil, err
	}
	return a.loc, nil
}

// DefaultCurrency returns the account's settings.default_currency (spec
// §8.5), upper-cased, "" when the account gives none; read and cached with
// the time zone.
func (c *Client) DefaultCurrency(ctx context.Context) (string, error) {
	a := c.acct
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := c.readSettings(ctx); err != nil {
		return "", err
	}
	return a.currency, nil
}

// readSettings reads /settings into the account's cache unless it is
// fresh; the caller holds a.mu.
func (c *Client) readSettings(ctx context.Context) error {
	a := c.acct
	if a.loc != nil && time.Since(a.locAt) < settingsTTL {
		return nil
	}
	s, err := c.Settings(ctx)
	if err != nil {
		if a.loc != nil { // keep the old settings rather than fail a whole sync
			return nil
		}
		return fmt.Errorf("retailcrm: reading the account's time zone: %w", err)
	}
	if s.Timezone == "" {
		return fmt.Errorf("retailcrm: /settings has no timezone")
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		return fmt.Errorf("retailcrm: the account's time zone %q: %w", s.Timezone, err)
	}
	a.loc, a.currency, a.locAt = loc, strings.ToUpper(strings.TrimSpace(s.DefaultCurrency)), time.Now()
	return nil
}
