package demo

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/costs"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/leads"
	"github.com/throughline/throughline/internal/normalize"
	"github.com/throughline/throughline/internal/rollup"
	"github.com/throughline/throughline/internal/store"
)

// Storing the world. Where a domain package has a write path that is fast
// enough for thousands of rows (leads, the CRM imports, ad costs, numbers)
// the demo goes through it, so the demo's data is what real data becomes.
// Sessions, hits, leases and calls are bulk-inserted in the collector's
// and call tracking's shapes instead: the collector works at the current
// time only, and call tracking takes one transaction per webhook event.

// numbers sets up call tracking as a shop would: the pool every visitor is
// shown a number from, and the static numbers of the offline ads.
func numbers(ctx context.Context, db *store.DB, counterID int64) (int64, error) {
	name, fallback := poolName, poolFallback
	pool, err := calltracking.CreatePool(ctx, db, counterID, calltracking.PoolInput{Name: &name, Rule: &calltracking.Rule{}, FallbackNumber: &fallback})
	if err != nil {
		return 0, fmt.Errorf("demo: pool: %w", err)
	}
	for i := range poolSize {
		n := poolNumber(i + 1)
		if _, err := calltracking.SaveNumber(ctx, db, counterID, calltracking.NumberInput{Number: &n, PoolID: &pool.ID}); err != nil {
			return 0, fmt.Errorf("demo: pool number %s: %w", n, err)
		}
	}
	for _, sn := range staticNumbers {
		n := sn.number
		src := calltracking.Traffic{Source: sn.source, Medium: sn.medium, Campaign: sn.campaign}
		if _, err := calltracking.SaveNumber(ctx, db, counterID, calltracking.NumberInput{Number: &n, Source: &src}); err != nil {
			return 0, fmt.Errorf("demo: static number %s: %w", n, err)
		}
	}
	return pool.ID, nil
}

var sessionColumns = []string{"counter_id", "sid", "uuid", "started_at", "landing_url", "referrer",
	"utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "click_ids",
	"traffic_type", "source", "medium", "device", "browser", "os", "ip"}

var hitColumns = []string{"counter_id", "sid", "at", "type", "url", "title", "name", "props"}

var leaseColumns = []string{"counter_id", "id", "pool_id", "number", "sid", "uuid", "leased_at", "last_seen_at", "expires_at", "released_at", "release_reason"}

var callColumns = []string{"counter_id", "provider", "external_id", "direction", "caller", "caller_raw", "caller_md5", "tracked_number",
	"started_at", "answered", "talk_seconds", "wait_seconds", "disposition", "recording_url", "employee", "ended",
	"match", "match_reason", "lease_id", "sid", "uuid", "traffic_type", "source", "medium", "campaign", "is_unique", "created_at", "updated_at"}

// traffic writes the sessions with their hits, the number leases and the
// calls in one transaction, and marks their days for the report rollups
// as the collector and call tracking do.
func traffic(ctx context.Context, db *store.DB, counterID, poolID int64, w *world) error {
	conn, err := db.Writer().Conn(ctx)
	if err != nil {
		return fmt.Errorf("demo: sessions: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("demo: sessions: begin: %w", err)
	}
	defer tx.Rollback()
	d := db.Dialect()

	rows := make([][]any, 0, len(w.sessions))
	hits := make([][]any, 0, w.hitsCount)
	var days []time.Time
	for _, s := range w.sessions {
		c := s.campaign
		rows = append(rows, []any{counterID, s.sid, s.v.uuid, s.start.UTC(), s.landing, s.referrer,
			c.Source, c.Medium, c.Name, c.Content, c.Term, clickIDs(c),
			string(s.source.Type), s.source.Source, s.source.Medium, s.v.device, s.v.browser, s.v.os, s.v.ip})
		for _, h := range s.hits {
			hits = append(hits, []any{counterID, s.sid, h.at.UTC(), h.typ, h.url, h.title, h.event, h.props})
		}
		days = append(days, s.start)
	}
	if err := d.Insert(ctx, conn, tx, "sessions", sessionColumns, rows); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := d.Insert(ctx, conn, tx, "hits", hitColumns, hits); err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	rows = rows[:0]
	last := map[string]*lease{}
	for _, l := range w.leases {
		rows = append(rows, []any{counterID, l.id, poolID, l.number, l.sid, l.uuid, l.leased.UTC(), l.lastSeen.UTC(), l.expires.UTC(), l.released.UTC(), l.reason})
		if p := last[l.number]; p == nil || l.leased.After(p.leased) {
			last[l.number] = l
		}
	}
	if err := d.Insert(ctx, conn, tx, "number_leases", leaseColumns, rows); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	// Each pool number remembers its last holder, as leasing leaves it.
	for _, n := range w.poolNums {
		if l := last[n]; l != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE tracked_numbers SET holder_uuid = $3, lease_id = $4, lease_end = $5
				WHERE counter_id = $1 AND number = $2`, counterID, n, l.uuid, l.id, l.end().UTC()); err != nil {
				return fmt.Errorf("demo: number %s: %w", n, err)
			}
		}
	}

	rows = rows[:0]
	for _, c := range w.calls {
		var t calltracking.Traffic
		leaseID, sid, uuid := "", "", ""
		switch {
		case c.s != nil:
			s := c.s
			t = calltracking.Traffic{Type: string(s.source.Type), Source: s.source.Source, Medium: s.source.Medium, Campaign: s.campaign.Name}
			leaseID, sid, uuid = c.lease.id, s.sid, s.v.uuid
		case c.static != nil:
			t = calltracking.StaticTraffic(calltracking.Traffic{Source: c.static.source, Medium: c.static.medium, Campaign: c.static.campaign})
		}
		// The provider's last event arrives a moment after the call ends.
		received := c.end().Add(3 * time.Second).UTC()
		rows = append(rows, []any{counterID, "zadarma", c.ext, "in", c.caller, c.caller, normalize.MD5(c.caller), c.tracked,
			c.at.UTC(), c.answered, c.talk, c.wait, c.disposition, "", c.employee, true,
			c.match, c.reason, leaseID, sid, uuid, t.Type, t.Source, t.Medium, t.Campaign, c.unique, c.at.UTC(), received})
		days = append(days, c.at)
	}
	if err := d.Insert(ctx, conn, tx, "calls", callColumns, rows); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := rollup.Mark(ctx, tx, d, counterID, days...); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("demo: sessions: commit: %w", err)
	}
	return nil
}

// storeLeads stores each lead as the site's forms send it (t.js's
// sendLead): the leads package finds its session and source.
func storeLeads(ctx context.Context, db *store.DB, counterID int64, w *world) error {
	for _, l := range w.leads {
		at := l.at
		in := leads.Input{Type: l.typ, Subject: l.subject, Name: l.name, Phone: l.phone, Email: l.email, Comment: l.comment,
			SID: l.s.sid, UUID: l.s.v.uuid, CreatedAt: &at}
		if _, err := leads.Create(ctx, db, counterID, in, "site", at.Add(2*time.Second)); err != nil {
			return fmt.Errorf("demo: lead of session %s: %w", l.s.sid, err)
		}
	}
	return nil
}

// CRM files. Dates are the counter's local time, as CRMs write them.
const crmTime = "2006-01-02 15:04:05"

// orders loads the CRM side through the import paths: the status mapping;
// the customers' cards (Metrica contacts); the K50 feed of orders that
// carry site ids or the caller's phone; Metrica simple orders for those
// that carry the customer's client id, phone, e-mail or their md5, with
// statuses; and then the statuses of the K50 orders, which that feed has
// no column for, as a simple-orders UPDATE (it keeps their keys; their
// intake becomes the update's).
func orders(ctx context.Context, db *store.DB, counterID int64, loc *time.Location, w *world) error {
	if err := crm.SaveStatuses(ctx, db, counterID, append([]crm.Status(nil), statusMapping...), true); err != nil {
		return fmt.Errorf("demo: order statuses: %w", err)
	}
	local := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format(crmTime)
	}
	// Money in major units; the K50 feed gets the decimal comma Russian
	// CRMs export.
	money := func(kopecks int64, point string) string {
		if kopecks == 0 {
			return ""
		}
		return fmt.Sprintf("%d%s%02d", kopecks/100, point, kopecks%100)
	}

	contacts := [][]string{{"uniq_id", "name", "client_ids"}}
	for _, c := range w.contacts {
		contacts = append(contacts, []string{c.id, c.name, c.clientID})
	}
	k50 := [][]string{{"date", "orderId", "callerPhone", "sid", "uuid", "amount", "margin", "revenue", "comment", "type"}}
	simple := [][]string{{"id", "create_date_time", "client_uniq_id", "client_ids", "phones", "emails", "phones_md5",
		"order_status", "revenue", "cost", "finish_date_time", "user_comment"}}
	statuses := [][]string{{"id", "create_date_time", "client_ids", "order_status", "cost", "finish_date_time"}}
	for _, o := range w.orders {
		if o.feed == "k50" {
			typ := "offline"
			if o.online {
				typ = "online"
			}
			k50 = append(k50, []string{local(o.created), o.id, o.callerPhone, o.sid, o.uuid, strconv.Itoa(o.items), "",
				money(o.revenue, ","), o.comment, typ})
			statuses = append(statuses, []string{o.id, local(o.created), "", o.status, money(o.cost, "."), local(o.finished)})
			continue
		}
		contactID := ""
		if o.contact != nil {
			contactID = o.contact.id
		}
		simple = append(simple, []string{o.id, local(o.created), contactID, o.clientID, o.phone, o.email, o.phoneMD5,
			o.status, money(o.revenue, "."), money(o.cost, "."), local(o.finished), o.comment})
	}
	imports := []struct {
		name   string
		intake crm.Intake
		mode   crm.MergeMode
		rows   [][]string
		comma  rune
	}{
		{"contacts.csv", crm.ContactsUp, crm.Save, contacts, ','},
		{"orders-k50.csv", crm.K50Feed, crm.Save, k50, ';'},
		{"simple-orders.csv", crm.SimpleOrders, crm.Save, simple, ','},
		{"k50-statuses.csv", crm.SimpleOrders, crm.Update, statuses, ','},
	}
	for _, im := range imports {
		var buf bytes.Buffer
		cw := csv.NewWriter(&buf)
		cw.Comma = im.comma
		if err := cw.WriteAll(im.rows); err != nil {
			return fmt.Errorf("demo: %s: %w", im.name, err)
		}
		data := buf.Bytes()
		open := func() (crm.RowReader, error) {
			if im.intake == crm.K50Feed {
				return crm.NewK50Reader(bytes.NewReader(data), loc, nil)
			}
			return crm.NewMetricaCSVReader(bytes.NewReader(data), crm.MetricaFormat{Intake: im.intake, Location: loc})
		}
		res, err := crm.Import(ctx, db, counterID, crm.Options{Intake: im.intake, Format: "CSV", Source: "CLI", Origin: "demo/" + im.name, Mode: im.mode}, open)
		if err != nil {
			return fmt.Errorf("demo: import %s: %w", im.name, err)
		}
		if res.Rejected > 0 {
			return fmt.Errorf("demo: import %s: %d rows rejected: %v", im.name, res.Rejected, res.Errors[0])
		}
	}
	return nil
}

// adCosts uploads the ad networks' statistics as the costs API does.
func adCosts(ctx context.Context, db *store.DB, counterID int64, w *world) error {
	rows := append([]costs.Row(nil), w.costs...) // ImportRows normalises in place
	if _, err := costs.ImportRows(ctx, db, counterID, rows); err != nil {
		return fmt.Errorf("demo: ad costs: %w", err)
	}
	return nil
}

// demoCounters finds the counters a previous demo left.
func demoCounters(ctx context.Context, db *store.DB) ([]int64, error) {
	rows, err := db.Reader().QueryContext(ctx, `SELECT id FROM counters WHERE domain = $1 ORDER BY id`, Domain)
	if err != nil {
		return nil, fmt.Errorf("demo: find the demo counter: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("demo: find the demo counter: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
