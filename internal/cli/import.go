package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/imports"
)

func runImport(ctx context.Context, cio cmdIO, args []string) error {
	return runGroup(ctx, cio, "import", args, map[string]func(context.Context, cmdIO, []string) error{
		"orders": runImportOrders,
		"costs":  runImportCosts,
	})
}

// feedFlags are the flags shared by commands that read feeds.
type feedFlags struct {
	allowPrivate bool
	maxSize      string
}

func (ff *feedFlags) register(f *flagSet) {
	f.boolVar(&ff.allowPrivate, "allow-private-feeds", "THROUGHLINE_ALLOW_PRIVATE_FEEDS", false, "allow feed URLs that lead to loopback, private or link-local addresses")
	f.stringVar(&ff.maxSize, "max-import-size", "THROUGHLINE_MAX_IMPORT_SIZE", "1GiB", "largest feed, file or upload imported (e.g. 200MiB, 1GiB)")
}

func (ff *feedFlags) bytes(cmd string) (int64, error) {
	n, err := parseSize(ff.maxSize)
	if err != nil {
		return 0, &usageError{cmd, fmt.Sprintf("--max-import-size %q: %v", ff.maxSize, err)}
	}
	return n, nil
}

// parseSize reads a byte size: 1073741824, 500MB, 1GiB.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mul    int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	up := strings.ToUpper(s)
	mul := int64(1)
	for _, u := range units {
		if strings.HasSuffix(up, u.suffix) {
			up, mul = strings.TrimSpace(strings.TrimSuffix(up, u.suffix)), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(up, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a size such as 500MiB or 1GiB")
	}
	return n * mul, nil
}

func runImportOrders(ctx context.Context, cio cmdIO, args []string) error {
	const cmd = "import orders"
	var d dataFlags
	var cf counterFlag
	var ff feedFlags
	var format, delimiter string
	var skipBad, asJSON bool
	f := newFlagSet(cmd, "import orders FILE|URL --counter ID [--format k50|simple_orders] [flags]", cio.stdout)
	cf.register(f)
	f.StringVar(&format, "format", "k50", "k50 (K50:Tracker feed, ';'-separated) or simple_orders (Metrica's simple orders CSV)")
	f.StringVar(&delimiter, "delimiter", "", "simple_orders only: comma, semicolon or tab (default: guessed from the header)")
	f.BoolVar(&skipBad, "skip-bad-rows", false, "apply the good rows of a file that has bad ones (default: refuse the whole file)")
	f.BoolVar(&asJSON, "json", false, "print the import's record as JSON")
	ff.register(f)
	d.register(f)
	rest, err := f.parse(args, cio.getenv, true)
	if err != nil {
		return err
	}
	if err := cf.required(cmd); err != nil {
		return err
	}
	if len(rest) != 1 {
		return &usageError{cmd, "give one FILE or URL to import (- reads standard input)"}
	}
	source := rest[0]
	var intake crm.Intake
	switch format {
	case "k50":
		intake = crm.K50Feed
	case "simple_orders":
		intake = crm.SimpleOrders
	default:
		return &usageError{cmd, fmt.Sprintf("--format %q: want k50 or simple_orders", format)}
	}
	var delim rune
	switch strings.ToLower(delimiter) {
	case "":
	case "comma", ",":
		delim = ','
	case "semicolon", ";":
		delim = ';'
	case "tab", "\t":
		delim = '\t'
	default:
		return &usageError{cmd, fmt.Sprintf("--delimiter %q: want comma, semicolon or tab", delimiter)}
	}
	maxBytes, err := ff.bytes(cmd)
	if err != nil {
		return err
	}

	db, c, err := d.openCounter(ctx, cf.id)
	if err != nil {
		return err
	}
	defer db.Close()
	var attrs []crm.Attribute
	if intake != crm.K50Feed {
		if attrs, err = crm.Attributes(ctx, db, c.ID, crm.EntityOrder); err != nil {
			return err
		}
	}

	var closer io.Closer
	defer func() {
		if closer != nil {
			closer.Close()
		}
	}()
	open := func() (crm.RowReader, error) {
		var r io.Reader
		switch {
		case strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://"):
			fetcher := imports.NewFetcher(imports.FetcherOptions{AllowPrivate: ff.allowPrivate, MaxBytes: maxBytes})
			body, err := fetcher.Open(ctx, source)
			if err != nil {
				return nil, err
			}
			closer, r = body, body
		case source == "-":
			r = imports.LimitReader(os.Stdin, maxBytes, "standard input")
		default:
			file, err := os.Open(source)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", source, err)
			}
			closer, r = file, imports.LimitReader(file, maxBytes, source)
		}
		if intake == crm.K50Feed {
			return crm.NewK50Reader(r, c.Location(), nil)
		}
		return crm.NewMetricaCSVReader(r, crm.MetricaFormat{Intake: intake, Location: c.Location(), Attributes: attrs, Delimiter: delim})
	}
	origin := source
	if strings.Contains(source, "://") {
		origin = imports.Redact(source)
	} else if abs, err := filepath.Abs(source); err == nil && source != "-" {
		origin = abs
	}
	prog := newProgress(cio.stderr)
	start := time.Now()
	res, err := crm.Import(ctx, db, c.ID, crm.Options{Intake: intake, Format: "CSV", Source: "CLI", Origin: origin,
		SkipBadRows: skipBad, Progress: prog.update}, open)
	prog.done()
	if res == nil {
		return err
	}
	if asJSON {
		if perr := printJSON(cio.stdout, res); perr != nil {
			return perr
		}
	} else {
		printImport(cio, res, time.Since(start))
		if res.Inserted+res.Updated > 0 {
			fmt.Fprintf(cio.stdout, "The new and changed orders are queued for matching: a running throughline serve matches them, or run: throughline match --counter %d\n", c.ID)
		}
	}
	if err != nil {
		return fmt.Errorf("import %s failed: %w", origin, err) // origin: a URL redacted
	}
	return nil
}

func printImport(cio cmdIO, res *crm.Result, took time.Duration) {
	rate := float64(res.Read) / took.Seconds()
	verb := "Imported"
	if res.Status != crm.StatusPassed {
		verb = "Did not import"
	}
	fmt.Fprintf(cio.stdout, "%s %s (import %s): %d rows read, %d inserted, %d updated, %d unchanged, %d rejected in %s (%.0f rows/s)\n",
		verb, res.Origin, res.ID, res.Read, res.Inserted, res.Updated, res.Unchanged, res.Rejected, took.Round(time.Millisecond), rate)
	for i, e := range res.Errors {
		if i == 20 {
			fmt.Fprintf(cio.stderr, "  … %d more rejected rows (all in: throughline's import record %s)\n", res.Rejected-20, res.ID)
			break
		}
		fmt.Fprintf(cio.stderr, "  %s\n", e.Error())
	}
}

// progress draws "checking: 120,000 rows (45,000 rows/s)" on a terminal,
// redrawn in place, and nothing when the output is a file or a pipe.
type progress struct {
	w      io.Writer
	tty    bool
	start  time.Time
	mu     sync.Mutex
	drawn  bool
	phase  string
	phaseT time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(pr crm.Progress) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr.Phase != p.phase {
		p.phase, p.phaseT = pr.Phase, time.Now()
	}
	rate := float64(pr.Rows) / max(time.Since(p.phaseT).Seconds(), 0.001)
	fmt.Fprintf(p.w, "\r\033[K%s: %s rows (%s rows/s)", pr.Phase, groupDigits(int64(pr.Rows)), groupDigits(int64(rate)))
	p.drawn = true
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// groupDigits writes 1234567 as 1,234,567.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
