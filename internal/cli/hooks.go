package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/telephony"
)

func runHook(ctx context.Context, cio cmdIO, args []string) error {
	return runGroup(ctx, cio, "hook", args, map[string]func(context.Context, cmdIO, []string) error{
		"create": runHookCreate,
		"list":   runHookList,
		"revoke": runHookRevoke,
	})
}

func runHookCreate(ctx context.Context, cio cmdIO, args []string) error {
	const cmd = "hook create"
	var d dataFlags
	var cf counterFlag
	var in calltracking.HookInput
	var asJSON bool
	f := newFlagSet(cmd, "hook create --counter ID --provider generic|zadarma|mango|twilio [flags]", cio.stdout)
	cf.register(f)
	f.StringVar(&in.Provider, "provider", "", "the telephony provider: generic, zadarma, mango or twilio (required)")
	f.StringVar(&in.Name, "name", "", "what the hook is for, e.g. \"office PBX\"")
	f.StringVar(&in.Secret, "secret", "", "signature secret: Zadarma's API secret, Twilio's auth token, or a key for the generic X-Throughline-Signature")
	f.StringVar(&in.APIKey, "api-key", "", "Mango: the VPBX API key")
	f.StringVar(&in.APISalt, "api-salt", "", "Mango: the VPBX API salt")
	f.StringVar(&in.Timezone, "timezone", "", "time zone of the provider's times that carry none (default: the counter's)")
	f.StringVar(&in.ForwardTo, "forward-to", "", "Twilio: the shop's line, when the number's Voice URL points at Throughline")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	d.register(f)
	if _, err := f.parse(args, cio.getenv, false); err != nil {
		return err
	}
	if err := cf.required(cmd); err != nil {
		return err
	}
	if in.Provider == "" {
		return &usageError{cmd, "--provider is required: one of generic, zadarma, mango, twilio"}
	}
	db, c, err := d.openCounter(ctx, cf.id)
	if err != nil {
		return err
	}
	defer db.Close()
	box, err := d.secrets()
	if err != nil {
		return err
	}
	h, err := calltracking.CreateHook(ctx, db, box, c.ID, c.Timezone, in, telephony.Providers)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cio.stdout, h)
	}
	fmt.Fprintf(cio.stdout, "Created %s hook %s for counter %d. Give the provider this URL (on your Throughline host):\n\n    https://THROUGHLINE_HOST%s\n",
		h.Provider, h.ID, c.ID, h.Path)
	return nil
}

func runHookList(ctx context.Context, cio cmdIO, args []string) error {
	var d dataFlags
	var cf counterFlag
	var asJSON bool
	f := newFlagSet("hook list", "hook list --counter ID [--json] [flags]", cio.stdout)
	cf.register(f)
	f.BoolVar(&asJSON, "json", false, "print JSON")
	d.register(f)
	if _, err := f.parse(args, cio.getenv, false); err != nil {
		return err
	}
	if err := cf.required("hook list"); err != nil {
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
	hs, err := calltracking.Hooks(ctx, db, cf.id)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cio.stdout, hs)
	}
	tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPROVIDER\tNAME\tPATH\tCREATED\tREVOKED")
	for _, h := range hs {
		revoked := "-"
		if h.RevokedAt != nil {
			revoked = h.RevokedAt.Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.Provider, h.Name, h.Path, h.CreatedAt.Format(time.DateTime), revoked)
	}
	return tw.Flush()
}

func runHookRevoke(ctx context.Context, cio cmdIO, args []string) error {
	var d dataFlags
	var cf counterFlag
	f := newFlagSet("hook revoke", "hook revoke --counter ID HOOK_ID [flags]", cio.stdout)
	cf.register(f)
	d.register(f)
	rest, err := f.parse(args, cio.getenv, true)
	if err != nil {
		return err
	}
	if err := cf.required("hook revoke"); err != nil {
		return err
	}
	if len(rest) != 1 {
		return &usageError{"hook revoke", "give one hook id"}
	}
	db, _, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := calltracking.RevokeHook(ctx, db, cf.id, rest[0]); err != nil {
		return notFound(err, fmt.Sprintf("hook %s of counter %d", rest[0], cf.id))
	}
	fmt.Fprintf(cio.stdout, "Revoked hook %s of counter %d\n", rest[0], cf.id)
	return nil
}
