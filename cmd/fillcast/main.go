// Command fillcast is the single binary of the Fillcast CDN. Each
// subcommand wires one part of the system together; the parts themselves
// live in the appliance, controlplane, origin, steering and transcoder
// packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/fillcast/fillcast/controlplane/fsm"

	"github.com/fillcast/fillcast"
)

// command is one subcommand: a one-line summary and the function that runs it.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"appliance":    {"run an edge appliance (fasthttp and HTTP/3, memory and disk tiers, zero-downtime upgrades)", runAppliance},
		"billing":      {"verify the billing ledger against the invoices, print the billing report, or run a renewal pass", runBilling},
		"certs":        {"make a CA and node, appliance, operator and server certificates for a lab", runCerts},
		"controlplane": {"run a control-plane node (raft, steering, ingest, API); controlplane backup|restore: copy a cluster's state to a file, seed a new node from one", runControlPlane},
		"demo":         {"run the whole CDN on one machine with sample titles", runDemo},
		"keys":         {"generate a signing key, or write the public key file appliances and the origin verify with", runKeys},
		"origin":       {"serve packaged titles from a directory", runOrigin},
		"sign":         {"print the signed path prefix for a title", runSign},
		"targets":      {"write a realistic vegeta target list from a control plane", runTargets},
		"transcode":    {"transcode one title into an ABR ladder (CMAF for HLS and DASH, MP4 downloads)", runTranscode},
		"version":      {"print the version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fillcast:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitRemoved is the exit status of a control-plane node the cluster
// refused for good (an operator removed it): restarting it cannot help
// (deploy/fillcast-controlplane.service: RestartPreventExitStatus).
const exitRemoved = 3

func exitCode(err error) int {
	switch {
	case errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage):
		return 2
	case errors.Is(err, fsm.ErrRemoved):
		return exitRemoved
	}
	return 1
}

// errUsage marks a command line that could not be understood.
var errUsage = errors.New("usage error")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := cmds[args[1]]; ok {
				return c.run(ctx, []string{"-h"}, stdout, stderr)
			}
		}
		usage(stdout, cmds)
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		usage(stderr, cmds)
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "fillcast %s: an open-source video CDN\n\nUsage: fillcast SUBCOMMAND [flags]\n\nSubcommands:\n", fillcast.Version)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(w, "  %-12s %s\n", "help", "list subcommands (fillcast help SUB for its flags)")
	fmt.Fprint(w, "\nEvery flag may also come from --config FILE (lines of \"name value\") or from\nFILLCAST_<FLAG> in the environment (dashes become underscores).\n")
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	fmt.Fprintln(stdout, "fillcast", fillcast.Version)
	return nil
}
