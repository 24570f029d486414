package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fillcast/fillcast/billing/subscriptions"
	"github.com/fillcast/fillcast/controlplane/client"
)

// runBilling is the operators' billing tools: verify the ledger against
// the invoices, print the report, run a renewal pass.
func runBilling(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("billing", "verify|report|renew [--controlplane URL] [--token KEY] [--as-of RFC3339]", stderr)
	cp := fs.String("controlplane", os.Getenv("FILLCAST_CONTROLPLANE"), "control-plane base `URL` (default $FILLCAST_CONTROLPLANE)")
	token := fs.String("token", os.Getenv("FILLCAST_TOKEN"), "an operator's API `KEY` (verify and report: a read key will do) (default $FILLCAST_TOKEN)")
	asOf := fs.String("as-of", "", "renew: charge what is due by this RFC 3339 `TIME` (default now)")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		parseFlags(fs, []string{"-h"})
		return fmt.Errorf("%w: billing needs verify, report or renew", errUsage)
	}
	what := args[0]
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *cp == "" || *token == "" {
		return fmt.Errorf("%w: billing %s needs --controlplane and --token", errUsage, what)
	}
	c, err := client.New(client.Config{URLs: []string{*cp}}, client.Deps{Token: *token})
	if err != nil {
		return err
	}
	defer c.Close()
	switch what {
	case "verify":
		var v subscriptions.Verification
		if err := c.Do(ctx, "GET", "/v1/billing/verify", nil, &v); err != nil {
			return fmt.Errorf("billing verify: %w", err)
		}
		fmt.Fprintf(stdout, "billing verify: %d ledger entries, %d invoices, %d subscriptions, %d balances\n", v.Entries, v.Invoices, v.Subscriptions, len(v.Balances))
		for _, p := range v.Problems {
			fmt.Fprintln(stdout, p)
		}
		if len(v.Problems) > 0 {
			return fmt.Errorf("billing verify: %d problems: the ledger and the invoices disagree", len(v.Problems))
		}
		fmt.Fprintln(stdout, "billing verify: the ledger and the invoices agree")
		return nil
	case "report":
		var r subscriptions.Report
		if err := c.Do(ctx, "GET", "/v1/billing/report", nil, &r); err != nil {
			return fmt.Errorf("billing report: %w", err)
		}
		return writeJSON(stdout, r)
	case "renew":
		at := time.Now().UTC()
		if *asOf != "" {
			if at, err = time.Parse(time.RFC3339, *asOf); err != nil {
				return fmt.Errorf("%w: --as-of: %v", errUsage, err)
			}
		}
		var res subscriptions.PassResult
		if err := c.Do(ctx, "POST", "/v1/billing/renewals", map[string]time.Time{"as_of": at}, &res); err != nil {
			return fmt.Errorf("billing renew: %w", err)
		}
		return writeJSON(stdout, res)
	}
	return fmt.Errorf("%w: billing %q: want verify, report or renew", errUsage, what)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
