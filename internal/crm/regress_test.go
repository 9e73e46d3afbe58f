package crm_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// Cases found by review, each once a bug.

// A quote that is never closed swallows the rows after it: the file is
// refused whole even when bad rows may be skipped, instead of "passing"
// with the rest of the file silently gone. A row too long to be real is
// refused before it is held in memory.
func TestUnclosedQuoteRefusesTheFile(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		feed := "date;orderId;callerPhone;sid;uuid;comment\n2024-03-01 12:00:00;Q-1;;;;ok\n2024-03-01 12:00:00;Q-2;;;;\"oops\n" +
			strings.Repeat("2024-03-01 12:00:00;Q-x;;;;fine\n", 100)
		for _, skip := range []bool{false, true} {
			res, err := importK50(t, db, c, feed, crm.Options{SkipBadRows: skip})
			var fe *crm.FileError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), "line 3") || res.Status != crm.StatusFailed {
				t.Errorf("skip=%v: %v %+v", skip, err, res)
			}
		}
		huge := "date;orderId;callerPhone;sid;uuid;comment\n2024-03-01 12:00:00;H-1;;;;" + strings.Repeat("x", crm.MaxRecordBytes+1<<20) + "\n"
		_, err := importK50(t, db, c, huge, crm.Options{SkipBadRows: true})
		var fe *crm.FileError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "longer than") {
			t.Errorf("a 5 MiB row: %v", err)
		}
		_, err = importMetrica(t, db, c, crm.ContactsUp, "JSON", `{"contacts": [{"uniq_id": "x", "name": "`+strings.Repeat("y", crm.MaxRecordBytes+1<<20)+`"}]}`, crm.Options{}, crm.MetricaFormat{})
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "longer than") {
			t.Errorf("a 5 MiB JSON element: %v", err)
		}
		if _, err := crm.GetOrder(context.Background(), db, c.ID, "Q-1"); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("Q-1 stored: %v", err)
		}
	})
}

// PostgreSQL's text cannot hold NUL: such a cell is a bad row with its line,
// not a failed database write.
func TestNULByteIsABadRow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		feed := "date;orderId;callerPhone;sid;uuid;comment\n2024-03-01 12:00:00;N-1;;;;a\x00b\n2024-03-01 12:00:00;N-2;;;;fine\n"
		res, err := importK50(t, db, c, feed, crm.Options{SkipBadRows: true})
		if err != nil || res.Inserted != 1 || res.Rejected != 1 || res.Errors[0].Line != 2 || !strings.Contains(res.Errors[0].Message, "NUL") {
			t.Fatalf("%v %+v", err, res)
		}
		_, err = importMetrica(t, db, c, crm.ContactsUp, "JSON", `{"contacts": [{"uniq_id": "x", "client_ids": ["a\u0000b"]}]}`, crm.Options{}, crm.MetricaFormat{})
		var rej *crm.RejectedError
		if !errors.As(err, &rej) {
			t.Errorf("NUL in a client id: %v", err)
		}
	})
}

func TestMergeModesRederiveAndAppendLists(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		up := func(mode crm.MergeMode, body string) {
			t.Helper()
			if res, err := importMetrica(t, db, c, crm.OrdersUpload, "JSON", body, crm.Options{Mode: mode}, crm.MetricaFormat{}); err != nil {
				t.Fatalf("%s: %v %+v", mode, err, res)
			}
		}
		up(crm.Save, `{"orders": [{"id": "M-1", "client_uniq_id": "C", "client_type": "CONTACT", "order_status": "paid",
			"create_date_time": "2024-01-01 10:00", "products": {"pear": 1}, "goals": [{"goal_action_id": "g1", "price": 1}]}]}`)
		up(crm.Append, `{"orders": [{"id": "M-1", "client_uniq_id": "C", "client_type": "CONTACT", "order_status": "paid",
			"create_date_time": "2024-01-01 10:00", "products": {"apple": 2, "pear": 3}, "goals": [{"goal_action_id": "g2"}, {"goal_action_id": "g1", "price": 5}]}]}`)
		o := mustOrder(t, db, c, "M-1")
		if o.Products["pear"] != 3 || o.Products["apple"] != 2 || len(o.Goals) != 2 || o.Goals[0].ID != "g1" || num(o.Goals[0].Price) != "5.00" || o.Goals[1].ID != "g2" {
			t.Errorf("APPEND products and goals: %+v %+v", o.Products, o.Goals)
		}
		// "paid" is the built-in type until the counter maps "paid" itself.
		if *o.StatusType != crm.Paid {
			t.Errorf("paid → %v", *o.StatusType)
		}
		if err := crm.SaveStatuses(context.Background(), db, c.ID, []crm.Status{{Code: "paid", Type: crm.InProgress}, {Code: "Новый заказ", Type: crm.InProgress}}, false); err != nil {
			t.Fatal(err)
		}
		if o := mustOrder(t, db, c, "M-1"); *o.StatusType != crm.InProgress {
			t.Errorf("mapped paid → %v", *o.StatusType)
		}

		// A simple order with a phone only is offline; an UPDATE that adds a
		// client id makes it online.
		if _, err := importMetrica(t, db, c, crm.SimpleOrders, "CSV", "id,create_date_time,phones\nS-1,2024-01-01 10:00,79995551111\n", crm.Options{}, crm.MetricaFormat{}); err != nil {
			t.Fatal(err)
		}
		if o := mustOrder(t, db, c, "S-1"); o.Type != "offline" {
			t.Fatalf("S-1 %s", o.Type)
		}
		if _, err := importMetrica(t, db, c, crm.SimpleOrders, "CSV", "id,create_date_time,client_ids\nS-1,2024-01-01 10:00,12345\n", crm.Options{Mode: crm.Update}, crm.MetricaFormat{}); err != nil {
			t.Fatal(err)
		}
		if o := mustOrder(t, db, c, "S-1"); o.Type != "online" || len(o.Phones) != 1 {
			t.Errorf("after UPDATE with a client id: %+v", o)
		}
	})
}

func TestLimitsOnLists(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounter(t, db, "shop.example.ru")
		mails := func(n int) string {
			l := make([]string, n)
			for i := range l {
				l[i] = fmt.Sprintf(`"m%d@example.com"`, i)
			}
			return strings.Join(l, ",")
		}
		res, err := importMetrica(t, db, c, crm.ContactsUp, "JSON", `{"contacts": [{"uniq_id": "x", "emails": [`+mails(crm.MaxValues+1)+`]}]}`, crm.Options{}, crm.MetricaFormat{})
		if err == nil || !strings.Contains(res.Errors[0].Message, "at most") {
			t.Errorf("too many e-mails: %v", err)
		}
		if res, err := importMetrica(t, db, c, crm.ContactsUp, "JSON", `{"contacts": [{"uniq_id": "x", "emails": [`+mails(crm.MaxValues-1)+`,"M0@Example.com"]}]}`, crm.Options{}, crm.MetricaFormat{}); err != nil || res.Inserted != 1 {
			t.Fatalf("a thousand e-mails and a duplicate: %v %+v", err, res)
		}
		v, err := crm.GetContact(context.Background(), db, c.ID, "x")
		if err != nil || len(v.Emails) != crm.MaxValues-1 || slices.Index(v.Emails, "m0@example.com") != 0 {
			t.Errorf("e-mails: %v %d", err, len(v.Emails))
		}
		many := make([]crm.Status, crm.MaxStatuses+1)
		for i := range many {
			many[i] = crm.Status{Code: fmt.Sprint("s", i), Type: crm.Paid}
		}
		if err := crm.SaveStatuses(context.Background(), db, c.ID, many, false); err == nil {
			t.Error("1001 statuses accepted")
		}
		// Birth dates are not CRM event dates: 1965 is fine.
		if _, err := importMetrica(t, db, c, crm.ContactsUp, "CSV", "uniq_id,birth_date\nold,01.05.1965\n", crm.Options{}, crm.MetricaFormat{}); err != nil {
			t.Errorf("birth date 1965: %v", err)
		}
		// A repeated column the format does not use is no reason to refuse a file.
		if _, err := importK50(t, db, c, "date;orderId;callerPhone;sid;uuid;note;note\n2024-03-01 12:00:00;D-1;;;;a;b\n", crm.Options{}); err != nil {
			t.Errorf("duplicated unknown column: %v", err)
		}
	})
}
