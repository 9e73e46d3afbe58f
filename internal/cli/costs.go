package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/throughline/throughline/internal/costs"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/imports"
)

// runImportCosts imports a cost CSV: throughline import costs FILE --counter ID.
func runImportCosts(ctx context.Context, cio cmdIO, args []string) error {
	const cmd = "import costs"
	var d dataFlags
	var cf counterFlag
	var ff feedFlags
	var skipBad, asJSON bool
	f := newFlagSet(cmd, "import costs FILE|- --counter ID [--skip-bad-rows] [--json] [flags]", cio.stdout)
	cf.register(f)
	f.BoolVar(&skipBad, "skip-bad-rows", false, "apply the good rows of a file that has bad ones (default: refuse the whole file)")
	f.BoolVar(&asJSON, "json", false, "print what the import did as JSON")
	f.stringVar(&ff.maxSize, "max-import-size", "THROUGHLINE_MAX_IMPORT_SIZE", "1GiB", "largest file imported (e.g. 200MiB, 1GiB)")
	d.register(f)
	rest, err := f.parse(args, cio.getenv, true)
	if err != nil {
		return err
	}
	if err := cf.required(cmd); err != nil {
		return err
	}
	if len(rest) != 1 {
		return &usageError{cmd, "give one FILE to import (- reads standard input)"}
	}
	source := rest[0]
	maxBytes, err := ff.bytes(cmd)
	if err != nil {
		return err
	}

	db, c, err := d.openCounter(ctx, cf.id)
	if err != nil {
		return err
	}
	defer db.Close()
	var r io.Reader
	if source == "-" {
		r = imports.LimitReader(os.Stdin, maxBytes, "standard input")
	} else {
		file, err := os.Open(source)
		if err != nil {
			return fmt.Errorf("open %s: %w", source, err)
		}
		defer file.Close()
		r = imports.LimitReader(file, maxBytes, source)
	}
	start := time.Now()
	res, err := costs.Import(ctx, db, c.ID, r, skipBad)
	if asJSON {
		if perr := printJSON(cio.stdout, res); perr != nil {
			return perr
		}
	} else {
		printCosts(cio, source, res, err == nil, time.Since(start))
	}
	if err != nil {
		return fmt.Errorf("import %s failed: %w", source, err)
	}
	return nil
}

// printCosts writes the one-line summary of a cost import on stdout and the
// rejected rows, one a line, on stderr.
func printCosts(cio cmdIO, source string, res *costs.Result, ok bool, took time.Duration) {
	verb := "Imported"
	if !ok {
		verb = "Did not import"
	}
	rate := float64(res.Read) / max(took.Seconds(), 1e-9)
	fmt.Fprintf(cio.stdout, "%s costs from %s: %d rows read, %d inserted, %d updated, %d unchanged, %d duplicates, %d rejected in %s (%.0f rows/s)\n",
		verb, source, res.Read, res.Inserted, res.Updated, res.Unchanged, res.Duplicates, res.Rejected, took.Round(time.Millisecond), rate)
	for i, e := range res.Errors {
		if i == 20 {
			fmt.Fprintf(cio.stderr, "  … %d more rejected rows (--json lists the first %d)\n", res.Rejected-20, crm.MaxReportedErrors)
			break
		}
		fmt.Fprintf(cio.stderr, "  %s\n", e.Error())
	}
}
