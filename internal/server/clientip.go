package server

import (
	"encoding/binary"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
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

// ipLimiter is a token bucket per client: per IPv4 address, per IPv6 /64
// (see clientKey). A bucket that has
// refilled to its burst is the same as no bucket at all, so an address is
// forgotten once it has been idle that long (burst ÷ rate: 5 s at the
// collector's defaults): memory follows the addresses seen in the last few
// seconds, not all addresses ever seen — a site behind a proxy sees
// hundreds of thousands a day. Buckets are plain values in maps split into
// shards, each with its own lock, swept a shard at a time: no pointers for
// the garbage collector to follow, no global lock on the hot path, and no
// pause to sweep them all at once.
type ipLimiter struct {
	rate   float64 // tokens a second
	burst  float64
	idle   int64 // nanoseconds after which a bucket is full again
	shards [limiterShards]limiterShard
}

const (
	limiterShardBits = 6
	limiterShards    = 1 << limiterShardBits
)

type limiterShard struct {
	mu      sync.Mutex
	buckets map[[16]byte]tokenBucket
	swept   int64 // Unix nanoseconds
}

type tokenBucket struct {
	tokens float64
	at     int64 // Unix nanoseconds of the last request
}

func newIPLimiter(perSecond float64, burst int) *ipLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = int(perSecond * 5)
	}
	burst = max(burst, 1)
	l := &ipLimiter{rate: perSecond, burst: float64(burst), idle: int64(float64(burst) / perSecond * float64(time.Second))}
	for i := range l.shards {
		l.shards[i].buckets = map[[16]byte]tokenBucket{}
	}
	return l
}

// allow reports whether a request from a may proceed. A nil limiter allows all.
func (l *ipLimiter) allow(a netip.Addr, now time.Time) bool {
	if l == nil {
		return true
	}
	key := clientKey(a)
	// Fibonacci hashing: the top bits of the product depend on every bit
	// of the address (an IPv4 address is only the last four bytes).
	h := (binary.LittleEndian.Uint64(key[8:]) ^ binary.LittleEndian.Uint64(key[:8])) * 0x9e3779b97f4a7c15
	sh := &l.shards[h>>(64-limiterShardBits)]
	t := now.UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if t-sh.swept > l.idle/2 { // so a bucket is kept at most 1.5 × idle
		for k, b := range sh.buckets {
			if t-b.at >= l.idle {
				delete(sh.buckets, k)
			}
		}
		sh.swept = t
	}
	b, ok := sh.buckets[key]
	if !ok {
		b = tokenBucket{tokens: l.burst, at: t}
	}
	if t > b.at {
		b.tokens = min(l.burst, b.tokens+float64(t-b.at)/float64(time.Second)*l.rate)
		b.at = t
	}
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	sh.buckets[key] = b
	return allowed
}

// clientKey is what the limiter counts a request against: an IPv4 address
// (also when written as IPv6, ::ffff:a.b.c.d), or an IPv6 address's /64. A
// /64 is the smallest network an IPv6 client is given — one home, one
// phone — and it may send each request from another address in it
// (privacy addresses), so per address it would never be limited.
func clientKey(a netip.Addr) [16]byte {
	a = a.Unmap()
	key := a.As16()
	if a.Is6() {
		clear(key[8:])
	}
	return key
}
