package demo

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/costs"
	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/tracker"
)

// The generator builds the whole synthetic month in memory first — pure Go,
// no database — from one seeded random source, so the same seed gives the
// same world on either engine; then write.go stores it. Visitors come first
// (each with a few sessions), then what the sessions led to: calls through
// the number pool, leads, online orders; then the calls' and leads' offline
// orders, the CRM's statuses, and the ad costs of the ad sessions.

type visitor struct {
	uuid                    string
	device, browser, os, ip string
	female                  bool
	first, last, latin      string // name, surname, Latin form for the e-mail
	phone, email            string // normalised; "" until the visitor needs one
	called                  bool
	// interest is how ready to buy the visitor is, set by the channel of
	// the first visit (at most 1): someone a display banner or a social
	// post brought stays a browser when they come back, so the campaign
	// that brought them is not credited with orders they never meant to
	// place.
	interest float64
}

type session struct {
	v                 *visitor
	sid               string
	start, last       time.Time
	landing, referrer string
	campaign          tracker.Campaign
	source            tracker.Source
	ad                *adCampaign // the paid campaign it came from, if any
	pageviews, events int
	hits              []hit
	category          string // what the visitor looked at most
	callIntent        bool
	lead              *lead
	order             bool // ordered on the site in this session
}

type hit struct {
	at                     time.Time
	typ, url, title, event string
	props                  string
}

type lease struct {
	id, number, sid, uuid string
	leased, lastSeen      time.Time
	expires, released     time.Time
	reason                string
}

func (l *lease) end() time.Time { return l.released }

type call struct {
	ext, caller, tracked  string
	at                    time.Time
	answered              bool
	wait, talk            int
	disposition, employee string
	match, reason         string
	lease                 *lease
	s                     *session // the session it is credited to, if any
	static                *staticNumber
	unique                bool
}

func (c *call) end() time.Time {
	return c.at.Add(time.Duration(c.wait+c.talk) * time.Second)
}

type lead struct {
	s                           *session
	at                          time.Time
	typ, subject, name, comment string
	phone, email                string // as typed
}

type order struct {
	id          string
	created     time.Time
	feed        string // "k50" or "simple": the intake that brings it
	sid, uuid   string
	callerPhone string // as the CRM wrote it
	clientID    string
	phone       string // as the CRM wrote it
	email       string
	phoneMD5    string
	contact     *contact
	status      string
	revenue     int64 // kopecks
	cost        int64 // kopecks; 0 = not known
	items       int
	finished    time.Time
	comment     string
	online      bool
	category    string
}

type contact struct {
	id, name, clientID string
}

type world struct {
	from, to  time.Time // local midnights: the first day, and the day after the last
	visitors  int
	sessions  []*session
	leases    []*lease
	calls     []*call
	leads     []*lead
	orders    []*order
	contacts  []*contact
	costs     []costs.Row
	poolNums  []string
	hitsCount int
}

type gen struct {
	r        *rand.Rand
	loc      *time.Location
	from, to time.Time
	dayW     []float64
	phones   map[string]bool
	w        *world
}

// build makes the world of days days before now's date in loc.
func build(seed int64, days int, now time.Time, loc *time.Location) *world {
	y, m, d := now.In(loc).Date()
	to := time.Date(y, m, d, 0, 0, 0, 0, loc)
	from := time.Date(y, m, d-days, 0, 0, 0, 0, loc)
	g := &gen{
		// PCG with a fixed second word: the seed alone decides the stream.
		r:   rand.New(rand.NewPCG(uint64(seed), 0x7468726f75676800)),
		loc: loc, from: from, to: to, phones: map[string]bool{},
		w: &world{from: from, to: to},
	}
	for i := range days {
		day := g.day(i)
		// Demand rising slowly over the period, with day-to-day noise.
		g.dayW = append(g.dayW, weekdays[day.Weekday()]*(1+0.12*float64(i)/float64(days))*(0.9+0.2*g.r.Float64()))
	}
	for i := range poolSize {
		n, _ := normalize.Phone(poolNumber(i+1), "")
		g.w.poolNums = append(g.w.poolNums, n)
	}
	g.visits(15000 * days / 30)
	g.callsAndLeases()
	g.offlineCalls()
	markUnique(g.w.calls)
	g.leads()
	g.orders()
	g.adCosts()
	return g.w
}

// ---------------------------------------------------------------- helpers

func (g *gen) day(i int) time.Time {
	return time.Date(g.from.Year(), g.from.Month(), g.from.Day()+i, 0, 0, 0, 0, g.loc)
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) between(lo, hi int) int { return lo + g.r.IntN(hi-lo+1) }

// seconds is a random duration of lo to hi seconds.
func (g *gen) seconds(lo, hi int) time.Duration {
	return time.Duration(g.between(lo, hi)) * time.Second
}

func pick[T any](g *gen, xs []T) T { return xs[g.r.IntN(len(xs))] }

func (g *gen) weighted(ws []float64) int {
	total := 0.0
	for _, w := range ws {
		total += w
	}
	x := g.r.Float64() * total
	for i, w := range ws {
		if x < w {
			return i
		}
		x -= w
	}
	return len(ws) - 1
}

// moment is a random time of the period: a day by the days' weights, an
// hour by hours, a random millisecond within it.
func (g *gen) moment(hours []float64) time.Time {
	d := g.day(g.weighted(g.dayW))
	return d.Add(time.Duration(g.weighted(hours))*time.Hour + time.Duration(g.r.Int64N(int64(time.Hour/time.Millisecond)))*time.Millisecond)
}

// lognormal draws around median with the given spread (σ of the log).
func (g *gen) lognormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*g.r.NormFloat64())
}

// uuid4 is a random lowercase UUID, the visitor id t.js makes.
func (g *gen) uuid4() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// uuid7 is a time-ordered UUID for t, the shape of the server's session
// and lease ids.
func (g *gen) uuid7(t time.Time) string {
	var random [10]byte
	for i := range random {
		random[i] = byte(g.r.UintN(256))
	}
	return tracker.IDAt(t, random)
}

// hex is n random hex digits.
func (g *gen) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.r.IntN(16)]
	}
	return string(b)
}

// newPhone is a mobile number no one in the demo has yet, normalised.
func (g *gen) newPhone() string {
	for {
		p := "7" + pick(g, mobileCodes) + fmt.Sprintf("%07d", g.r.IntN(10_000_000))
		if !g.phones[p] {
			g.phones[p] = true
			return p
		}
	}
}

// typed writes a normalised phone (79161234567) the way people and CRMs
// write it, so the normaliser's work shows.
func (g *gen) typed(p string) string {
	switch g.r.IntN(5) {
	case 0:
		return p
	case 1:
		return "+7 (" + p[1:4] + ") " + p[4:7] + "-" + p[7:9] + "-" + p[9:]
	case 2:
		return "8 " + p[1:4] + " " + p[4:7] + " " + p[7:9] + " " + p[9:]
	case 3:
		return "8" + p[1:]
	default:
		return "+7 " + p[1:4] + " " + p[4:7] + "-" + p[7:9] + "-" + p[9:]
	}
}

func (g *gen) person(v *visitor) {
	if v.first != "" {
		return
	}
	v.female = g.chance(0.55)
	s := pick(g, surnames)
	var n [2]string
	if v.female {
		n = pick(g, femaleNames)
		v.last = s[1]
		v.latin = n[1] + "." + s[2] + "a"
	} else {
		n = pick(g, maleNames)
		v.last = s[0]
		v.latin = n[1] + "." + s[2]
	}
	v.first = n[0]
}

func (g *gen) phoneOf(v *visitor) string {
	if v.phone == "" {
		v.phone = g.newPhone()
	}
	return v.phone
}

func (g *gen) emailOf(v *visitor) string {
	if v.email == "" {
		g.person(v)
		v.email = fmt.Sprintf("%s%d@%s", v.latin, g.between(1, 99), pick(g, mailDomains))
	}
	return v.email
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// ---------------------------------------------------------------- visits

func (g *gen) visits(n int) {
	first := make([]float64, len(channels))
	returning := make([]float64, len(channels))
	for i, c := range channels {
		first[i], returning[i] = c.first, c.returning
	}
	for range n {
		v := g.newVisitor()
		at := g.moment(visitHours)
		ch := g.weighted(first)
		for {
			s := g.visit(v, at, &channels[ch])
			g.w.sessions = append(g.w.sessions, s)
			// Nearly half of visitors come back, most within days.
			if !g.chance(0.45) {
				break
			}
			gap := time.Duration(g.lognormal(30, 1.3) * float64(time.Hour))
			// Milliseconds, as t.js reports them (and as both engines keep them).
			at = s.last.Add(max(gap, 40*time.Minute)).Truncate(time.Millisecond)
			if !at.Before(g.to) {
				break
			}
			ch = g.weighted(returning)
		}
		g.w.visitors++
	}
	slices.SortFunc(g.w.sessions, func(a, b *session) int { return cmp.Compare(a.sid, b.sid) })
}

func (g *gen) newVisitor() *visitor {
	v := &visitor{uuid: g.uuid4()}
	var client [2]string
	switch x := g.r.Float64(); {
	case x < 0.58:
		v.device, client = "mobile", pick(g, mobileClients)
	case x < 0.96:
		v.device, client = "desktop", pick(g, desktopClients)
	default:
		v.device, client = "tablet", pick(g, tabletClients)
	}
	v.browser, v.os = client[0], client[1]
	v.ip = fmt.Sprintf("%s.%d.0", pick(g, networks), g.r.IntN(256))
	return v
}

// visit makes one session of v starting at start from channel ch, and
// decides what it leads to.
func (g *gen) visit(v *visitor, start time.Time, ch *channel) *session {
	s := &session{v: v, start: start}
	q := url.Values{}
	landing := pick(g, infoPages)
	if g.chance(0.35) {
		landing = pick(g, products).page()
	}
	switch ch.kind {
	case "ad":
		a := ch.ad
		s.ad, landing, s.category = a, a.landing, a.category
		if landing == (page{}) {
			landing = pick(g, inCategory(a.category)).page()
		}
		q.Set("utm_source", a.source)
		q.Set("utm_medium", a.medium)
		q.Set("utm_campaign", a.name)
		q.Set("utm_content", pick(g, a.contents))
		if len(a.terms) > 0 {
			q.Set("utm_term", pick(g, a.terms))
		}
		q.Set(a.clickParam, g.hex(24))
	case "email":
		// The weekly digest goes out on Thursdays: a visit credits the
		// latest one.
		d := start.In(g.loc)
		for d.Weekday() != time.Thursday {
			d = d.AddDate(0, 0, -1)
		}
		q.Set("utm_source", "newsletter")
		q.Set("utm_medium", "email")
		q.Set("utm_campaign", "digest_"+d.Format("0102"))
		landing = pageSale
		if g.chance(0.5) {
			s.referrer = "https://mail.yandex.ru/"
		}
	case "organic", "social", "referral":
		s.referrer = ch.referrer
		if ch.kind == "organic" && landing == pageContacts {
			landing = pageHome
		}
	}
	u := siteURL + landing.path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	s.landing = u
	lu, _ := url.Parse(u)
	s.campaign = tracker.ParseCampaign(lu)
	// Classified exactly as the collector classifies a landing hit.
	s.source = tracker.Classify(s.campaign, s.referrer, lu.Hostname(), Domain)
	s.sid = g.uuid7(start)
	if s.category == "" {
		s.category = pick(g, []string{"divany", "divany", "divany", "kresla", "kresla", "dekor"})
	}

	// What the visit leads to. Direct and e-mail visitors know the shop
	// and convert best; social visitors browse; a paid visit converts as
	// its campaign does. A returning visitor keeps the interest their first
	// visit showed.
	boost := map[tracker.TrafficType]float64{tracker.Direct: 1.25, tracker.Email: 1.2, tracker.Organic: 1.1, tracker.Ad: 1, tracker.Referral: 0.9, tracker.Social: 0.6}[s.source.Type]
	bounceRate, interest := 0.36, min(1, boost)
	if s.ad != nil {
		boost, bounceRate, interest = s.ad.conv, s.ad.bounce, s.ad.interest
	}
	if v.interest == 0 {
		v.interest = interest
	} else {
		boost *= v.interest
	}
	bounce := g.chance(bounceRate)
	pCall := 0.056 * boost
	if v.called {
		pCall = 0.2 // people call back about what they discussed
	}
	s.callIntent = g.chance(pCall)
	if !bounce {
		s.order = g.chance(0.04 * boost)
		if !s.order && g.chance(0.062*boost) {
			s.lead = &lead{s: s}
		}
	}
	g.pages(s, landing, bounce)
	return s
}

// pages fills the session's hits: the landing page, browsing, and the
// checkout or the form the visit ends with.
func (g *gen) pages(s *session, landing page, bounce bool) {
	at := s.start
	add := func(p page, full string) {
		if full == "" {
			full = siteURL + p.path
		}
		s.hits = append(s.hits, hit{at: at, typ: tracker.Pageview, url: full, title: p.title, props: "{}"})
		s.pageviews++
		at = at.Add(g.seconds(15, 150))
	}
	event := func(name, props string) {
		s.hits = append(s.hits, hit{at: at, typ: tracker.Event, url: s.hits[len(s.hits)-1].url, title: s.hits[len(s.hits)-1].title, event: name, props: props})
		s.events++
		at = at.Add(g.seconds(2, 20))
	}
	add(landing, s.landing)
	if !bounce {
		var seen product
		for range g.between(1, 6) {
			if g.chance(0.6) {
				seen = pick(g, inCategory(s.category))
				add(seen.page(), "")
			} else {
				add(pick(g, infoPages), "")
			}
		}
		if s.order || g.chance(0.08) {
			if seen.slug == "" {
				seen = pick(g, inCategory(s.category))
				add(seen.page(), "")
			}
			event("add_to_cart", `{"product":"`+seen.slug+`"}`)
			add(pageCart, "")
		}
		if s.order {
			add(pageCheckout, "")
			add(pageThanks, "")
			event("purchase", `{"product":"`+seen.slug+`"}`)
		}
		if s.lead != nil && g.chance(0.5) {
			event("callback_click", `{"button":"header"}`)
		}
	}
	s.last = s.hits[len(s.hits)-1].at
	g.w.hitsCount += len(s.hits)
}

// inCategory is the catalogue's products of category cat.
func inCategory(cat string) []product {
	var out []product
	for _, p := range products {
		if p.category == cat {
			out = append(out, p)
		}
	}
	return out
}

// ---------------------------------------------------------------- calls

// callsAndLeases gives each calling session a number from the pool — the
// one free longest, as call tracking does — and stores the lease and the
// call(s) made on it.
func (g *gen) callsAndLeases() {
	busy := map[string]time.Time{} // number → when it is free for another visitor
	cooldown := time.Duration(cooldownSecs) * time.Second
	fallback, _ := normalize.Phone(poolFallback, "")
	var callers []*session
	for _, s := range g.w.sessions {
		if s.callIntent {
			callers = append(callers, s)
		}
	}
	slices.SortFunc(callers, func(a, b *session) int { return a.start.Compare(b.start) })
	for _, s := range callers {
		leased := s.start.Add(g.seconds(3, 15))
		number := ""
		for _, n := range g.w.poolNums {
			if !busy[n].After(leased) && (number == "" || busy[n].Before(busy[number])) {
				number = n
			}
		}
		v := s.v
		v.called = true
		if number == "" {
			// Every number was out: the page showed the fallback.
			c := g.newCall(v, fallback, leased.Add(g.seconds(30, 240)))
			c.match = "pool_exhausted"
			c.reason = fmt.Sprintf("%s is the fallback number of pool %q, shown when all its numbers were taken", fallback, poolName)
			continue
		}
		l := &lease{id: g.uuid7(leased), number: number, sid: s.sid, uuid: v.uuid, leased: leased}
		g.w.leases = append(g.w.leases, l)
		var c *call
		if g.chance(0.82) {
			// Called while on the page: the number was lent at the call's
			// start, and the call ended the lease.
			span := max(s.last.Sub(leased), 0) + 2*time.Minute
			at := leased.Add(g.seconds(20, int(span.Seconds())))
			c = g.newCall(v, number, at)
			l.lastSeen = maxTime(s.last, at.Add(-g.seconds(0, 55)))
			l.expires = l.lastSeen.Add(holdMinutes * time.Minute)
			l.released, l.reason = maxTime(l.lastSeen, c.end()), "call"
			c.match = "lease"
			c.reason = fmt.Sprintf("%s was lent to session %s from %s to %s; the call started at %s",
				number, s.sid, stamp(l.leased), stamp(l.expires), stamp(at))
		} else {
			// Closed the page, then dialled the number they had noted: the
			// number still rested, so the call is its last holder's.
			l.lastSeen = maxTime(s.last, leased)
			l.expires = l.lastSeen.Add(holdMinutes * time.Minute)
			l.released, l.reason = l.lastSeen, "page closed"
			c = g.newCall(v, number, l.released.Add(g.seconds(20, 280)))
			c.match = "after_lease"
			c.reason = fmt.Sprintf("%s was last lent to session %s until %s, %s before the call; no one had it since",
				number, s.sid, stamp(l.end()), c.at.Sub(l.end()).Round(time.Second))
		}
		c.lease, c.s = l, s
		last := c
		if !c.answered && g.chance(0.45) {
			// No answer: they try again a few minutes later.
			again := g.newCall(v, number, c.end().Add(g.seconds(60, 200)))
			again.lease, again.s, again.match = l, s, "after_lease"
			again.reason = fmt.Sprintf("%s was last lent to session %s until %s, %s before the call; no one had it since",
				number, s.sid, stamp(l.end()), again.at.Sub(l.end()).Round(time.Second))
			last = again
		}
		busy[number] = maxTime(l.released, last.end()).Add(cooldown)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// newCall is an incoming call from v (nil: someone the site never saw) to
// tracked at at, answered or not.
func (g *gen) newCall(v *visitor, tracked string, at time.Time) *call {
	c := &call{ext: "in_" + g.hex(20), tracked: tracked, at: at.Truncate(time.Second)}
	if v != nil {
		c.caller = g.phoneOf(v)
	} else {
		c.caller = g.newPhone()
	}
	c.answered = g.chance(0.78)
	if c.answered {
		c.wait, c.talk = g.between(3, 25), int(min(g.lognormal(150, 0.8), 1800))+10
		c.disposition, c.employee = "answered", pick(g, []string{"101", "102", "103"})
	} else {
		c.wait = g.between(15, 50)
		c.disposition = pick(g, []string{"no answer", "no answer", "busy"})
	}
	g.w.calls = append(g.w.calls, c)
	return c
}

// offlineCalls are calls no session explains: to the static numbers of the
// radio spot and the flyers, and to pool numbers while no one held them.
func (g *gen) offlineCalls() {
	var repeaters []string
	shares := make([]float64, len(staticNumbers))
	for i, n := range staticNumbers {
		shares[i] = n.share
	}
	days := len(g.dayW)
	for range days * 9 / 2 {
		sn := &staticNumbers[g.weighted(shares)]
		number, _ := normalize.Phone(sn.number, "")
		c := g.newCall(nil, number, g.moment(officeHours))
		if len(repeaters) > 0 && g.chance(0.12) {
			c.caller = pick(g, repeaters)
		} else {
			repeaters = append(repeaters, c.caller)
		}
		c.static = sn
		c.match = "static"
		c.reason = fmt.Sprintf("%s is a static number of %s / %s", number, sn.source, sn.medium)
	}
	byNumber := map[string][]*lease{}
	for _, l := range g.w.leases {
		byNumber[l.number] = append(byNumber[l.number], l)
	}
	cooldown := time.Duration(cooldownSecs) * time.Second
	for range days * 3 / 2 {
		number := pick(g, g.w.poolNums)
		at := g.moment(officeHours).Truncate(time.Second)
		var last *lease
		held := false
		for _, l := range byNumber[number] {
			if !l.leased.After(at.Add(10 * time.Second)) {
				if last == nil || l.leased.After(last.leased) {
					last = l
				}
				held = held || !at.After(l.end().Add(cooldown))
			}
		}
		if held {
			continue // someone held it then: not a call tracking could not place
		}
		c := g.newCall(nil, number, at)
		c.match = "unidentified"
		c.reason = fmt.Sprintf("%s is a pool number, but no session held it at %s", number, stamp(c.at))
		if last != nil {
			c.reason += fmt.Sprintf(" (its last lease ended at %s)", stamp(last.end()))
		}
	}
	// Calls made after midnight belong to today, which the demo leaves empty.
	g.w.calls = slices.DeleteFunc(g.w.calls, func(c *call) bool { return !c.at.Before(g.to) })
	slices.SortStableFunc(g.w.calls, func(a, b *call) int { return a.at.Compare(b.at) })
}

// markUnique marks each caller's first call within the counter's window,
// as call tracking does.
func markUnique(calls []*call) {
	prev := map[string]time.Time{}
	window := uniqueWindowD * 24 * time.Hour
	for _, c := range calls {
		p, seen := prev[c.caller]
		c.unique = !seen || p.Before(c.at.Add(-window))
		prev[c.caller] = c.at
	}
}

// ---------------------------------------------------------------- leads

var leadSubjects = map[string][]string{
	"form":     {"Заявка на расчёт", "Вопрос о доставке", "Заказ в один клик", "Подбор ткани"},
	"callback": {"Обратный звонок"},
	"chat":     {"Онлайн-чат"},
	"email":    {"Письмо на info@"},
}

var leadComments = []string{"", "", "", "Есть ли в наличии серый цвет?", "Сколько стоит доставка в Подольск?",
	"Можно ли посмотреть в шоуруме в субботу?", "Нужна сборка", "Перезвоните после 18:00"}

func (g *gen) leads() {
	for _, s := range g.w.sessions {
		l := s.lead
		if l == nil {
			continue
		}
		v := s.v
		g.person(v)
		l.at = s.start.Add(time.Duration(g.r.Int64N(int64(s.last.Sub(s.start) + time.Minute)))).Truncate(time.Second)
		if !l.at.Before(g.to) {
			s.lead = nil // sent after midnight: today's, which the demo leaves empty
			continue
		}
		switch x := g.r.Float64(); {
		case x < 0.45:
			l.typ = "form"
			l.phone = g.typed(g.phoneOf(v))
			if g.chance(0.5) {
				l.email = g.emailOf(v)
			}
		case x < 0.8:
			l.typ = "callback"
			l.phone = g.typed(g.phoneOf(v))
		case x < 0.92:
			l.typ = "chat"
			l.email = g.emailOf(v)
		default:
			l.typ = "email"
			l.email = g.emailOf(v)
		}
		if l.email != "" && g.chance(0.15) {
			l.email = strings.ToUpper(l.email[:1]) + l.email[1:] // typed with a capital: stored lower-case
		}
		l.subject = pick(g, leadSubjects[l.typ])
		l.name = v.first
		l.comment = pick(g, leadComments)
		g.w.leads = append(g.w.leads, l)
	}
	slices.SortStableFunc(g.w.leads, func(a, b *lead) int { return a.at.Compare(b.at) })
}

// ---------------------------------------------------------------- orders

func (g *gen) orders() {
	w := g.w
	add := func(o *order) {
		if o.created.Before(g.to) {
			w.orders = append(w.orders, o)
		}
	}
	// Online: checked out on the site. Most CRMs pass the ids on (the K50
	// feed's sid and uuid), some only the visitor id (Metrica's client id),
	// some only the customer, whose CRM card has the visitor id.
	for _, s := range w.sessions {
		if !s.order {
			continue
		}
		o := &order{created: s.last.Add(g.seconds(5, 60)).Truncate(time.Second), online: true, category: s.category}
		switch x := g.r.Float64(); {
		case x < 0.55:
			o.feed, o.sid, o.uuid = "k50", s.sid, s.v.uuid
		case x < 0.68:
			o.feed, o.uuid = "k50", s.v.uuid
		case x < 0.84:
			o.feed, o.clientID = "simple", s.v.uuid
		case x < 0.95:
			g.person(s.v)
			c := &contact{id: fmt.Sprintf("C-%05d", len(w.contacts)+1), name: s.v.first + " " + s.v.last, clientID: s.v.uuid}
			w.contacts = append(w.contacts, c)
			o.feed, o.contact = "simple", c
		default:
			o.feed = "k50" // the site lost the ids: nothing to match by
		}
		add(o)
	}
	// By phone: the CRM records the number the customer called from.
	for _, c := range w.calls {
		if !c.answered || c.match == "unidentified" || !g.chance(0.42) {
			continue
		}
		o := &order{feed: "k50", callerPhone: g.typed(c.caller), category: "divany",
			created: c.end().Add(time.Duration(g.lognormal(40, 1.4) * float64(time.Minute))).Truncate(time.Second)}
		if c.s != nil {
			o.category = c.s.category
		}
		add(o)
	}
	// From leads: the manager calls back and the order carries the lead's
	// phone or e-mail (or, from a careful CRM, only their md5).
	for _, l := range w.leads {
		if !g.chance(0.5) {
			continue
		}
		o := &order{feed: "simple", category: l.s.category,
			created: l.at.Add(time.Duration(g.lognormal(3, 1.2) * float64(time.Hour))).Truncate(time.Second)}
		phone := l.s.v.phone
		switch x := g.r.Float64(); {
		case l.phone != "" && x < 0.85:
			o.phone = g.typed(phone)
		case l.phone != "":
			o.phoneMD5 = normalize.MD5(phone)
		default:
			o.email = l.email
		}
		add(o)
	}
	// About one order in twenty matches nothing: showroom walk-ins, orders
	// typed in by hand.
	for range len(w.orders) / 30 {
		o := &order{created: g.moment(officeHours).Truncate(time.Second), category: pick(g, []string{"divany", "kresla", "dekor"})}
		if g.chance(0.4) {
			o.feed, o.comment = "k50", "шоурум"
		} else {
			o.feed, o.phone = "simple", g.typed(g.newPhone())
		}
		w.orders = append(w.orders, o)
	}
	slices.SortStableFunc(w.orders, func(a, b *order) int { return a.created.Compare(b.created) })
	for i, o := range w.orders {
		o.id = fmt.Sprintf("DS-%d", 10001+i)
		g.fill(o)
	}
}

// fill gives an order its status, basket, money and comment. Recent orders
// are still being worked on; older ones are mostly done.
func (g *gen) fill(o *order) {
	age := g.to.Sub(o.created)
	byPhone := !o.online
	switch {
	case byPhone && g.chance(0.04), !byPhone && g.chance(0.005):
		o.status = "spam"
	case age < 36*time.Hour && g.chance(0.6):
		o.status = pick(g, []string{"new", "new", "assembling"})
	default:
		o.status = []string{"complete", "prepayed", "delivering", "assembling", "cancel-other", "no-call", unmappedStatus, "duplicate"}[g.weighted([]float64{56, 5, 8, 3, 12, 4, 7, 3})]
	}
	var basket []product
	for _, p := range products {
		if p.category == o.category {
			basket = append(basket, p)
		}
	}
	main := pick(g, basket)
	o.items = 1
	o.revenue = main.price * 100
	if g.chance(0.3) {
		extra := products[len(products)-1-g.r.IntN(2)] // a cushion or a plaid with it
		o.items++
		o.revenue += extra.price * 100
	}
	if main.category != "dekor" && g.chance(0.5) {
		o.revenue += 149000 // delivery and assembly
	}
	if g.chance(0.85) {
		// The purchase price, where the CRM knows it: revenue − cost is the margin.
		o.cost = o.revenue * int64(g.between(52, 68)) / 100
	}
	if o.status == "complete" || o.status == "prepayed" {
		done := o.created.Add(time.Duration(g.lognormal(50, 0.6) * float64(time.Hour))).Truncate(time.Second)
		if done.After(g.to) {
			done = g.to.Add(-g.seconds(60, 3600))
		}
		o.finished = maxTime(done, o.created)
	}
	if o.comment == "" && g.chance(0.1) {
		o.comment = pick(g, []string{"доставка после 18:00", "подъём на 5 этаж; без лифта", "самовывоз со склада", "оплата картой курьеру"})
	}
}

// ---------------------------------------------------------------- costs

// adCosts are the networks' statistics of the ad sessions: per day and
// campaign (and keyword for search), a few more clicks than sessions (some
// clicks never load the page), impressions by the campaign's CTR, and each
// click at a price in the campaign's range.
func (g *gen) adCosts() {
	type key struct {
		day  string
		ad   *adCampaign
		term string
	}
	sessions := map[key]int64{}
	var keys []key
	for _, s := range g.w.sessions {
		if s.ad == nil {
			continue
		}
		k := key{s.start.In(g.loc).Format(time.DateOnly), s.ad, s.campaign.Term}
		if sessions[k] == 0 {
			keys = append(keys, k)
		}
		sessions[k]++
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.day, b.day), cmp.Compare(a.ad.source, b.ad.source), cmp.Compare(a.ad.name, b.ad.name), cmp.Compare(a.term, b.term))
	})
	for _, k := range keys {
		clicks := sessions[k] + int64(float64(sessions[k])*(0.05+0.2*g.r.Float64())+0.5)
		perClick := k.ad.cpc[0] + g.r.Int64N(k.ad.cpc[1]-k.ad.cpc[0]+1)
		g.w.costs = append(g.w.costs, costs.Row{Day: k.day, Source: k.ad.source, Medium: k.ad.medium, Campaign: k.ad.name, Term: k.term,
			Cost: clicks * perClick, Clicks: clicks, Impressions: int64(float64(clicks) / (k.ad.ctr * (0.8 + 0.4*g.r.Float64())))})
	}
}

// clickIDs is the session's click_ids column: a JSON object, "{}" when none.
func clickIDs(c tracker.Campaign) string {
	if len(c.ClickIDs) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(c.ClickIDs) // a map of strings always marshals; keys come out sorted
	return string(b)
}
