package tracker

import (
	"crypto/rand"
	"hash/maphash"
	"time"

	"github.com/throughline/throughline/internal/counter"
)

// Rules decide when a hit starts a new session. They are a counter's
// settings (counter.Counter.SessionTimeoutMinutes, NewSessionOnCampaign).
type Rules struct {
	// Timeout is the inactivity that ends a session. The calendar plays no
	// part: a visit that runs past midnight is one session, as a user sees it.
	Timeout time.Duration
	// SplitOnCampaign starts a new session when a hit arrives with a
	// campaign or ad click different from the session's: each ad click is
	// its own session, because attribution credits clicks.
	SplitOnCampaign bool
}

// RulesOf returns a counter's session rules.
func RulesOf(c counter.Counter) Rules {
	m := c.SessionTimeoutMinutes
	if m <= 0 {
		m = counter.DefaultSessionTimeoutMinutes
	}
	return Rules{Timeout: time.Duration(m) * time.Minute, SplitOnCampaign: c.NewSessionOnCampaign}
}

// activeSession is what the rules need to know about an existing session.
// The collector keeps one per recently active visitor in memory, so it
// holds no pointers (the garbage collector skips a map of them) and no
// strings: ids in their 16 bytes, times in nanoseconds, the campaign as a
// hash.
type activeSession struct {
	sid, uuid id
	last      int64  // Unix nanoseconds of its latest hit
	campaign  uint64 // campaignHash of its landing's campaign; 0 for none
	timeout   int64  // its counter's inactivity timeout in nanoseconds, to forget it once it cannot continue
}

// Why a hit did not continue a candidate session; kept for tests and logs.
const (
	continued         = ""
	reasonNoSession   = "no earlier session"
	reasonOtherUser   = "session belongs to another visitor"
	reasonTimeout     = "inactivity timeout"
	reasonNewCampaign = "new campaign or ad click"
)

// decide says whether a hit at time at, from visitor uuid, landing with
// campaign c, continues session s (nil when there is none). It returns
// continued ("") or the reason for a new session.
func (r Rules) decide(s *activeSession, uuid id, at time.Time, c Campaign) string {
	switch {
	case s == nil:
		return reasonNoSession
	case s.uuid != uuid:
		// A sid copied between browsers (or forged) must not merge visitors.
		return reasonOtherUser
	case at.UnixNano()-s.last > int64(r.Timeout):
		return reasonTimeout
	case r.SplitOnCampaign && c.IsSet() && campaignHash(c) != s.campaign:
		// Only a hit that carries campaign tags can change the campaign: an
		// untagged page inside the visit continues it, and reloading the
		// landing page (the same tags and click id) does too.
		return reasonNewCampaign
	}
	return continued
}

// campaignSeed keys campaignHash. Hashes live only in this process's
// memory (sessions read from the database are hashed on reading), so a
// seed chosen at start is enough.
var campaignSeed = maphash.MakeSeed()

// campaignHash is a 64-bit digest of a campaign's Key, 0 for no campaign.
// Two different campaigns collide with a chance of 2⁻⁶⁴: the worst case is
// a click that continues a session instead of starting one.
func campaignHash(c Campaign) uint64 {
	if !c.IsSet() {
		return 0
	}
	return maphash.String(campaignSeed, c.Key())
}

// newSessionID returns a time-ordered (version 7) UUID: 48 bits of Unix
// milliseconds, then random bits. Sessions are keyed and their hits indexed
// by sid, so ids that grow with time insert at the end of those indexes
// instead of dirtying random pages all over them on every group commit.
func newSessionID(now time.Time) id {
	var random [10]byte
	rand.Read(random[:])
	return idAt(now, random)
}

// IDAt is the UUIDv7 of time t with the given random bits: ids sort by
// time. (The demo generates its ids with a seeded generator.)
func IDAt(t time.Time, random [10]byte) string { return idAt(t, random).String() }

func idAt(t time.Time, random [10]byte) id {
	var b id
	copy(b[6:], random[:])
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	return b
}

// id is a UUID in its 16 bytes.
type id [16]byte

// parseID reads a UUID in canonical lowercase text (see validID).
func parseID(s string) (id, bool) {
	var x id
	if !validID(s) {
		return x, false
	}
	for i, j := 0, 0; i < 36; {
		if s[i] == '-' {
			i++
			continue
		}
		x[j] = unhex(s[i])<<4 | unhex(s[i+1])
		i, j = i+2, j+1
	}
	return x, true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// String is the canonical lowercase text of the id.
func (x id) String() string {
	const digits = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, v := range x {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = digits[v>>4], digits[v&0x0f]
		j += 2
	}
	return string(b[:])
}

// validID reports whether s is a UUID in canonical lowercase text, the only
// shape t.js produces and the server issues.
func validID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// ValidID reports whether s has the shape of a visitor or session id (a
// lowercase UUID), for the other endpoints t.js sends them to.
func ValidID(s string) bool { return validID(s) }
