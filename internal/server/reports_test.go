package server

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/reports"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func TestReportAndOrderPathAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// The worker looks at the queue when kicked (or in an hour).
		f := newFixtureWith(t, db, Config{MatchPoll: time.Hour})
		if n := time.Now().In(f.a.Location()); n.Hour() == 23 && n.Minute() == 59 {
			time.Sleep(61 * time.Second) // the order, a minute after the visit, must fall on the same day
		}
		visitor := "2d9f3ae5-6c1f-4c9b-8b8f-4a1b2c3d4e5f"
		sid := f.visit(t, visitor, "https://www.a.example.ru/?utm_source=Yandex&utm_medium=cpc&utm_campaign=boots")
		if sid == "" {
			t.Fatal("no session")
		}
		loc := f.a.Location()
		now := time.Now().In(loc)
		placed := now.Add(time.Minute).Format("02.01.2006 15:04")
		f.uploadSimple(t, "id,create_date_time,client_ids,order_status,revenue\nA-1,"+placed+","+visitor+",PAID,1200\n")

		// Not matched yet: the path says it waits.
		var path struct {
			OrderID  string `json:"order_id"`
			Rung     string
			Queued   bool
			Evidence []struct{ Rung, Key, Value, Kind, Ref string }
			Touches  []struct {
				Kind, Ref string
				Traffic   struct{ Source, Medium, Campaign string }
				Weights   map[string]float64
			}
		}
		r := f.api(t, "GET", "/orders/A-1/path", "")
		decode(t, r.body, &path)
		if r.status != 200 || !path.Queued || path.Rung != "" || path.OrderID != "A-1" {
			t.Fatalf("path before matching: %d %s", r.status, r.body)
		}
		// A new lookback window re-matches every order, now.
		if r := f.api(t, "PATCH", "", `{"lookback_days": 90}`); r.status != 200 {
			t.Fatalf("patch lookback: %d %s", r.status, r.body)
		}
		waitFor(t, func() bool {
			r := f.api(t, "GET", "/orders/A-1/path", "")
			decode(t, r.body, &path)
			return path.Rung != ""
		})
		if path.Rung != "uuid" || path.Queued || len(path.Evidence) != 1 || path.Evidence[0].Value != visitor ||
			len(path.Touches) != 1 || path.Touches[0].Ref != sid || path.Touches[0].Weights["last_non_direct"] != 1 {
			t.Fatalf("path: %+v", path)
		}

		day := now.Format("2006-01-02")
		q := "/reports/end-to-end?from=" + day + "&to=" + day
		var rep struct {
			Rows []struct {
				Dims map[string]string
				reports.Metrics
			}
			Totals  reports.Metrics
			Quality []struct {
				Rung   string
				Orders int
			}
		}
		r = f.api(t, "GET", q, "")
		decode(t, r.body, &rep)
		if r.status != 200 || len(rep.Rows) != 1 || rep.Rows[0].Dims["source"] != "yandex" || rep.Rows[0].Sessions != 1 ||
			rep.Rows[0].OrdersPaid != 1 || rep.Rows[0].Revenue != "1200.00" {
			t.Fatalf("report: %d %s", r.status, r.body)
		}
		r = f.api(t, "GET", "/reports/daily?from="+day+"&to="+day+"&model=linear", "")
		if r.status != 200 || !strings.Contains(string(r.body), `"day":"`+day+`"`) || !strings.Contains(string(r.body), `"orders_paid":1`) {
			t.Fatalf("daily: %d %s", r.status, r.body)
		}

		// The orders API says how each order was matched and whom it credits.
		var orders struct {
			Orders []struct {
				ID    string
				Match *struct {
					Rung, Model string
					Traffic     struct{ Source, Medium, Campaign string }
					Weight      float64
				}
			}
		}
		r = f.api(t, "GET", "/orders?matched=true", "")
		decode(t, r.body, &orders)
		if len(orders.Orders) != 1 || orders.Orders[0].Match == nil || orders.Orders[0].Match.Rung != "uuid" ||
			orders.Orders[0].Match.Traffic.Source != "yandex" || orders.Orders[0].Match.Traffic.Campaign != "boots" || orders.Orders[0].Match.Weight != 1 {
			t.Fatalf("matched orders: %s", r.body)
		}
		if r = f.api(t, "GET", "/orders?matched=false", ""); !strings.Contains(string(r.body), `"orders":[]`) {
			t.Errorf("unmatched orders: %s", r.body)
		}
		r = f.api(t, "GET", "/orders?format=csv&model=first_click", "")
		if lines := strings.Split(strings.TrimSpace(string(r.body)), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[0], ",match_rung,model,traffic_type,source,medium,campaign,content,term,weight") ||
			!strings.HasSuffix(lines[1], ",uuid,first_click,ad,yandex,cpc,boots,,,1") {
			t.Errorf("orders CSV: %s", r.body)
		}
		// The export pages through every order (here two pages), and a text
		// cell a spreadsheet would run as a formula is kept text.
		evil := "5e0c7a2f-1b2c-4d3e-8f4a-5b6c7d8e9f00"
		if f.visit(t, evil, "https://www.a.example.ru/?utm_source=vk&utm_medium=cpc&utm_campaign="+url.QueryEscape(`=HYPERLINK("http://x.ru")`)) == "" {
			t.Fatal("no session")
		}
		var many strings.Builder
		many.WriteString("id,create_date_time,client_ids,order_status,revenue\n")
		for i := range 600 {
			fmt.Fprintf(&many, "B-%03d,%s,%s,PAID,5\n", i, placed, evil)
		}
		f.uploadSimple(t, many.String())
		if r := f.api(t, "PATCH", "", `{"lookback_days": 91}`); r.status != 200 { // matches now (the poll is an hour here)
			t.Fatalf("patch lookback: %d %s", r.status, r.body)
		}
		var csvRows [][]string
		waitFor(t, func() bool {
			r := f.api(t, "GET", "/orders?format=csv", "")
			var err error
			if csvRows, err = csv.NewReader(bytes.NewReader(r.body)).ReadAll(); err != nil {
				t.Fatalf("orders CSV: %v", err)
			}
			n := 0
			for _, row := range csvRows {
				if row[26] == `'=HYPERLINK("http://x.ru")` { // campaign
					n++
				}
			}
			return n == 600
		})
		if len(csvRows) != 602 {
			t.Errorf("orders CSV: %d lines, want a header and 601 orders", len(csvRows))
		}
		for _, bad := range []string{"/orders?matched=perhaps", "/orders?model=best"} {
			if r := f.api(t, "GET", bad, ""); r.status != 400 {
				t.Errorf("%s: %d", bad, r.status)
			}
		}

		for _, c := range []struct{ query, field string }{
			{"/reports/end-to-end", "from"},
			{"/reports/end-to-end?from=" + day + "&to=" + day + "&group=city", "group"},
			{"/reports/end-to-end?from=" + day + "&to=" + day + "&model=" + url.QueryEscape("best one"), "model"},
			{"/reports/daily?from=2020-01-01&to=" + day, "to"},
		} {
			r := f.api(t, "GET", c.query, "")
			if r.status != 400 || r.errorCode(t) != "bad_request" || !strings.Contains(string(r.body), `"field":"`+c.field+`"`) {
				t.Errorf("%s: %d %s", c.query, r.status, r.body)
			}
		}
		if r := f.api(t, "GET", "/orders/nope/path", ""); r.status != 404 {
			t.Errorf("path of an unknown order: %d", r.status)
		}
		// The offline conversions file: no Direct click in this visit, so
		// only the header; bad parameters are refused.
		r = f.api(t, "GET", "/exports/metrica-offline-conversions?goal=paid&target=crm_paid", "")
		if r.status != 200 || string(r.body) != "Yclid,Target,DateTime,Price,Currency\n" || r.header.Get("Content-Type") != "text/csv; charset=utf-8" {
			t.Errorf("offline conversions: %d %q", r.status, r.body)
		}
		for _, c := range []struct{ query, field string }{{"goal=bought", "goal"}, {"target=a%20b", "target"}, {"max_age_days=x", "max_age_days"}, {"max_age_days=200000", "max_age_days"}, {"from=yesterday", "from"}} {
			r := f.api(t, "GET", "/exports/metrica-offline-conversions?"+c.query, "")
			if r.status != 400 || !strings.Contains(string(r.body), `"field":"`+c.field+`"`) {
				t.Errorf("offline conversions ?%s: %d %s", c.query, r.status, r.body)
			}
		}
		// Another tenant's token sees none of it.
		for _, p := range []string{q, "/reports/daily?from=" + day + "&to=" + day, "/orders/A-1/path", "/exports/metrica-offline-conversions"} {
			if r := f.do(t, "GET", "/api/v1/counters/"+id(f.a)+p, f.tokB, nil); r.status != 404 {
				t.Errorf("B's token on A's %s: %d", p, r.status)
			}
		}
		if r := f.do(t, "GET", "/api/v1/counters/"+id(f.b)+"/orders/A-1/path", f.tokB, nil); r.status != 404 {
			t.Errorf("A's order through B's counter: %d %s", r.status, r.body)
		}
	})
}
