package costs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func newCounter(t *testing.T, db *store.DB, domain string) int64 {
	t.Helper()
	c, _, err := counter.Create(context.Background(), db, counter.NewCounter{Name: domain, Domain: domain})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func importCSV(t *testing.T, db *store.DB, counterID int64, text string, skip bool) (*Result, error) {
	t.Helper()
	return Import(context.Background(), db, counterID, strings.NewReader(text), skip)
}

func mustImport(t *testing.T, db *store.DB, counterID int64, text string) *Result {
	t.Helper()
	res, err := importCSV(t, db, counterID, text, false)
	if err != nil {
		t.Fatalf("import: %v (%+v)", err, res)
	}
	return res
}

func list(t *testing.T, db *store.DB, counterID int64, from, to string) []Row {
	t.Helper()
	rows, err := List(context.Background(), db, counterID, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func counts(r *Result) string {
	return fmt.Sprintf("read %d, inserted %d, updated %d, unchanged %d, duplicates %d, rejected %d",
		r.Read, r.Inserted, r.Updated, r.Unchanged, r.Duplicates, r.Rejected)
}

// A file as an ad platform's export comes: a BOM, ';', CRLF, upper-case and
// utm_ headers, decimal commas with grouped thousands, a quoted campaign
// holding ';', dates in both notations and with a time, a column we do not
// know, a blank line.
const realistic = "\ufeffDate;UTM_Source;utm_medium;utm_campaign;utm_content;Keyword;Cost;Clicks;Impressions;Account\r\n" +
	"01.03.2024;Yandex;CPC;\"spring; sale\";banner-1;купить диван;1 234,50;120;4000;acc-1\r\n" +
	"2024-03-01;google;cpc;brand;;;99.9;7;;acc-2\r\n" +
	"\r\n" +
	"2024-03-02 00:00:00; yandex ;cpc;\"spring; sale\";banner-1;купить диван;0;0;15;acc-1\r\n" +
	"2024-03-03T10:00:00+03:00;vk;social;Весна;;;500;;;acc-3\r\n"

func TestImportRealisticFile(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		id := newCounter(t, db, "shop.ru")
		res := mustImport(t, db, id, realistic)
		if got := counts(res); got != "read 4, inserted 4, updated 0, unchanged 0, duplicates 0, rejected 0" {
			t.Fatalf("first import: %s", got)
		}
		want := []Row{
			{Day: "2024-03-01", Source: "google", Medium: "cpc", Campaign: "brand", Cost: 9990, Clicks: 7, Currency: "RUB"},
			{Day: "2024-03-01", Source: "yandex", Medium: "cpc", Campaign: "spring; sale", Content: "banner-1", Term: "купить диван",
				Cost: 123450, Clicks: 120, Impressions: 4000, Currency: "RUB"},
			{Day: "2024-03-02", Source: "yandex", Medium: "cpc", Campaign: "spring; sale", Content: "banner-1", Term: "купить диван",
				Impressions: 15, Currency: "RUB"},
			{Day: "2024-03-03", Source: "vk", Medium: "social", Campaign: "Весна", Cost: 50000, Currency: "RUB"},
		}
		got := list(t, db, id, "", "")
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("stored:\n%+v\nwant:\n%+v", got, want)
		}

		// The same file again changes nothing, not even imported_at.
		lastImport := func() time.Time {
			var at time.Time
			if err := db.Reader().QueryRow(`SELECT MAX(imported_at) FROM ad_costs`).Scan(&at); err != nil {
				t.Fatal(err)
			}
			return at
		}
		before := lastImport()
		res = mustImport(t, db, id, realistic)
		if got := counts(res); got != "read 4, inserted 0, updated 0, unchanged 4, duplicates 0, rejected 0" {
			t.Fatalf("re-import: %s", got)
		}
		if after := lastImport(); !after.Equal(before) {
			t.Errorf("re-import touched imported_at: %s → %s", before, after)
		}

		// A changed row updates its key; a new key is inserted; the others
		// stay as they were (a file need not repeat every day).
		res = mustImport(t, db, id, "date,source,medium,campaign,cost,clicks,currency\n"+
			"2024-03-01,GOOGLE,cpc,brand,120.00,9,rub\n"+
			"2024-03-04,google,cpc,brand,10,1,\n")
		if got := counts(res); got != "read 2, inserted 1, updated 1, unchanged 0, duplicates 0, rejected 0" {
			t.Fatalf("changed file: %s", got)
		}
		got = list(t, db, id, "2024-03-01", "2024-03-01")
		if len(got) != 2 || got[0].Source != "google" || got[0].Cost != 12000 || got[0].Clicks != 9 || got[0].Impressions != 0 {
			t.Fatalf("after the update: %+v", got)
		}
		if n := len(list(t, db, id, "", "")); n != 5 {
			t.Errorf("%d rows after the update, want 5", n)
		}
		if !lastImport().After(before) {
			t.Errorf("the update left imported_at at %s", before)
		}
	})
}

func TestDuplicateKeysInOneFile(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		id := newCounter(t, db, "shop.ru")
		// Keys compare after normalisation: "Yandex " is yandex.
		file := "date\tsource\tmedium\tcampaign\tcost\n" +
			"2024-03-01\tyandex\tcpc\tc1\t10\n" +
			"2024-03-01\tgoogle\tcpc\tc1\t20\n" +
			"01.03.2024\tYandex \tCPC\tc1\t30\n"
		res := mustImport(t, db, id, file)
		if got := counts(res); got != "read 3, inserted 2, updated 0, unchanged 0, duplicates 1, rejected 0" {
			t.Fatalf("import: %s", got)
		}
		rows := list(t, db, id, "", "")
		if len(rows) != 2 || rows[1].Source != "yandex" || rows[1].Cost != 3000 {
			t.Fatalf("the later row must win: %+v", rows)
		}
		// Re-sending it changes nothing: the earlier row never reaches the table.
		res = mustImport(t, db, id, file)
		if got := counts(res); got != "read 3, inserted 0, updated 0, unchanged 2, duplicates 1, rejected 0" {
			t.Fatalf("re-import: %s", got)
		}
		// Campaign, content and term keep their case: they are other keys.
		res = mustImport(t, db, id, "date,source,medium,campaign,cost\n2024-03-01,yandex,cpc,C1,40\n")
		if res.Inserted != 1 {
			t.Errorf("campaign C1 vs c1: %s", counts(res))
		}
	})
}

// More rows than one staging statement holds, with keys repeated across
// statements: the later row still wins, and a re-import is unchanged.
func TestLargeImport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		id := newCounter(t, db, "shop.ru")
		var b strings.Builder
		b.WriteString("date,source,medium,campaign,cost,clicks\n")
		day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 1500 {
			fmt.Fprintf(&b, "%s,yandex,cpc,c%d,%d.%02d,%d\n", day.AddDate(0, 0, i%300).Format(time.DateOnly), i%4, i, i%100, i)
		}
		for i := range 300 { // the same keys again, later: cost 1.00
			fmt.Fprintf(&b, "%s,yandex,cpc,c%d,1,1\n", day.AddDate(0, 0, i%300).Format(time.DateOnly), i%4)
		}
		res := mustImport(t, db, id, b.String())
		// 300 days × the 4 campaigns that day i%4 meets: days repeat every
		// 300 rows and 300 is a multiple of 4, so each day has one campaign.
		if got := counts(res); got != "read 1800, inserted 300, updated 0, unchanged 0, duplicates 1500, rejected 0" {
			t.Fatalf("import: %s", got)
		}
		for _, r := range list(t, db, id, "", "") {
			if r.Cost != 100 || r.Clicks != 1 {
				t.Fatalf("an earlier row won: %+v", r)
			}
		}
		res = mustImport(t, db, id, b.String())
		if got := counts(res); got != "read 1800, inserted 0, updated 0, unchanged 300, duplicates 1500, rejected 0" {
			t.Fatalf("re-import: %s", got)
		}
	})
}

func TestBadRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		id := newCounter(t, db, "shop.ru")
		file := "date;utm_source;utm_medium;utm_campaign;cost;clicks;impressions;currency\n" +
			"2024-03-01;yandex;cpc;c1;100;1;10;\n" + // line 2: good
			"2024-02-30;yandex;cpc;c1;100;1;10;\n" + // 3: no such day
			"2024-03-01;;cpc;c2;100;1;10;\n" + // 4: no source
			"2024-03-01;yandex;cpc;c3;-5;1;10;\n" + // 5: negative cost
			"2024-03-01;yandex;cpc;c4;;1;10;\n" + // 6: no cost
			"2024-03-01;yandex;cpc;c5;12abc;1;10;\n" + // 7: not a number
			"2024-03-01;yandex;cpc;c6;1;1.5;10;\n" + // 8: half a click
			"2024-03-01;yandex;cpc;c7;1;1;-3;\n" + // 9: negative impressions
			"2024-03-01;yandex;cpc;c8;1;1;1;рубли\n" + // 10: not a currency
			"2024-03-01;yandex;cpc;\xff\xfe;1;1;1;\n" + // 11: not UTF-8
			"2024-03-01;yandex;cpc;\"c\"9\";1;1;1;\n" + // 12: malformed CSV
			"2024-03-02;google;cpc;c1;2,50;;;usd\n" // 13: good
		res, err := importCSV(t, db, id, file, false)
		var rejected *crm.RejectedError
		if !errors.As(err, &rejected) || rejected.Rejected != 10 {
			t.Fatalf("strict import: %v", err)
		}
		want := []string{
			`line 3, column date: "2024-02-30" is not a real date`,
			"line 4, column utm_source: is empty",
			`line 5, column cost: "-5" is negative`,
			"line 6, column cost: is empty",
			`line 7, column cost: "12abc" is not a number`,
			`line 8, column clicks: "1.5" is not a whole number`,
			`line 9, column impressions: "-3" is negative`,
			`line 10, column currency: "рубли" is not an ISO 4217 currency code`,
			"line 11, column utm_campaign: is not valid UTF-8",
			"line 12: malformed CSV",
		}
		if len(res.Errors) != len(want) {
			t.Fatalf("errors: %+v", res.Errors)
		}
		for i, w := range want {
			if e := res.Errors[i].Error(); !strings.HasPrefix(e, w) {
				t.Errorf("error %d: %q, want it to start with %q", i, e, w)
			}
		}
		if res.Read != 12 || res.Inserted != 0 {
			t.Errorf("strict: %s", counts(res))
		}
		if n := len(list(t, db, id, "", "")); n != 0 {
			t.Fatalf("a strict import with bad rows applied %d rows", n)
		}

		res, err = importCSV(t, db, id, file, true)
		if err != nil || counts(res) != "read 12, inserted 2, updated 0, unchanged 0, duplicates 0, rejected 10" || len(res.Errors) != 10 {
			t.Fatalf("lenient import: %v %s", err, counts(res))
		}
		rows := list(t, db, id, "", "")
		if len(rows) != 2 || rows[1].Currency != "USD" || rows[1].Cost != 250 {
			t.Errorf("lenient import stored %+v", rows)
		}
	})
}

func TestFileErrors(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	id := newCounter(t, db, "shop.ru")
	for _, c := range []struct {
		name, file, column, message string
	}{
		{"empty", "", "", "the file is empty"},
		{"no cost column", "date,source,medium,campaign,clicks\n2024-03-01,y,cpc,c,1\n", "cost", "required column cost is missing"},
		{"no date and no campaign", "source;medium;cost\ny;cpc;1\n", "date", "required column date or day, campaign or utm_campaign is missing"},
		{"column twice", "date,source,medium,campaign,cost,cost\n", "cost", "appears twice"},
		{"two spellings", "date,source,utm_source,medium,campaign,cost\n", "utm_source", "columns source and utm_source both give the source"},
		{"header not UTF-8", "date,source,medium,campaign,cost,\xff\n", "", "not valid UTF-8"},
		{"quote never closed", "date,source,medium,campaign,cost\n2024-03-01,y,cpc,\"c,1\n2024-03-02,y,cpc,c,1\n", "", "line 2: a quoted field is not closed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := importCSV(t, db, id, c.file, true)
			var fe *crm.FileError
			if !errors.As(err, &fe) || fe.Column != c.column || !strings.Contains(fe.Message, c.message) {
				t.Fatalf("got %v (%#v), want column %q and %q", err, fe, c.column, c.message)
			}
		})
	}
}

func TestImportRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		id := newCounter(t, db, "shop.ru")
		var req struct{ Costs []Row }
		err := json.Unmarshal([]byte(`{"costs": [
			{"day": "2024-03-01", "source": "Yandex", "medium": "cpc", "campaign": "c1", "cost": 1234.5, "clicks": 10, "impressions": 100},
			{"day": "02.03.2024", "source": "yandex", "medium": "cpc", "campaign": "c1", "term": "диван", "cost": "99,90", "currency": "eur"}
		]}`), &req)
		if err != nil {
			t.Fatal(err)
		}
		res, err := ImportRows(context.Background(), db, id, req.Costs)
		if err != nil || counts(res) != "read 2, inserted 2, updated 0, unchanged 0, duplicates 0, rejected 0" {
			t.Fatalf("import: %v %s", err, counts(res))
		}
		rows := list(t, db, id, "", "")
		out, _ := json.Marshal(rows)
		want := `[{"day":"2024-03-01","source":"yandex","medium":"cpc","campaign":"c1","content":"","term":"","cost":1234.50,"clicks":10,"impressions":100,"currency":"RUB"},` +
			`{"day":"2024-03-02","source":"yandex","medium":"cpc","campaign":"c1","content":"","term":"диван","cost":99.90,"clicks":0,"impressions":0,"currency":"EUR"}]`
		if string(out) != want {
			t.Fatalf("as JSON:\n%s\nwant:\n%s", out, want)
		}

		// Bad rows are named by their index and field; nothing is applied.
		err = json.Unmarshal([]byte(`{"costs": [
			{"day": "2024-03-03", "source": "vk", "cost": 1},
			{"day": "2024-13-01", "source": "vk", "cost": 1},
			{"day": "2024-03-03", "source": " ", "cost": 1},
			{"day": "2024-03-03", "source": "vk"},
			{"day": "2024-03-03", "source": "vk", "cost": "many"},
			{"day": "2024-03-03", "source": "vk", "cost": -1},
			{"day": "2024-03-03", "source": "vk", "cost": true},
			{"day": "2024-03-03", "source": "vk", "cost": 1, "clicks": -1}
		]}`), &req)
		if err != nil {
			t.Fatal(err)
		}
		res, err = ImportRows(context.Background(), db, id, req.Costs)
		var rejected *crm.RejectedError
		if !errors.As(err, &rejected) || rejected.Rejected != 7 {
			t.Fatalf("bad rows: %v", err)
		}
		for i, w := range []string{"line 2, column day:", "line 3, column source: is empty", "line 4, column cost: is required",
			`line 5, column cost: "many" is not a number`, `line 6, column cost: "-1.00" is negative`, "line 7, column cost: must be a number",
			"line 8, column clicks: -1 is negative"} {
			if e := res.Errors[i].Error(); !strings.HasPrefix(e, w) {
				t.Errorf("error %d: %q, want %q…", i, e, w)
			}
		}
		if n := len(list(t, db, id, "2024-03-03", "")); n != 0 {
			t.Errorf("strict JSON import with bad rows applied %d rows", n)
		}
		res, err = ImportRowsWith(context.Background(), db, id, req.Costs, Options{SkipBadRows: true})
		if err != nil || res.Inserted != 1 || res.Rejected != 7 {
			t.Fatalf("lenient: %v %s", err, counts(res))
		}

		// What JSON itself refuses: unknown fields, wrong types.
		for body, want := range map[string]string{
			`{"costs": [{"day": "2024-03-03", "source": "vk", "cost": 1, "spend": 2}]}`: `json: unknown field "spend"`,
			`{"costs": [{"day": "2024-03-03", "source": "vk", "clicks": "2"}]}`:         "Go struct field .Costs.clicks of type int64",
			`{"costs": [5]}`: "cannot unmarshal number into Go struct field .Costs of type costs.Row",
		} {
			if err := json.Unmarshal([]byte(body), &req); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want %q", body, err, want)
			}
		}
	})
}

func TestListRangeAndTenants(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a, b := newCounter(t, db, "a.ru"), newCounter(t, db, "b.ru")
		var file strings.Builder
		file.WriteString("date,source,medium,campaign,cost\n")
		for d := 1; d <= 10; d++ {
			fmt.Fprintf(&file, "2024-03-%02d,yandex,cpc,c,%d\n", d, d)
		}
		mustImport(t, db, a, file.String())
		mustImport(t, db, b, "date,source,medium,campaign,cost\n2024-03-05,google,cpc,other,1\n")

		for _, c := range []struct {
			from, to string
			n        int
			first    string
		}{
			{"", "", 10, "2024-03-01"},
			{"2024-03-04", "2024-03-06", 3, "2024-03-04"},
			{"05.03.2024", "", 6, "2024-03-05"},
			{"", "2024-03-02", 2, "2024-03-01"},
			{"2024-04-01", "", 0, ""},
		} {
			rows := list(t, db, a, c.from, c.to)
			if len(rows) != c.n || (c.n > 0 && rows[0].Day != c.first) {
				t.Errorf("from %q to %q: %+v", c.from, c.to, rows)
			}
			for _, r := range rows {
				if r.Source != "yandex" {
					t.Fatalf("counter a sees counter b's row %+v", r)
				}
			}
		}
		if rows := list(t, db, b, "", ""); len(rows) != 1 || rows[0].Campaign != "other" {
			t.Errorf("counter b: %+v", rows)
		}
		// The same key in two counters is two rows.
		res := mustImport(t, db, b, "date,source,medium,campaign,cost\n2024-03-01,yandex,cpc,c,1\n")
		if res.Inserted != 1 {
			t.Errorf("counter b's copy of a's key: %s", counts(res))
		}
		var ie *InvalidError
		if _, err := List(context.Background(), db, a, "March", ""); !errors.As(err, &ie) || ie.Field != "from" {
			t.Errorf("bad from: %v", err)
		}
	})
}

func TestParseDay(t *testing.T) {
	for in, want := range map[string]string{
		"2024-03-01": "2024-03-01", " 2024-3-1 ": "2024-03-01", "01.03.2024": "2024-03-01", "1.3.24": "2024-03-01",
		"2024-03-01 23:59:59": "2024-03-01", "01.03.2024 10:00": "2024-03-01",
		"2024-03-01T23:30:00-05:00": "2024-03-01", "2024-03-01T00:30:00Z": "2024-03-01",
	} {
		if got, err := ParseDay(in); err != nil || got != want {
			t.Errorf("ParseDay(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2024-02-30", "2024-03-01 25:00", "2024-03-01 garbage", "March 1", "1969-12-31", "20240301", "2024/03/01"} {
		if got, err := ParseDay(in); err == nil {
			t.Errorf("ParseDay(%q) = %q, want an error", in, got)
		}
	}
}

func TestSniffDelimiter(t *testing.T) {
	for head, want := range map[string]rune{
		"date,source,medium,campaign,cost\n":          ',',
		"date;source;medium;campaign;cost\r\n":        ';',
		"date\tsource\tmedium\tcampaign\tcost":        '\t',
		`"a,b";c;d` + "\n" + "1,2,3,4,5,6,7\n":        ';',
		"date;source;medium;campaign;\"cost, RUB\"\n": ';',
		"nothing\n": ',',
	} {
		if got := sniffDelimiter([]byte(head)); got != want {
			t.Errorf("sniffDelimiter(%q) = %q, want %q", head, got, want)
		}
	}
}
