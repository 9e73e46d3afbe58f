package cli

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/demo"
	"github.com/throughline/throughline/internal/store"
)

func runDemo(ctx context.Context, cio cmdIO, args []string) error {
	var d dataFlags
	var seed int64
	var days int
	var asJSON bool
	f := newFlagSet("demo", "demo [--seed N] [--days N] [--json] [flags]", cio.stdout)
	f.Int64Var(&seed, "seed", 1, "random seed: the same seed makes the same data")
	f.IntVar(&days, "days", demo.DefaultDays, fmt.Sprintf("days of data, up to yesterday (1–%d)", demo.MaxDays))
	f.BoolVar(&asJSON, "json", false, "print the result (counter id, token, counts) as JSON")
	d.register(f)
	if _, err := f.parse(args, cio.getenv, false); err != nil {
		return err
	}
	if days < 1 || days > demo.MaxDays {
		return &usageError{"demo", fmt.Sprintf("--days %d: want 1 to %d", days, demo.MaxDays)}
	}
	db, _, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()

	p := newProgress(cio.stderr)
	res, err := demo.Generate(ctx, db, demo.Options{Seed: seed, Days: days, Progress: func(phase string) {
		p.note("demo: " + phase + "…")
	}})
	p.done()
	if err != nil {
		return err
	}
	url := "http://127.0.0.1:8080" + res.ReportPath()
	if asJSON {
		return printJSON(cio.stdout, struct {
			demo.Result
			ReportURL string `json:"report_url"`
		}{res, url})
	}
	matched := res.Matching.Orders - res.Matching.NotFound
	period := fmt.Sprintf("%d days of data, %s to %s", days, res.From, res.To)
	if days == 1 {
		period = "a day of data, " + res.From
	}
	fmt.Fprintf(cio.stdout, "Created the demo counter %d %q (%s, %s) with %s, in %s:\n",
		res.CounterID, demo.Name, demo.Domain, demo.Timezone, period, res.Took.Round(time.Millisecond))
	fmt.Fprintf(cio.stdout, "  %s sessions of %s visitors (%s hits), %s calls, %s leads, %s CRM orders (%s matched), %s ad cost rows\n\n",
		groupDigits(int64(res.Sessions)), groupDigits(int64(res.Visitors)), groupDigits(int64(res.Hits)), groupDigits(int64(res.Calls)),
		groupDigits(int64(res.Leads)), groupDigits(int64(res.Orders)), groupDigits(int64(matched)), groupDigits(int64(res.CostRows)))
	fmt.Fprintf(cio.stdout, "API token — shown only now (running demo again makes a new counter and token):\n\n    %s\n\n", res.Token)
	fmt.Fprintf(cio.stdout, "Next, start the server and read the end-to-end report:\n\n    %s\n    curl -H \"Authorization: Bearer %s\" \"%s\"\n",
		serveCommand(d, cio.getenv), res.Token, url)
	return nil
}

// serveCommand is the serve command that finds the same database: the
// data flags given on the command line are repeated (those from the
// environment reach serve the same way).
func serveCommand(d dataFlags, getenv Env) string {
	cmd := "throughline serve"
	switch {
	case d.db != "" && d.db != getenv("THROUGHLINE_DB"):
		cmd += " --db " + shellQuote(d.db)
	case d.db == "" && d.dataDir != "./throughline-data" && d.dataDir != getenv("THROUGHLINE_DATA_DIR"):
		cmd += " --data-dir " + shellQuote(d.dataDir)
	}
	return cmd
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// serveDemo is serve --demo: the demo counter made afresh before serving,
// its token and report URL logged.
func serveDemo(ctx context.Context, db *store.DB, log *slog.Logger, addr string) error {
	log.Info("demo: creating the demo counter")
	res, err := demo.Generate(ctx, db, demo.Options{Seed: 1, Progress: func(phase string) {
		log.Debug("demo", "phase", phase)
	}})
	if err != nil {
		return err
	}
	log.Info("demo counter ready", "counter", res.CounterID, "token", res.Token, "report", "http://"+addr+res.ReportPath(),
		"sessions", res.Sessions, "calls", res.Calls, "leads", res.Leads, "orders", res.Orders, "took", res.Took.Round(time.Millisecond))
	return nil
}

// note draws a line of text in place of the last one, on a terminal only.
func (p *progress) note(text string) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K%s", text)
	p.drawn = true
}
