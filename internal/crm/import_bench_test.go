package crm_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// BenchmarkK50Import imports a 50,000-row feed into a fresh counter, then
// the same feed again (every row unchanged). The whole-file benchmark with
// its baseline is bench/crmimport.
func BenchmarkK50Import(b *testing.B) {
	var feed bytes.Buffer
	feed.WriteString("date;orderId;callerPhone;sid;uuid;amount;margin;revenue;comment;type\n")
	const rows = 50_000
	for i := range rows {
		fmt.Fprintf(&feed, "2025-01-01 10:%02d:%02d;ORD-%07d;79%09d;0193f1a8-7c2e-7a55-9c2b-%012d;0b8e2bd4-5b0e-4b8a-9a7e-%012d;2;150,50;4990,00;;\n",
			i/60%60, i%60, i, i, i, i)
	}
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			for b.Loop() {
				db := storetest.Open(b, d)
				c, _, err := counter.Create(context.Background(), db, counter.NewCounter{Name: "b", Domain: "shop.ru"})
				if err != nil {
					b.Fatal(err)
				}
				for pass := range 2 {
					res, err := crm.Import(context.Background(), db, c.ID, crm.Options{Intake: crm.K50Feed}, func() (crm.RowReader, error) {
						return crm.NewK50Reader(bytes.NewReader(feed.Bytes()), c.Location(), nil)
					})
					if err != nil || (pass == 0 && res.Inserted != rows) || (pass == 1 && res.Unchanged != rows) {
						b.Fatalf("pass %d: %v %+v", pass, err, res)
					}
				}
			}
			b.ReportMetric(float64(2*rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
