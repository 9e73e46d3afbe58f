// Command retailimport measures a retailcrm import task's first run against
// the bound RetailCRM's rate limit sets (issue 7): -orders orders are read
// from a fake RetailCRM account (internal/retailcrm/fakecrm, run as a child
// process of this program so that its work is not counted as ours) with its
// limit of 10 requests/s on, 100 orders a page, and imported into a fresh
// SQLite database through the real task (imports.Tasks.Run).
//
// It prints orders/s, the API requests made (and how many were refused with
// 503), the lower bound of requests and of time (pages at 10 req/s, and at
// the client's own 8 req/s), and how much of the wall time was ours:
// processing = wall time − the time the import was blocked waiting for
// RetailCRM's pages (the limiter and the HTTP answers), and this process's
// CPU time (the fake's excluded).
//
//	go run ./bench/retailimport -orders 100000
//
// -cpuprofile file writes a CPU profile of the run (this process: the page
// reader's decoding, the mapping, the spool and the apply).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/imports"
	"github.com/throughline/throughline/internal/retailcrm"
	"github.com/throughline/throughline/internal/retailcrm/fakecrm"
	"github.com/throughline/throughline/internal/secrets"
	"github.com/throughline/throughline/internal/store"
)

func main() {
	orders := flag.Int("orders", 100_000, "orders in the fake account")
	serve := flag.Bool("serve-fake", false, "internal: run the fake RetailCRM with -orders orders until stdin closes")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run (this process only) to `file`")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	if *serve {
		serveFake(*orders)
		return
	}
	if err := run(*orders, *cpuProfile); err != nil {
		log.Fatal(err)
	}
}

// serveFake is the child: it prints the account's URL and key, then serves
// until the parent closes its stdin.
func serveFake(n int) {
	s := fakecrm.New()
	s.GenerateOrders(n, fakecrm.Generate{})
	fmt.Printf("%s %s\n", s.URL, s.Key())
	bufio.NewReader(os.Stdin).ReadString('\n')
	s.Close()
}

// countingTransport counts requests and the 503s among them.
type countingTransport struct {
	requests, refused atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.requests.Add(1)
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && res.StatusCode == http.StatusServiceUnavailable {
		c.refused.Add(1)
	}
	return res, err
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func run(n int, cpuProfile string) error {
	ctx := context.Background()
	child := exec.Command(os.Args[0], "-serve-fake", fmt.Sprint("-orders=", n))
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); child.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("fake RetailCRM: %w", err)
	}
	url, key, _ := strings.Cut(strings.TrimSpace(line), " ")
	log.Printf("fake RetailCRM (child process %d) at %s with %d orders, 10 req/s", child.Process.Pid, url, n)

	work, err := os.MkdirTemp("", "throughline-retailbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	db, err := store.Open(ctx, filepath.Join(work, "throughline.db"), work, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	c, _, err := counter.Create(ctx, db, counter.NewCounter{Name: "bench", Domain: "shop.example"})
	if err != nil {
		return err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	box, err := secrets.New(secret)
	if err != nil {
		return err
	}
	ct := &countingTransport{}
	var stats imports.RetailRun
	tasks := &imports.Tasks{DB: db, AllowPrivate: true, Box: box,
		RetailOptions: retailcrm.Options{HTTPClient: &http.Client{Transport: ct}},
		RetailRunDone: func(r imports.RetailRun) { stats = r }}
	typ, name, start, active := imports.TypeRetailCRM, "bench", "2024-01-01", false
	task, err := tasks.Create(ctx, c.ID, imports.TaskInput{Type: &typ, Name: &name, URL: &url, APIKey: &key, StartDate: &start, Active: &active})
	if err != nil {
		return err
	}
	setup := ct.requests.Load()
	ct.requests.Store(0)

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	cpu0, t0 := cpuTime(), time.Now()
	res, err := tasks.Run(ctx, nil, task, work)
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	var stored int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM crm_orders WHERE counter_id = $1`, c.ID).Scan(&stored); err != nil {
		return err
	}
	if stored != n || stats.Orders != n {
		return fmt.Errorf("stored %d orders, read %d, want %d (%+v)", stored, stats.Orders, n, res)
	}
	pages := (n + retailcrm.PageLimit - 1) / retailcrm.PageLimit
	requests := ct.requests.Load()
	bound := func(rps float64) time.Duration { return time.Duration(float64(pages) / rps * float64(time.Second)) }
	processing := wall - stats.Waited
	fmt.Printf("orders imported        %d (rows %d: orders and their customers as contacts; inserted %d)\n", n, res.Read, res.Inserted)
	fmt.Printf("wall time              %.1f s\n", wall.Seconds())
	fmt.Printf("orders/s               %.0f\n", float64(n)/wall.Seconds())
	fmt.Printf("API requests           %d (%d pages of orders + reference data; %d refused with 503), plus %d for the connection test at save\n",
		requests, pages, ct.refused.Load(), setup)
	fmt.Printf("lower bound            %d requests: %.1f s at the API's 10 req/s, %.1f s at the client's %d req/s\n",
		pages, bound(retailcrm.MaxRequestsPerSecond).Seconds(), bound(retailcrm.DefaultRequestsPerSecond).Seconds(), retailcrm.DefaultRequestsPerSecond)
	fmt.Printf("wall ÷ bound           %.3f (10 req/s), %.3f (%d req/s)\n", wall.Seconds()/bound(retailcrm.MaxRequestsPerSecond).Seconds(),
		wall.Seconds()/bound(retailcrm.DefaultRequestsPerSecond).Seconds(), retailcrm.DefaultRequestsPerSecond)
	fmt.Printf("waiting for RetailCRM  %.1f s\n", stats.Waited.Seconds())
	fmt.Printf("processing             %.2f s = %.1f%% of wall time (target < 10%%)\n", processing.Seconds(), 100*processing.Seconds()/wall.Seconds())
	fmt.Printf("  of which reading     %.2f s (mapping and spooling each page while the next is awaited)\n", (stats.Read - stats.Waited).Seconds())
	fmt.Printf("  of which applying    %.2f s (the one transaction after the last page)\n", (wall - stats.Read).Seconds())
	fmt.Printf("process CPU time       %.2f s = %.1f%% of wall time (fake RetailCRM not included)\n", cpu.Seconds(), 100*cpu.Seconds()/wall.Seconds())
	return nil
}
