package tracker

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"
)

// TrafficType is how a session came to the site.
type TrafficType string

const (
	Ad       TrafficType = "ad"       // a paid click: utm tags with a paid medium, or an ad click id
	Organic  TrafficType = "organic"  // a search engine's results
	Social   TrafficType = "social"   // a social network or messenger
	Referral TrafficType = "referral" // a link on another site
	Internal TrafficType = "internal" // a link on this site (a session that timed out on an open page)
	Email    TrafficType = "email"    // a webmail client or an e-mail campaign
	Direct   TrafficType = "direct"   // typed, bookmarked, or the referrer was withheld
)

// utmParams are the campaign tags, in the order they are stored.
var utmParams = []string{"utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"}

// Campaign is what a landing URL says about where the visit came from: its
// utm tags and ad click ids.
type Campaign struct {
	Source, Medium, Name, Content, Term string
	ClickIDs                            map[string]string // click-id parameter → value
}

// IsSet reports whether the URL carried any campaign information at all.
func (c Campaign) IsSet() bool {
	return c.Source != "" || c.Medium != "" || c.Name != "" || c.Content != "" || c.Term != "" || len(c.ClickIDs) > 0
}

// Key is a canonical text of the campaign, so that two visits can be told
// apart: a different key is a different ad click, and a new session.
func (c Campaign) Key() string {
	if !c.IsSet() {
		return ""
	}
	var b strings.Builder
	for _, v := range []string{c.Source, c.Medium, c.Name, c.Content, c.Term} {
		b.WriteString(v)
		b.WriteByte(0)
	}
	for _, k := range sortedKeys(c.ClickIDs) {
		b.WriteString(k + "=" + c.ClickIDs[k])
		b.WriteByte(0)
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Source is a session's classified origin.
type Source struct {
	Type   TrafficType `json:"type"`
	Source string      `json:"source"`
	Medium string      `json:"medium"`
}

//go:embed sources.csv
var sourcesCSV string

// sources is the classification table, parsed once at start; a broken table
// is a build defect, so it panics (and a test parses it).
var sources = mustParseSources(sourcesCSV)

type referrerRule struct {
	typ            TrafficType
	source, medium string
}

type clickRule struct {
	typ            TrafficType
	source, medium string
}

type sourceTable struct {
	hosts     map[string]referrerRule // exact host (and its subdomains)
	wildcards map[string]referrerRule // "google" for google.*
	bySource  map[string]TrafficType  // "vk" → social, for utm_source=vk with an unknown medium
	mediums   map[string]TrafficType
	clicks    map[string]clickRule
	clickKeys []string // click-id parameters in table order
}

func mustParseSources(text string) *sourceTable {
	t, err := parseSources(text)
	if err != nil {
		panic(err)
	}
	return t
}

func parseSources(text string) (*sourceTable, error) {
	t := &sourceTable{
		hosts: map[string]referrerRule{}, wildcards: map[string]referrerRule{}, bySource: map[string]TrafficType{},
		mediums: map[string]TrafficType{}, clicks: map[string]clickRule{},
	}
	r := csv.NewReader(strings.NewReader(text))
	r.Comment = '#'
	r.FieldsPerRecord = 5
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("tracker: sources.csv: %w", err)
	}
	for i, row := range rows[1:] {
		table, typ, source, medium := row[0], TrafficType(row[1]), row[2], row[3]
		values := strings.Fields(row[4])
		if len(values) == 0 {
			return nil, fmt.Errorf("tracker: sources.csv row %d: no values", i+2)
		}
		switch table {
		case "referrer":
			rule := referrerRule{typ, source, medium}
			for _, v := range values {
				if name, ok := strings.CutSuffix(v, ".*"); ok {
					t.wildcards[name] = rule
				} else {
					t.hosts[v] = rule
				}
			}
			t.bySource[source] = typ
		case "medium":
			for _, v := range values {
				t.mediums[v] = typ
			}
		case "click":
			for _, v := range values {
				t.clicks[v] = clickRule{typ, source, medium}
				t.clickKeys = append(t.clickKeys, v)
			}
		default:
			return nil, fmt.Errorf("tracker: sources.csv row %d: unknown table %q", i+2, table)
		}
	}
	return t, nil
}

// ParseCampaign reads the utm tags and known click ids from a landing URL.
// Values are trimmed and capped, never interpreted.
func ParseCampaign(u *url.URL) Campaign {
	q := u.Query()
	get := func(k string) string { return clip(strings.TrimSpace(q.Get(k)), 500) }
	c := Campaign{
		Source: get("utm_source"), Medium: get("utm_medium"), Name: get("utm_campaign"),
		Content: get("utm_content"), Term: get("utm_term"),
	}
	for _, k := range sources.clickKeys {
		if v := get(k); v != "" {
			if c.ClickIDs == nil {
				c.ClickIDs = map[string]string{}
			}
			c.ClickIDs[k] = v
		}
	}
	return c
}

// check refuses a campaign whose tags a database cannot store: they are
// decoded from the landing URL's query, where %00 is a NUL.
func (c Campaign) check() error {
	for i, v := range []string{c.Source, c.Medium, c.Name, c.Content, c.Term} {
		if err := checkText(v); err != nil {
			return fmt.Errorf("parameter %s %w", utmParams[i], err)
		}
	}
	for k, v := range c.ClickIDs {
		if err := checkText(v); err != nil {
			return fmt.Errorf("parameter %s %w", k, err)
		}
	}
	return nil
}

// Classify decides a session's source from its landing campaign and
// referrer. siteDomain is the counter's domain: a referrer on it or its
// subdomains is internal.
//
// Order: utm tags first (the site owner said where the link was placed),
// then ad click ids, then the referrer. A utm_medium that is missing or not
// in the table is classified by utm_source when that names a known network or
// engine ("vk", "vk.com"), and otherwise as ad: tagged links are
// overwhelmingly paid placements.
func Classify(c Campaign, referrer, pageHost, siteDomain string) Source {
	hasUTM := c.Source != "" || c.Medium != "" || c.Name != "" || c.Content != "" || c.Term != ""
	var click *clickRule
	for _, k := range sources.clickKeys {
		if _, ok := c.ClickIDs[k]; ok {
			r := sources.clicks[k]
			click = &r
			break
		}
	}
	if hasUTM {
		s := Source{Source: c.Source, Medium: c.Medium}
		if t, ok := sources.mediums[strings.ToLower(c.Medium)]; ok {
			s.Type = t
		} else if click != nil {
			s.Type = click.typ
		} else if t, ok := sources.bySource[strings.ToLower(c.Source)]; ok {
			s.Type = t
		} else if rule, ok := lookupHost(strings.ToLower(c.Source)); ok {
			s.Type = rule.typ
		} else {
			s.Type = Ad
		}
		if s.Source == "" && click != nil {
			s.Source = click.source
		}
		if s.Medium == "" && click != nil {
			s.Medium = click.medium
		}
		return s
	}
	if click != nil {
		return Source{Type: click.typ, Source: click.source, Medium: click.medium}
	}

	ref, err := url.Parse(referrer)
	if referrer == "" || err != nil || ref.Host == "" {
		return Source{Type: Direct, Source: "(direct)", Medium: "(none)"}
	}
	host := strings.TrimPrefix(strings.ToLower(ref.Hostname()), "www.")
	site := strings.TrimPrefix(strings.ToLower(siteDomain), "www.")
	if host == strings.TrimPrefix(strings.ToLower(pageHost), "www.") || host == site || strings.HasSuffix(host, "."+site) {
		return Source{Type: Internal, Source: host, Medium: "internal"}
	}
	if rule, ok := lookupHost(host); ok {
		return Source{Type: rule.typ, Source: rule.source, Medium: rule.medium}
	}
	return Source{Type: Referral, Source: host, Medium: "referral"}
}

// lookupHost finds the most specific referrer rule for host (without www.):
// the host itself, then each parent domain, then the name.* wildcard.
func lookupHost(host string) (referrerRule, bool) {
	for h := host; h != ""; {
		if rule, ok := sources.hosts[h]; ok {
			return rule, true
		}
		_, parent, ok := strings.Cut(h, ".")
		if !ok {
			break
		}
		h = parent
	}
	// name.* matches only name.<public suffix> itself (www. already removed).
	if etld1, err := publicsuffix.EffectiveTLDPlusOne(host); err == nil && etld1 == host {
		name, _, _ := strings.Cut(etld1, ".")
		if rule, ok := sources.wildcards[name]; ok {
			return rule, true
		}
	}
	return referrerRule{}, false
}

// clip cuts s to at most n bytes without splitting a UTF-8 character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
