// Command crmimport measures the K50 feed import against the raw bulk load
// of the same file, in one run on one machine. It generates a feed of -rows
// orders (realistic: ~10% with a caller phone only, ~60% with sid and uuid,
// the rest with both or neither), then for each engine:
//
//   - baseline: loads the file into a plain table of the same columns, all
//     text, with no index — PostgreSQL with COPY (psql's \copy), SQLite with
//     the sqlite3 shell's .import;
//   - throughline import orders FILE into a fresh counter (validating,
//     normalising, upserting into the real schema with its indexes), then
//     the same file again (every row unchanged).
//
// It prints rows/s of each, the ratios, and the import process's peak RSS.
//
//	go run ./bench/crmimport -rows 1000000 -engines sqlite,postgres
//
// Machines here are shared and noisy, so only the ratio of runs made
// minutes apart in the same script means much; see BENCHMARKS.md.
package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "orders in the generated feed")
	engines := flag.String("engines", "sqlite,postgres", "engines to measure, comma-separated")
	pg := flag.String("postgres", cmpOr(os.Getenv("THROUGHLINE_TEST_POSTGRES"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		"PostgreSQL server to create scratch databases on")
	keep := flag.Bool("keep", false, "keep the work directory (feed, databases)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench: ")

	work, err := os.MkdirTemp("", "throughline-crmbench-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(work)
	}
	feed := filepath.Join(work, "feed.csv")
	log.Printf("generating a %d-row K50 feed", *rows)
	size, err := generate(feed, *rows)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("feed: %.1f MiB", float64(size)/(1<<20))
	bin := filepath.Join(work, "throughline")
	log.Printf("building throughline")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/throughline").CombinedOutput(); err != nil {
		log.Fatalf("go build: %v\n%s", err, out)
	}

	fmt.Printf("\n%-10s %-34s %12s %10s %7s %12s\n", "engine", "run", "time", "rows/s", "ratio", "peak RSS MiB")
	for _, engine := range strings.Split(*engines, ",") {
		engine = strings.TrimSpace(engine)
		var base run
		var env []string
		var drop func()
		switch engine {
		case "sqlite":
			base, err = sqliteBaseline(work, feed)
			env = []string{"THROUGHLINE_DATA_DIR=" + filepath.Join(work, "sqlite")}
		case "postgres":
			var dsn string
			dsn, drop, err = scratchDatabase(*pg)
			if err == nil {
				base, err = postgresBaseline(dsn, feed)
				env = []string{"THROUGHLINE_DB=" + dsn}
			}
		default:
			err = fmt.Errorf("unknown engine %q (want sqlite or postgres)", engine)
		}
		if err != nil {
			log.Fatalf("%s baseline: %v", engine, err)
		}
		env = append(os.Environ(), env...)
		first, again, err := throughline(bin, env, feed)
		if drop != nil {
			drop()
		}
		if err != nil {
			log.Fatalf("%s: %v", engine, err)
		}
		rate := func(r run) float64 { return float64(*rows) / r.took.Seconds() }
		fmt.Printf("%-10s %-34s %12s %10.0f %7s %12.0f\n", engine, base.name, base.took.Round(time.Millisecond), rate(base), "1.00", base.rssMiB)
		fmt.Printf("%-10s %-34s %12s %10.0f %7.2f %12.0f\n", engine, "throughline import (first)", first.took.Round(time.Millisecond), rate(first), rate(first)/rate(base), first.rssMiB)
		fmt.Printf("%-10s %-34s %12s %10.0f %7.2f %12.0f   (%.1f× faster than the first)\n", engine, "throughline import (unchanged)", again.took.Round(time.Millisecond), rate(again), rate(again)/rate(base), again.rssMiB,
			first.took.Seconds()/again.took.Seconds())
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// generate writes a K50 feed of n orders and returns its size.
func generate(path string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	rnd := rand.New(rand.NewPCG(1, 2))
	w.WriteString("date;orderId;callerPhone;sid;uuid;amount;margin;revenue;comment;type\r\n")
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	uuid := func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rnd.Uint32(), rnd.Uint32()&0xffff, rnd.Uint32()&0xfff, 0x8000|rnd.Uint32()&0x3fff, rnd.Uint64()&0xffffffffffff)
	}
	comments := []string{"", "", "", "", "доставка курьером", "\"перезвонить; после 18:00\"", "самовывоз"}
	for i := range n {
		at := start.Add(time.Duration(i) * 30 * time.Second)
		phone, sid, vid, typ := "", "", "", ""
		switch p := rnd.IntN(100); {
		case p < 10: // a phone order: the number the customer called from
			phone = fmt.Sprintf("79%09d", rnd.IntN(1e9))
			typ = "offline"
		case p < 70: // a site order carrying the tracker's ids
			sid, vid = uuid(), uuid()
		case p < 85: // both
			phone = fmt.Sprintf("79%09d", rnd.IntN(1e9))
			sid, vid = uuid(), uuid()
		}
		revenue := 500 + rnd.IntN(50000)
		margin := revenue * (10 + rnd.IntN(30)) / 100
		fmt.Fprintf(w, "%s;ORD-%07d;%s;%s;%s;%d;%d,%02d;%d,%02d;%s;%s\r\n", at.Format(time.DateTime), i+1, phone, sid, vid,
			1+rnd.IntN(5), margin, rnd.IntN(100), revenue, rnd.IntN(100), comments[rnd.IntN(len(comments))], typ)
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

type run struct {
	name   string
	took   time.Duration
	rssMiB float64
}

// timed runs cmd and returns its wall time and peak RSS.
func timed(name string, cmd *exec.Cmd) (run, error) {
	var stderr strings.Builder
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return run{}, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	rss := 0.0
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	return run{name: name, took: took, rssMiB: rss}, nil
}

const textColumns = `date text, "orderId" text, "callerPhone" text, sid text, uuid text, amount text, margin text, revenue text, comment text, type text`

func sqliteBaseline(work, feed string) (run, error) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		return run{}, fmt.Errorf("the sqlite3 shell is not installed: apt-get install sqlite3")
	}
	db := filepath.Join(work, "baseline.db")
	cmd := exec.Command("sqlite3", db,
		"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
		"CREATE TABLE feed ("+textColumns+")",
		".mode csv", ".separator ;", ".import --skip 1 "+feed+" feed")
	return timed("baseline: sqlite3 .import", cmd)
}

func scratchDatabase(base string) (string, func(), error) {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("throughline_crmbench_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create scratch database: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		admin.Close()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		admin.Close()
	}, nil
}

func postgresBaseline(dsn, feed string) (run, error) {
	if _, err := exec.LookPath("psql"); err != nil {
		return run{}, fmt.Errorf("psql is not installed")
	}
	if out, err := exec.Command("psql", dsn, "-qc", "CREATE TABLE feed ("+textColumns+")").CombinedOutput(); err != nil {
		return run{}, fmt.Errorf("create table: %v: %s", err, out)
	}
	return timed("baseline: COPY (psql \\copy)", exec.Command("psql", dsn, "-qc",
		`\copy feed FROM '`+feed+`' WITH (FORMAT csv, HEADER true, DELIMITER ';')`))
}

// throughline creates a counter and imports the feed twice.
func throughline(bin string, env []string, feed string) (first, again run, err error) {
	cmd := exec.Command(bin, "counter", "create", "--name", "Bench", "--domain", "shop.ru", "--json")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return first, again, fmt.Errorf("counter create: %w", err)
	}
	var c struct{ ID int64 }
	if err := json.Unmarshal(out, &c); err != nil {
		return first, again, err
	}
	// Each run's own record says what it did: the first inserts every row,
	// the second finds every row unchanged. Anything else is a bug.
	imp := func(name string, check func(read, inserted, unchanged int) bool) (run, error) {
		cmd := exec.Command(bin, "import", "orders", feed, "--counter", fmt.Sprint(c.ID), "--json")
		cmd.Env = env
		var stdout strings.Builder
		cmd.Stdout = &stdout
		r, err := timed(name, cmd)
		if err != nil {
			return r, err
		}
		var res struct {
			Status                        string
			Read                          int `json:"rows_read"`
			Inserted, Unchanged, Rejected int
		}
		if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil || res.Status != "passed" || !check(res.Read, res.Inserted, res.Unchanged) {
			return r, fmt.Errorf("%s: unexpected result %+v (%v): %s", name, res, err, stdout.String())
		}
		return r, nil
	}
	if first, err = imp("throughline import (first)", func(read, ins, _ int) bool { return ins == read }); err != nil {
		return
	}
	again, err = imp("throughline import (unchanged)", func(read, _, unch int) bool { return unch == read })
	return
}
