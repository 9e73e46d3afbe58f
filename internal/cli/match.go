package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/matching"
)

// runMatch matches a counter's queued orders now, in the foreground: what
// serve's background worker does, for a shell without a server (after an
// import from the command line) or to re-match everything with --all.
func runMatch(ctx context.Context, cio cmdIO, args []string) error {
	const cmd = "match"
	var d dataFlags
	var cf counterFlag
	var all, asJSON bool
	f := newFlagSet(cmd, "match --counter ID [--all] [--json] [flags]", cio.stdout)
	cf.register(f)
	f.BoolVar(&all, "all", false, "match every order of the counter again, not only the queued ones")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	d.register(f)
	if _, err := f.parse(args, cio.getenv, false); err != nil {
		return err
	}
	if err := cf.required(cmd); err != nil {
		return err
	}
	db, c, err := d.openCounter(ctx, cf.id)
	if err != nil {
		return err
	}
	defer db.Close()
	if all {
		if _, err := matching.EnqueueAll(ctx, db.Writer(), c.ID, time.Now()); err != nil {
			return err
		}
	}
	prog := newProgress(cio.stderr)
	start := time.Now()
	st, err := matching.RunProgress(ctx, db, c.ID, func(st matching.Stats) {
		prog.update(crm.Progress{Phase: "matching", Rows: st.Orders})
	})
	prog.done()
	if err != nil {
		return fmt.Errorf("match counter %d: %w (%d orders were matched before it)", c.ID, err, st.Orders)
	}
	if asJSON {
		return printJSON(cio.stdout, st)
	}
	took := time.Since(start)
	fmt.Fprintf(cio.stdout, "Matched %s orders of counter %d in %s (%.0f orders/s): %s not found, %s touches.\n",
		groupDigits(int64(st.Orders)), c.ID, took.Round(time.Millisecond), float64(st.Orders)/max(took.Seconds(), 0.001),
		groupDigits(int64(st.NotFound)), groupDigits(int64(st.Touches)))
	for _, r := range matching.Rungs {
		if n := st.ByRung[r]; n > 0 {
			fmt.Fprintf(cio.stdout, "  %-13s %s\n", r, groupDigits(int64(n)))
		}
	}
	return nil
}
