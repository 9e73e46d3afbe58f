package exports_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/exports"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

func TestMetricaOfflineConversions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _, err := counter.Create(ctx, db, counter.NewCounter{Name: "Shop", Domain: "shop.ru", Timezone: "UTC"})
		if err != nil {
			t.Fatal(err)
		}
		at := func(day, hour int) time.Time { return time.Date(2026, 3, day, hour, 0, 0, 0, time.UTC) }
		session := func(sid, uuid string, t0 time.Time, clicks string) {
			if _, err := db.Writer().Exec(`INSERT INTO sessions (counter_id, sid, uuid, started_at, landing_url, referrer,
				utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids, traffic_type, source, medium, device, browser, os, ip)
				VALUES ($1, $2, $3, $4, '', '', 'yandex', 'cpc', 'c', '', '', $5, 'ad', 'yandex', 'cpc', '', '', '', '')`,
				c.ID, sid, uuid, t0, clicks); err != nil {
				t.Fatal(err)
			}
		}
		session("s1", "u1", at(1, 10), `{"yclid":"111"}`)
		session("s2", "u1", at(3, 10), `{"yclid":"222"}`) // the later click wins
		session("s3", "u1", at(4, 10), `{}`)
		session("s4", "u2", at(2, 10), `{"gclid":"g"}`) // not a Direct click
		session("s5", "u3", at(2, 10), `{"yclid":"333"}`)
		session("s6", "u4", at(2, 10), `{"yclid":"444"}`)
		_, err = crm.Import(ctx, db, c.ID, crm.Options{Intake: crm.SimpleOrders}, func() (crm.RowReader, error) {
			return crm.NewMetricaCSVReader(strings.NewReader(`id,create_date_time,finish_date_time,client_ids,order_status,revenue,cost,currency
P1,05.03.2026 12:00,06.03.2026 09:30,u1,PAID,1500.50,500,RUB
P2,05.03.2026 12:00,,u2,PAID,900,,RUB
P3,05.03.2026 13:00,,u3,IN_PROGRESS,700,,USD
P4,05.03.2026 14:00,,u4,CANCELLED,100,,RUB
`), crm.MetricaFormat{Intake: crm.SimpleOrders, Location: time.UTC})
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := matching.Run(ctx, db, c.ID); err != nil {
			t.Fatal(err)
		}
		export := func(q exports.MetricaQuery) (string, int) {
			var b strings.Builder
			n, err := exports.MetricaOfflineConversions(ctx, db, c.ID, q, &b)
			if err != nil {
				t.Fatal(err)
			}
			return b.String(), n
		}
		now := at(20, 0)
		got, n := export(exports.MetricaQuery{Goal: exports.GoalPaid, Target: "crm_paid", MaxAgeDays: 21, Now: now})
		// P1: the last Direct click (222), paid when it finished, revenue − cost.
		want := "Yclid,Target,DateTime,Price,Currency\n222,crm_paid," + itoa(at(6, 9).Add(30*time.Minute).Unix()) + ",1000.50,RUB\n"
		if got != want || n != 1 {
			t.Errorf("paid:\n%s\nwant:\n%s", got, want)
		}
		got, n = export(exports.MetricaQuery{Goal: exports.GoalCreated, Target: "crm_created", Now: now})
		want = "Yclid,Target,DateTime,Price,Currency\n" +
			"222,crm_created," + itoa(at(5, 12).Unix()) + ",1000.50,RUB\n" +
			"333,crm_created," + itoa(at(5, 13).Unix()) + ",700.00,USD\n"
		if got != want || n != 2 {
			t.Errorf("created:\n%s\nwant:\n%s", got, want)
		}
		// Clicks older than the window, and conversions not yet in the past, are left out.
		if got, n = export(exports.MetricaQuery{Goal: exports.GoalCreated, Target: "x", MaxAgeDays: 21, Now: at(24, 0)}); n != 1 || !strings.Contains(got, "222,") {
			t.Errorf("21-day window on 24 March keeps only the click of 3 March: %q", got)
		}
		if _, n = export(exports.MetricaQuery{Goal: exports.GoalCreated, Target: "x", Now: at(5, 12)}); n != 0 {
			t.Errorf("a conversion at the export's own moment was written")
		}
		for _, q := range []exports.MetricaQuery{{Goal: "bought", Target: "x"}, {Goal: "paid", Target: "a b"}, {Goal: "paid", Target: ""}, {Goal: "paid", Target: "x", MaxAgeDays: -1}} {
			var invalid *exports.InvalidError
			if _, err := exports.MetricaOfflineConversions(ctx, db, c.ID, q, &strings.Builder{}); !errors.As(err, &invalid) {
				t.Errorf("%+v: %v", q, err)
			}
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
