package tracker

import (
	"crypto/rand"
	"fmt"
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
type activeSession struct {
	sid          string
	uuid         string
	lastActivity time.Time
	campaignKey  string        // Campaign.Key() of its landing
	timeout      time.Duration // its counter's rule, for forgetting it once it cannot continue
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
func (r Rules) decide(s *activeSession, uuid string, at time.Time, c Campaign) string {
	switch {
	case s == nil:
		return reasonNoSession
	case s.uuid != uuid:
		// A sid copied between browsers (or forged) must not merge visitors.
		return reasonOtherUser
	case at.Sub(s.lastActivity) > r.Timeout:
		return reasonTimeout
	case r.SplitOnCampaign && c.IsSet() && c.Key() != s.campaignKey:
		// Only a hit that carries campaign tags can change the campaign: an
		// untagged page inside the visit continues it, and reloading the
		// landing page (the same tags and click id) does too.
		return reasonNewCampaign
	}
	return continued
}

// newSessionID returns a time-ordered (version 7) UUID: 48 bits of Unix
// milliseconds, then random bits. Sessions are keyed and their hits indexed
// by sid, so ids that grow with time insert at the end of those indexes
// instead of dirtying random pages all over them on every group commit.
func newSessionID(now time.Time) string {
	var random [10]byte
	rand.Read(random[:])
	return IDAt(now, random)
}

// IDAt is the UUIDv7 of time t with the given random bits: ids sort by
// time. (The demo generates its ids with a seeded generator.)
func IDAt(t time.Time, random [10]byte) string {
	var b [16]byte
	copy(b[6:], random[:])
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
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
