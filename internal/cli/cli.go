// Package cli is the throughline command line: it parses subcommands and
// flags (each also readable from a THROUGHLINE_* environment variable) and
// calls into the domain packages. Nothing here decides business rules.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/secrets"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/throughline/throughline/internal/buildinfo"
	"github.com/throughline/throughline/internal/store"
)

// Env is how the CLI reads environment variables (os.Getenv in main; a map
// in tests).
type Env func(string) string

// cmdIO bundles what a command talks to.
type cmdIO struct {
	stdout, stderr io.Writer
	getenv         Env
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, io cmdIO, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "start the HTTP server (applies migrations first)", runServe},
		{"migrate", "apply database migrations and exit", runMigrate},
		{"counter", "create and list counters (tracked sites): counter create|list", runCounter},
		{"token", "manage API tokens of a counter: token create|list|revoke", runToken},
		{"import", "import CRM orders (file or URL) or ad costs: import orders|costs", runImport},
		{"hook", "telephony webhooks of a counter: hook create|list|revoke", runHook},
		{"match", "match a counter's queued orders to visits, calls and leads now (serve does it in the background)", runMatch},
		{"demo", "create (or recreate) a demo counter filled with a synthetic month", runDemo},
		{"version", "print the version", runVersion},
	}
}

// Main runs the command line and returns the process exit code: 0 on
// success, 1 when the command failed, 2 when it was called wrongly.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv Env) int {
	cio := cmdIO{stdout, stderr, getenv}
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" || name == "-help" {
		printUsage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == name {
			return exitCode(stderr, c.run(ctx, cio, args[1:]))
		}
	}
	fmt.Fprintf(stderr, "throughline: unknown command %q (see 'throughline help')\n", name)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "throughline %s — self-hosted end-to-end marketing analytics\n\nUsage: throughline <command> [flags]\n\nCommands:\n", buildinfo.Version())
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'throughline <command> -h' for a command's flags.\n")
}

// usageError is a mistake in how the command was called (exit code 2).
type usageError struct {
	cmd, msg string
}

func (e *usageError) Error() string {
	return fmt.Sprintf("%s: %s (see 'throughline %s -h')", e.cmd, e.msg, e.cmd)
}

// errHelpShown means -h printed the usage; the command succeeded.
var errHelpShown = errors.New("help shown")

func exitCode(stderr io.Writer, err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "throughline %s\n", ue.Error())
		return 2
	default:
		// One line: the wrapped chain already says where and what.
		fmt.Fprintf(stderr, "throughline: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 1
	}
}

// flagSet is a flag.FlagSet whose flags may also come from environment
// variables. Precedence: flag, then environment, then default.
type flagSet struct {
	*flag.FlagSet
	cmd    string
	usage  string
	envOf  map[string]string // flag name → environment variable
	stdout io.Writer
}

func newFlagSet(cmd, usage string, stdout io.Writer) *flagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by exitCode
	return &flagSet{FlagSet: fs, cmd: cmd, usage: usage, envOf: map[string]string{}, stdout: stdout}
}

// stringVar defines a string flag that falls back to the environment variable env.
func (f *flagSet) stringVar(p *string, name, env, def, help string) {
	if env != "" {
		f.envOf[name] = env
		help += " [$" + env + "]"
	}
	f.StringVar(p, name, def, help)
}

// boolVar defines a boolean flag that falls back to the environment variable env.
func (f *flagSet) boolVar(p *bool, name, env string, def bool, help string) {
	if env != "" {
		f.envOf[name] = env
		help += " [$" + env + "]"
	}
	f.BoolVar(p, name, def, help)
}

// parse parses args, then fills flags not given on the command line from
// their environment variables. With positional, extra arguments are allowed
// and returned; otherwise they are an error.
func (f *flagSet) parse(args []string, getenv Env, positional bool) ([]string, error) {
	// Flags may follow positional arguments ("import orders FILE --counter 1"):
	// the standard parser stops at the first positional one, so resume after it.
	var rest []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printHelp()
				return nil, errHelpShown
			}
			return nil, &usageError{f.cmd, err.Error()}
		}
		left := f.Args()
		if len(left) == 0 {
			break
		}
		if len(args) > len(left) && args[len(args)-len(left)-1] == "--" {
			rest = append(rest, left...) // everything after "--" is positional
			break
		}
		rest, args = append(rest, left[0]), left[1:]
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	names := make([]string, 0, len(f.envOf))
	for name := range f.envOf {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		env := f.envOf[name]
		if v := getenv(env); v != "" && !set[name] {
			if err := f.Set(name, v); err != nil {
				return nil, &usageError{f.cmd, fmt.Sprintf("$%s: %v", env, err)}
			}
		}
	}
	if !positional && len(rest) > 0 {
		return nil, &usageError{f.cmd, fmt.Sprintf("unexpected argument %q", rest[0])}
	}
	return rest, nil
}

func (f *flagSet) printHelp() {
	fmt.Fprintf(f.stdout, "Usage: throughline %s\n\nFlags:\n", f.usage)
	f.SetOutput(f.stdout)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// dataFlags are the flags of every command that touches data, so the CLI and
// a running server always agree on where the data is.
type dataFlags struct {
	dataDir   string
	db        string
	secretKey string
	logFormat string
	logLevel  string
}

func (d *dataFlags) register(f *flagSet) {
	f.stringVar(&d.dataDir, "data-dir", "THROUGHLINE_DATA_DIR", "./throughline-data", "directory for the embedded SQLite database and other local files")
	f.stringVar(&d.db, "db", "THROUGHLINE_DB", "", "database: a postgres:// URL, or a SQLite file path (default: <data-dir>/"+store.DefaultFile+")")
	f.stringVar(&d.secretKey, "secret-key", "THROUGHLINE_SECRET_KEY", "", "key that encrypts stored credentials (CRM API keys, webhook and telephony secrets): 32 bytes in base64 (openssl rand -base64 32); default: <data-dir>/"+secrets.KeyFile+", made on first use")
	f.stringVar(&d.logFormat, "log-format", "THROUGHLINE_LOG_FORMAT", "text", "log format: text or json")
	f.stringVar(&d.logLevel, "log-level", "THROUGHLINE_LOG_LEVEL", "info", "log level: debug, info, warn or error")
}

// logger builds the structured logger the flags ask for, writing to w.
func (d *dataFlags) logger(cmd string, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(d.logLevel)); err != nil {
		return nil, &usageError{cmd, fmt.Sprintf("--log-level %q: want debug, info, warn or error", d.logLevel)}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch d.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, &usageError{cmd, fmt.Sprintf("--log-format %q: want text or json", d.logFormat)}
}

// secrets returns the box that seals stored credentials.
func (d *dataFlags) secrets() (*secrets.Box, error) {
	box, err := secrets.Open(d.secretKey, d.dataDir)
	if err != nil {
		return nil, fmt.Errorf("--secret-key: %w", err)
	}
	return box, nil
}

// openCounter opens the database (open) and reads counter id; the caller
// closes the database.
func (d *dataFlags) openCounter(ctx context.Context, id int64) (*store.DB, counter.Counter, error) {
	db, _, err := d.open(ctx)
	if err != nil {
		return nil, counter.Counter{}, err
	}
	c, err := counter.Get(ctx, db, id)
	if err != nil {
		db.Close()
		return nil, counter.Counter{}, notFound(err, fmt.Sprintf("counter %d", id))
	}
	return db, c, nil
}

// open opens the database and brings its schema up to date.
func (d *dataFlags) open(ctx context.Context) (*store.DB, store.MigrateResult, error) {
	db, err := store.Open(ctx, d.db, d.dataDir, store.Options{})
	if err != nil {
		return nil, store.MigrateResult{}, err
	}
	res, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, res, err
	}
	return db, res, nil
}

func runVersion(_ context.Context, cio cmdIO, args []string) error {
	f := newFlagSet("version", "version", cio.stdout)
	if _, err := f.parse(args, cio.getenv, false); err != nil {
		return err
	}
	fmt.Fprintf(cio.stdout, "throughline %s\n", buildinfo.Version())
	return nil
}

func runMigrate(ctx context.Context, cio cmdIO, args []string) error {
	var d dataFlags
	f := newFlagSet("migrate", "migrate [flags]", cio.stdout)
	d.register(f)
	if _, err := f.parse(args, cio.getenv, false); err != nil {
		return err
	}
	db, res, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if res.From == res.To {
		fmt.Fprintf(cio.stdout, "%s database at %s is up to date (schema version %d)\n", db.Dialect(), db.Target(), res.To)
	} else {
		fmt.Fprintf(cio.stdout, "%s database at %s migrated from schema version %d to %d\n", db.Dialect(), db.Target(), res.From, res.To)
	}
	return nil
}

// Run is main's entry point: it wires the real process environment.
func Run() int {
	return Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
}
