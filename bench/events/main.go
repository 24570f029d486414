// Command events measures the control plane's event intake on a cluster
// of three nodes started in this process: how many viewer events a
// second POST /v1/events accepts (each answered only once the replicated
// JetStream stream has it), against what the same stream takes from a
// publisher that skips the HTTP API, and how long a progress event takes
// from its POST to one node to the viewing history another node answers.
//
// After a warm-up that fills every node's operators' event index, as a
// running node's is, rounds alternate the loads on the same cluster:
// Fillcast (clients posting batches of 100 events to the nodes round
// robin, while probe viewers time the lag to history), then a raw
// publisher on node 1's JetStream context sending one message per
// event, then one message per batch of 100 as the API does (and with
// -sync, batches published synchronously from as many goroutines as
// there are clients, as the API's handlers do). Between loads the bench
// waits until every node's consumers have folded what the stream holds,
// so that one load's backlog does not slow the next. As the machine may
// be shared, each load's line says how many CPUs this process and the
// whole machine used, and the events per CPU-second of this process.
//
//	go run ./bench/events                      # defaults: 3 rounds of 3 loads of 15 s
//	go run ./bench/events -duration 5s -rounds 1 -viewers 8 -clients 16
//	go run ./bench/events -cpuprofile /tmp/ev  # /tmp/ev-{fillcast,event,batch}-rN.pprof
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fillcast/fillcast/bench/internal/procstat"
	"github.com/fillcast/fillcast/controlplane/stream"
)

// Targets.
const (
	targetRate  = 50_000 // accepted events a second
	targetRatio = 0.5    // of the raw publisher's rate, one message per batch
	targetLag   = time.Second
)

type options struct {
	viewers, clients, batch, rounds, window, probes int
	duration, settle                                time.Duration
	eventsPerSecond                                 float64
	eventBurst                                      int
	cpuProfile                                      string
	verbose, strict, sync                           bool
}

func main() {
	var o options
	flag.IntVar(&o.viewers, "viewers", 64, "viewers the clients post as (one account each)")
	flag.IntVar(&o.clients, "clients", 64, "concurrent HTTP clients posting batches")
	flag.IntVar(&o.batch, "batch", 100, "events per batch")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "length of each load in a round")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of the loads; medians are printed")
	flag.IntVar(&o.window, "window", 256, "raw publisher's acknowledgements outstanding at most")
	flag.IntVar(&o.probes, "probes", 4, "probe viewers timing the lag from POST to history")
	flag.DurationVar(&o.settle, "settle", time.Minute, "longest wait for the consumers to fold a load's backlog")
	flag.Float64Var(&o.eventsPerSecond, "account-rate", 1_000_000, "API.EventsPerSecond: events one account may post a second")
	flag.IntVar(&o.eventBurst, "account-burst", 100_000, "API.EventBurst")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of each load to `PREFIX`-{fillcast,event,batch,sync}-rN.pprof")
	flag.BoolVar(&o.sync, "sync", false, "also run a raw publisher of batches from -clients goroutines each waiting for its ack, as the API's handlers do")
	flag.BoolVar(&o.verbose, "v", false, "print the nodes' warnings and errors")
	flag.BoolVar(&o.strict, "strict", false, "exit 1 when a figure misses its target")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ok, err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		os.Exit(1)
	}
	if !ok && o.strict {
		os.Exit(1)
	}
}

// series is one load and its figures over the rounds.
type series struct {
	name, file string
	// run applies the load and returns its events a second and the
	// line to print.
	run    func() (float64, string)
	rates  []float64 // events a second
	perCPU []float64 // events per CPU-second of this process
}

func run(ctx context.Context, o options) (bool, error) {
	switch {
	case o.viewers < 1 || o.clients < 1 || o.rounds < 1 || o.probes < 1:
		return false, errors.New("-viewers, -clients, -rounds and -probes: want at least 1")
	case o.batch < 1 || o.batch > 1000:
		return false, errors.New("-batch: want 1 to 1000 (the API's limit)")
	case o.window < 2:
		return false, errors.New("-window: want at least 2")
	}
	dir, err := os.MkdirTemp("", "fillcast-bench-events-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("%s, GOMAXPROCS %d, %d CPUs; load average %s at the start\n", runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), procstat.LoadAvg())
	cfg := nodeConfig(o.eventsPerSecond, o.eventBurst)
	fmt.Printf("nodes: n1 (bootstrap), n2 and n3 (join) in this process on loopback; bench config: API.EventsPerSecond %.0f, API.EventBurst %d per account (defaults 20 and 2000), Accounts.SignUpsPerHour %d; the rest defaults\n",
		cfg.API.EventsPerSecond, cfg.API.EventBurst, cfg.Accounts.SignUpsPerHour)
	var log *slog.Logger
	if o.verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	start := time.Now()
	c, err := startCluster(ctx, dir, cfg, log)
	if err != nil {
		return false, err
	}
	defer func() {
		if err := c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "events: stopping the nodes:", err)
		}
	}()
	leader, err := c.waitStream(ctx, 2*time.Minute)
	if err != nil {
		return false, err
	}
	fmt.Printf("stream %s: 3 replicas, all current, leader %s, %v after the start\n", stream.Name, leader, time.Since(start).Round(100*time.Millisecond))

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.clients + 8, DisableCompression: true}, Timeout: 30 * time.Second}
	t := time.Now()
	vs, err := c.setup(ctx, client, o.viewers+o.probes)
	if err != nil {
		return false, err
	}
	fmt.Printf("title %s created; %d viewers and %d probe viewers signed up in %v\n", title, o.viewers, o.probes, time.Since(t).Round(100*time.Millisecond))
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.url
	}
	load := &apiLoad{nodes: urls, viewers: vs[:o.viewers], clients: o.clients, batch: o.batch, client: client, seq: make([]int, o.clients)}
	probes := &prober{post: urls[0], read: urls[2], viewers: vs[o.viewers:], every: 200 * time.Millisecond, poll: 2 * time.Millisecond, giveUp: 10 * time.Second,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * o.probes, DisableCompression: true}, Timeout: 10 * time.Second},
		pos:    make([]int, o.probes)}
	js := c.nodes[0].Stream().JetStream()
	raw := &rawPublisher{js: js, window: o.window, batch: o.batch, users: rawUsers(o.viewers)}
	// A first event from each probe, seen in n3's history: the title is
	// on every node, the stream takes batches, every node's consumers
	// fold them.
	if err := warmUp(ctx, probes, time.Minute); err != nil {
		return false, err
	}
	// Fill every node's operators' event index (200,000 events), as a
	// running node's is, before measuring: while it grows it copies
	// itself.
	w := raw.run(warmUpFor, false)
	if _, _, err := settle(ctx, js, o.settle); err != nil {
		return false, err
	}
	fmt.Printf("warm-up: %d events published in batches for %v, not measured\n", w.events, warmUpFor)

	fmt.Printf("Fillcast: %d clients post batches of %d progress events (unique ids) to n1, n2, n3 round robin over HTTP/1.1 keep-alive for %v; only 202s count; a client waits %v after any other answer\n",
		o.clients, o.batch, o.duration, backoff)
	fmt.Printf("  meanwhile %d probe viewers each post a 1-event batch to n1 every %v and read n3's GET /v1/history every %v until it shows the position\n",
		o.probes, probes.every, probes.poll)
	fmt.Printf("raw: PublishAsync on n1's Stream().JetStream() for %v, at most %d acks outstanding: one message per event (its own Nats-Msg-Id), and one per batch of %d (events.AppendRecord, the API's message id)\n",
		o.duration, o.window, o.batch)
	if o.sync {
		fmt.Printf("raw sync: %d goroutines each Publish a batch of %d on n1's Stream().JetStream() and wait for its ack, as the API's handlers do, for %v\n", o.clients, o.batch, o.duration)
	}
	fill := &series{name: "fillcast", file: "fillcast", run: func() (float64, string) {
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); probes.run(pctx) }()
		r := load.run(o.duration)
		cancel()
		<-done
		return r.rate(), fmt.Sprintf("%7.0f events/s accepted: %d events in %d 202s in %v; 503 %d, 429 %d, other %d, no answer %d",
			r.rate(), r.accepted, r.ok, r.elapsed.Round(time.Millisecond), r.s503, r.s429, r.other, r.failed)
	}}
	rawLoad := func(run func() rawRound) func() (float64, string) {
		return func() (float64, string) {
			r := run()
			return r.rate(), fmt.Sprintf("%7.0f events/s: %v", r.rate(), r)
		}
	}
	perEvent := &series{name: "raw per event", file: "event", run: rawLoad(func() rawRound { return raw.run(o.duration, true) })}
	perBatch := &series{name: "raw per batch", file: "batch", run: rawLoad(func() rawRound { return raw.run(o.duration, false) })}
	loads := []*series{fill, perEvent, perBatch}
	if o.sync {
		loads = append(loads, &series{name: "raw sync per batch", file: "sync", run: rawLoad(func() rawRound { return raw.runSync(o.duration, o.clients) })})
	}
	for round := 1; round <= o.rounds; round++ {
		for _, s := range loads {
			if err := phase(ctx, o, js, s, round); err != nil {
				return false, err
			}
		}
	}
	return summary(o, loads, probes), nil
}

// phase applies one load, under a CPU profile when asked, prints its
// line and waits for the consumers to fold what it put on the stream.
func phase(ctx context.Context, o options, js jetstream.JetStream, s *series, round int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(fmt.Sprintf("%s-%s-r%d.pprof", o.cpuProfile, s.file, round))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	cpu0, wall0 := processCPU(), time.Now()
	busy0, total0 := procstat.MachineCPU()
	rate, line := s.run()
	cpu, wall := processCPU()-cpu0, time.Since(wall0)
	busy1, total1 := procstat.MachineCPU()
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	share := cpu.Seconds() / wall.Seconds()
	s.rates, s.perCPU = append(s.rates, rate), append(s.perCPU, rate/share)
	line += fmt.Sprintf("; CPUs busy: this process %.2f, all %.2f of %d; %.0f events per CPU-second", share,
		float64(runtime.NumCPU())*float64(busy1-busy0)/float64(max(total1-total0, 1)), runtime.NumCPU(), rate/share)
	took, left, err := settle(ctx, js, o.settle)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		line += fmt.Sprintf("; consumers' backlog unknown after %v: %v", took.Round(100*time.Millisecond), err)
	case left > 0:
		line += fmt.Sprintf("; consumers still %d messages behind after %v", left, took.Round(100*time.Millisecond))
	default:
		line += fmt.Sprintf("; consumers caught up %v later", took.Round(100*time.Millisecond))
	}
	fmt.Printf("round %d %-19s %s\n", round, s.name+":", line)
	return nil
}

// warmUpFor is how long the raw publisher warms the cluster up.
const warmUpFor = 5 * time.Second

// warmUp has every probe post one event to n1 and see it in n3's
// history.
func warmUp(ctx context.Context, p *prober, within time.Duration) error {
	deadline := time.Now().Add(within)
	for i := range p.viewers {
		for {
			_, err := p.sample(i)
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("warm-up: a probe's event not in n3's history within %v: %w", within, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	return nil
}

func summary(o options, loads []*series, p *prober) bool {
	fill, perEvent, perBatch := loads[0], loads[1], loads[2]
	lags := slices.Clone(p.lags)
	slices.Sort(lags)
	f, e, b := median(fill.rates), median(perEvent.rates), median(perBatch.rates)
	p50, p99, worst := percentile(lags, 0.5), percentile(lags, 0.99), percentile(lags, 1)
	fmt.Printf("\nsummary over %d rounds (medians; events per CPU-second of this process in parentheses), load average %s at the end:\n", o.rounds, procstat.LoadAvg())
	label := map[string]string{
		"fillcast":           "Fillcast POST /v1/events, accepted",
		"raw per event":      "raw JetStream, 1 message per event",
		"raw per batch":      "raw JetStream, 1 message per batch",
		"raw sync per batch": "raw JetStream, 1 message per batch, synchronous",
	}
	for _, s := range loads {
		fmt.Printf("  %-48s %7.0f events/s %s  (%.0f %s)\n", label[s.name]+":", median(s.rates), rounded(s.rates), median(s.perCPU), rounded(s.perCPU))
	}
	fmt.Printf("  Fillcast / raw per event: %.2f (per CPU-second %.2f); Fillcast / raw per batch: %.2f (per CPU-second %.2f)\n",
		f/e, median(fill.perCPU)/median(perEvent.perCPU), f/b, median(fill.perCPU)/median(perBatch.perCPU))
	fmt.Printf("  lag POST to n1 -> n3's history: p50 %v, p99 %v, max %v over %d events (%d never seen within %v, %d POSTs not answered 202)\n",
		p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond), worst.Round(100*time.Microsecond), len(lags), p.missed, p.giveUp, p.failed)
	okRate, okRatio, okLag := f >= targetRate, f >= targetRatio*b, len(lags) > 0 && p99 <= targetLag && p.missed == 0
	fmt.Printf("%s  accepted events/s >= %d: %.0f\n", verdict(okRate), targetRate, f)
	fmt.Printf("%s  Fillcast >= %.1fx the raw publisher sending the API's messages (1 per batch of %d): %.2fx (and %.2fx the raw publisher sending 1 message per event)\n",
		verdict(okRatio), targetRatio, o.batch, f/b, f/e)
	fmt.Printf("%s  lag p99 <= %v: %v\n", verdict(okLag), targetLag, p99.Round(100*time.Microsecond))
	return okRate && okRatio && okLag
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// percentile returns the q-quantile of sorted ds, by nearest rank.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func rounded(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// processCPU returns the CPU time, user and system, this process has
// used: on a shared machine, the share of it the bench got.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
