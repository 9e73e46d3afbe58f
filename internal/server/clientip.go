package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// clientIP returns the address the request came from. Behind a reverse
// proxy the TCP peer is the proxy; X-Forwarded-For is believed only when the
// peer is one of the trusted proxies, and then the client is the right-most
// address in it that is not itself a trusted proxy (left-most entries are
// whatever the client chose to send).
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a
		}
	}
	return peer
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ipLimiter is a token bucket per client address. Idle buckets are swept so
// memory follows the number of recently active addresses.
type ipLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newIPLimiter(perSecond float64, burst int) *ipLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = int(perSecond * 5)
	}
	return &ipLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), buckets: map[netip.Addr]*bucket{}, swept: time.Now()}
}

// allow reports whether a request from a may proceed. A nil limiter allows all.
func (l *ipLimiter) allow(a netip.Addr, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 5*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[a]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[a] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}
