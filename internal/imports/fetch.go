// Package imports runs CRM imports that Throughline starts itself: import
// tasks that fetch a feed by URL every few hours, their scheduler, and the
// guarded HTTP client that fetches feeds. What a feed's rows mean is
// internal/crm's business; this package gets them there.
package imports

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/throughline/throughline/internal/buildinfo"
)

// DefaultMaxFeedBytes is the largest feed fetched or file imported: Metrica's
// limit on one upload.
const DefaultMaxFeedBytes = 1 << 30

// FetchError is a feed URL that could not be read, with a message that
// says what to fix.
type FetchError struct {
	URL     string // redacted (Redact)
	Message string
	Err     error
}

func (e *FetchError) Error() string { return "feed " + e.URL + ": " + e.Message }
func (e *FetchError) Unwrap() error { return e.Err }

// ErrPrivateAddress means a feed URL leads to a loopback, private or
// link-local address, which an operator has not allowed: a user's URL must
// not reach the server's own network (the database, a cloud metadata service).
var ErrPrivateAddress = errors.New("the address is loopback, private or link-local; the operator can allow such feeds with --allow-private-feeds")

// Fetcher downloads feeds.
type Fetcher struct {
	client   *http.Client
	maxBytes int64
	timeout  time.Duration
}

// FetcherOptions configure a Fetcher; zero values mean the defaults.
type FetcherOptions struct {
	AllowPrivate bool
	MaxBytes     int64         // DefaultMaxFeedBytes
	Timeout      time.Duration // for the whole download: 10 minutes
}

// NewFetcher returns a Fetcher. Unless private addresses are allowed, every
// connection it makes — redirects included — is checked after the name is
// resolved, so a DNS name pointing at 127.0.0.1 is refused like the address.
func NewFetcher(o FetcherOptions) *Fetcher {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxFeedBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	dialer := GuardedDialer(30*time.Second, o.AllowPrivate)
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would hide the real target from the check above
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		MaxIdleConns:          10,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Fetcher{
		client: &http.Client{Transport: transport, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to a %s: URL", req.URL.Scheme)
			}
			return nil
		}},
		maxBytes: o.MaxBytes,
		timeout:  o.Timeout,
	}
}

// GuardedDialer returns a dialer that, unless private addresses are
// allowed, refuses to connect to a non-public one: checked on the address
// actually dialled, after the name is resolved, so a DNS name pointing at
// 127.0.0.1 (or a redirect to one) is refused like the address.
func GuardedDialer(timeout time.Duration, allowPrivate bool) *net.Dialer {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("unexpected address %q", address)
			}
			if !PublicAddr(ip) {
				return ErrPrivateAddress
			}
			return nil
		}
	}
	return dialer
}

// CheckHost refuses a host that is or resolves to a non-public address, so
// a user hears it when saving a URL rather than at the first connection. A
// name that does not resolve now is accepted: each connection checks again
// (GuardedDialer). resolve is net.DefaultResolver's when nil.
func CheckHost(ctx context.Context, host string, resolve func(context.Context, string) ([]netip.Addr, error)) error {
	if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return ErrPrivateAddress
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !PublicAddr(ip) {
			return ErrPrivateAddress
		}
		return nil
	}
	if resolve == nil {
		resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := resolve(ctx, host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if !PublicAddr(a) {
			return ErrPrivateAddress
		}
	}
	return nil
}

// PublicAddr reports whether ip is an address on the public internet.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), ip.IsLoopback(), ip.IsPrivate(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(),
		ip.IsMulticast(), ip.IsUnspecified(), ip.IsInterfaceLocalMulticast():
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64 can reach IPv4 private space
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
}

// CheckURL checks that text is an http(s) URL with a host, and returns it
// parsed. Its errors show the URL redacted.
func CheckURL(text string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("not a URL: %s", WithoutURL(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http:// or https:// URL", Redact(text))
	}
	return u, nil
}

// Redact returns the URL for logs, reports, messages and the API: without
// its password, and with the values of its query hidden — feeds and
// webhook receivers are often protected by a key in the query (?apikey=…),
// which is as secret. It is the one redaction of the URLs users give
// (feeds, import tasks, webhooks): every message that names such a URL
// names it through Redact, and errors that quote a URL themselves go
// through WithoutURL.
func Redact(text string) string {
	u, err := url.Parse(text)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// WithoutURL is an error's text without the URL that net/http's errors
// (*url.Error: `Get "https://…?apikey=…": dial tcp …: connection refused`)
// and url.Parse's quote in full, query keys included: only what went wrong.
func WithoutURL(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// Open starts downloading the feed at rawURL. The body it returns fails
// with an error (never a silent short read) when the download is cut off,
// exceeds the size limit or times out; close it when done.
func (f *Fetcher) Open(ctx context.Context, rawURL string) (io.ReadCloser, error) {
	u, err := CheckURL(rawURL)
	if err != nil {
		return nil, &FetchError{URL: Redact(rawURL), Message: err.Error()}
	}
	shown := Redact(u.String())
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, &FetchError{URL: shown, Message: WithoutURL(err), Err: err}
	}
	req.Header.Set("User-Agent", "Throughline/"+buildinfo.Version()+" (CRM feed import)")
	req.Header.Set("Accept", "text/csv, text/plain;q=0.9, */*;q=0.5")
	resp, err := f.client.Do(req)
	if err != nil {
		cancel()
		msg := WithoutURL(err)
		switch {
		case errors.Is(err, ErrPrivateAddress):
			msg = "refused: " + ErrPrivateAddress.Error()
		case errors.Is(err, context.DeadlineExceeded):
			msg = fmt.Sprintf("no answer within %s", f.timeout)
		}
		return nil, &FetchError{URL: shown, Message: msg, Err: err}
	}
	fail := func(format string, args ...any) (io.ReadCloser, error) {
		resp.Body.Close()
		cancel()
		return nil, &FetchError{URL: shown, Message: fmt.Sprintf(format, args...)}
	}
	if resp.StatusCode != http.StatusOK {
		return fail("the server answered %s (expected 200 OK with the feed)", resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" || mt == "application/xhtml+xml" {
		return fail("the URL returned an HTML page, not a CSV feed (a login page or an error page?)")
	}
	if resp.ContentLength > f.maxBytes {
		return fail("the feed is %d bytes, over the limit of %d", resp.ContentLength, f.maxBytes)
	}
	body := bufio.NewReaderSize(resp.Body, 64<<10)
	if head, _ := body.Peek(512); looksLikeHTML(head) {
		return fail("the URL returned an HTML page, not a CSV feed (a login page or an error page?)")
	}
	return &feedBody{r: body, c: resp.Body, ctx: ctx, cancel: cancel, limit: f.maxBytes, url: shown, timeout: f.timeout}, nil
}

func looksLikeHTML(head []byte) bool {
	h := bytes.ToLower(bytes.TrimSpace(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))))
	return bytes.HasPrefix(h, []byte("<!doctype html")) || bytes.HasPrefix(h, []byte("<html")) || bytes.HasPrefix(h, []byte("<head"))
}

// feedBody is a download in progress, with its size limit and errors that
// say what happened.
type feedBody struct {
	r       io.Reader
	c       io.Closer
	ctx     context.Context
	cancel  context.CancelFunc
	limit   int64
	n       int64
	url     string
	timeout time.Duration
}

func (b *feedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		return n, &FetchError{URL: b.url, Message: fmt.Sprintf("the feed is larger than the limit of %d bytes", b.limit)}
	}
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return n, err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(b.ctx.Err(), context.DeadlineExceeded):
		return n, &FetchError{URL: b.url, Message: fmt.Sprintf("the download did not finish within %s", b.timeout), Err: err}
	}
	return n, &FetchError{URL: b.url, Message: fmt.Sprintf("the download was cut off after %d bytes: %s", b.n, WithoutURL(err)), Err: err}
}

func (b *feedBody) Close() error {
	b.cancel()
	return b.c.Close()
}

// LimitReader caps a local file or upload at limit bytes, failing with a
// clear error past it instead of truncating.
func LimitReader(r io.Reader, limit int64, what string) io.Reader {
	return &limited{r: r, limit: limit, what: what}
}

type limited struct {
	r     io.Reader
	n     int64
	limit int64
	what  string
}

// TooLargeError is an input over its size limit.
type TooLargeError struct {
	What  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than the limit of %d bytes", e.What, e.Limit)
}

func (l *limited) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.limit {
		return n, &TooLargeError{What: l.what, Limit: l.limit}
	}
	return n, err
}
