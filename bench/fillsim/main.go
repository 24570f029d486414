// Command fillsim measures off-peak fills (issue 6) end to end: it runs
// simulated days of one ISP site on this machine with the real parts, an
// origin (package origin), a one-node control plane (package
// controlplane: raft, fleet, steering, popularity, placement, planner)
// and a flash and a storage appliance (package appliance, real sockets on
// 127.0.0.1, real disk caches in a temporary directory), under a
// time-compressed clock given to the planner and the fill executors.
//
// The workload is bench/cachesim's trace: a catalog with Zipf(0.8)
// popularity drifting day to day, about 1 % new releases a day (registered
// the day before with their release time, among the most watched on
// their first evening), and sessions on a diurnal curve peaking in the
// evening. Players ask the control plane for playback once per session and
// fetch segments from the URL it ranks first. The site fills from 02:00
// to 14:00.
//
// It runs the days twice, with fills planned and with planning off (pure
// pull-through caching), and compares the bytes the origin sent during
// the peak hours and the byte hit ratio of the appliances at peak. The
// last line is
//
//	peak_origin_reduction=R peak_byte_hit_ratio=H fill_outside_window_bytes=N
//
// run.sh next to it runs it.
//
//	go run ./bench/fillsim [-quick] [-days 4] [-day 40s] [-sessions 2000] [-titles 2000]
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/bench/cachesim/trace"
)

// options are the command's flags.
type options struct {
	quick      bool
	days       int
	warmup     int
	day        time.Duration
	sessions   int
	titles     int
	segments   int
	segBytes   int64
	flashShare float64
	fillRate   float64
	workers    int
	seed       uint64
	dir        string
	cpuprofile string
	verbose    bool
}

func parseFlags() options {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "3 days of 30 s, 1500 sessions a day: a run of 3 to 4 minutes")
	flag.IntVar(&o.days, "days", 0, "simulated days (0: 5, or 3 with -quick)")
	flag.IntVar(&o.warmup, "warmup", 1, "days run before counting (the first fills and the first popularity)")
	flag.DurationVar(&o.day, "day", 0, "wall time of one simulated day (0: 40s, or 30s with -quick)")
	flag.IntVar(&o.sessions, "sessions", 0, "viewing sessions a day (0: 2500, or 1500 with -quick)")
	flag.IntVar(&o.titles, "titles", 2000, "titles at the start")
	flag.IntVar(&o.segments, "segments", 6, "mean segments per title (each stands for 8 minutes of video)")
	flag.Int64Var(&o.segBytes, "segment-bytes", 64000, "mean segment size in bytes")
	flag.Float64Var(&o.flashShare, "flash", 0.1, "flash appliance's disk as a share of the starting catalog")
	flag.Float64Var(&o.fillRate, "fill-rate", 0, "fill cap per appliance, bits per wall second (0: the catalog in a third of a window)")
	flag.IntVar(&o.workers, "workers", 64, "concurrent player requests")
	flag.Uint64Var(&o.seed, "seed", 1, "trace seed")
	flag.StringVar(&o.dir, "dir", "", "working directory (default: a temporary one, removed at the end)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the runs to this file")
	flag.BoolVar(&o.verbose, "v", false, "log the parts' warnings to stderr")
	flag.Parse()
	def := func(v *int, normal, quick int) {
		if *v == 0 {
			*v = normal
			if o.quick {
				*v = quick
			}
		}
	}
	def(&o.days, 5, 3)
	def(&o.sessions, 2500, 1500)
	if o.day == 0 {
		o.day = 40 * time.Second
		if o.quick {
			o.day = 30 * time.Second
		}
	}
	return o
}

func main() {
	o := parseFlags()
	if err := validate(o); err != nil {
		fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fail(err)
	}
}

func validate(o options) error {
	switch {
	case o.warmup < 0 || o.warmup >= o.days:
		return fmt.Errorf("fillsim: -warmup %d: want fewer days than -days %d", o.warmup, o.days)
	case o.day < 5*time.Second:
		return fmt.Errorf("fillsim: -day %v: want at least 5s of wall time per simulated day", o.day)
	case o.flashShare <= 0 || o.flashShare >= 1:
		return fmt.Errorf("fillsim: -flash %v: want a share of the catalog in (0, 1), such as 0.1", o.flashShare)
	case o.workers < 1:
		return fmt.Errorf("fillsim: -workers %d: want at least 1", o.workers)
	}
	return nil
}

func run(ctx context.Context, o options, out io.Writer) error {
	tr, err := trace.Generate(trace.Config{Titles: o.titles, Segments: o.segments, SegmentBytes: o.segBytes,
		SegmentDuration: 8 * time.Minute, Days: o.days, SessionsPerDay: o.sessions, Seed: o.seed})
	if err != nil {
		return err
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "fillsim-"); err != nil {
			return fmt.Errorf("fillsim: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	t0 := time.Now()
	catalog, err := writeCatalog(dir+"/origin", tr, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	var startBytes int64
	for i, t := range tr.Titles {
		if t.Release.IsZero() {
			startBytes += tr.Titles[i].Bytes()
		}
	}
	all := tr.CatalogBytes()
	s := setup{
		originRoot: dir + "/origin", token: randomHex(16),
		flashBytes: int64(o.flashShare * float64(startBytes)), storeBytes: all * 5 / 4, memBytes: startBytes / 50,
		fillRate:  o.fillRate,
		planEvery: max(50*time.Millisecond, o.day/144),  // every 10 simulated minutes
		beatEvery: max(250*time.Millisecond, o.day/144), // the agent's timeout is the interval
		fillPoll:  max(250*time.Millisecond, o.day/96),  // every 15 simulated minutes
	}
	if s.fillRate == 0 {
		s.fillRate = 8 * float64(all) / (o.day / 2 / 3).Seconds()
	}
	if s.keys, err = auth.ParseKeys(strings.NewReader("sim " + randomHex(32) + "\n")); err != nil {
		return err
	}
	s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.verbose {
		s.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	var reqs int
	for _, ss := range tr.Sessions {
		reqs += int(ss.Count)
	}
	fmt.Fprintf(out, "GOMAXPROCS %d, %s\n", runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(out, "catalog: %d titles at the start (%.0f MB), %d released during the run (%.0f MB in all); written in %v\n",
		o.titles, float64(startBytes)/1e6, len(tr.Titles)-o.titles, float64(all)/1e6, time.Since(t0).Round(time.Millisecond))
	fmt.Fprintf(out, "workload: %d days (%d of warm-up), %d sessions and %d segment requests; a day lasts %v, so the clock runs %.0fx\n",
		o.days, o.warmup, len(tr.Sessions), reqs, o.day, float64(24*time.Hour)/float64(o.day))
	fmt.Fprintf(out, "site: fill window %s %s; flash disk %.1f MB (%.0f %% of the starting catalog), storage %.1f MB, memory tiers %.1f MB\n",
		site.FillWindow, site.Timezone, float64(s.flashBytes)/1e6, 100*o.flashShare, float64(s.storeBytes)/1e6, float64(s.memBytes)/1e6)
	fmt.Fprintf(out, "fill cap: %.0f Mbit/s of wall time per appliance (the whole catalog in a third of a window)\n\n", s.fillRate/1e6)

	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return fmt.Errorf("fillsim: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("fillsim: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var results [2]*result
	for i, fills := range []bool{true, false} {
		rs := s
		rs.fills = fills
		rs.dir = fmt.Sprintf("%s/run-%d", dir, i)
		if results[i], err = simulate(ctx, rs, o, tr, catalog); err != nil {
			return err
		}
		results[i].print(out, o)
		os.RemoveAll(rs.dir)
	}
	return report(out, o, s, results[0], results[1])
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
