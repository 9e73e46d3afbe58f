package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/counter"
)

func runCounter(ctx context.Context, cio cmdIO, args []string) error {
	return runGroup(ctx, cio, "counter", args, map[string]func(context.Context, cmdIO, []string) error{
		"create": runCounterCreate,
		"list":   runCounterList,
	})
}

func runToken(ctx context.Context, cio cmdIO, args []string) error {
	return runGroup(ctx, cio, "token", args, map[string]func(context.Context, cmdIO, []string) error{
		"create": runTokenCreate,
		"list":   runTokenList,
		"revoke": runTokenRevoke,
	})
}

func runGroup(ctx context.Context, cio cmdIO, group string, args []string, subs map[string]func(context.Context, cmdIO, []string) error) error {
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(args) == 0 {
		return &usageError{group, fmt.Sprintf("missing subcommand: one of %v", names)}
	}
	run, ok := subs[args[0]]
	if !ok {
		return &usageError{group, fmt.Sprintf("unknown subcommand %q: want one of %v", args[0], names)}
	}
	return run(ctx, cio, args[1:])
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func runCounterCreate(ctx context.Context, cio cmdIO, args []string) error {
	var d dataFlags
	var n counter.NewCounter
	var asJSON bool
	f := newFlagSet("counter create", "counter create --name NAME --domain DOMAIN [--timezone ZONE] [--json] [flags]", cio.stdout)
	f.StringVar(&n.Name, "name", "", "the site's name, as you want to see it in reports (required)")
	f.StringVar(&n.Domain, "domain", "", "the site's host, e.g. shop.example.ru; its subdomains are included (required)")
	f.StringVar(&n.Timezone, "timezone", counter.DefaultTimezone, "IANA time zone for reports and for CRM dates given without one")
	f.BoolVar(&asJSON, "json", false, `print {"id": …, "token": "…"} as JSON`)
	d.register(f)
	if _, err := f.parse(args, cio.getenv, false); err != nil {
		return err
	}
	if err := n.Validate(); err != nil {
		return &usageError{"counter create", "--" + err.Error()}
	}
	db, _, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	c, tok, err := counter.Create(ctx, db, n)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cio.stdout, map[string]any{"id": c.ID, "token": tok})
	}
	fmt.Fprintf(cio.stdout, "Created counter %d: %q (%s, %s)\n\nAPI token — shown only now, store it somewhere safe:\n\n    %s\n\n",
		c.ID, c.Name, c.Domain, c.Timezone, tok)
	fmt.Fprintf(cio.stdout, "Try it: curl -H \"Authorization: Bearer %s\" http://127.0.0.1:8080/api/v1/counters/%d\n", tok, c.ID)
	return nil
}

func runCounterList(ctx context.Context, cio cmdIO, args []string) error {
	var d dataFlags
	var asJSON bool
	f := newFlagSet("counter list", "counter list [--json] [flags]", cio.stdout)
	f.BoolVar(&asJSON, "json", false, "print JSON")
	d.register(f)
	if _, err := f.parse(args, cio.getenv, false); err != nil {
		return err
	}
	db, _, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	cs, err := counter.List(ctx, db)
	if err != nil {
		return err
	}
	if asJSON {
		if cs == nil {
			cs = []counter.Counter{}
		}
		return printJSON(cio.stdout, cs)
	}
	if len(cs) == 0 {
		fmt.Fprintln(cio.stdout, "No counters yet. Create one: throughline counter create --name NAME --domain DOMAIN")
		return nil
	}
	tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tDOMAIN\tTIMEZONE\tCREATED")
	for _, c := range cs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", c.ID, c.Name, c.Domain, c.Timezone, c.CreatedAt.Format(time.DateTime))
	}
	return tw.Flush()
}

// counterFlag reads --counter ID.
type counterFlag struct{ id int64 }

func (c *counterFlag) register(f *flagSet) {
	f.Func("counter", "counter id (required)", func(s string) error {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%q is not a counter id", s)
		}
		c.id = id
		return nil
	})
}

func (c *counterFlag) required(cmd string) error {
	if c.id == 0 {
		return &usageError{cmd, "--counter ID is required"}
	}
	return nil
}

// notFound turns a not-found error into a message naming what is missing.
func notFound(err error, what string) error {
	if errors.Is(err, counter.ErrNotFound) || errors.Is(err, calltracking.ErrNotFound) {
		return fmt.Errorf("%s not found", what)
	}
	return err
}

func runTokenCreate(ctx context.Context, cio cmdIO, args []string) error {
	var d dataFlags
	var cf counterFlag
	var name string
	var asJSON bool
	f := newFlagSet("token create", "token create --counter ID [--name NAME] [--json] [flags]", cio.stdout)
	cf.register(f)
	f.StringVar(&name, "name", "", "what the token is for, e.g. \"CRM uploader\"")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	d.register(f)
	if _, err := f.parse(args, cio.getenv, false); err != nil {
		return err
	}
	if err := cf.required("token create"); err != nil {
		return err
	}
	db, _, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	t, text, err := counter.CreateToken(ctx, db, cf.id, name)
	if err != nil {
		return notFound(err, fmt.Sprintf("counter %d", cf.id))
	}
	if asJSON {
		return printJSON(cio.stdout, map[string]any{"counter_id": t.CounterID, "id": t.ID, "name": t.Name, "token": text})
	}
	fmt.Fprintf(cio.stdout, "Created token %s for counter %d — shown only now, store it somewhere safe:\n\n    %s\n", t.ID, t.CounterID, text)
	return nil
}

func runTokenList(ctx context.Context, cio cmdIO, args []string) error {
	var d dataFlags
	var cf counterFlag
	var asJSON bool
	f := newFlagSet("token list", "token list --counter ID [--json] [flags]", cio.stdout)
	cf.register(f)
	f.BoolVar(&asJSON, "json", false, "print JSON")
	d.register(f)
	if _, err := f.parse(args, cio.getenv, false); err != nil {
		return err
	}
	if err := cf.required("token list"); err != nil {
		return err
	}
	db, _, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := counter.Get(ctx, db, cf.id); err != nil {
		return notFound(err, fmt.Sprintf("counter %d", cf.id))
	}
	ts, err := counter.ListTokens(ctx, db, cf.id)
	if err != nil {
		return err
	}
	if asJSON {
		if ts == nil {
			ts = []counter.Token{}
		}
		return printJSON(cio.stdout, ts)
	}
	tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCREATED\tREVOKED")
	for _, t := range ts {
		revoked := "-"
		if t.RevokedAt != nil {
			revoked = t.RevokedAt.Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Format(time.DateTime), revoked)
	}
	return tw.Flush()
}

func runTokenRevoke(ctx context.Context, cio cmdIO, args []string) error {
	var d dataFlags
	var cf counterFlag
	f := newFlagSet("token revoke", "token revoke (--counter ID TOKEN_ID | TOKEN) [flags]", cio.stdout)
	cf.register(f)
	d.register(f)
	rest, err := f.parse(args, cio.getenv, true)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return &usageError{"token revoke", "give one token id (with --counter) or the token itself"}
	}
	counterID, keyID := cf.id, rest[0]
	if id, key, ok := counter.ParseTokenID(rest[0]); ok {
		if cf.id != 0 && cf.id != id {
			return &usageError{"token revoke", fmt.Sprintf("the token belongs to counter %d, not %d", id, cf.id)}
		}
		counterID, keyID = id, key
	} else if err := cf.required("token revoke"); err != nil {
		return err
	}
	db, _, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := counter.RevokeToken(ctx, db, counterID, keyID); err != nil {
		return notFound(err, fmt.Sprintf("token %s of counter %d", keyID, counterID))
	}
	fmt.Fprintf(cio.stdout, "Revoked token %s of counter %d\n", keyID, counterID)
	return nil
}
