package crm_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func importMetrica(t *testing.T, db *store.DB, c counter.Counter, intake crm.Intake, format, body string, opt crm.Options, f crm.MetricaFormat) (*crm.Result, error) {
	t.Helper()
	ctx := context.Background()
	entity := crm.EntityOrder
	if intake == crm.ContactsUp {
		entity = crm.EntityContact
	}
	attrs, err := crm.Attributes(ctx, db, c.ID, entity)
	if err != nil {
		t.Fatal(err)
	}
	f.Intake, f.Location, f.Attributes = intake, c.Location(), attrs
	opt.Intake, opt.Format, opt.Source = intake, format, "API"
	return crm.Import(ctx, db, c.ID, opt, func() (crm.RowReader, error) {
		if format == "JSON" {
			return crm.NewMetricaJSONReader(strings.NewReader(body), f)
		}
		return crm.NewMetricaCSVReader(strings.NewReader(body), f)
	})
}

// The simple-orders sample from Metrica's documentation, verbatim, and
// Yandex's own reading of it (shared/spec/metrica-cdp.md §6).
const metricaSimpleOrders = "id,create_date_time,client_uniq_id,client_ids,emails,phones,order_status,revenue,cost,goals,currency\n" +
	"s_ord1,10.01.2024 11:56,s_user1,,\"mail@example.com,mail2@example.com\",,PAID,200,150,\"oplata_cash:200,filial_1\",\n" +
	"s_ord2,20.01.2024 11:59,,12345,mail3@example.com,,,200,150,,EUR\n" +
	",12.02.2024,,34456,,79876543210,SPAM,,,plohoy_lead,\n"

func TestMetricaSimpleOrdersSample(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		res, err := importMetrica(t, db, c, crm.SimpleOrders, "CSV", metricaSimpleOrders, crm.Options{}, crm.MetricaFormat{})
		if err != nil || res.Inserted != 3 {
			t.Fatalf("%v %+v", err, res)
		}
		msk := c.Location()
		o1 := mustOrder(t, db, c, "s_ord1")
		if *o1.StatusType != crm.Paid || num(o1.Revenue) != "200.00" || num(o1.Cost) != "150.00" || num(o1.Margin) != "50.00" ||
			o1.Currency != "RUB" || o1.ContactID != "s_user1" || !slices.Equal(o1.Emails, []string{"mail@example.com", "mail2@example.com"}) ||
			len(o1.Goals) != 2 || o1.Goals[0].ID != "oplata_cash" || num(o1.Goals[0].Price) != "200.00" || o1.Goals[1].ID != "filial_1" || o1.Goals[1].Price != nil ||
			!o1.CreatedAt.Equal(time.Date(2024, 1, 10, 11, 56, 0, 0, msk)) || o1.FinishedAt == nil {
			t.Errorf("s_ord1 = %+v", o1)
		}
		if len(o1.EmailsMD5) != 2 {
			t.Errorf("s_ord1 md5 of e-mails not derived: %v", o1.EmailsMD5)
		}
		o2 := mustOrder(t, db, c, "s_ord2")
		if *o2.StatusType != crm.Paid || o2.Currency != "EUR" || !slices.Equal(o2.ClientIDs, []string{"12345"}) {
			t.Errorf("s_ord2 = %+v", o2)
		}
		var third crm.OrderView
		_, err = crm.ListOrders(context.Background(), db, c.ID, crm.OrderQuery{StatusType: "SPAM"}, func(o *crm.Order) error {
			third = o.View()
			return nil
		})
		if err != nil || !third.IDGenerated || !strings.HasPrefix(third.ID, "auto-") || third.Phones[0] != "79876543210" ||
			!third.CreatedAt.Equal(time.Date(2024, 2, 12, 23, 59, 59, 0, msk)) || third.Goals[0].ID != "plohoy_lead" || third.FinishedAt != nil {
			t.Errorf("row 3 = %v %+v", err, third)
		}
		// Re-sending the file (the id-less row too) changes nothing.
		res, err = importMetrica(t, db, c, crm.SimpleOrders, "CSV", metricaSimpleOrders, crm.Options{}, crm.MetricaFormat{})
		if err != nil || res.Unchanged != 3 || res.Inserted != 0 {
			t.Errorf("re-sent: %v %+v", err, res)
		}
	})
}

func TestMetricaOrdersAndContactsJSON(t *testing.T) {
	contacts := `{"contacts": [
	  {"uniq_id": "C-1001", "name": "Иванов И.",
	   "create_date_time": "2024-04-17 16:12:21", "update_date_time": "2024-04-17 16:12:21",
	   "client_ids": ["1713361941123456789", 17263548291736450123],
	   "emails": ["Ivanov@Example.com"], "phones": ["8 (999) 555-11-11"], "phones_md5": ["F09F2C3D48F31E2A802944ADE2E5AEC5"]},
	  {"uniq_id": "C-1002", "name": "Петрова М.", "create_date_time": "2024-05-17 16:13:21", "client_ids": ["1715950000111222333"]}
	]}`
	orders := `{"orders": [
	  {"id": "704", "client_uniq_id": "C-1001", "client_type": "CONTACT", "order_status": "IN_PROGRESS",
	   "create_date_time": "2024-09-21 09:48:23", "update_date_time": "2024-10-15 10:48:34",
	   "revenue": 5000, "cost": 4000, "goals": [{"goal_action_id": "goal_id1", "price": 123.5}],
	   "products": {"pear": 10, "apple": 30}},
	  {"id": "706", "client_uniq_id": "C-1002", "client_type": "contact", "order_status": "PAID",
	   "create_date_time": "2024-09-30 10:48:23", "revenue": 13000, "cost": 10000, "currency": "RUB", "extra": "ignored"}
	]}`
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := newCounter(t, db, "shop.example.ru")
		if res, err := importMetrica(t, db, c, crm.ContactsUp, "JSON", contacts, crm.Options{}, crm.MetricaFormat{}); err != nil || res.Inserted != 2 {
			t.Fatalf("contacts: %v %+v", err, res)
		}
		if res, err := importMetrica(t, db, c, crm.OrdersUpload, "JSON", orders, crm.Options{}, crm.MetricaFormat{}); err != nil || res.Inserted != 2 {
			t.Fatalf("orders: %v %+v", err, res)
		}
		ct, err := crm.GetContact(ctx, db, c.ID, "C-1001")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ct.ClientIDs, []string{"1713361941123456789", "17263548291736450123"}) ||
			!slices.Equal(ct.Emails, []string{"ivanov@example.com"}) || !slices.Equal(ct.Phones, []string{"79995551111"}) ||
			!slices.Equal(ct.PhonesMD5, []string{"f09f2c3d48f31e2a802944ade2e5aec5"}) || len(ct.EmailsMD5) != 1 ||
			!slices.Equal(ct.Orders, []string{"704"}) || ct.Name != "Иванов И." {
			t.Errorf("C-1001 = %+v", ct)
		}
		o := mustOrder(t, db, c, "704")
		if *o.StatusType != crm.InProgress || num(o.Margin) != "1000.00" || o.Products["apple"] != 30 ||
			num(o.Goals[0].Price) != "123.50" || o.UpdatedAt == nil || o.FinishedAt != nil {
			t.Errorf("704 = %+v", o)
		}
		if o := mustOrder(t, db, c, "706"); o.FinishedAt == nil {
			t.Errorf("706 is PAID without a finish time: it should get the upload's time, %+v", o)
		}
	})
}

func TestMetricaMergeModes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := newCounter(t, db, "shop.example.ru")
		if err := crm.SaveAttributes(ctx, db, c.ID, crm.EntityContact, []crm.Attribute{
			{Name: "tags", Multivalued: true}, {Name: "age", TypeName: "numeric"},
		}); err != nil {
			t.Fatal(err)
		}
		up := func(mode crm.MergeMode, body string) {
			t.Helper()
			res, err := importMetrica(t, db, c, crm.ContactsUp, "CSV", body, crm.Options{Mode: mode}, crm.MetricaFormat{})
			if err != nil {
				t.Fatalf("%s: %v %+v", mode, err, res)
			}
		}
		get := func() *crm.ContactView {
			t.Helper()
			v, err := crm.GetContact(ctx, db, c.ID, "U1")
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		up(crm.Save, "uniq_id,name,phones,tags,age,create_date_time\nU1,Ann,\"79990000001,79990000002\",\"a,b\",30,01.01.2024 10:00\n")
		// UPDATE: what is sent replaces, what is not stays; the creation date never changes.
		up(crm.Update, "uniq_id,phones,tags,create_date_time\nU1,\"79990000001,79990000003\",c,05.05.2024 10:00\n")
		v := get()
		if v.Name != "Ann" || !slices.Equal(v.Phones, []string{"79990000001", "79990000003"}) ||
			!slices.Equal(v.Attributes["tags"], []string{"c"}) || !slices.Equal(v.Attributes["age"], []string{"30"}) ||
			v.CreatedAt.Format("2006-01-02") != "2024-01-01" {
			t.Errorf("after UPDATE: %+v", v)
		}
		// APPEND: lists gain values; single values are overwritten.
		up(crm.Append, "uniq_id,name,phones,tags,age\nU1,Anna,\"79990000002,79990000003\",\"c,d\",31\n")
		v = get()
		if v.Name != "Anna" || !slices.Equal(v.Phones, []string{"79990000001", "79990000003", "79990000002"}) ||
			!slices.Equal(v.Attributes["tags"], []string{"c", "d"}) || !slices.Equal(v.Attributes["age"], []string{"31"}) {
			t.Errorf("after APPEND: %+v", v)
		}
		// SAVE: the record becomes the row.
		up(crm.Save, "uniq_id,emails\nU1,ann@example.com\n")
		v = get()
		if v.Name != "" || len(v.Phones) != 0 || len(v.Attributes) != 0 || !slices.Equal(v.Emails, []string{"ann@example.com"}) ||
			v.CreatedAt == nil || v.CreatedAt.Format("2006-01-02") != "2024-01-01" {
			t.Errorf("after SAVE: %+v", v)
		}
	})
}

func TestMetricaCSVMappingAndErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		mapping, err := crm.ParseColumnsMapping(`"id":"ИД","client_uniq_id":"ИД клиента","client_type":"Тип клиента","order_status":"Статус","create_date_time":"Дата создания","revenue":"Сумма","goals":"Цели"`)
		if err != nil {
			t.Fatal(err)
		}
		body := "ИД,ИД клиента,Тип клиента,Статус,Дата создания,Сумма,Цели,Менеджер\n" +
			"704,C-1001,CONTACT,IN_PROGRESS,21.09.2024 09:48:23,5000,\"goal_id1:123.5,goal_id2\",Пётр\n" +
			"706,C-1002,CONTACT,PAID,30.09.2024 10:48,13000,,Пётр\n"
		res, err := importMetrica(t, db, c, crm.OrdersUpload, "CSV", body, crm.Options{}, crm.MetricaFormat{Mapping: mapping})
		if err != nil || res.Inserted != 2 {
			t.Fatalf("mapped CSV: %v %+v", err, res)
		}
		if o := mustOrder(t, db, c, "704"); len(o.Goals) != 2 || o.Goals[1].ID != "goal_id2" || num(o.Revenue) != "5000.00" {
			t.Errorf("704 = %+v", o)
		}

		bad := "id,client_uniq_id,client_type,order_status,create_date_time,revenue,currency\n" +
			"1,C,CONTACT,PAID,2024-01-01 10:00,10,RUB\n" +
			"2,C,COMPANY,PAID,2024-01-01 10:00,10,RUB\n" + // line 3
			"3,C,CONTACT,PAID,1969-12-31 10:00,10,RUB\n" + // line 4
			"4,C,CONTACT,PAID,2024-01-01 10:00,-10,RUB\n" + // line 5
			"5,C,CONTACT,PAID,2024-01-01 10:00,10,рубли\n" + // line 6
			"6,C,CONTACT,,2024-01-01 10:00,10,RUB\n" // line 7
		res, err = importMetrica(t, db, c, crm.OrdersUpload, "CSV", bad, crm.Options{}, crm.MetricaFormat{})
		var rej *crm.RejectedError
		if !errors.As(err, &rej) || rej.Rejected != 5 {
			t.Fatalf("bad rows: %v %+v", err, res)
		}
		for i, col := range []string{"client_type", "create_date_time", "revenue", "currency", "order_status"} {
			if res.Errors[i].Line != i+3 || res.Errors[i].Column != col {
				t.Errorf("error %d = %+v, want line %d column %s", i, res.Errors[i], i+3, col)
			}
		}
		_, err = importMetrica(t, db, c, crm.OrdersUpload, "CSV", "id,client_uniq_id,order_status\n", crm.Options{}, crm.MetricaFormat{})
		if err == nil || !strings.Contains(err.Error(), "client_type") {
			t.Errorf("missing columns: %v", err)
		}
		_, err = importMetrica(t, db, c, crm.SimpleOrders, "CSV", "id,create_date_time,revenue\n1,2024-01-01,5\n", crm.Options{}, crm.MetricaFormat{})
		if err == nil || !strings.Contains(err.Error(), "client_ids") {
			t.Errorf("simple orders without an identifier column: %v", err)
		}
		_, err = importMetrica(t, db, c, crm.ContactsUp, "JSON", `{"contacts": [{"uniq_id": "x"}`, crm.Options{}, crm.MetricaFormat{})
		if err == nil || !strings.Contains(err.Error(), "ends too early") {
			t.Errorf("truncated JSON: %v", err)
		}
		_, err = importMetrica(t, db, c, crm.ContactsUp, "JSON", `{"contacts": [{"uniq_id": "x", "attribute_values": [{"name": "size", "values": ["42"]}]}]}`, crm.Options{}, crm.MetricaFormat{})
		if err == nil || !strings.Contains(err.Error(), "not declared") {
			t.Errorf("undeclared attribute: %v", err)
		}
	})
}

func TestOrdersPerContactLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		body := "id,client_uniq_id,client_type,order_status,create_date_time\n" +
			"1,C,CONTACT,PAID,2024-01-01 10:00\n2,C,CONTACT,PAID,2024-01-01 10:00\n3,C,CONTACT,PAID,2024-01-01 10:00\n4,D,CONTACT,PAID,2024-01-01 10:00\n"
		res, err := importMetrica(t, db, c, crm.OrdersUpload, "CSV", body, crm.Options{MaxOrdersPerContact: 2}, crm.MetricaFormat{})
		var rej *crm.RejectedError
		if !errors.As(err, &rej) || rej.Rejected != 1 || res.Errors[0].Line != 4 {
			t.Fatalf("third order of C: %v %+v", err, res)
		}
		if _, err := crm.GetOrder(context.Background(), db, c.ID, "1"); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("a refused upload applied rows: %v", err)
		}
		res, err = importMetrica(t, db, c, crm.OrdersUpload, "CSV", body, crm.Options{MaxOrdersPerContact: 2, SkipBadRows: true}, crm.MetricaFormat{})
		if err != nil || res.Inserted != 3 || res.Rejected != 1 {
			t.Fatalf("lenient: %v %+v", err, res)
		}
		// Re-sending is not "more orders": the stored ones are counted once.
		res, err = importMetrica(t, db, c, crm.OrdersUpload, "CSV", strings.Replace(body, "3,C,", "3,D,", 1), crm.Options{MaxOrdersPerContact: 2}, crm.MetricaFormat{})
		if err != nil || res.Unchanged != 3 || res.Inserted != 1 {
			t.Errorf("re-send: %v %+v", err, res)
		}
	})
}

func TestParseTime(t *testing.T) {
	msk, _ := time.LoadLocation("Europe/Moscow")
	at := func(y, mo, d, h, mi, s int) time.Time { return time.Date(y, time.Month(mo), d, h, mi, s, 0, msk).UTC() }
	good := map[string]time.Time{
		"2020-04-21 11:59:21":       at(2020, 4, 21, 11, 59, 21),
		"2020-04-21 11:59":          at(2020, 4, 21, 11, 59, 0),
		"21.04.2020 11:59:21":       at(2020, 4, 21, 11, 59, 21),
		"21.04.2020 11:59":          at(2020, 4, 21, 11, 59, 0),
		"21.04.20 11:59:21":         at(2020, 4, 21, 11, 59, 21),
		"21.04.20 11:59":            at(2020, 4, 21, 11, 59, 0),
		"21.04.2020":                at(2020, 4, 21, 23, 59, 59),
		"21.04.20":                  at(2020, 4, 21, 23, 59, 59),
		"2020-04-21":                at(2020, 4, 21, 23, 59, 59),
		"1.2.2024 9:05":             at(2024, 2, 1, 9, 5, 0),
		"2020-04-21T11:59:21":       at(2020, 4, 21, 11, 59, 21),
		"2020-04-21T11:59:21Z":      time.Date(2020, 4, 21, 11, 59, 21, 0, time.UTC),
		"2020-04-21T11:59:21+05:00": time.Date(2020, 4, 21, 6, 59, 21, 0, time.UTC),
		"21.04.75 10:00":            at(2075, 4, 21, 10, 0, 0),
	}
	for in, want := range good {
		got, _, err := crm.ParseTime(in, msk)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "2020-13-01", "31.02.2024", "2020-04-21 25:00", "1969-12-31 23:00:00", "21/04/2020", "2020-04-21 11:59:21:00", "12345678901234", "2020-4", "..", "2020--01"} {
		if got, _, err := crm.ParseTime(in, msk); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseMoney(t *testing.T) {
	good := map[string]int64{"1234.50": 123450, "1234,50": 123450, "1 234,50": 123450, "1\u00a0234.5": 123450, "-12": -1200,
		"0": 0, "1,234.56": 123456, "1.234,56": 123456, "1,234,567": 123456700, "10.005": 1001, "10.004": 1000, ".5": 50, "+3": 300}
	for in, want := range good {
		if got, err := crm.ParseMoney(in); err != nil || got != want {
			t.Errorf("ParseMoney(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "12a", "1,2.3.4", "-", "1e5", "9999999999999999"} {
		if got, err := crm.ParseMoney(in); err == nil {
			t.Errorf("ParseMoney(%q) = %d, want an error", in, got)
		}
	}
}
