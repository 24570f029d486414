package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/fillcast/fillcast/billing/subscriptions"
)

// The phases a child runs.
const (
	phaseSeed = "seed" // record the plan and the subscriptions
	phasePass = "pass" // run a renewal pass, and audit it if asked
)

// passMarker is the line a child prints on stdout just before Renew, so
// that the parent times the pass from there, even one that is killed.
const passMarker = "renewing"

// childSpec is what a child is told, as a JSON file.
type childSpec struct {
	Phase string `json:"phase"`
	// The node: its data, the provider's log directory, PostgreSQL's DSN
	// (empty for the replicated store) and its addresses.
	DataDir     string `json:"data_dir"`
	ProviderDir string `json:"provider_dir"`
	DSN         string `json:"dsn,omitempty"`
	HTTP        string `json:"http"`
	Raft        string `json:"raft"`
	Events      string `json:"events"`
	Log         string `json:"log"`
	// Subs is how many subscriptions to seed.
	Subs    int `json:"subs"`
	Workers int `json:"workers"`
	Page    int `json:"page"`
	// AsOf is the pass's time.
	AsOf time.Time `json:"as_of"`
	// AuditRenewals, when not 0, audits after the pass, expecting every
	// subscription renewed this many times since it was seeded.
	AuditRenewals int    `json:"audit_renewals,omitempty"`
	CPUProfile    string `json:"cpu_profile,omitempty"`
	// Result is the file the child writes its childResult to.
	Result string `json:"result"`
}

// childResult is what a child reports.
type childResult struct {
	// Ready is how long the node took to start, lead and replay its log.
	Ready float64                   `json:"ready"`
	Seed  *seedResult               `json:"seed,omitempty"`
	Pass  *subscriptions.PassResult `json:"pass,omitempty"`
	Audit *audit                    `json:"audit,omitempty"`
}

// runChild runs the phase of the spec in file: starts the node, does
// the phase, writes the result, stops the node.
func runChild(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var s childSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	start := time.Now()
	n, err := startNode(ctx, nodeConfig(s), logf)
	if err != nil {
		return err
	}
	res := childResult{Ready: time.Since(start).Seconds()}
	err = runPhase(ctx, n, s, &res)
	if serr := n.stop(); err == nil && serr != nil {
		err = fmt.Errorf("stop the node: %w", serr)
	}
	if err != nil {
		return err
	}
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return os.WriteFile(s.Result, out, 0o644)
}

// runPhase does the phase of s on n, filling res.
func runPhase(ctx context.Context, n *node, s childSpec, res *childResult) error {
	switch s.Phase {
	case phaseSeed:
		sr, err := seed(ctx, n, s.ProviderDir, s.Subs)
		res.Seed = &sr
		return err
	case phasePass:
	default:
		return fmt.Errorf("unknown phase %q", s.Phase)
	}
	svc := n.Billing()
	if s.CPUProfile != "" {
		f, err := os.Create(s.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	fmt.Println(passMarker)
	pr, err := svc.Renew(ctx, s.AsOf)
	if s.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	res.Pass = &pr
	if err != nil {
		return err
	}
	if s.AuditRenewals == 0 {
		return nil
	}
	a, err := runAudit(ctx, svc, s.ProviderDir, s.AsOf, s.AuditRenewals)
	res.Audit = &a
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}
