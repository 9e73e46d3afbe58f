package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

type costsResult struct {
	Read       int `json:"rows_read"`
	Inserted   int
	Updated    int
	Unchanged  int
	Duplicates int
	Rejected   int
	Errors     []struct {
		Line    int
		Column  string
		Message string
	}
}

type costsError struct {
	Error struct {
		Code, Message, Field string
		Line                 int
		Rejected             int
		Errors               []struct {
			Line            int
			Column, Message string
		}
	}
}

func (f *fixture) postCosts(t *testing.T, query, contentType, body string) response {
	t.Helper()
	return f.do(t, "POST", "/api/v1/counters/"+id(f.a)+"/costs"+query, f.tokA, strings.NewReader(body), "Content-Type", contentType)
}

func TestCostsCSVUpload(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		file := "\ufeffДата;utm_source;utm_medium;utm_campaign;utm_term;cost;clicks;impressions\r\n" +
			"01.03.2024;Yandex;cpc;\"sale; spring\";диван;1 234,50;120;4000\r\n" +
			"01.03.2024;google;cpc;brand;;99,90;7;\r\n"
		// The Russian "Дата" is not a date column: the file is refused, naming it.
		r := f.postCosts(t, "", "text/csv", file)
		var e costsError
		decode(t, r.body, &e)
		if r.status != 400 || e.Error.Code != "bad_request" || e.Error.Field != "date" || !strings.Contains(e.Error.Message, "required column date or day is missing") {
			t.Fatalf("missing column: %d %s", r.status, r.body)
		}

		file = strings.Replace(file, "Дата", "Date", 1)
		r = f.postCosts(t, "", "text/csv; charset=utf-8", file)
		var res costsResult
		decode(t, r.body, &res)
		if r.status != 200 || res.Read != 2 || res.Inserted != 2 || len(res.Errors) != 0 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		r = f.postCosts(t, "", "text/csv", file)
		decode(t, r.body, &res)
		if r.status != 200 || res.Unchanged != 2 || res.Inserted+res.Updated != 0 {
			t.Fatalf("re-upload: %d %s", r.status, r.body)
		}

		// A bad row refuses the file, with every bad row's line and column.
		bad := "date,source,medium,campaign,cost\n2024-03-02,yandex,cpc,c,1\n2024-03-02,yandex,cpc,d,-1\n2024-13-02,vk,cpc,c,1\n"
		r = f.postCosts(t, "", "text/csv", bad)
		e = costsError{}
		decode(t, r.body, &e)
		if r.status != 400 || e.Error.Field != "cost" || e.Error.Line != 3 || e.Error.Rejected != 2 || len(e.Error.Errors) != 2 ||
			e.Error.Errors[1].Line != 4 || e.Error.Errors[1].Column != "date" || !strings.Contains(e.Error.Message, "nothing applied") {
			t.Fatalf("strict: %d %s", r.status, r.body)
		}
		r = f.api(t, "GET", "/costs?from=2024-03-02", "")
		if !strings.Contains(string(r.body), `"costs":[]`) {
			t.Fatalf("a refused file left rows: %s", r.body)
		}
		r = f.postCosts(t, "?skip_bad_rows=true", "text/csv", bad)
		res = costsResult{}
		decode(t, r.body, &res)
		if r.status != 200 || res.Inserted != 1 || res.Rejected != 2 || len(res.Errors) != 2 || res.Errors[0].Line != 3 {
			t.Fatalf("skip_bad_rows: %d %s", r.status, r.body)
		}
		if r := f.postCosts(t, "?skip_bad_rows=maybe", "text/csv", bad); r.status != 400 || r.errorCode(t) != "bad_request" {
			t.Errorf("skip_bad_rows=maybe: %d %s", r.status, r.body)
		}
		if r := f.postCosts(t, "", "application/xml", "<costs/>"); r.status != 415 || r.errorCode(t) != "unsupported_media_type" {
			t.Errorf("XML: %d %s", r.status, r.body)
		}
		if r := f.postCosts(t, "", "text/csv", ""); r.status != 400 || !strings.Contains(string(r.body), "the file is empty") {
			t.Errorf("empty CSV: %d %s", r.status, r.body)
		}

		r = f.api(t, "GET", "/costs?from=2024-03-01&to=2024-03-01", "")
		var list struct {
			Costs []struct {
				Day, Source, Campaign, Term, Currency string
				Cost                                  json.Number
				Clicks, Impressions                   int64
			}
		}
		decode(t, r.body, &list)
		if r.status != 200 || len(list.Costs) != 2 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		y := list.Costs[1]
		if y.Source != "yandex" || y.Campaign != "sale; spring" || y.Term != "диван" || y.Cost != "1234.50" || y.Clicks != 120 || y.Impressions != 4000 || y.Currency != "RUB" {
			t.Errorf("stored row: %+v", y)
		}
		if !strings.Contains(string(r.body), `"cost":99.90`) {
			t.Errorf("costs are exact decimals in major units: %s", r.body)
		}
	})
}

func TestCostsJSON(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		body := `{"costs": [
			{"day": "2024-03-01", "source": "yandex", "medium": "cpc", "campaign": "c1", "cost": 1500.5, "clicks": 30, "impressions": 900},
			{"day": "2024-03-02", "source": "yandex", "medium": "cpc", "campaign": "c1", "cost": "1 500,00", "currency": "usd"}
		]}`
		r := f.api(t, "POST", "/costs", body) // no Content-Type: JSON, as elsewhere in the API
		var res costsResult
		decode(t, r.body, &res)
		if r.status != 200 || res.Inserted != 2 {
			t.Fatalf("JSON upload: %d %s", r.status, r.body)
		}
		r = f.postCosts(t, "", "application/json", body)
		decode(t, r.body, &res)
		if r.status != 200 || res.Unchanged != 2 {
			t.Fatalf("JSON re-upload: %d %s", r.status, r.body)
		}

		for _, c := range []struct {
			name, body, field string
			status            int
			line              int
		}{
			{"no costs", `{}`, "costs", 400, 0},
			{"unknown field at the top", `{"costs": [], "rows": []}`, "rows", 400, 0},
			{"unknown field in a row", `{"costs": [{"day": "2024-03-01", "source": "y", "cost": 1, "spend": 1}]}`, "spend", 400, 0},
			{"clicks not a number", `{"costs": [{"day": "2024-03-01", "source": "y", "cost": 1, "clicks": "many"}]}`, "costs.clicks", 400, 0},
			{"row not an object", `{"costs": [1]}`, "costs", 400, 0},
			{"malformed", `{"costs": [`, "", 400, 0},
			{"bad day", `{"costs": [{"day": "2024-03-01", "source": "y", "cost": 1}, {"day": "yesterday", "source": "y", "cost": 1}]}`, "day", 400, 2},
			{"no source", `{"costs": [{"day": "2024-03-01", "cost": 1}]}`, "source", 400, 1},
			{"no cost", `{"costs": [{"day": "2024-03-01", "source": "y"}]}`, "cost", 400, 1},
			{"negative cost", `{"costs": [{"day": "2024-03-01", "source": "y", "cost": -10}]}`, "cost", 400, 1},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := f.api(t, "POST", "/costs", c.body)
				var e costsError
				decode(t, r.body, &e)
				if r.status != c.status || e.Error.Code != "bad_request" || e.Error.Field != c.field || e.Error.Line != c.line {
					t.Fatalf("%d %s", r.status, r.body)
				}
			})
		}
		r = f.api(t, "GET", "/costs", "")
		if n := strings.Count(string(r.body), `"day"`); n != 2 {
			t.Errorf("refused uploads left rows: %s", r.body)
		}
	})
}

func TestCostsListAndTenants(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var b strings.Builder
		b.WriteString("date,source,medium,campaign,cost\n")
		for d := 1; d <= 9; d++ {
			fmt.Fprintf(&b, "2024-03-%02d,yandex,cpc,c,%d\n", d, d)
		}
		if r := f.postCosts(t, "", "text/csv", b.String()); r.status != 200 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		for query, n := range map[string]int{"": 9, "?from=2024-03-03": 7, "?to=2024-03-03": 3, "?from=2024-03-03&to=2024-03-05": 3, "?from=05.03.2024&to=05.03.2024": 1} {
			r := f.api(t, "GET", "/costs"+query, "")
			if got := strings.Count(string(r.body), `"day"`); r.status != 200 || got != n {
				t.Errorf("GET costs%s: %d rows: %s", query, got, r.body)
			}
		}
		for query, field := range map[string]string{"?from=March": "from", "?to=2024-02-30": "to", "?from=2024-03-05&to=2024-03-01": "to"} {
			r := f.api(t, "GET", "/costs"+query, "")
			var e costsError
			decode(t, r.body, &e)
			if r.status != 400 || e.Error.Field != field {
				t.Errorf("GET costs%s: %d %s", query, r.status, r.body)
			}
		}

		// Counter B's token sees nothing of A's costs and cannot write them.
		pathA := "/api/v1/counters/" + id(f.a) + "/costs"
		if r := f.do(t, "GET", pathA, f.tokB, nil); r.status != 404 || r.errorCode(t) != "not_found" {
			t.Errorf("B reads A's costs: %d %s", r.status, r.body)
		}
		if r := f.do(t, "POST", pathA, f.tokB, strings.NewReader("date,source,medium,campaign,cost\n2024-03-01,evil,cpc,c,0\n"), "Content-Type", "text/csv"); r.status != 404 {
			t.Errorf("B writes A's costs: %d %s", r.status, r.body)
		}
		if r := f.do(t, "GET", pathA, "", nil); r.status != 401 {
			t.Errorf("no token: %d %s", r.status, r.body)
		}
		r := f.do(t, "GET", "/api/v1/counters/"+id(f.b)+"/costs", f.tokB, nil)
		if r.status != 200 || string(r.body) != "{\"costs\":[]}\n" {
			t.Errorf("B's own costs: %d %s", r.status, r.body)
		}
		if r := f.api(t, "GET", "/costs?from=2024-03-01&to=2024-03-01", ""); strings.Contains(string(r.body), "evil") {
			t.Errorf("B's upload reached A: %s", r.body)
		}
	})
}

// A CSV may be as large as the import limit, past the JSON API's limit; a
// JSON body keeps the JSON limit.
func TestCostsBodyLimits(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	f := newFixtureWith(t, db, Config{MaxBody: 2 << 10, Imports: ImportsConfig{MaxBytes: 64 << 10}})
	var b strings.Builder
	b.WriteString("date,source,medium,campaign,cost\n")
	for i := 0; b.Len() < 16<<10; i++ {
		fmt.Fprintf(&b, "2024-03-01,yandex,cpc,campaign-%d,%d\n", i, i)
	}
	if r := f.postCosts(t, "", "text/csv", b.String()); r.status != 200 {
		t.Fatalf("16 KiB CSV under a 64 KiB import limit: %d %s", r.status, r.body)
	}
	for b.Len() < 80<<10 {
		b.WriteString("2024-03-02,yandex,cpc,c,1\n")
	}
	if r := f.postCosts(t, "", "text/csv", b.String()); r.status != 413 || r.errorCode(t) != "payload_too_large" {
		t.Errorf("80 KiB CSV: %d %s", r.status, r.body)
	}
	big := `{"costs": [{"day": "2024-03-01", "source": "y", "cost": 1, "campaign": "` + strings.Repeat("x", 3<<10) + `"}]}`
	if r := f.postCosts(t, "", "application/json", big); r.status != 413 || r.errorCode(t) != "payload_too_large" {
		t.Errorf("3 KiB JSON under a 2 KiB JSON limit: %d %s", r.status, r.body)
	}
	// The raised limit is this route's alone.
	if r := f.api(t, "PATCH", "", `{"name": "`+strings.Repeat("x", 3<<10)+`"}`); r.status != 413 {
		t.Errorf("another route's limit: %d %s", r.status, r.body)
	}
}
