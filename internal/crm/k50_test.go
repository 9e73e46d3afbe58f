package crm_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// A feed as real CRMs write it: BOM, CRLF, a quoted comment holding the
// delimiter and a newline, decimal commas, phones in several notations,
// rows with and without trailing empty columns, an unknown column.
const realFeed = "\ufeffdate;orderId;callerPhone;sid;uuid;amount;margin;revenue;comment;type;manager\r\n" +
	"2024-03-01 12:00:00;A-1001;79995551111;;;2;1500,00;4990,00;;;Ivan\r\n" +
	"2024-03-01 13:30:00;A-1002;;0193f1a8-7c2e-7a55-9c2b-2f0b8c1d9e42;0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4f;1;;1234.5;\"call back; after 18:00\r\nsecond line\";online;\r\n" +
	"2024-03-02 09:15:00;A-1003;+7 (999) 555-22-22;;;;;\r\n" +
	"2024-03-02 10:00:00;A-1004;8 (495) 123-45-67;;;3;-200,50;0;;offline\r\n"

func newCounter(t *testing.T, db *store.DB, domain string) counter.Counter {
	t.Helper()
	c, _, err := counter.Create(context.Background(), db, counter.NewCounter{Name: domain, Domain: domain})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func importK50(t *testing.T, db *store.DB, c counter.Counter, feed string, opt crm.Options) (*crm.Result, error) {
	t.Helper()
	opt.Intake, opt.Format, opt.Source = crm.K50Feed, "CSV", "CLI"
	return crm.Import(context.Background(), db, c.ID, opt, func() (crm.RowReader, error) {
		return crm.NewK50Reader(strings.NewReader(feed), c.Location(), nil)
	})
}

func mustOrder(t *testing.T, db *store.DB, c counter.Counter, id string) crm.OrderView {
	t.Helper()
	o, err := crm.GetOrder(context.Background(), db, c.ID, id)
	if err != nil {
		t.Fatalf("order %s: %v", id, err)
	}
	return o.View()
}

func num(n interface{ String() string }) string {
	if n == nil {
		return "null"
	}
	return n.String()
}

func TestK50FeedImport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		res, err := importK50(t, db, c, realFeed, crm.Options{})
		if err != nil {
			t.Fatalf("import: %v (%+v)", err, res)
		}
		if res.Status != crm.StatusPassed || res.Read != 4 || res.Inserted != 4 || res.Rejected != 0 {
			t.Fatalf("result %+v", res)
		}

		msk, _ := time.LoadLocation("Europe/Moscow")
		a := mustOrder(t, db, c, "A-1001")
		if !a.CreatedAt.Equal(time.Date(2024, 3, 1, 12, 0, 0, 0, msk)) {
			t.Errorf("A-1001 created %v: the feed's date is Moscow time", a.CreatedAt)
		}
		if a.CallerPhone != "79995551111" || a.Type != "offline" || *a.Items != 2 ||
			num(a.Revenue) != "4990.00" || num(a.Margin) != "1500.00" || num(a.Cost) != "3490.00" ||
			a.StatusType == nil || *a.StatusType != crm.Paid || a.Currency != "RUB" || a.Intake != crm.K50Feed {
			t.Errorf("A-1001 = %+v", a)
		}
		b := mustOrder(t, db, c, "A-1002")
		if b.SID != "0193f1a8-7c2e-7a55-9c2b-2f0b8c1d9e42" || len(b.ClientIDs) != 1 || b.ClientIDs[0] != "0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4f" ||
			b.Type != "online" || b.Comment != "call back; after 18:00\nsecond line" || num(b.Revenue) != "1234.50" || b.Margin != nil || b.Cost != nil {
			t.Errorf("A-1002 = %+v", b)
		}
		if d := mustOrder(t, db, c, "A-1003"); d.CallerPhone != "79995552222" || d.Revenue != nil || d.Items != nil || d.Type != "offline" {
			t.Errorf("A-1003 = %+v", d)
		}
		if d := mustOrder(t, db, c, "A-1004"); d.CallerPhone != "74951234567" || num(d.Margin) != "-200.50" || num(d.Revenue) != "0.00" {
			t.Errorf("A-1004 = %+v", d)
		}

		// The same feed again changes nothing.
		res, err = importK50(t, db, c, realFeed, crm.Options{})
		if err != nil || res.Unchanged != 4 || res.Inserted != 0 || res.Updated != 0 {
			t.Fatalf("re-import: %v %+v", err, res)
		}
		if again := mustOrder(t, db, c, "A-1001"); !again.ChangedAt.Equal(a.ChangedAt) || again.ImportID != a.ImportID {
			t.Errorf("an unchanged row was rewritten: %v → %v", a.ChangedAt, again.ChangedAt)
		}

		// A changed row updates its order and only it.
		changed := strings.Replace(realFeed, "1500,00;4990,00", "1600,00;5100,00", 1)
		res, err = importK50(t, db, c, changed, crm.Options{})
		if err != nil || res.Updated != 1 || res.Unchanged != 3 || res.Inserted != 0 {
			t.Fatalf("changed row: %v %+v", err, res)
		}
		a2 := mustOrder(t, db, c, "A-1001")
		if num(a2.Revenue) != "5100.00" || !a2.ImportedAt.Equal(a.ImportedAt) || a2.ImportID != res.ID {
			t.Errorf("after update: %+v", a2)
		}

		// The other counter sees none of it.
		other := newCounter(t, db, "other.example.ru")
		if _, err := crm.GetOrder(context.Background(), db, other.ID, "A-1001"); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("another counter reads A-1001: %v", err)
		}
	})
}

func TestK50FeedBadRows(t *testing.T) {
	bad := "date;orderId;callerPhone;sid;uuid;amount;revenue\n" +
		"2024-03-01 12:00:00;B-1;79995551111;;;1;100\n" +
		"2024-13-01 12:00:00;B-2;;;;1;100\n" + // line 3: month 13
		"2024-03-01 12:00:00;;;;;1;100\n" + // line 4: no id
		"2024-03-01 12:00:00;B-4;;;;-1;100\n" + // line 5: negative amount
		"2024-03-01 12:00:00;B-5;;;;1;сто\n" + // line 6: not a number
		"2024-03-01 12:00:00;B-6;;;;1;100\n"
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		res, err := importK50(t, db, c, bad, crm.Options{})
		var rej *crm.RejectedError
		if !errors.As(err, &rej) || rej.Rejected != 4 {
			t.Fatalf("strict import of a file with 4 bad rows: %v", err)
		}
		wantLines := []int{3, 4, 5, 6}
		for i, e := range res.Errors {
			if e.Line != wantLines[i] || e.Message == "" {
				t.Errorf("error %d = %+v, want line %d", i, e, wantLines[i])
			}
		}
		if res.Errors[0].Column != "date" || res.Errors[2].Column != "amount" || res.Errors[3].Column != "revenue" {
			t.Errorf("columns named: %+v", res.Errors)
		}
		if _, err := crm.GetOrder(context.Background(), db, c.ID, "B-1"); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("a strict upload with bad rows applied its good rows: %v", err)
		}
		logged, err := crm.GetImport(context.Background(), db, c.ID, res.ID)
		if err != nil || logged.Status != crm.StatusFailed || logged.Rejected != 4 || len(logged.Errors) != 4 || logged.Read != 6 || logged.FinishedAt == nil {
			t.Fatalf("logged import: %v %+v", err, logged)
		}

		res, err = importK50(t, db, c, bad, crm.Options{SkipBadRows: true})
		if err != nil || res.Status != crm.StatusPassed || res.Inserted != 2 || res.Rejected != 4 || !strings.Contains(res.Message, "4 bad rows") {
			t.Fatalf("lenient import: %v %+v", err, res)
		}
		mustOrder(t, db, c, "B-1")
		mustOrder(t, db, c, "B-6")
	})
}

func TestK50FeedFileErrors(t *testing.T) {
	cases := map[string]struct {
		feed string
		want string
	}{
		"empty":            {"", "empty"},
		"missing column":   {"date;orderId;callerPhone;sid\n2024-03-01 12:00:00;X;;\n", "uuid"},
		"comma separated":  {"date,orderId,callerPhone,sid,uuid\n", "','-separated"},
		"Windows-1251":     {"date;orderId;callerPhone;sid;uuid;\xea\xee\xec\xec\xe5\xed\xf2\xe0\xf0\xe8\xe9\n", "UTF-8"},
		"duplicate column": {"date;orderId;callerPhone;sid;uuid;sid\n", "twice"},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		for name, tc := range cases {
			res, err := importK50(t, db, c, tc.feed, crm.Options{})
			var fe *crm.FileError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || res.Status != crm.StatusFailed {
				t.Errorf("%s: %v (want a file error mentioning %q)", name, err, tc.want)
			}
		}
		// A row in another encoding is a bad row with its line.
		res, err := importK50(t, db, c, "date;orderId;callerPhone;sid;uuid;comment\n2024-03-01 12:00:00;X;;;;\xef\xf0\xe8\xe2\xe5\xf2\n", crm.Options{})
		if err == nil || len(res.Errors) != 1 || res.Errors[0].Line != 2 || !strings.Contains(res.Errors[0].Message, "UTF-8") {
			t.Errorf("cp1251 cell: %v %+v", err, res)
		}
	})
}

// cutReader fails after n bytes, like a download cut off mid-body.
type cutReader struct {
	r io.Reader
	n int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if len(p) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func TestK50FeedCutOffLeavesDataAsItWas(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		if _, err := importK50(t, db, c, realFeed, crm.Options{}); err != nil {
			t.Fatal(err)
		}
		changed := strings.ReplaceAll(realFeed, "4990,00", "9990,00") + strings.Repeat("2024-03-05 10:00:00;C-9;;;;1;1;1;;\n", 1000)
		res, err := crm.Import(context.Background(), db, c.ID, crm.Options{Intake: crm.K50Feed, Format: "CSV", Source: "TASK"}, func() (crm.RowReader, error) {
			return crm.NewK50Reader(&cutReader{strings.NewReader(changed), len(changed) - 100}, c.Location(), nil)
		})
		if !errors.Is(err, io.ErrUnexpectedEOF) || res.Status != crm.StatusFailed {
			t.Fatalf("cut-off feed: %v %+v", err, res)
		}
		if a := mustOrder(t, db, c, "A-1001"); num(a.Revenue) != "4990.00" {
			t.Errorf("a failed import changed A-1001: %+v", a)
		}
		if _, err := crm.GetOrder(context.Background(), db, c.ID, "C-9"); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("a failed import added C-9: %v", err)
		}
	})
}

func TestK50ColumnMapping(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		feed := "Дата;Номер;Телефон;sid;uuid;Сумма\n01.03.2024 12:00;M-1;89995551111;;;100,5\n"
		mapping := map[string]string{"date": "Дата", "orderId": "Номер", "callerPhone": "Телефон", "revenue": "Сумма"}
		_, err := crm.Import(context.Background(), db, c.ID, crm.Options{Intake: crm.K50Feed}, func() (crm.RowReader, error) {
			return crm.NewK50Reader(strings.NewReader(feed), c.Location(), mapping)
		})
		if err != nil {
			t.Fatal(err)
		}
		if o := mustOrder(t, db, c, "M-1"); o.CallerPhone != "79995551111" || num(o.Revenue) != "100.50" {
			t.Errorf("mapped feed: %+v", o)
		}
		_, err = crm.NewK50Reader(strings.NewReader(feed), c.Location(), map[string]string{"price": "Сумма"})
		if err == nil || !strings.Contains(err.Error(), "price") {
			t.Errorf("a mapping naming an unknown column: %v", err)
		}
	})
}

func TestStatusMapping(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := newCounter(t, db, "shop.example.ru")
		// Simple orders carry a status; the K50 feed does not, so go
		// through an orders upload built by hand.
		_, err := crm.Import(ctx, db, c.ID, crm.Options{Intake: crm.OrdersUpload, Format: "JSON"}, func() (crm.RowReader, error) {
			return sliceReader{
				&crm.Order{ID: "S-1", CreatedAt: time.Now(), Status: "new", Has: crm.FStatus},
				&crm.Order{ID: "S-2", CreatedAt: time.Now(), Status: "cancelled", Has: crm.FStatus},
				&crm.Order{ID: "S-3", CreatedAt: time.Now(), Status: "spam", Has: crm.FStatus},
				&crm.Order{ID: "S-4", CreatedAt: time.Now()},
			}.reader(), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		typeOf := func(id string) string {
			v := mustOrder(t, db, c, id)
			if v.StatusType == nil {
				return "unmapped"
			}
			return string(*v.StatusType)
		}
		if typeOf("S-1") != "unmapped" || typeOf("S-2") != "CANCELLED" || typeOf("S-3") != "SPAM" || typeOf("S-4") != "PAID" {
			t.Errorf("before mapping: %s %s %s %s", typeOf("S-1"), typeOf("S-2"), typeOf("S-3"), typeOf("S-4"))
		}
		un, err := crm.UnmappedStatuses(ctx, db, c.ID)
		if err != nil || len(un) != 1 || un[0].Code != "new" || un[0].Orders != 1 {
			t.Errorf("unmapped: %v %+v", err, un)
		}
		// Mapping "new" retypes the stored order.
		if err := crm.SaveStatuses(ctx, db, c.ID, []crm.Status{{Code: "new", Type: "in_progress", Humanized: "Новый"}}, false); err != nil {
			t.Fatal(err)
		}
		if typeOf("S-1") != "IN_PROGRESS" {
			t.Errorf("after mapping new: %s", typeOf("S-1"))
		}
		// Replacing the set drops "new": back to unmapped.
		if err := crm.SaveStatuses(ctx, db, c.ID, []crm.Status{{Code: "spam", Type: "CANCELED"}}, true); err != nil {
			t.Fatal(err)
		}
		if typeOf("S-1") != "unmapped" || typeOf("S-3") != "CANCELLED" {
			t.Errorf("after replace: %s %s", typeOf("S-1"), typeOf("S-3"))
		}
		st, err := crm.Statuses(ctx, db, c.ID)
		if err != nil || len(st) != 1 || st[0].Code != "spam" || st[0].Type != crm.Cancelled || st[0].Source != "USER" {
			t.Errorf("statuses: %v %+v", err, st)
		}
		if err := crm.SaveStatuses(ctx, db, c.ID, []crm.Status{{Code: "x", Type: "DONE"}}, false); err == nil {
			t.Error("type DONE accepted")
		}
	})
}

// sliceReader yields prepared rows.
type sliceReader []any

func (s sliceReader) reader() crm.RowReader { return &sliceRows{rows: s} }

type sliceRows struct {
	rows []any
	i    int
}

func (s *sliceRows) Next() (any, int, error) {
	if s.i == len(s.rows) {
		return nil, 0, io.EOF
	}
	s.i++
	return s.rows[s.i-1], s.i, nil
}

// The same order twice in one feed: the later row wins, in a fresh counter
// (no lookups needed but for repeats) as in one that has orders.
func TestK50RepeatedOrderLastRowWins(t *testing.T) {
	feed := "date;orderId;callerPhone;sid;uuid;revenue\n" +
		"2024-03-01 12:00:00;R-1;;;;100\n" +
		"2024-03-01 12:00:00;R-2;;;;200\n" +
		"2024-03-01 12:00:00;R-1;;;;300\n"
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		res, err := importK50(t, db, c, feed, crm.Options{})
		if err != nil || res.Inserted != 2 || res.Updated != 1 {
			t.Fatalf("%v %+v", err, res)
		}
		if o := mustOrder(t, db, c, "R-1"); num(o.Revenue) != "300.00" {
			t.Errorf("R-1 = %+v", o)
		}
		res, err = importK50(t, db, c, strings.Replace(feed, ";300", ";400", 1), crm.Options{})
		// Rows apply in file order: R-1 goes to 100, then to 400.
		if err != nil || res.Updated != 2 || res.Unchanged != 1 {
			t.Fatalf("second import: %v %+v", err, res)
		}
		if o := mustOrder(t, db, c, "R-1"); num(o.Revenue) != "400.00" {
			t.Errorf("R-1 = %+v", o)
		}
	})
}
