// Command ingest measures the collector against a no-op baseline, in one run
// on one machine: wrk (Debian's package) sends the same hits first to a Go
// HTTP handler that only reads the body and answers 204, then to
// `throughline serve`'s /collect, which answers 204 only after the hit is
// committed. It prints hits/s of each, the ratio, latency percentiles and the
// server's memory over the run.
//
//	go run ./bench/ingest -engines sqlite,postgres -duration 60s
//
// Machines here are shared and noisy, so only the ratio of two runs made
// minutes apart in the same script means much; see BENCHMARKS.md.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/throughline/throughline/internal/store"
)

func main() {
	engines := flag.String("engines", "sqlite,postgres", "engines to measure, comma-separated")
	duration := flag.Duration("duration", 60*time.Second, "length of each measured run")
	warmup := flag.Duration("warmup", 5*time.Second, "unmeasured load before each run")
	conns := flag.Int("connections", 256, "concurrent connections (browsers) wrk keeps open")
	threads := flag.Int("threads", 2, "wrk threads")
	visitors := flag.Int("visitors", 100000, "distinct visitors the hits come from")
	pg := flag.String("postgres", cmpOr(os.Getenv("THROUGHLINE_TEST_POSTGRES"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		"PostgreSQL server to create a scratch database on")
	serveArgs := flag.String("serve-args", "", "more flags for throughline serve, space-separated (e.g. \"--commit-writers 1\")")
	profile := flag.String("cpuprofile", "", "write a CPU profile of each throughline server over the middle of its measured run to PREFIX-ENGINE.pprof, its allocations to PREFIX-ENGINE.allocs.pprof, and the no-op handler's CPU to PREFIX-noop.pprof")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench: ")

	if _, err := exec.LookPath("wrk"); err != nil {
		log.Fatal("wrk is not installed: apt-get install wrk")
	}
	work, err := os.MkdirTemp("", "throughline-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "throughline")
	log.Printf("building throughline")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/throughline").CombinedOutput(); err != nil {
		log.Fatalf("go build: %v\n%s", err, out)
	}
	w := wrkRun{threads: *threads, conns: *conns, duration: *duration, warmup: *warmup, visitors: *visitors, dir: work, profile: *profile, serveArgs: strings.Fields(*serveArgs)}

	log.Printf("baseline: no-op Go handler, %d connections, %s", *conns, *duration)
	noop, err := w.againstNoop()
	if err != nil {
		log.Fatal(err)
	}
	var results []result
	for _, engine := range strings.Split(*engines, ",") {
		log.Printf("%s: throughline /collect, %d connections, %s", engine, *conns, *duration)
		r, err := w.againstThroughline(bin, strings.TrimSpace(engine), *pg)
		if err != nil {
			log.Fatalf("%s: %v", engine, err)
		}
		results = append(results, r)
	}

	fmt.Printf("\n%-22s %10s %7s %9s %9s %9s  %s\n", "target", "req/s", "ratio", "p50", "p99", "errors", "server RSS (MiB): first 10 s → last 10 s, peak")
	fmt.Printf("%-22s %10.0f %7s %9s %9s %9d\n", "no-op handler", noop.rps, "1.00", noop.p50, noop.p99, noop.errors)
	for _, r := range results {
		fmt.Printf("%-22s %10.0f %7.2f %9s %9s %9d  %.0f → %.0f, peak %.0f; %d hits stored, %d answered in the measured run (plus the warm-up)\n",
			"collect "+r.engine, r.rps, r.rps/noop.rps, r.p50, r.p99, r.errors, r.rssStart, r.rssEnd, r.rssPeak, r.stored, r.requests)
	}
	for _, r := range results {
		steps := make([]string, len(r.rssSteps))
		for i, v := range r.rssSteps {
			steps[i] = fmt.Sprintf("%.0f", v)
		}
		fmt.Printf("server RSS (MiB) of collect %s, each 10 s: %s\n", r.engine, strings.Join(steps, " "))
	}
	fmt.Printf("\nCPU per request during the measured run (µs) and the machine's idle share:\n")
	fmt.Printf("%-22s %8s %8s %10s %8s %6s\n", "target", "server", "wrk", "postgres", "total", "idle")
	for _, r := range append([]result{noop}, results...) {
		name := "no-op handler"
		if r.engine != "" {
			name = "collect " + r.engine
		}
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		fmt.Printf("%-22s %8.1f %8.1f %10.1f %8.1f %5.0f%%\n", name, us(r.cpuServer), us(r.cpuWrk), us(r.cpuPostgres),
			us(r.cpuServer+r.cpuWrk+r.cpuPostgres), 100*r.idle)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type wrkRun struct {
	threads, conns, visitors int
	duration, warmup         time.Duration
	dir                      string
	profile                  string // file name prefix for CPU profiles; empty: none
	serveArgs                []string
}

type result struct {
	engine                    string
	rps                       float64
	p50, p99                  time.Duration
	requests, errors, stored  int64
	rssStart, rssEnd, rssPeak float64
	rssSteps                  []float64 // the largest sample of each 10 s
	// CPU time spent during the measured run, per answered request: by the
	// server, by wrk, by PostgreSQL's processes; and the machine's idle share.
	cpuServer, cpuWrk, cpuPostgres time.Duration
	idle                           float64
}

// script writes the wrk Lua script: every request is one hit from one of
// many visitors, behind a proxy that names a varied client address.
func (w wrkRun) script(counterID int64) (string, error) {
	lua := fmt.Sprintf(`
local counter, visitors = %d, %d
local ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
local pages = {"/", "/catalog/boots", "/catalog/boots?utm_source=yandex&utm_medium=cpc&utm_campaign=winter&yclid=%%d", "/cart", "/product/%%d"}
setup = function(thread) thread:set("seed", math.random(1, 1e9)) end
init = function() math.randomseed(seed) end
request = function()
  local v = math.random(1, visitors)
  local page = string.format(pages[math.random(1, #pages)], math.random(1, 1e6))
  local body = string.format('{"counter":%%d,"uuid":"00000000-0000-4000-8000-%%012d","type":"pageview","url":"https://shop.ru%%s","referrer":"https://yandex.ru/","title":"Boots shop"}', counter, v, page)
  local headers = {["Content-Type"] = "text/plain;charset=UTF-8", ["User-Agent"] = ua,
    ["X-Forwarded-For"] = string.format("10.%%d.%%d.%%d", v %% 256, math.floor(v / 256) %% 256, math.random(1, 254))}
  return wrk.format("POST", "/collect", headers, body)
end
`, counterID, w.visitors)
	path := filepath.Join(w.dir, "hits.lua")
	return path, os.WriteFile(path, []byte(lua), 0o644)
}

func (w wrkRun) againstNoop() (result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, http.MaxBytesReader(rw, r.Body, 16<<10))
		rw.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	script, err := w.script(1)
	if err != nil {
		return result{}, err
	}
	if w.profile != "" {
		go func() {
			time.Sleep(w.warmup + w.duration/4)
			f, err := os.Create(w.profile + "-noop.pprof")
			if err != nil {
				log.Printf("no-op: no CPU profile: %v", err)
				return
			}
			defer f.Close()
			pprof.StartCPUProfile(f)
			time.Sleep(w.duration / 2)
			pprof.StopCPUProfile()
		}()
	}
	self := os.Getpid() // the handler runs in this process: its CPU is the server's
	return w.load("http://"+ln.Addr().String(), script, &self)
}

func (w wrkRun) againstThroughline(bin, engine, pgURL string) (result, error) {
	dataDir := filepath.Join(w.dir, engine)
	dsn := ""
	switch engine {
	case "sqlite":
	case "postgres":
		name := fmt.Sprintf("throughline_bench_%d", time.Now().UnixNano())
		admin, err := sql.Open("pgx", pgURL)
		if err != nil {
			return result{}, err
		}
		defer admin.Close()
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			return result{}, fmt.Errorf("create scratch database: %w", err)
		}
		defer admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		u, err := url.Parse(pgURL)
		if err != nil {
			return result{}, err
		}
		u.Path = "/" + name
		dsn = u.String()
	default:
		return result{}, fmt.Errorf("unknown engine %q (want sqlite or postgres)", engine)
	}
	env := append(os.Environ(), "THROUGHLINE_DATA_DIR="+dataDir, "THROUGHLINE_DB="+dsn)
	out, err := command(bin, env, "counter", "create", "--name", "Bench", "--domain", "shop.ru", "--json").Output()
	if err != nil {
		return result{}, fmt.Errorf("counter create: %w", err)
	}
	var c struct{ ID int64 }
	if err := json.Unmarshal(out, &c); err != nil {
		return result{}, err
	}

	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--trusted-proxies", "127.0.0.1/32"}, w.serveArgs...)
	debugAddr := ""
	if w.profile != "" {
		if debugAddr, err = freeAddr(); err != nil {
			return result{}, err
		}
		args = append(args, "--debug-addr", debugAddr)
	}
	cmd := command(bin, env, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer cmd.Process.Kill()
	addr, err := listeningAddr(stderr)
	if err != nil {
		return result{}, err
	}
	script, err := w.script(c.ID)
	if err != nil {
		return result{}, err
	}
	profiled := make(chan error, 1)
	if debugAddr != "" {
		go func() {
			// Profile the middle half of the measured run.
			time.Sleep(w.warmup + w.duration/4)
			err := saveProfile(debugAddr, "profile", w.duration/2, w.profile+"-"+engine+".pprof")
			if err == nil {
				err = saveProfile(debugAddr, "allocs", 0, w.profile+"-"+engine+".allocs.pprof")
			}
			profiled <- err
		}()
	} else {
		profiled <- nil
	}
	r, err := w.load("http://"+addr, script, &cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	if err := <-profiled; err != nil {
		log.Printf("%s: no CPU profile: %v", engine, err)
	}
	r.engine = engine
	// Stop it cleanly and count what reached the database.
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	r.stored, err = countHits(dataDir, dsn, c.ID)
	return r, err
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// saveProfile fetches a profile from the server's profiler: "profile" (CPU,
// over d) or "allocs" (every allocation since the start, sampled).
func saveProfile(addr, kind string, d time.Duration, path string) error {
	u := fmt.Sprintf("http://%s/debug/pprof/%s", addr, kind)
	if d > 0 {
		u += fmt.Sprintf("?seconds=%d", int(d.Seconds()))
	}
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profiler: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	log.Printf("%s profile written to %s", kind, path)
	return f.Close()
}

func command(bin string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	return cmd
}

// listeningAddr reads serve's JSON log until it says where it listens, and
// then keeps draining it so the server never blocks on a full pipe.
func listeningAddr(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" {
			go io.Copy(os.Stderr, r)
			return rec.Addr, nil
		}
		fmt.Fprintln(os.Stderr, sc.Text())
	}
	return "", errors.New("serve exited before listening")
}

// load runs wrk for the warm-up and then the measured duration, sampling
// the server's resident memory once a second when pid is given.
func (w wrkRun) load(base, script string, pid *int) (result, error) {
	var wrkCPU time.Duration
	run := func(d time.Duration) (string, error) {
		cmd := exec.Command("wrk", "-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conns),
			"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency", "-s", script, base)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("wrk: %v\n%s", err, out)
		}
		wrkCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return string(out), nil
	}
	if w.warmup > 0 {
		if _, err := run(w.warmup); err != nil {
			return result{}, err
		}
	}
	var rss []float64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		if pid == nil {
			return
		}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if v, err := statusKB(*pid, "VmRSS"); err == nil {
					rss = append(rss, v/1024)
				}
			}
		}
	}()
	serverCPU0, pgCPU0, idle0, total0 := processCPU(pid), postgresCPU(), 0.0, 0.0
	idle0, total0 = machineCPU()
	out, err := run(w.duration)
	serverCPU1, pgCPU1 := processCPU(pid), postgresCPU()
	idle1, total1 := machineCPU()
	close(stop)
	<-sampled
	if err != nil {
		return result{}, err
	}
	r, err := parseWrk(out)
	if err != nil {
		return r, err
	}
	if r.requests > 0 {
		n := time.Duration(r.requests)
		r.cpuServer, r.cpuWrk, r.cpuPostgres = (serverCPU1-serverCPU0)/n, wrkCPU/n, (pgCPU1-pgCPU0)/n
	}
	if total1 > total0 {
		r.idle = (idle1 - idle0) / (total1 - total0)
	}
	if pid != nil && len(rss) > 0 {
		n := min(10, len(rss))
		r.rssStart, r.rssEnd = maxOf(rss[:n]), maxOf(rss[len(rss)-n:])
		for i := 0; i < len(rss); i += 10 {
			r.rssSteps = append(r.rssSteps, maxOf(rss[i:min(i+10, len(rss))]))
		}
		if v, err := statusKB(*pid, "VmHWM"); err == nil {
			r.rssPeak = v / 1024
		}
	}
	return r, nil
}

// clockTick is the unit of CPU times in /proc (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// processCPU is the user+system CPU time a process has used so far.
func processCPU(pid *int) time.Duration {
	if pid == nil {
		return 0
	}
	return statCPU(fmt.Sprintf("/proc/%d/stat", *pid))
}

func statCPU(path string) time.Duration {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}

// postgresCPU sums the CPU time of every running PostgreSQL process (the
// server's backends for this run's connections stay up through it).
func postgresCPU() time.Duration {
	var sum time.Duration
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "(postgres)") {
			continue
		}
		sum += statCPU(p)
	}
	return sum
}

// machineCPU reads the idle and total jiffies of all CPUs from /proc/stat.
func machineCPU() (idle, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return idle, total
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// statusKB reads a "kB" field of /proc/PID/status (VmRSS: resident now;
// VmHWM: the peak).
func statusKB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

var (
	reRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reRequests = regexp.MustCompile(`(\d+) requests in`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	rePct      = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

func parseWrk(out string) (result, error) {
	var r result
	m := reRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := reRequests.FindStringSubmatch(out); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.errors += n
	}
	if m := reSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.errors += n
		}
	}
	for _, m := range rePct.FindAllStringSubmatch(out, -1) {
		d, _ := time.ParseDuration(m[2] + m[3])
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	return r, nil
}

func countHits(dataDir, dsn string, counterID int64) (int64, error) {
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, dataDir, store.Options{})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM hits WHERE counter_id = $1`, counterID).Scan(&n)
	return n, err
}
