// Command overload measures what the control plane's overload protection
// buys: vegeta sends one control-plane node the demo's mix of viewer
// requests (playback 60 %, search 20 %, recommendations 10 %, events
// 10 %) at the node's measured capacity and then at three times it, once
// with protection on (the default flags: an adaptive concurrency limit
// and prioritized shedding) and once with it off (--concurrency-limit
// off), and prints per class the success, shed (503) and rate-limited
// (429) shares and the latency percentiles, the targets for
// protection on (at 3×: playback success >= 99 % and playback p99 within
// 3× of its unloaded p99, lower classes shed), and the same figures with
// protection off beside them, with the ratio.
//
// Each node is a separate `fillcast controlplane` process (built from
// this tree into a temporary directory) on loopback with its own data
// directory, seeded through its API with the same catalog, appliances
// and viewers; the load runs in this process. The capacity is measured
// once, first, on a node of its own with protection off, and reused for
// every run: the highest rate at which the mix still gets >= 99 %
// success and a p99 under -p99 (give -capacity to skip it).
//
//	go run ./bench/overload                          # 3 rounds of the on/off pair, medians
//	go run ./bench/overload -rounds 1 -duration 5s   # a quick look
//	go run ./bench/overload -capacity 800 -v
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fillcast/fillcast/bench/internal/procstat"
)

type options struct {
	duration, unloadedFor, step, timeout, settle, p99Bound, modelWait time.Duration
	unloadedRate, capacity, startRate                                 int
	mix                                                               string
	rounds, viewers, titles, appliances, batch, conns                 int
	keep, verbose, pin                                                bool
	nodeCPU                                                           float64
	fillcast, on, off, rateLimits                                     string
}

// Targets of the issue, for protection on at 3× capacity.
const (
	targetSuccess  = 99.0 // playback success, percent
	targetP99Ratio = 3.0  // playback p99 over its unloaded p99
	overload       = 3    // times the capacity
)

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "length of the at-capacity and 3× phases")
	flag.IntVar(&o.capacity, "capacity", 0, "capacity in requests a second; 0 measures it first on a node with protection off")
	flag.StringVar(&o.mix, "mix", "playback=60,search=20,recommendations=10,events=10", "request mix, class=weight, comma-separated")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of the on/off pair; medians are printed")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binary, node data and logs)")
	flag.BoolVar(&o.verbose, "v", false, "print seeding steps, node command lines, why requests got no answer, and node log tails")
	flag.IntVar(&o.unloadedRate, "unloaded-rate", 50, "requests a second of the unloaded phase")
	flag.DurationVar(&o.unloadedFor, "unloaded-duration", 10*time.Second, "length of the unloaded phase")
	flag.DurationVar(&o.step, "step", 5*time.Second, "length of each step of the capacity search")
	flag.IntVar(&o.startRate, "start-rate", 200, "first rate of the capacity search, doubled until it fails, then bisected")
	flag.DurationVar(&o.p99Bound, "p99", 250*time.Millisecond, "capacity: the highest rate whose p99 (all classes) stays under this, with >= 99 % success")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "a request without an answer by then counts as no answer")
	flag.IntVar(&o.conns, "conns", 2000, "most connections vegeta opens to the node (requests beyond wait in the client, and the wait counts)")
	flag.DurationVar(&o.settle, "settle", 30*time.Second, "longest wait between phases for the node to be idle again")
	flag.IntVar(&o.viewers, "viewers", 100, "viewer accounts the load plays as (more are signed up if the events per account would pass 10/s)")
	flag.IntVar(&o.titles, "titles", 12, "ready titles in the catalog")
	flag.IntVar(&o.appliances, "appliances", 2, "storage appliances heartbeating in the one site")
	flag.IntVar(&o.batch, "batch", 1, "events per POST /v1/events")
	flag.DurationVar(&o.modelWait, "model-wait", 45*time.Second, "longest wait at seeding for the recommender's first model")
	flag.StringVar(&o.fillcast, "fillcast", "", "use this fillcast binary instead of building ./cmd/fillcast")
	flag.StringVar(&o.on, "on", "auto", "node flags for protection on; auto: none (the defaults) when the binary has --concurrency-limit")
	flag.StringVar(&o.off, "off", "auto", "node flags for protection off; auto: --concurrency-limit off")
	flag.StringVar(&o.rateLimits, "rate-limits", "viewer=off,anonymous=off", "--rate-limits given to every node when the binary has it; empty keeps its defaults")
	flag.BoolVar(&o.pin, "pin", true, "with 2 CPUs or more, run the node on CPU 0 and this process (vegeta) on CPU 1 (taskset), so that neither takes the other's CPU")
	flag.Float64Var(&o.nodeCPU, "node-cpu", 0.3, "with -pin, the share of CPU 0 the node may use (a cgroup CPU quota), so that vegeta's one CPU can send three times the node's capacity; 0: all of it")
	flag.Parse()
	if o.pin {
		pinSelf()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "overload:", err)
		os.Exit(1)
	}
}

func (o options) check() error {
	switch {
	case o.duration <= 0 || o.unloadedFor <= 0 || o.step <= 0 || o.timeout <= 0:
		return errors.New("-duration, -unloaded-duration, -step and -timeout: want positive durations")
	case o.rounds < 1 || o.viewers < 1 || o.titles < 1 || o.appliances < 1 || o.batch < 1 || o.conns < 1:
		return errors.New("-rounds, -viewers, -titles, -appliances, -batch and -conns: want at least 1")
	case o.batch > 1000:
		return errors.New("-batch: at most 1000 events (the API's limit)")
	case o.unloadedRate < 1 || o.startRate < 1 || o.capacity < 0:
		return errors.New("-unloaded-rate and -start-rate: want at least 1; -capacity: 0 or more")
	}
	return nil
}

// env is what every node of a run shares.
type env struct {
	o      options
	mix    mix
	bin    string
	dir    string
	common []string
	lc     loadConfig
	nodes  int // started so far, for their directories
}

func run(ctx context.Context, o options) error {
	if err := o.check(); err != nil {
		return err
	}
	m, err := parseMix(o.mix)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fillcast-bench-overload-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Printf("kept %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if pinned() {
		fmt.Printf("%s; the node runs on CPU 0 (at most %.0f %% of it, -node-cpu) and this process (vegeta, GOMAXPROCS %d) on CPU 1 (-pin); load average %s at the start\n",
			runtime.Version(), 100*cmp.Or(o.nodeCPU, 1), runtime.GOMAXPROCS(0), procstat.LoadAvg())
	} else {
		fmt.Printf("%s, GOMAXPROCS %d, %d CPUs shared by the node and this process (vegeta); load average %s at the start\n",
			runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), procstat.LoadAvg())
	}
	bin := o.fillcast
	if bin == "" {
		t := time.Now()
		if bin, err = build(ctx, dir); err != nil {
			return err
		}
		fmt.Printf("built ./cmd/fillcast in %v\n", time.Since(t).Round(100*time.Millisecond))
	}
	flags, err := controlplaneFlags(ctx, bin)
	if err != nil {
		return err
	}
	on, off, err := protections(o, flags)
	if err != nil {
		return err
	}
	common, notes := commonFlags(o, flags)
	e := &env{o: o, mix: m, bin: bin, dir: dir, common: common, lc: loadConfig{timeout: o.timeout, conns: o.conns}}
	fmt.Printf("protection on:  %s  (%s)\n", flagString(on.flags), on.note)
	fmt.Printf("protection off: %s  (%s)\n", flagString(off.flags), off.note)
	fmt.Printf("both: %s\n", strings.Join(notes, "; "))
	fmt.Printf("mix: %s, dealt in the order %v; %d viewers, %d titles, %d appliances heartbeating every %v; events in batches of %d\n",
		m, m.cycle(), o.viewers, o.titles, o.appliances, heartbeatGap, o.batch)
	fmt.Printf("vegeta: open loop (constant rate), at most %d connections, timeout %v; p50 and p99 over every request, a request without an answer counting at its timeout\n\n",
		o.conns, o.timeout)

	capacity := o.capacity
	if capacity == 0 {
		if capacity, err = e.measureCapacity(ctx, off); err != nil {
			return err
		}
	} else {
		fmt.Printf("capacity: %d req/s (-capacity)\n", capacity)
	}
	perViewer := float64(overload*capacity) * m.share(events) * float64(o.batch) / float64(e.viewersFor(capacity))
	fmt.Printf("phases per node: warm-up %v and unloaded %v at %d req/s, capacity %d req/s for %v, %d× = %d req/s for %v; at %d× each of %d viewers posts %.1f events/s\n\n",
		warmUpFor, o.unloadedFor, o.unloadedRate, capacity, o.duration, overload, overload*capacity, o.duration, overload, e.viewersFor(capacity), perViewer)

	var runs [][2]*nodeRun // per round: on, off
	for round := 1; round <= o.rounds; round++ {
		// Alternate which goes first, so that a drift of the machine
		// does not always favour the same side.
		order := []protection{on, off}
		if round%2 == 0 {
			order = []protection{off, on}
		}
		var pair [2]*nodeRun
		for _, p := range order {
			r, err := e.runNode(ctx, round, p, capacity)
			if err != nil {
				return fmt.Errorf("round %d, protection %s: %w", round, p.name, err)
			}
			if p.name == "on" {
				pair[0] = r
			} else {
				pair[1] = r
			}
		}
		printRound(round, pair)
		runs = append(runs, pair)
	}
	summary(o, capacity, runs)
	fmt.Printf("load average %s at the end\n", procstat.LoadAvg())
	return nil
}

// warmUpFor is the unmeasured load before a node's unloaded phase: it
// opens the connections and fills the caches of sessions and leases.
const warmUpFor = 3 * time.Second

// viewersFor is how many viewers a load of up to 3× capacity plays as:
// enough that none posts over 10 events a second, half the default
// limit per account.
func (e *env) viewersFor(capacity int) int {
	need := float64(overload*capacity) * e.mix.share(events) * float64(e.o.batch) / 10
	return max(e.o.viewers, int(math.Ceil(need)))
}

// nodeRun is one node's phases.
type nodeRun struct {
	prot                      protection
	unloaded, atCap, overload *phase
	recsSource                string
}

// start starts a node with protection p and seeds it with n viewers.
func (e *env) start(ctx context.Context, label string, p protection, viewers int) (*node, *world, error) {
	e.nodes++
	dir := filepath.Join(e.dir, fmt.Sprintf("node%d-%s", e.nodes, label))
	args := append(append([]string{}, e.common...), p.flags...)
	t := time.Now()
	n, err := startNode(ctx, e.bin, dir, args, e.o.nodeCPU, time.Minute)
	if err != nil {
		return nil, nil, err
	}
	e.logf("  node %s: %s %s", label, e.bin, strings.Join(n.args, " "))
	o := e.o
	o.viewers = viewers
	w, err := seed(ctx, n.url, o, e.logf)
	if err != nil {
		n.stop()
		return nil, nil, fmt.Errorf("seeding: %w (node log: %s)", err, n.logTail())
	}
	fmt.Printf("node %s (pid %d) up and seeded in %v; recommendations from %q\n", label, n.pid(), time.Since(t).Round(100*time.Millisecond), w.recsSource)
	return n, w, nil
}

func (e *env) logf(format string, args ...any) {
	if e.o.verbose {
		fmt.Printf(format+"\n", args...)
	}
}

// runNode runs a node's phases: warm-up, unloaded, at capacity, at 3×.
func (e *env) runNode(ctx context.Context, round int, p protection, capacity int) (*nodeRun, error) {
	label := fmt.Sprintf("r%d-%s", round, p.name)
	n, w, err := e.start(ctx, label, p, e.viewersFor(capacity))
	if err != nil {
		return nil, err
	}
	defer n.stop()
	defer w.beats.Close()
	t := newTargeter(n.url, e.mix, w, e.o.batch)
	r := &nodeRun{prot: p, recsSource: w.recsSource}
	attack(ctx, "warm-up", n, w, t, e.o.unloadedRate, warmUpFor, e.lc)
	steps := []struct {
		name string
		rate int
		d    time.Duration
		into **phase
	}{
		{"unloaded", e.o.unloadedRate, e.o.unloadedFor, &r.unloaded},
		{"capacity", capacity, e.o.duration, &r.atCap},
		{strconv.Itoa(overload) + "× capacity", overload * capacity, e.o.duration, &r.overload},
	}
	for _, s := range steps {
		waited := settle(ctx, n.pid(), e.o.settle)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ph := attack(ctx, s.name, n, w, t, s.rate, s.d, e.lc)
		*s.into = ph
		printPhase(fmt.Sprintf("round %d, protection %s", round, p.name), ph, waited, e.o.verbose)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if e.o.verbose {
		fmt.Printf("  node log (%s), last lines:\n%s\n", filepath.Join(n.dir, "node.log"), indent(n.logTail(), "    "))
	}
	return r, nil
}

// measureCapacity finds, on a node of its own with protection off, the
// highest rate at which the mix gets >= 99 % success and a p99 under
// -p99: doubling from -start-rate until a step fails, then bisecting to
// within 10 %; a step also fails when vegeta could not send 95 % of its
// rate. Protection off, because the capacity is what the node
// does before any shedding; both runs then take the same rates.
func (e *env) measureCapacity(ctx context.Context, off protection) (int, error) {
	fmt.Printf("capacity: measured on a node of its own with protection off, %v steps, success >= 99 %% and p99 <= %v over the whole mix\n", e.o.step, e.o.p99Bound)
	// Enough viewers for the events of the highest rate likely tried.
	n, w, err := e.start(ctx, "capacity", off, e.viewersFor(4*e.o.startRate))
	if err != nil {
		return 0, err
	}
	defer n.stop()
	defer w.beats.Close()
	t := newTargeter(n.url, e.mix, w, e.o.batch)
	attack(ctx, "warm-up", n, w, t, e.o.unloadedRate, warmUpFor, e.lc)
	try := func(rate int) (bool, error) {
		settle(ctx, n.pid(), e.o.settle)
		if err := ctx.Err(); err != nil {
			return false, err
		}
		p := attack(ctx, "step", n, w, t, rate, e.o.step, e.lc)
		// A rate vegeta could not send says nothing of the node.
		kept := p.sentRate() >= minSentShare*float64(rate)
		ok := kept && p.all.success() >= targetSuccess && p.all.quantile(0.99) <= e.o.p99Bound
		verdict := "ok"
		switch {
		case !kept:
			verdict = "too much (vegeta could not send it)"
		case !ok:
			verdict = "too much"
		}
		fmt.Printf("  %6d req/s (%6.0f sent): success %6.2f %%, p99 %8v (playback %8v), shed %.2f %%, limited %.2f %%, no answer %.2f %%; %v: %s\n",
			rate, p.sentRate(), p.all.success(), round(p.all.quantile(0.99)), round(p.cls[playback].quantile(0.99)),
			p.all.pct(p.all.shed), p.all.pct(p.all.limited), p.all.pct(p.all.noAnswer), p.cpu, verdict)
		return ok, nil
	}
	lo, hi := 0, 0 // highest rate that passed, lowest that failed
	for r := e.o.startRate; lo == 0 || hi == 0; {
		ok, err := try(r)
		if err != nil {
			return 0, err
		}
		switch {
		case ok:
			lo, r = r, 2*r
		case r <= 10:
			return 0, fmt.Errorf("capacity: even %d req/s fails; see the node log %s", r, filepath.Join(n.dir, "node.log"))
		default:
			hi, r = r, r/2 // down, when the first rate was too much already
		}
	}
	for hi-lo > max(lo/10, 10) {
		mid := (lo + hi) / 2
		ok, err := try(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	fmt.Printf("capacity: %d req/s (the next rate tried, %d req/s, failed)\n\n", lo, hi)
	return lo, nil
}

func flagString(f []string) string {
	if len(f) == 0 {
		return "(no extra flags)"
	}
	return strings.Join(f, " ")
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
