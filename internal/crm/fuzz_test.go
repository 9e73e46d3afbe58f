package crm

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	_ "time/tzdata" // Europe/Moscow on machines without a zoneinfo database

	"github.com/throughline/throughline/internal/normalize"
)

// Fuzz tests of the CRM parsers: the cell parsers, the K50 and Metrica
// readers (CSV and JSON) and the spool encoding. The readers must never
// panic or loop on any input, and every row they accept must satisfy what
// the rest of the import relies on (ids present, UTF-8 text, dates not
// before 1970, amounts ≥ 0, …) and survive the spool unchanged.
//
//	go test -run XXX -fuzz '^FuzzK50Reader$' -fuzztime 60s ./internal/crm

func fuzzMoscow(tb testing.TB) *time.Location {
	tb.Helper()
	msk, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		tb.Fatal(err)
	}
	return msk
}

// ---------------------------------------------------------------- cells

func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{
		"1234.50", "1234,50", "1 234,50", "1\u00a0234.5", "1\u202f234,5", "-12", "0", "1,234.56", "1.234,56",
		"1,234,567", "10.005", "10.004", ".5", "+3", "", "abc", "12a", "1,2.3.4", "-", "1e5", "9999999999999999",
		"999999999999999.995", "-999999999999999,999", "4990,00", "-200,50", "1500,00", "  7 ", ",", ".", "+-1",
		"00000000000000000000001", "1.", ",5", "1..2", "\xff", "1\xa0000", "-0.004", "0,0,0", "١٢٣",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseMoney(s)
		if err == nil {
			if v > 1e17+100 || v < -1e17-100 {
				t.Fatalf("ParseMoney(%q) = %d: beyond 15 integer digits", s, v)
			}
			out := FormatMoney(v)
			back, err := ParseMoney(out)
			if err != nil || back != v {
				t.Fatalf("ParseMoney(%q) = %d; FormatMoney = %q; parsed again = %d, %v", s, v, out, back, err)
			}
		}
		if n, err := ParseCount(s); err == nil && n < 0 {
			t.Fatalf("ParseCount(%q) = %d < 0", s, n)
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2020-04-21 11:59:21", "2020-04-21 11:59", "21.04.2020 11:59:21", "21.04.2020 11:59", "21.04.20 11:59:21",
		"21.04.20 11:59", "21.04.2020", "21.04.20", "2020-04-21", "1.2.2024 9:05", "2020-04-21T11:59:21",
		"2020-04-21T11:59:21Z", "2020-04-21T11:59:21+05:00", "2020-04-21T11:59:21.123456789-03:30", "2020-04-21T11:59",
		"21.04.75 10:00", "", "yesterday", "2020-13-01", "31.02.2024", "2020-04-21 25:00", "1969-12-31 23:00:00",
		"21/04/2020", "2020-04-21 11:59:21:00", "12345678901234", "2020-4", "..", "2020--01", "1970-01-01 00:00:00",
		"1970-01-01 03:00:00", "01.01.1970", "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.0000001Z", "9999-12-31 23:59:59",
		"9999-12-31T23:59:59.999999999Z", "0001-01-01", "29.02.2023", "29.02.2024", "2024-03-01  12:00:00",
		"2010-03-28 02:30:00", "2010-10-31 02:30:00", "1981-04-01 00:30", "\ufeff2024-01-01", "2024-01-01\t10:00",
		"2024-01-01 10:00:00\xff", " 2024-01-01 10:00 ", "2024-01-01 1:2:3", "2024-01-01 10:00:00 +0300",
	} {
		f.Add(s)
	}
	msk := fuzzMoscow(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, loc := range []*time.Location{time.UTC, msk} {
			tm, dateOnly, err := ParseTime(s, loc)
			if err != nil {
				continue
			}
			if tm.Before(minDate) {
				t.Fatalf("ParseTime(%q, %s) = %v: before 1970", s, loc, tm)
			}
			if tm.Location() != time.UTC {
				t.Fatalf("ParseTime(%q, %s) = %v: not in UTC", s, loc, tm)
			}
			if h, m, sec := tm.In(loc).Clock(); dateOnly && (h != 23 || m != 59 || sec != 59) {
				t.Fatalf("ParseTime(%q, %s) = %v: a date alone is not the end of its day", s, loc, tm.In(loc))
			}
			if _, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); err == nil {
				// An explicit offset: the instant is exact, but its wall
				// clock in loc may be ambiguous (a DST fall-back hour).
				continue
			}
			wall := tm.In(loc).Format("2006-01-02 15:04:05")
			back, backDateOnly, err := ParseTime(wall, loc)
			if err != nil || backDateOnly || !back.Equal(tm.Truncate(time.Second)) {
				t.Fatalf("ParseTime(%q, %s) = %v; as %q parsed again = %v, %v, %v", s, loc, tm, wall, back, backDateOnly, err)
			}
		}
	})
}

// FuzzCells covers the multi-value cell parsers and the columns_mapping
// parameter.
func FuzzCells(f *testing.F) {
	for _, s := range []string{
		"", ",", " , ,", "a@x.ru,b@x.ru", "Ноутбук TGDD12:1,Ноутбук TGD123:2", "oplata_cash:200,filial_1", "goal_id1:123.5,goal_id2",
		"a:b:3", ":1", "a:", "a:-1", "a:1e12", "a:1e13", "a:NaN", "a:Inf", "a:0x10", "a:1_000", "g:1e5", "g:-5", "g:12.345",
		"g:NaN", "g:", "g:9999999999999999", "plohoy_lead", "a b", "\xff:1", "a:1,a:2", "x:\u00a01",
		`"uniq_id":"ID","name":"Name"`, `"id":"ИД","client_uniq_id":"ИД клиента"`, `"a":"X","b":"x"`, `"a":"X","A":"Y"`, `garbage`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, item := range SplitMulti(s) {
			if item == "" || item != strings.TrimSpace(item) || strings.Contains(item, ",") {
				t.Fatalf("SplitMulti(%q) yields %q", s, item)
			}
		}
		// Cells reach the parsers checked to be UTF-8 (CSV) or made so (JSON).
		if p, err := parseProductsCell(s); err == nil && utf8.ValidString(s) {
			checkProducts(t, p)
		}
		if gs, err := parseGoalsCell(s); err == nil {
			checkGoals(t, gs)
		}
		if m, err := ParseColumnsMapping(s); err == nil && strings.TrimSpace(s) != "" {
			headers := map[string]bool{}
			for attr, header := range m {
				if attr != strings.ToLower(attr) || header == "" || headers[strings.ToLower(header)] {
					t.Fatalf("ParseColumnsMapping(%q) = %q", s, m)
				}
				headers[strings.ToLower(header)] = true
			}
			if len(m) == 0 {
				t.Fatalf("ParseColumnsMapping(%q) = an empty mapping", s)
			}
		}
	})
}

// ---------------------------------------------------------------- readers

const fuzzK50Feed = "\ufeffdate;orderId;callerPhone;sid;uuid;amount;margin;revenue;comment;type;manager\r\n" +
	"2024-03-01 12:00:00;A-1001;79995551111;;;2;1500,00;4990,00;;;Ivan\r\n" +
	"2024-03-01 13:30:00;A-1002;;0193f1a8-7c2e-7a55-9c2b-2f0b8c1d9e42;0b8e2bd4-5b0e-4b8a-9a7e-3f0a1c2d3e4f;1;;1234.5;\"call back; after 18:00\r\nsecond line\";online;\r\n" +
	"2024-03-02 09:15:00;A-1003;+7 (999) 555-22-22;;;;;\r\n" +
	"2024-03-02 10:00:00;A-1004;8 (495) 123-45-67;;;3;-200,50;0;;offline\r\n"

const fuzzK50Bad = "date;orderId;callerPhone;sid;uuid;amount;revenue\n" +
	"2024-03-01 12:00:00;B-1;79995551111;;;1;100\n" +
	"2024-13-01 12:00:00;B-2;;;;1;100\n" +
	"2024-03-01 12:00:00;;;;;1;100\n" +
	"2024-03-01 12:00:00;B-4;;;;-1;100\n" +
	"2024-03-01 12:00:00;B-5;;;;1;сто\n" +
	"2024-03-01 12:00:00;B-6;;;;1;100\n"

// k50Mapping is the mapping of TestK50ColumnMapping, used when the fuzzed
// selector asks for it.
var k50Mapping = map[string]string{"date": "Дата", "orderId": "Номер", "callerPhone": "Телефон", "revenue": "Сумма"}

func FuzzK50Reader(f *testing.F) {
	for _, s := range []string{
		fuzzK50Feed, fuzzK50Bad, "",
		"date;orderId;callerPhone;sid\n2024-03-01 12:00:00;X;;\n",
		"date,orderId,callerPhone,sid,uuid\n",
		"date;orderId;callerPhone;sid;uuid;\xea\xee\xec\xec\xe5\xed\xf2\xe0\xf0\xe8\xe9\n",
		"date;orderId;callerPhone;sid;uuid;sid\n",
		"date;orderId;callerPhone;sid;uuid;comment\n2024-03-01 12:00:00;X;;;;\xef\xf0\xe8\xe2\xe5\xf2\n",
		"Дата;Номер;Телефон;sid;uuid;Сумма\n01.03.2024 12:00;M-1;89995551111;;;100,5\n",
		"date;orderId;callerPhone;sid;uuid;revenue\n2024-03-01 12:00:00;R-1;;;;100\n2024-03-01 12:00:00;R-2;;;;200\n2024-03-01 12:00:00;R-1;;;;300\n",
		"date;orderId;callerPhone;sid;uuid;comment\n2024-03-01 12:00:00;Q;;;;\"unterminated\n2024-03-01 12:00:00;Q2;;;;x\n",
		"date;orderId;callerPhone;sid;uuid;comment\n2024-03-01 12:00:00;Q;;;;a\"b\"c\n\n\n   \n2024-03-01;Q3;;;;\n",
		"date;orderId;callerPhone;sid;uuid;amount;margin;revenue;type\n1970-01-01 03:00:00;E;;;;3.0;-1;999999999999999.99;ONLINE\n",
		"date;orderId;callerPhone;sid;uuid;type\n2024-03-01T12:00:00Z;" + strings.Repeat("x", 256) + ";;;;bus\n",
		"date;orderId;callerPhone;sid;uuid\r\n2024-03-01 12:00:00;\xff;;;\r\n",
		"\ufeff\ufeffdate;orderId;callerPhone;sid;uuid\n",
		"date;orderId;callerPhone;sid;uuid\r\r\n2024-03-01 12:00;A;;;\r",
	} {
		f.Add(byte(0), []byte(s))
	}
	f.Add(byte(1), []byte("Дата;Номер;Телефон;sid;uuid;Сумма\n01.03.2024 12:00;M-1;89995551111;;;100,5\n"))
	f.Add(byte(3), []byte("Дата;Номер;Телефон;sid;uuid;Сумма\n01.01.1970 03:00;M-1;89995551111;;;100,5\n"))
	msk := fuzzMoscow(f)
	f.Fuzz(func(t *testing.T, sel byte, data []byte) {
		loc := time.UTC
		if sel&2 != 0 {
			loc = msk
		}
		var mapping map[string]string
		if sel&1 != 0 {
			mapping = k50Mapping
		}
		r, err := NewK50Reader(bytes.NewReader(data), loc, mapping)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("NewK50Reader: %v is not a *FileError", err)
			}
			return
		}
		readAll(t, r, len(data), func(row any) {
			o, ok := row.(*Order)
			if !ok {
				t.Fatalf("a K50 row is %T", row)
			}
			checkK50Order(t, o)
		})
	})
}

// fuzzAttributes are the custom attributes the Metrica readers are told
// about.
var fuzzAttributes = []Attribute{
	{Name: "tags", Multivalued: true},
	{Name: "age", TypeName: "numeric"},
	{Name: "birthday", TypeName: "date"},
	{Name: "mail", TypeName: "email", Multivalued: true},
	{Name: "note", TypeName: "string"},
}

var fuzzIntakes = []Intake{ContactsUp, OrdersUpload, SimpleOrders}

func FuzzMetricaCSV(f *testing.F) {
	type seed struct {
		intake  Intake
		mapping string
		body    string
	}
	mapped := `"id":"ИД","client_uniq_id":"ИД клиента","client_type":"Тип клиента","order_status":"Статус","create_date_time":"Дата создания","revenue":"Сумма","goals":"Цели"`
	for _, s := range []seed{
		{SimpleOrders, "", "id,create_date_time,client_uniq_id,client_ids,emails,phones,order_status,revenue,cost,goals,currency\n" +
			"s_ord1,10.01.2024 11:56,s_user1,,\"mail@example.com,mail2@example.com\",,PAID,200,150,\"oplata_cash:200,filial_1\",\n" +
			"s_ord2,20.01.2024 11:59,,12345,mail3@example.com,,,200,150,,EUR\n" +
			",12.02.2024,,34456,,79876543210,SPAM,,,plohoy_lead,\n"},
		{SimpleOrders, "", "id,create_date_time,revenue\n1,2024-01-01,5\n"},
		{SimpleOrders, "", "id;create_date_time;phones_md5;emails_md5;products\r\n;2024-01-01;F09F2C3D48F31E2A802944ADE2E5AEC5;x;\"a:1,b:2\"\r\n"},
		{ContactsUp, "", "uniq_id,name,phones,tags,age,create_date_time\nU1,Ann,\"79990000001,79990000002\",\"a,b\",30,01.01.2024 10:00\n"},
		{ContactsUp, "", "uniq_id,phones,tags,create_date_time\nU1,\"79990000001,79990000003\",c,05.05.2024 10:00\n"},
		{ContactsUp, "", "uniq_id,name,phones,tags,age\nU1,Anna,\"79990000002,79990000003\",\"c,d\",31\n"},
		{ContactsUp, "", "uniq_id,emails\nU1,ann@example.com\n"},
		{ContactsUp, "", "\ufeffuniq_id\tbirth_date\tuser_ids\tcompany_uniq_id\tbirthday\tmail\tnote\r\nU2\t1980-02-29\t\"u1,u2\"\tCo\t01.01.1990\t\"A@B.ru,c@d.ru\"\tok\r\n"},
		{ContactsUp, "", "uniq_id;name\nU3;\xff\xfe\nU4;\"a\"\"b\"\nU5;\"open\n"},
		{OrdersUpload, mapped, "ИД,ИД клиента,Тип клиента,Статус,Дата создания,Сумма,Цели,Менеджер\n" +
			"704,C-1001,CONTACT,IN_PROGRESS,21.09.2024 09:48:23,5000,\"goal_id1:123.5,goal_id2\",Пётр\n" +
			"706,C-1002,CONTACT,PAID,30.09.2024 10:48,13000,,Пётр\n"},
		{OrdersUpload, "", "id,client_uniq_id,client_type,order_status,create_date_time,revenue,currency\n" +
			"1,C,CONTACT,PAID,2024-01-01 10:00,10,RUB\n" +
			"2,C,COMPANY,PAID,2024-01-01 10:00,10,RUB\n" +
			"3,C,CONTACT,PAID,1969-12-31 10:00,10,RUB\n" +
			"4,C,CONTACT,PAID,2024-01-01 10:00,-10,RUB\n" +
			"5,C,CONTACT,PAID,2024-01-01 10:00,10,рубли\n" +
			"6,C,CONTACT,,2024-01-01 10:00,10,RUB\n"},
		{OrdersUpload, "", "id,client_uniq_id,order_status\n"},
		{OrdersUpload, "", "id,client_uniq_id,client_type,order_status,create_date_time,update_date_time,finish_date_time,cost,products,user_comment,tags\n" +
			"7,C,contact,canceled,2024-01-01T10:00:00+03:00,1970-01-01 00:00:00,02.01.24,\"1 234,5\",\"Ноутбук TGDD12:1,Ноутбук TGD123:2\",\"a\nb\",\"x,y\"\n"},
		{OrdersUpload, "", ""},
		{OrdersUpload, "", "\ufeff"},
		{OrdersUpload, "", "id;client_uniq_id;client_type;order_status;create_date_time\n"},
	} {
		sel := byte(0)
		for i, in := range fuzzIntakes {
			if in == s.intake {
				sel = byte(i)
			}
		}
		f.Add(sel, s.mapping, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, sel byte, mapping string, data []byte) {
		format := MetricaFormat{Intake: fuzzIntakes[int(sel)%len(fuzzIntakes)], Location: time.UTC, Attributes: fuzzAttributes}
		if m, err := ParseColumnsMapping(mapping); err == nil {
			format.Mapping = m
		}
		r, err := NewMetricaCSVReader(bytes.NewReader(data), format)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("NewMetricaCSVReader: %v is not a *FileError", err)
			}
			return
		}
		readAll(t, r, len(data), func(row any) { checkMetricaRow(t, format.Intake, row) })
	})
}

func FuzzMetricaJSON(f *testing.F) {
	for _, s := range []struct {
		intake Intake
		body   string
	}{
		{ContactsUp, `{"contacts": [
		  {"uniq_id": "C-1001", "name": "Иванов И.",
		   "create_date_time": "2024-04-17 16:12:21", "update_date_time": "2024-04-17 16:12:21",
		   "client_ids": ["1713361941123456789", 17263548291736450123],
		   "emails": ["Ivanov@Example.com"], "phones": ["8 (999) 555-11-11"], "phones_md5": ["F09F2C3D48F31E2A802944ADE2E5AEC5"]},
		  {"uniq_id": "C-1002", "name": "Петрова М.", "create_date_time": "2024-05-17 16:13:21", "client_ids": ["1715950000111222333"]}
		]}`},
		{OrdersUpload, `{"orders": [
		  {"id": "704", "client_uniq_id": "C-1001", "client_type": "CONTACT", "order_status": "IN_PROGRESS",
		   "create_date_time": "2024-09-21 09:48:23", "update_date_time": "2024-10-15 10:48:34",
		   "revenue": 5000, "cost": 4000, "goals": [{"goal_action_id": "goal_id1", "price": 123.5}],
		   "products": {"pear": 10, "apple": 30}},
		  {"id": "706", "client_uniq_id": "C-1002", "client_type": "contact", "order_status": "PAID",
		   "create_date_time": "2024-09-30 10:48:23", "revenue": 13000, "cost": 10000, "currency": "RUB", "extra": "ignored"}
		]}`},
		{ContactsUp, `{"contacts": [{"uniq_id": "x"}`},
		{ContactsUp, `{"contacts": [{"uniq_id": "x", "attribute_values": [{"name": "size", "values": ["42"]}]}]}`},
		{ContactsUp, `{"meta": {"a": [1, 2]}, "contacts": [{"uniq_id": 12, "attribute_values": [["tags", "a", ["b", "c"]], ["age", 40]]},
		  {"uniq_id": true, "attribute_values": {"mail": ["A@B.ru"], "birthday": "1990-01-01"}}, null, 5, [],
		  {"uniq_id": "y", "attribute_values": [{"name": "note", "value": "hi"}], "user_ids": "a,b", "birth_date": "29.02.1980"}]}`},
		{ContactsUp, `{"contacts": [{"uniq_id": "z", "client_ids": [{"a": 1}, ["x"], null, ""], "user_ids": [["\u00ff"]], "emails": "a@b.ru, c@d.ru"}]}`},
		{OrdersUpload, `{"orders": [{"id": "1", "client_uniq_id": "C", "client_type": "CONTACT", "order_status": "x",
		  "create_date_time": "2024-01-01", "products": "a:1,b:2", "goals": "g1:10,g2", "revenue": "1 000,50", "cost": 1e3}]}`},
		{OrdersUpload, `{"orders": [{"id": ["1"], "client_uniq_id": {"a": 1}, "client_type": "CONTACT", "order_status": "x",
		  "create_date_time": "2024-01-01", "products": {"": 1, "b": -1}, "goals": [{"goal_action_id": "g", "price": -1}]}]}`},
		{OrdersUpload, `{"orders": [{"id": "1", "client_uniq_id": "C", "client_type": "CONTACT", "order_status": "x",
		  "create_date_time": "1970-01-01T00:00:00Z", "products": {"a": 1e12, "b": 0.5}, "goals": [{"goal_action_id": "g", "price": 1e2}]}]}`},
		{OrdersUpload, `{"orders": {"id": 1}}`},
		{OrdersUpload, `{"orders": []}`},
		{OrdersUpload, `{"orders": [] , "orders": [1]}`},
		{OrdersUpload, `[]`},
		{OrdersUpload, ``},
		{OrdersUpload, `{"orders": [{"id": "\xff"}]}`},
		{ContactsUp, "{\"contacts\": [{\"uniq_id\": \"w\", \"client_ids\": [[\"\xff\"]], \"user_ids\": [{\"\xfe\": 1}]}]}"},
		{OrdersUpload, "{\"orders\": [{\"id\": \"s\", \"client_uniq_id\": [\"\xff\"], \"client_type\": \"CONTACT\", \"order_status\": \"x\", \"create_date_time\": \"2024-01-01\"}]}"},
		{OrdersUpload, "\ufeff{\"orders\": []}"},
		{OrdersUpload, `{"orders": [{}, {}, {}]} trailing`},
	} {
		sel := byte(0)
		if s.intake == OrdersUpload {
			sel = 1
		}
		f.Add(sel, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, sel byte, data []byte) {
		format := MetricaFormat{Intake: fuzzIntakes[int(sel)%2], Location: time.UTC, Attributes: fuzzAttributes}
		r, err := NewMetricaJSONReader(bytes.NewReader(data), format)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("NewMetricaJSONReader: %v is not a *FileError", err)
			}
			return
		}
		readAll(t, r, len(data), func(row any) { checkMetricaRow(t, format.Intake, row) })
	})
}

// readAll reads rows until io.EOF or an error that ends the input, checking
// each row with check (and through the spool), and fails if the reader
// yields more results than the input has bytes: it would be looping.
func readAll(t *testing.T, r RowReader, size int, check func(row any)) {
	t.Helper()
	for i := 0; ; i++ {
		if i > size+10 {
			t.Fatalf("%d results from %d bytes: the reader loops", i, size)
		}
		row, line, err := r.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			var re *RowError
			if !errors.As(err, &re) {
				return // the input cannot be read further
			}
			if re.Line < 1 || re.Message == "" {
				t.Fatalf("row error %+v", re)
			}
			if row != nil {
				t.Fatalf("a row error with a row: %+v", row)
			}
			continue
		}
		if line < 1 {
			t.Fatalf("a row at line %d", line)
		}
		check(row)
		checkSpool(t, row)
	}
}

func afterMin(t *testing.T, what string, tm time.Time, zeroOK bool) {
	t.Helper()
	if tm.IsZero() && zeroOK {
		return
	}
	if tm.Before(minDate) {
		t.Fatalf("%s = %v: before 1970", what, tm)
	}
}

func validUTF8(t *testing.T, what string, ss ...string) {
	t.Helper()
	for _, s := range ss {
		if !utf8.ValidString(s) {
			t.Fatalf("%s %q is not UTF-8", what, s)
		}
	}
}

func checkK50Order(t *testing.T, o *Order) {
	t.Helper()
	if o.ID == "" || len(o.ID) > 255 {
		t.Fatalf("order id %q", o.ID)
	}
	validUTF8(t, "string", o.ID, o.ContactID, o.Status, o.Currency, o.Comment, o.Type, o.SID, o.CallerPhone)
	validUTF8(t, "client id", o.ClientIDs...)
	afterMin(t, "CreatedAt", o.CreatedAt, false)
	if o.Revenue < 0 || o.Items < 0 {
		t.Fatalf("order %q: revenue %d, items %d", o.ID, o.Revenue, o.Items)
	}
	if o.Type != "" && o.Type != "online" && o.Type != "offline" {
		t.Fatalf("order %q: type %q", o.ID, o.Type)
	}
	checkPhones(t, o.CallerPhone)
}

func checkMetricaRow(t *testing.T, intake Intake, row any) {
	t.Helper()
	switch r := row.(type) {
	case *Order:
		if intake == ContactsUp {
			t.Fatalf("an order from a contacts upload")
		}
		checkMetricaOrder(t, intake, r)
	case *Contact:
		if intake != ContactsUp {
			t.Fatalf("a contact from an orders upload")
		}
		checkContact(t, r)
	default:
		t.Fatalf("a row of type %T", row)
	}
}

func checkMetricaOrder(t *testing.T, intake Intake, o *Order) {
	t.Helper()
	if o.ID == "" || utf8.RuneCountInString(o.ID) > 255 {
		t.Fatalf("order id %q", o.ID)
	}
	if o.IDGenerated && (intake != SimpleOrders || !strings.HasPrefix(o.ID, "auto-")) {
		t.Fatalf("generated order id %q in %s", o.ID, intake)
	}
	validUTF8(t, "string", o.ID, o.ContactID, o.Status, o.Currency, o.Comment, o.Type, o.SID, o.CallerPhone)
	for _, l := range [][]string{o.ClientIDs, o.Phones, o.Emails, o.PhonesMD5, o.EmailsMD5} {
		validUTF8(t, "list item", l...)
	}
	afterMin(t, "CreatedAt", o.CreatedAt, false)
	afterMin(t, "UpdatedAt", o.UpdatedAt, true)
	afterMin(t, "FinishedAt", o.FinishedAt, true)
	if o.Revenue < 0 || o.Cost < 0 {
		t.Fatalf("order %q: revenue %d, cost %d", o.ID, o.Revenue, o.Cost)
	}
	if o.Currency != "" && !currencyRE.MatchString(o.Currency) {
		t.Fatalf("order %q: currency %q", o.ID, o.Currency)
	}
	checkKeys(t, o.Phones, o.Emails, o.PhonesMD5, o.EmailsMD5)
	checkProducts(t, o.Products)
	checkGoals(t, o.Goals)
	checkAttributes(t, o.Attributes)
}

func checkContact(t *testing.T, c *Contact) {
	t.Helper()
	if c.UniqID == "" || utf8.RuneCountInString(c.UniqID) > 255 {
		t.Fatalf("contact id %q", c.UniqID)
	}
	validUTF8(t, "string", c.UniqID, c.Name, c.BirthDate, c.CompanyID, c.Comment)
	for _, l := range [][]string{c.ClientIDs, c.UserIDs, c.Phones, c.Emails, c.PhonesMD5, c.EmailsMD5} {
		validUTF8(t, "list item", l...)
	}
	afterMin(t, "CreatedAt", c.CreatedAt, true)
	afterMin(t, "UpdatedAt", c.UpdatedAt, true)
	if c.BirthDate != "" {
		if _, err := time.Parse(time.DateOnly, c.BirthDate); err != nil {
			t.Fatalf("contact %q: birth date %q", c.UniqID, c.BirthDate)
		}
	}
	checkKeys(t, c.Phones, c.Emails, c.PhonesMD5, c.EmailsMD5)
	checkAttributes(t, c.Attributes)
}

func checkPhones(t *testing.T, phones ...string) {
	t.Helper()
	for _, p := range phones {
		if p != "" && (!allDigits(p) || len(p) > 15) {
			t.Fatalf("phone %q is not normalised", p)
		}
	}
}

func checkKeys(t *testing.T, phones, emails, phonesMD5, emailsMD5 []string) {
	t.Helper()
	for _, p := range phones {
		if p == "" {
			t.Fatal("an empty phone")
		}
	}
	checkPhones(t, phones...)
	for _, e := range emails {
		if n, err := normalize.Email(e); err != nil || n != e {
			t.Fatalf("e-mail %q is not normalised", e)
		}
	}
	for _, h := range append(append([]string(nil), phonesMD5...), emailsMD5...) {
		if n, err := normalize.Hash(h); err != nil || n != h {
			t.Fatalf("md5 %q is not normalised", h)
		}
	}
}

func checkProducts(t *testing.T, p map[string]float64) {
	t.Helper()
	for id, q := range p {
		if id == "" || id != strings.TrimSpace(id) || !utf8.ValidString(id) {
			t.Fatalf("product id %q", id)
		}
		if math.IsNaN(q) || math.IsInf(q, 0) || q < 0 {
			t.Fatalf("product %q: quantity %v", id, q)
		}
	}
}

func checkGoals(t *testing.T, gs []Goal) {
	t.Helper()
	for _, g := range gs {
		if !statusCodeRE.MatchString(g.ID) || g.Price < 0 || (!g.HasPrice && g.Price != 0) {
			t.Fatalf("goal %+v", g)
		}
	}
}

func checkAttributes(t *testing.T, attrs map[string][]string) {
	t.Helper()
	for name, vals := range attrs {
		var decl *Attribute
		for i := range fuzzAttributes {
			if fuzzAttributes[i].Name == name {
				decl = &fuzzAttributes[i]
			}
		}
		if decl == nil {
			t.Fatalf("attribute %q was not declared", name)
		}
		if !decl.Multivalued && len(vals) > 1 {
			t.Fatalf("attribute %q holds %q", name, vals)
		}
		validUTF8(t, "attribute value", vals...)
	}
}

// checkSpool puts a row read by a reader through the spool encoding: it
// must come back as it was, but for times cut to microseconds.
func checkSpool(t *testing.T, row any) {
	t.Helper()
	switch r := row.(type) {
	case *Order:
		want := *r
		want.CreatedAt = want.CreatedAt.Truncate(time.Microsecond)
		want.UpdatedAt = want.UpdatedAt.Truncate(time.Microsecond)
		want.FinishedAt = want.FinishedAt.Truncate(time.Microsecond)
		roundTripOrder(t, &want)
	case *Contact:
		want := *r
		want.CreatedAt = want.CreatedAt.Truncate(time.Microsecond)
		want.UpdatedAt = want.UpdatedAt.Truncate(time.Microsecond)
		roundTripContact(t, &want)
	}
}

// ---------------------------------------------------------------- spool

// maxFuzzMicro is 9999-12-31 23:59:59.999999 UTC, the last instant the
// parsers can produce.
const maxFuzzMicro = 253402300799999999

// fuzzTime maps a fuzzed number onto the times rows carry: the zero time
// (unknown) or an instant from 1970 to 9999, in microseconds, in UTC.
func fuzzTime(us int64) time.Time {
	if us < 0 {
		return time.Time{}
	}
	return time.UnixMicro(us % (maxFuzzMicro + 1)).UTC()
}

func fuzzList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func FuzzSpoolRoundTrip(f *testing.F) {
	f.Add("A-1001", "call back; after 18:00\nsecond line", "0193f1a8-7c2e-7a55-9c2b-2f0b8c1d9e42", "79995551111,79995552222",
		"Ноутбук TGDD12", 2.0, "oplata_cash", int64(20000), true, int64(499000), int64(349000), int64(2),
		uint32(FRevenue|FCost|FGoals|FProducts), int64(1709283600000000), int64(-1), "tags", "a,b", false)
	f.Add("", "", "", "", "", 0.0, "", int64(0), false, int64(0), int64(0), int64(0), uint32(0), int64(-1), int64(-1), "", "", false)
	f.Add("auto-0123456789abcdef0123", "\xff\xfe", "\x00", ",,", "", math.NaN(), "g", int64(-1), false, int64(math.MinInt64),
		int64(math.MaxInt64), int64(-5), uint32(math.MaxUint32), int64(maxFuzzMicro), int64(1), "", ",", true)
	f.Add("E", "", "", "", "p", math.Inf(-1), "", int64(0), false, int64(0), int64(0), int64(0), uint32(0),
		int64(0), int64(0), "x", "", false) // the epoch itself: 1970-01-01 00:00:00 UTC
	f.Fuzz(func(t *testing.T, id, comment, sid, list, productID string, quantity float64, goalID string, price int64, hasPrice bool,
		revenue, cost, items int64, has uint32, created, updated int64, attrName, attrValues string, generated bool) {
		o := &Order{
			ID: id, Has: Field(has), ContactID: sid + id, CreatedAt: fuzzTime(created), UpdatedAt: fuzzTime(updated),
			FinishedAt: fuzzTime(created ^ updated), Status: goalID, Revenue: revenue, Cost: cost, Margin: revenue - cost,
			Items: items, Currency: attrName, Comment: comment, Type: attrValues, SID: sid, CallerPhone: productID,
			ClientIDs: fuzzList(list), Phones: fuzzList(sid), Emails: fuzzList(comment), PhonesMD5: fuzzList(id),
			EmailsMD5: fuzzList(attrValues), IDGenerated: generated,
		}
		if productID != "" || quantity != 0 {
			o.Products = map[string]float64{productID: quantity, productID + "\x00": -quantity}
		}
		if goalID != "" || hasPrice {
			o.Goals = []Goal{{ID: goalID, Price: price, HasPrice: hasPrice}, {ID: list}}
		}
		if attrName != "" || attrValues != "" {
			o.Attributes = map[string][]string{attrName: fuzzList(attrValues), attrName + "2": nil}
		}
		roundTripOrder(t, o)

		c := &Contact{
			UniqID: id, Has: Field(has), Name: comment, CreatedAt: fuzzTime(created), UpdatedAt: fuzzTime(updated),
			ClientIDs: fuzzList(list), UserIDs: fuzzList(sid), Phones: fuzzList(productID), Emails: fuzzList(comment),
			PhonesMD5: fuzzList(id), EmailsMD5: fuzzList(attrValues), BirthDate: goalID, CompanyID: sid, Comment: list,
			Attributes: o.Attributes,
		}
		roundTripContact(t, c)
	})
}

// FuzzSpoolDecode feeds arbitrary bytes to the spool decoder: it must not
// panic, and what it decodes without an error must encode and decode to
// itself.
func FuzzSpoolDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add(appendOrder(nil, &Order{ID: "A-1", CreatedAt: time.Unix(1709283600, 0).UTC(), Products: map[string]float64{"a": 1},
		Goals: []Goal{{ID: "g", Price: 100, HasPrice: true}}, Attributes: map[string][]string{"tags": {"a", "b"}}, ClientIDs: []string{"x"}}))
	f.Add(appendContact(nil, &Contact{UniqID: "C-1", Phones: []string{"79995551111"}, Attributes: map[string][]string{"k": nil}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := decoder{b: data}
		o := d.order()
		if d.err == nil {
			roundTripOrder(t, o)
		}
		d = decoder{b: data}
		c := d.contact()
		if d.err == nil {
			roundTripContact(t, c)
		}
	})
}

// roundTripOrder encodes o, decodes it and compares; every strict prefix of
// the encoding must fail to decode.
func roundTripOrder(t *testing.T, o *Order) {
	t.Helper()
	enc := appendOrder(nil, o)
	d := decoder{b: enc}
	got := d.order()
	if d.err != nil || len(d.b) != 0 {
		t.Fatalf("decoding %+v: %v, %d bytes left", o, d.err, len(d.b))
	}
	want := normOrder(o)
	if g := normOrder(got); !reflect.DeepEqual(g, want) {
		t.Fatalf("spool round trip:\n got %+v\nwant %+v", g, want)
	}
	if !sameProducts(got.Products, o.Products) {
		t.Fatalf("spool round trip: products %v, want %v", got.Products, o.Products)
	}
	for _, n := range prefixes(len(enc)) {
		d := decoder{b: enc[:n]}
		d.order()
		if d.err == nil {
			t.Fatalf("%d of %d bytes of %+v decode without an error", n, len(enc), o)
		}
	}
}

func roundTripContact(t *testing.T, c *Contact) {
	t.Helper()
	enc := appendContact(nil, c)
	d := decoder{b: enc}
	got := d.contact()
	if d.err != nil || len(d.b) != 0 {
		t.Fatalf("decoding %+v: %v, %d bytes left", c, d.err, len(d.b))
	}
	if g, want := normContact(got), normContact(c); !reflect.DeepEqual(g, want) {
		t.Fatalf("spool round trip:\n got %+v\nwant %+v", g, want)
	}
	for _, n := range prefixes(len(enc)) {
		d := decoder{b: enc[:n]}
		d.contact()
		if d.err == nil {
			t.Fatalf("%d of %d bytes of %+v decode without an error", n, len(enc), c)
		}
	}
}

// prefixes lists the strict prefix lengths to try: all of them for short
// encodings, a spread for long ones.
func prefixes(n int) []int {
	var out []int
	step := max(1, n/64)
	for i := 0; i < n; i += step {
		out = append(out, i)
	}
	if n > 0 && (len(out) == 0 || out[len(out)-1] != n-1) {
		out = append(out, n-1)
	}
	return out
}

// The decoder returns nil for empty lists and maps; products are compared
// apart, by their bits (a NaN is not equal to itself).
func normOrder(o *Order) Order {
	n := *o
	n.ClientIDs, n.Phones, n.Emails, n.PhonesMD5, n.EmailsMD5 = normList(n.ClientIDs), normList(n.Phones), normList(n.Emails), normList(n.PhonesMD5), normList(n.EmailsMD5)
	n.Products = nil
	if len(n.Goals) == 0 {
		n.Goals = nil
	}
	n.Attributes = normAttributes(n.Attributes)
	// Not in the spool: set when stored.
	n.StatusType, n.Intake, n.ImportedAt, n.ChangedAt, n.ImportID = "", "", time.Time{}, time.Time{}, ""
	return n
}

func normContact(c *Contact) Contact {
	n := *c
	n.ClientIDs, n.UserIDs, n.Phones, n.Emails, n.PhonesMD5, n.EmailsMD5 = normList(n.ClientIDs), normList(n.UserIDs), normList(n.Phones), normList(n.Emails), normList(n.PhonesMD5), normList(n.EmailsMD5)
	n.Attributes = normAttributes(n.Attributes)
	n.ImportedAt, n.ChangedAt, n.ImportID = time.Time{}, time.Time{}, ""
	return n
}

func normList(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

func normAttributes(a map[string][]string) map[string][]string {
	if len(a) == 0 {
		return nil
	}
	out := make(map[string][]string, len(a))
	for k, v := range a {
		out[k] = normList(v)
	}
	return out
}

func sameProducts(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || math.Float64bits(v) != math.Float64bits(w) {
			return false
		}
	}
	return true
}
