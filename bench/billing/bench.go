package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fillcast/fillcast/internal/pgserver"

	"github.com/fillcast/fillcast/bench/internal/procstat"
	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/subscriptions"
)

// options are the command's flags.
type options struct {
	subs, workers, page   int
	store, dsn            string
	providerDir, dir      string
	killAt                float64
	next, keep            bool
	cpuProfile, failpoint string
	timeout               time.Duration
}

// The stores.
const (
	storeReplicated = "replicated"
	storePostgres   = "postgres"
)

// nextMonth is how far past the first pass's time the uninterrupted one
// renews: past every renewed period's end (at most 31 days after one
// that ended 9 days before the first pass), before the next.
const nextMonth = 32 * 24 * time.Hour

func (o options) validate() error {
	switch {
	case o.subs < 2:
		return errors.New("-subs: want at least 2")
	case o.workers < 0 || o.workers > 1024:
		return errors.New("-workers: want 0 (the default) to 1024")
	case o.page < 0:
		return errors.New("-page: want 0 (the default) or more")
	case o.killAt <= 0 || o.killAt >= 1:
		return errors.New("-kill-at: want a share between 0 and 1")
	case o.failpoint != subscriptions.FailBeforeCharge && o.failpoint != subscriptions.FailAfterCharge && o.failpoint != subscriptions.FailAfterCommit:
		return fmt.Errorf("-failpoint %q: want %s, %s or %s", o.failpoint, subscriptions.FailBeforeCharge, subscriptions.FailAfterCharge, subscriptions.FailAfterCommit)
	case o.store != "both" && o.store != storeReplicated && o.store != storePostgres:
		return fmt.Errorf("-store %q: want replicated, postgres or both", o.store)
	}
	return nil
}

// run measures each store asked for and prints the figures; it reports
// whether every check passed.
func run(ctx context.Context, o options) (bool, error) {
	if err := o.validate(); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		return false, err
	}
	workers, page := cmp.Or(o.workers, 16), cmp.Or(o.page, 10_000)
	fmt.Printf("%s, GOMAXPROCS %d, %d CPUs; load average %s at the start\n", runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), procstat.LoadAvg())
	fmt.Printf("%d subscriptions (monthly, %s, test card %s), pass workers %d, page %d, the interrupted pass killed by %s at %d%% of them\n",
		o.subs, billing.Format(benchPlan.Price), okCard, workers, page, o.failpoint, int(o.killAt*100))

	stores := []string{storeReplicated, storePostgres}
	switch o.store {
	case storeReplicated:
		stores = stores[:1]
	case storePostgres:
		stores = stores[1:]
	}
	var pg *pgserver.Server
	adminDSN := o.dsn
	if slices.Contains(stores, storePostgres) && adminDSN == "" {
		if pg, err = pgserver.StartWith(pgserver.Options{Durable: true}); err != nil {
			if o.store == storePostgres {
				return false, err
			}
			fmt.Printf("PostgreSQL: not measured: %v\n", err)
			stores = stores[:1]
		} else {
			defer func() {
				if err := pg.Stop(); err != nil {
					fmt.Fprintln(os.Stderr, err)
				}
			}()
			adminDSN = pg.DSN("postgres")
			fmt.Printf("PostgreSQL: %s, throwaway server in %s (defaults: fsync and synchronous_commit on)\n", pg.Version(), pg.Dir())
		}
	}
	allOK := true
	var results []storeRun
	for _, st := range stores {
		r, err := runStore(ctx, o, exe, st, adminDSN)
		if err != nil {
			return false, fmt.Errorf("%s store: %w", st, err)
		}
		results = append(results, r)
		allOK = allOK && r.ok()
	}
	printSummary(results, o)
	if !allOK {
		fmt.Println("FAIL: see the checks above")
	}
	return allOK, nil
}

// storeRun is what one store's run measured.
type storeRun struct {
	store    string
	subs     int
	seed     outcome
	killed   outcome
	killedAt int // the failpoint's hit
	// killedCharges are the charges the provider holds after the kill.
	killedCharges int
	rerun         outcome
	next          *outcome
}

// ok reports whether every check of r passed.
func (r storeRun) ok() bool {
	good := func(o *outcome) bool {
		return o.res.Pass != nil && o.res.Pass.Failed == 0 && o.res.Audit != nil && o.res.Audit.ok(r.subs)
	}
	return good(&r.rerun) && (r.next == nil || good(r.next))
}

// passesSeconds is the wall time of the interrupted pass and its rerun.
func (r storeRun) passesSeconds() float64 { return r.killed.passSeconds() + r.rerun.res.Pass.Seconds }

// storeEnv is where one store's children run: the node's data, the
// provider's log, the database, and the spec every child starts from.
type storeEnv struct {
	dir, where string
	base       childSpec
	cleanup    []func()
}

// newStoreEnv makes the directories (and, for PostgreSQL, the database)
// of a run on store and chooses the node's addresses.
func newStoreEnv(ctx context.Context, o options, store, adminDSN string) (_ *storeEnv, err error) {
	e := &storeEnv{}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.dir, err = os.MkdirTemp(o.dir, "fillcast-bench-billing-"); err != nil {
		return nil, err
	}
	providerDir, err := os.MkdirTemp(o.providerDir, "fillcast-bench-billing-provider-")
	if err != nil {
		os.RemoveAll(e.dir)
		return nil, err
	}
	if o.keep {
		fmt.Printf("(kept: %s and %s)\n", e.dir, providerDir)
	} else {
		e.cleanup = append(e.cleanup, func() { os.RemoveAll(e.dir) }, func() { os.RemoveAll(providerDir) })
	}
	addrs, err := freeAddrs(3)
	if err != nil {
		return nil, err
	}
	e.base = childSpec{DataDir: filepath.Join(e.dir, "node"), ProviderDir: providerDir, HTTP: addrs[0], Raft: addrs[1], Events: addrs[2],
		Subs: o.subs, Workers: o.workers, Page: o.page, Log: filepath.Join(e.dir, "node.log")}
	e.where = fmt.Sprintf("raft log in %s (%s)", e.base.DataDir, fsType(e.dir))
	if store == storePostgres {
		dsn, drop, err := createDatabase(ctx, adminDSN, fmt.Sprintf("fillcast_bench_billing_%d", os.Getpid()))
		if err != nil {
			return nil, err
		}
		e.cleanup = append(e.cleanup, func() {
			if err := drop(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		})
		e.base.DSN = dsn
		e.where = fmt.Sprintf("PostgreSQL, node data in %s (%s)", e.base.DataDir, fsType(e.dir))
	}
	return e, nil
}

// close removes what newStoreEnv made, the last made first.
func (e *storeEnv) close() {
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
	e.cleanup = nil
}

// spec is the spec of a child running phase, its files named name.
func (e *storeEnv) spec(phase, name string) childSpec {
	s := e.base
	s.Phase, s.Result = phase, resultFile(e.dir, name)
	return s
}

// runStore seeds a fresh node on store, runs the interrupted pass, the
// rerun and the next month's, and prints each as it ends.
func runStore(ctx context.Context, o options, exe, store, adminDSN string) (storeRun, error) {
	r := storeRun{store: store, subs: o.subs}
	env, err := newStoreEnv(ctx, o, store, adminDSN)
	if err != nil {
		return r, err
	}
	defer env.close()
	providerDir := env.base.ProviderDir
	fmt.Printf("\n== %s store: %s; provider log in %s (%s); node log %s\n", store, env.where, providerDir, fsType(providerDir), env.base.Log)

	if r.seed, err = spawn(ctx, exe, env.spec(phaseSeed, "seed")); err != nil {
		return r, err
	}
	fmt.Printf("seed: %d subscriptions in %.1f s (node ready in %.1f s)\n", r.seed.res.Seed.Subscriptions, r.seed.res.Seed.Seconds, r.seed.res.Ready)

	asOf := time.Now().UTC()
	r.killedAt = max(1, int(o.killAt*float64(o.subs)))
	s := env.spec(phasePass, "interrupted")
	s.AsOf = asOf
	fp := "FILLCAST_FAILPOINTS=" + o.failpoint + "=kill-after:" + strconv.Itoa(r.killedAt)
	if r.killed, err = spawn(ctx, exe, s, fp); err != nil {
		return r, err
	}
	if !r.killed.killed {
		return r, errNotKilled
	}
	if tail := logTail(env.base.Log); !strings.Contains(tail, "failpoint: "+o.failpoint+": SIGKILL") {
		return r, fmt.Errorf("the interrupted pass died of SIGKILL, but not by the failpoint (the OOM killer?)\n%s", tail)
	}
	charges, err := providerCharges(ctx, providerDir)
	if err != nil {
		return r, err
	}
	r.killedCharges = len(charges)
	fmt.Printf("interrupted pass: SIGKILLed by failpoint %s at hit %d, %.1f s into the pass; the provider holds %d charges\n",
		o.failpoint, r.killedAt, r.killed.passSeconds(), r.killedCharges)

	s = env.spec(phasePass, "rerun")
	s.AsOf, s.AuditRenewals = asOf, 1
	if o.cpuProfile != "" {
		s.CPUProfile = fmt.Sprintf("%s-%s-rerun.pprof", o.cpuProfile, store)
	}
	if r.rerun, err = spawn(ctx, exe, s); err != nil {
		return r, err
	}
	p := r.rerun.res.Pass
	fmt.Printf("rerun: node ready in %.1f s; pass %.1f s: %s\n", r.rerun.res.Ready, p.Seconds, passLine(*p))
	a := r.rerun.res.Audit
	fmt.Printf("both passes: %.1f s, %d charges, %.0f charges/s\n", r.passesSeconds(), a.Succeeded, float64(a.Succeeded)/r.passesSeconds())
	fmt.Printf("audit (%.1f s): %s\n", a.Seconds, auditLine(*a, o.subs))

	if o.next {
		s = env.spec(phasePass, "next")
		s.AsOf, s.AuditRenewals = asOf.Add(nextMonth), 2
		if o.cpuProfile != "" {
			s.CPUProfile = fmt.Sprintf("%s-%s-next.pprof", o.cpuProfile, store)
		}
		next, err := spawn(ctx, exe, s)
		if err != nil {
			return r, err
		}
		r.next = &next
		p := next.res.Pass
		fmt.Printf("next month, uninterrupted: pass %.1f s, %.0f charges/s: %s\n", p.Seconds, float64(p.Renewed)/p.Seconds, passLine(*p))
		fmt.Printf("audit (%.1f s): %s\n", next.res.Audit.Seconds, auditLine(*next.res.Audit, o.subs))
	}
	fmt.Printf("peak RSS of the node's process: seed %s, interrupted %s, rerun %s", mib(r.seed.maxRSS), mib(r.killed.maxRSS), mib(r.rerun.maxRSS))
	if r.next != nil {
		fmt.Printf(", next %s", mib(r.next.maxRSS))
	}
	fmt.Println()
	return r, nil
}

// passLine prints a pass's counts.
func passLine(p subscriptions.PassResult) string {
	return fmt.Sprintf("due %d, renewed %d, reconciled %d, settled %d, skipped %d, past due %d, failed %d",
		p.Due, p.Renewed, p.Reconciled, p.Settled, p.Skipped, p.PastDue, p.Failed)
}

// auditLine prints an audit, and what is wrong.
func auditLine(a audit, subs int) string {
	s := fmt.Sprintf("%d of %d subscriptions renewed; %d renewal charges (%d succeeded); duplicate charges %d; charges the ledger does not record %d; ledger payments the provider does not know %d; Verify problems %d",
		a.Renewed, subs, a.Charges, a.Succeeded, a.Duplicates, a.Unrecorded, a.Unknown, a.Problems)
	if a.NotRenewed != "" {
		s += "\n  not renewed: " + a.NotRenewed
	}
	if a.Duplicate != "" {
		s += "\n  duplicate: " + a.Duplicate
	}
	if a.Problem != "" {
		s += "\n  Verify: " + a.Problem
	}
	if a.ok(subs) {
		return s + ": ok"
	}
	return s + ": FAIL"
}

// printSummary prints one line per store.
func printSummary(rs []storeRun, o options) {
	fmt.Printf("\n%-11s %8s %13s %10s %11s %11s %12s %10s %9s\n", "store", "subs", "passes wall", "charges/s", "reconciled", "duplicates", "next month", "charges/s", "peak RSS")
	for _, r := range rs {
		a := r.rerun.res.Audit
		nextWall, nextRate, peak := "-", "-", max(r.seed.maxRSS, r.killed.maxRSS, r.rerun.maxRSS)
		if r.next != nil {
			p := r.next.res.Pass
			nextWall, nextRate = fmt.Sprintf("%.1f s", p.Seconds), fmt.Sprintf("%.0f", float64(p.Renewed)/p.Seconds)
			peak = max(peak, r.next.maxRSS)
		}
		fmt.Printf("%-11s %8d %11.1f s %10.0f %11d %11d %12s %10s %9s\n", r.store, o.subs, r.passesSeconds(),
			float64(a.Succeeded)/r.passesSeconds(), r.rerun.res.Pass.Reconciled, a.Duplicates, nextWall, nextRate, mib(peak))
	}
}

func mib(b int64) string { return fmt.Sprintf("%d MiB", b>>20) }

// freeAddrs returns n loopback addresses free now, chosen once so that
// every child runs the node on the same ones.
func freeAddrs(n int) ([]string, error) {
	var out []string
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// fsType says whether dir is on tmpfs (memory) or on a disk, which
// bounds fsync.
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown file system"
	}
	if st.Type == 0x01021994 { // TMPFS_MAGIC
		return "tmpfs"
	}
	return "disk"
}
