package tracker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCollect measures the collector alone (no HTTP): hits of many
// visitors from many concurrent senders, committed in groups.
//
//	go test -run XXX -bench Collect -cpuprofile cpu.out ./internal/tracker
func BenchmarkCollect(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			shop, _, err := counter.Create(context.Background(), db, counter.NewCounter{Name: "Bench", Domain: "shop.ru"})
			if err != nil {
				b.Fatal(err)
			}
			c := NewCollector(db, Config{})
			defer c.Close(context.Background())
			b.SetParallelism(64)
			cpu0 := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					v := rand.IntN(100000)
					u, _ := url.Parse(fmt.Sprintf("https://shop.ru/p/%d?utm_source=yandex&utm_medium=cpc", rand.IntN(1000)))
					h := Hit{Counter: shop, UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", v), Type: Pageview, URL: u,
						Title: "Bench", Props: "{}", At: time.Now().UTC(), UserAgent: chromeUA,
						IP: netip.MustParseAddr("203.0.113.9"), Campaign: ParseCampaign(u)}
					if _, err := c.Collect(context.Background(), h); err != nil {
						b.Error(err)
						return
					}
				}
			})
			// CPU, unlike wall time, barely moves with what else the machine
			// runs (PostgreSQL's own CPU is not in it).
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
