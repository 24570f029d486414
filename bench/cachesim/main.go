// Command cachesim compares the appliance's disk eviction policy with LRU
// and Belady's optimum on a synthetic multi-day trace of one site (issue
// 6): it generates the trace with package trace, replays it through a
// pull-through cache the size of a flash appliance (by default 10 % of
// the catalog) with S3-FIFO, LRU and Belady, and prints the byte hit ratio
// of each, over the whole trace after a warm-up day and over the evening
// peak hours. run.sh next to it runs it.
//
//	go run ./bench/cachesim [-quick] [-days 7] [-sessions 15000] [-titles 2000] [-cache 0.1] [-seed 1]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
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
	fmt.Println()
	fmt.Println("per day, byte hit ratio (S3-FIFO / LRU / Belady):")
	for d := range cfg.Days {
		fmt.Printf("  day %d: %.4f / %.4f / %.4f\n", d+1, results[0].day[d].ratio(), results[1].day[d].ratio(), results[2].day[d].ratio())
	}
	fmt.Printf("s3fifo_byte_hit_ratio=%.4f lru_byte_hit_ratio=%.4f belady_byte_hit_ratio=%.4f s3fifo_peak=%.4f lru_peak=%.4f belady_peak=%.4f\n",
		results[0].all.ratio(), results[1].all.ratio(), results[2].all.ratio(),
		results[0].peak.ratio(), results[1].peak.ratio(), results[2].peak.ratio())
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
		out[i] = evict.Request{Key: k[q.Segment], Size: tr.SegmentSize(int(q.Title), int(q.Segment))}
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
