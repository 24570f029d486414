// Command catalog is the catalog-scale benchmark (issue 20): a 3-node
// control plane of this tree loaded with a catalog of many titles of
// thousands of files each (20,000 × 5 renditions × 2,000 segments by
// default, every title's file list published at the origin), beside the
// previous release (the last that kept every file in the replicated
// state) at the largest catalog it holds within a memory budget. For
// each it prints RSS per node, raft log and snapshot size, a node's
// restart-to-serving time, the p99 of a catalog page and of playback, and
// the planner's full pass; then the targets.
//
//	go run ./bench/catalog                 # the sizes: about 25 minutes, 20 GB of disk
//	go run ./bench/catalog -quick          # 2,000 titles × 200 segments, minutes
//	go run ./bench/catalog -old-rev ""     # this tree only
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

type options struct {
	titles, segments     int
	oldRev               string
	oldBudget            int64
	oldSegments, oldStep int
	appliances, viewers  int
	playbacks, listings  int
	workers              int
	dir                  string
	keep                 bool
}

func main() {
	var o options
	quick := flag.Bool("quick", false, "a small catalog (2,000 titles × 200 segments; the previous release in steps of 100), for a run of minutes")
	flag.IntVar(&o.titles, "titles", 20000, "titles of this tree's catalog")
	flag.IntVar(&o.segments, "segments", 2000, "segments per rendition (5 renditions)")
	flag.StringVar(&o.oldRev, "old-rev", "8e93808", "git revision of the previous release to measure beside (empty: none)")
	budget := flag.Float64("old-budget-gib", 8, "memory the previous release may use, all three nodes' RSS together, GiB")
	flag.IntVar(&o.oldSegments, "old-segments", 1500, "segments per rendition of the previous release's titles (its API takes a title of at most 1 MiB, about 9,000 files)")
	flag.IntVar(&o.oldStep, "old-step", 250, "titles the previous release is loaded with at a time, until the next step would pass its budget")
	flag.IntVar(&o.appliances, "appliances", 20, "appliances heartbeating in the site (a fifth storage, the rest flash)")
	flag.IntVar(&o.viewers, "viewers", 8, "viewers asking for playback")
	flag.IntVar(&o.playbacks, "playbacks", 2000, "playback requests measured")
	flag.IntVar(&o.listings, "listings", 2000, "catalog pages measured -workers at a time (and half as many one at a time)")
	flag.IntVar(&o.workers, "workers", 4, "requests in flight while loading and measuring")
	flag.StringVar(&o.dir, "dir", "", "work directory (default: a new one under $TMPDIR, removed at the end)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.Parse()
	o.oldBudget = int64(*budget * (1 << 30))
	if *quick {
		o.titles, o.segments, o.oldSegments, o.oldStep, o.playbacks, o.listings = 2000, 200, 200, 100, 500, 500
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "catalog:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	dir := o.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "fillcast-catalog-bench-"); err != nil {
			return err
		}
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	newShape := shape{titles: o.titles, segments: o.segments}
	if err := checkDisk(dir, newShape); err != nil {
		return err
	}
	fmt.Printf("building this tree%s\n", map[bool]string{true: " and " + o.oldRev, false: ""}[o.oldRev != ""])
	bin, err := buildRelease(ctx, dir, "")
	if err != nil {
		return err
	}
	var results []*result
	if o.oldRev != "" {
		old, err := buildRelease(ctx, dir, o.oldRev)
		if err != nil {
			return err
		}
		r, err := measure(ctx, o, old, filepath.Join(dir, "old"), shape{titles: 1 << 30, segments: o.oldSegments}, true)
		if err != nil {
			return fmt.Errorf("the previous release: %w", err)
		}
		r.release = "previous (" + o.oldRev + ")"
		results = append(results, r)
	}
	r, err := measure(ctx, o, bin, filepath.Join(dir, "new"), newShape, false)
	if err != nil {
		return fmt.Errorf("this tree: %w", err)
	}
	r.release = "this tree"
	results = append(results, r)
	report(os.Stdout, results)
	return nil
}

// checkDisk refuses to start when dir's file system cannot hold the
// catalog's published lists with 2 GiB to spare.
func checkDisk(dir string, sh shape) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return err
	}
	free := int64(st.Bavail) * st.Bsize
	need := int64(sh.titles)*int64(len(sh.files(0)))*96 + 2<<30
	if free < need {
		return fmt.Errorf("%s has %.1f GiB free; the lists of %d titles of %d segments need about %.1f GiB: give -dir elsewhere, or fewer -titles or -segments",
			dir, float64(free)/(1<<30), sh.titles, sh.segments, float64(need)/(1<<30))
	}
	return nil
}

// measure starts one release's system in dir, loads it (the previous
// release step by step within its budget), and measures it.
func measure(ctx context.Context, o options, bin, dir string, sh shape, legacy bool) (*result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	flags := []string{"--log-level", "warn", "--signups-per-hour", "-1", "--max-conns-per-client", "-1",
		"--rate-limits", "viewer=off,apikey=off,appliance=off,anonymous=off"}
	s, err := startSystem(ctx, bin, dir, flags)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	c := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * o.workers}}
	w, err := seed(ctx, c, s.nodes[0].url, o.appliances)
	if err != nil {
		return nil, err
	}
	defer w.beats.Close()

	l := &loader{sys: s, shape: sh, legacy: legacy, client: c}
	r := &result{filesPerTitle: len(sh.files(0))}
	start := time.Now()
	if !legacy {
		err = progress(l, sh.titles, func() error { return l.load(ctx, 0, sh.titles, o.workers) })
		r.titles = sh.titles
	} else {
		r.titles, r.stopped, err = loadWithin(ctx, l, o)
	}
	if err != nil {
		return nil, err
	}
	r.load = time.Since(start)
	fmt.Printf("  %d titles of %d files loaded in %v\n", r.titles, r.filesPerTitle, r.load.Round(time.Second))
	if err := caughtUp(ctx, c, s); err != nil {
		return nil, err
	}
	if err := w.addViewers(ctx, c, s.nodes[0].url, o.viewers, r.titles); err != nil {
		return nil, err
	}
	r.planner, r.passes, r.plannerOK = plannerPass(ctx, c, s, sh)
	for i, n := range s.nodes {
		r.rss[i] = n.rss()
		r.log[i], r.snapshot[i] = raftBytes(n)
	}
	r.playback = playback(ctx, c, w, o.playbacks, o.workers)
	if r.restart, err = restart(ctx, c, s, s.nodes[2], "/v1/titles/"+titleID(0)); err != nil {
		return nil, err
	}
	// Last: the previous release's listing is the whole catalog, which
	// may take more memory than the machine has.
	r.listing, r.listingNote = listing(ctx, c, s, o, legacy)
	if !legacy {
		r.listingLoaded, r.workers = walk(ctx, c, s, o.listings, o.workers), o.workers
	}
	return r, nil
}
