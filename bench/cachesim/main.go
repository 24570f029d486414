// Command cachesim compares the appliance's disk eviction policy with
// S3-FIFO, LRU and Belady's optimum on a synthetic multi-day trace of one
// site (issues 6 and 19): it generates the trace with package trace,
// replays it through a pull-through cache the size of a flash appliance (by
// default 10 % of the catalog) with the disk tier's TinyLFU, the
// session-aware Interval experiment (which is told each request's session,
// segment position and time), S3-FIFO, LRU and Belady, and prints the byte
// hit ratio of each, over the whole trace after a warm-up day and over the
// evening peak hours, TinyLFU's ratio to LRU and every policy's to
// Belady. run.sh next to it runs it.
//
//	go run ./bench/cachesim [-quick] [-days 7] [-sessions 15000] [-titles 2000] [-cache 0.1] [-seed 1]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast/appliance/evict"
	"github.com/fillcast/fillcast/bench/cachesim/trace"
)

func main() {
	quick := flag.Bool("quick", false, "a small trace (3 days, 4000 sessions a day), for a run of seconds")
	days := flag.Int("days", 0, "days of trace (0: 7, or 3 with -quick)")
	sessions := flag.Int("sessions", 0, "viewing sessions per day (0: 15000, or 4000 with -quick)")
	titles := flag.Int("titles", 0, "titles at the start (0: 2000)")
	cacheShare := flag.Float64("cache", 0.1, "cache size as a share of the catalog's bytes")
	warmup := flag.Int("warmup", 1, "days replayed before counting")
	seed := flag.Uint64("seed", 1, "trace seed")
	flag.Parse()

	cfg := trace.Config{Days: *days, SessionsPerDay: *sessions, Titles: *titles, Seed: *seed}
	if *quick {
		if cfg.Days == 0 {
			cfg.Days = 3
		}
		if cfg.SessionsPerDay == 0 {
			cfg.SessionsPerDay = 4000
		}
	}
	if *cacheShare <= 0 || *cacheShare > 1 {
		fail(fmt.Errorf("cachesim: -cache %v: want a share of the catalog in (0, 1], such as 0.1", *cacheShare))
	}
	start := time.Now()
	tr, err := trace.Generate(cfg)
	if err != nil {
		fail(err)
	}
	cfg = tr.Config
	if *warmup < 0 || *warmup >= cfg.Days {
		fail(fmt.Errorf("cachesim: -warmup %d: want fewer days than the trace's %d", *warmup, cfg.Days))
	}
	reqs := requests(tr)
	catalog := tr.CatalogBytes()
	capacity := int64(*cacheShare * float64(catalog))
	var requested int64
	for _, q := range reqs {
		requested += q.Size
	}
	fmt.Printf("GOMAXPROCS %d, %s\n", runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Printf("trace: %d titles (%d released during the trace), %d days, %d sessions, %d requests, %.2f TB requested; generated in %v\n",
		len(tr.Titles), len(tr.Titles)-cfg.Titles, cfg.Days, len(tr.Sessions), len(reqs), float64(requested)/1e12, time.Since(start).Round(time.Millisecond))
	fmt.Printf("cache: %.1f GB, %.0f %% of the %.2f TB catalog; counting from day %d; peak hours 19:00-23:00\n\n",
		float64(capacity)/1e9, 100**cacheShare, float64(catalog)/1e12, *warmup+1)

	policies := trace.Contenders(capacity, reqs)
	results := make([]*observer, len(policies))
	times := make([]time.Duration, len(policies))
	var wg sync.WaitGroup
	for i, p := range policies {
		wg.Go(func() {
			t0 := time.Now()
			o := newObserver(p.New(), tr, *warmup)
			res := evict.Replay(o, capacity, reqs)
			if err := o.check(res); err != nil {
				fail(err)
			}
			results[i], times[i] = o, time.Since(t0)
		})
	}
	wg.Wait()

	fmt.Printf("%-8s %14s %19s %10s %12s\n", "policy", "byte_hit_ratio", "peak_byte_hit_ratio", "hit_ratio", "replay_time")
	for i, p := range policies {
		o := results[i]
		fmt.Printf("%-8s %14.4f %19.4f %10.4f %12v\n", p.Name, o.all.ratio(), o.peak.ratio(), o.all.hitRatio(), times[i].Round(time.Millisecond))
	}
	names := make([]string, len(policies))
	for i, p := range policies {
		names[i] = p.Name
	}
	fmt.Println()
	fmt.Printf("per day, byte hit ratio (%s):\n", strings.Join(names, " / "))
	for d := range cfg.Days {
		day := make([]string, len(results))
		for i, o := range results {
			day[i] = fmt.Sprintf("%.4f", o.day[d].ratio())
		}
		fmt.Printf("  day %d: %s\n", d+1, strings.Join(day, " / "))
	}
	fmt.Println(summary(names, results))
}

// summary is the machine-readable last line: each policy's byte hit
// ratio and peak byte hit ratio, then the first policy's (the disk
// tier's) ratios to Belady's and LRU's.
func summary(names []string, results []*observer) string {
	var b strings.Builder
	all := map[string]float64{}
	for i, name := range names {
		id := strings.ToLower(strings.ReplaceAll(name, "-", ""))
		all[id] = results[i].all.ratio()
		fmt.Fprintf(&b, "%s_byte_hit_ratio=%.4f ", id, results[i].all.ratio())
	}
	for i, name := range names {
		id := strings.ToLower(strings.ReplaceAll(name, "-", ""))
		fmt.Fprintf(&b, "%s_peak=%.4f ", id, results[i].peak.ratio())
	}
	first := strings.ToLower(strings.ReplaceAll(names[0], "-", ""))
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	fmt.Fprintf(&b, "%s_vs_belady=%.3f %s_vs_lru=%.3f", first, ratio(all[first], all["belady"]), first, ratio(all[first], all["lru"]))
	for _, name := range names[1:] {
		if id := strings.ToLower(strings.ReplaceAll(name, "-", "")); id != "belady" {
			fmt.Fprintf(&b, " %s_vs_belady=%.3f", id, ratio(all[id], all["belady"]))
		}
	}
	return b.String()
}

// requests turns the trace into replayer requests, one key string per
// segment shared by all its requests.
func requests(tr *trace.Trace) []evict.Request {
	keys := make([][]string, len(tr.Titles))
	out := make([]evict.Request, len(tr.Requests))
	for i, q := range tr.Requests {
		k := keys[q.Title]
		if k == nil {
			k = make([]string, tr.Titles[q.Title].Segments)
			keys[q.Title] = k
		}
		if k[q.Segment] == "" {
			k[q.Segment] = tr.Titles[q.Title].ID + "/" + tr.Path(int(q.Segment))
		}
		out[i] = evict.Request{
			Key: k[q.Segment], Size: tr.SegmentSize(int(q.Title), int(q.Segment)),
			Session: uint64(q.Session) + 1, Segment: q.Segment, At: q.At,
		}
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
