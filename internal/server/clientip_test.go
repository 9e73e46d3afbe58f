package server

import (
	"crypto/rand"
	"net/netip"
	"testing"
	"time"
)

func TestIPLimiterBuckets(t *testing.T) {
	l := newIPLimiter(10, 5) // 10 a second, bursts of 5
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	a, b := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7")
	for i := range 5 {
		if !l.allow(a, t0) {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	if l.allow(a, t0) {
		t.Fatal("a sixth request at once passed a burst of 5")
	}
	if !l.allow(b, t0) {
		t.Fatal("another address was limited by the first one's requests")
	}
	if l.allow(a, t0.Add(50*time.Millisecond)) {
		t.Fatal("half a token (50 ms at 10/s) let a request through")
	}
	if !l.allow(a, t0.Add(100*time.Millisecond)) {
		t.Fatal("a token refilled after 100 ms did not let a request through")
	}
	if l.allow(a, t0.Add(100*time.Millisecond)) {
		t.Fatal("one refilled token let two requests through")
	}
	// Idle for the time a bucket takes to fill (5 ÷ 10/s = 500 ms), an
	// address has its whole burst again, and the limiter forgets it.
	later := t0.Add(time.Second)
	for i := range 5 {
		if !l.allow(a, later) {
			t.Fatalf("after a second idle, request %d of the burst refused", i+1)
		}
	}
	if l.allow(a, later) {
		t.Fatal("after a second idle, the burst was more than 5")
	}
	if n := l.size(); n > 2 {
		t.Errorf("%d addresses remembered, want at most the 2 seen", n)
	}
	// Sweeps happen as requests arrive in each shard; a request much later
	// to every shard leaves only the addresses it came from.
	much := t0.Add(time.Hour)
	for i := range 4096 {
		l.allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), much)
	}
	if l.allow(a, much.Add(time.Second)); l.size() > 4096+1 {
		t.Errorf("%d addresses remembered an hour later, want the 4,097 of the last seconds", l.size())
	}
}

// A spray of addresses (a large site behind a proxy, or a flood) is
// remembered only for the seconds a bucket takes to refill: memory stays
// bounded by the recent request rate, whatever the number of addresses.
func TestIPLimiterMemoryFollowsRecentAddresses(t *testing.T) {
	l := newIPLimiter(100, 500) // the collector's defaults: idle 5 s
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	const perSecond = 20_000
	peak := 0
	for i := range 60 * perSecond { // a minute of 20,000 new addresses a second
		at := t0.Add(time.Duration(i) * time.Second / perSecond)
		a := netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
		if !l.allow(a, at) {
			t.Fatalf("first request of a new address refused")
		}
		if i%perSecond == 0 {
			peak = max(peak, l.size())
		}
	}
	// 5 s of addresses, plus what a shard holds until its next sweep (2.5 s).
	if limit := 8 * perSecond; peak > limit {
		t.Errorf("remembered up to %d addresses; want at most %d (seconds of traffic, not the 1.2 million seen)", peak, limit)
	}
	t.Logf("peak %d addresses remembered of %d seen", peak, 60*perSecond)
}

// size is how many addresses the limiter remembers.
func (l *ipLimiter) size() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].buckets)
		l.shards[i].mu.Unlock()
	}
	return n
}

// An IPv6 client usually holds a whole /64 and may pick any address in it
// for each request: the limit is per /64. IPv4 stays per address, and an
// IPv4 address written as IPv6 (::ffff:a.b.c.d) is that IPv4 address.
func TestIPLimiterIPv6PerSlash64(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	random := func(prefix netip.Prefix) netip.Addr {
		b := prefix.Addr().As16()
		rand.Read(b[8:])
		return netip.AddrFrom16(b)
	}
	l := newIPLimiter(1, 20)
	one64 := netip.MustParsePrefix("2001:db8:1:2::/64")
	passed := 0
	for range 1000 {
		if l.allow(random(one64), t0) {
			passed++
		}
	}
	if passed != 20 {
		t.Errorf("random addresses in one /64 passed %d of 1,000 requests; want the burst of 20", passed)
	}
	// Neighbouring /64s, even in the same /48, have buckets of their own.
	for i := range 100 {
		other := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, byte(3 + i)}), 64)
		if !l.allow(random(other), t0) {
			t.Fatalf("the first request of /64 %s was limited by another /64's", other)
		}
	}
	// IPv4: per address, as before.
	l = newIPLimiter(1, 2)
	for i := range 2 {
		if !l.allow(netip.MustParseAddr("203.0.113.7"), t0) {
			t.Fatalf("IPv4 request %d of a burst of 2 refused", i+1)
		}
	}
	if !l.allow(netip.MustParseAddr("203.0.113.8"), t0) {
		t.Error("the next IPv4 address was limited by its neighbour's requests")
	}
	if l.allow(netip.MustParseAddr("::ffff:203.0.113.7"), t0) {
		t.Error("203.0.113.7 written as ::ffff:203.0.113.7 escaped its address's limit")
	}
}
