package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/fillcast/fillcast/bench/internal/apicall"
)

// result is what measure found for one release.
type result struct {
	release            string
	titles             int
	filesPerTitle      int
	stopped            string // why the previous release's loading stopped
	load               time.Duration
	rss, log, snapshot [3]int64
	restart            time.Duration
	listing            *latencies // one at a time
	listingLoaded      *latencies // -workers at a time (this tree)
	listingNote        string
	workers            int
	playback           *latencies
	planner            time.Duration
	passes             int
	plannerOK          bool
}

// progress runs load while printing l's progress every 10 s.
func progress(l *loader, total int, load func() error) error {
	done := make(chan error, 1)
	go func() { done <- load() }()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-t.C:
			fmt.Printf("  %d of %d titles\n", l.done.Load(), total)
		}
	}
}

// loadWithin loads the previous release step by step, while the next
// step would keep the three nodes' RSS within the budget; it returns the
// titles loaded and why it stopped.
func loadWithin(ctx context.Context, l *loader, o options) (int, string, error) {
	loaded := 0
	for {
		if err := l.load(ctx, loaded, loaded+o.oldStep, o.workers); err != nil {
			if loaded == 0 {
				return 0, "", err
			}
			return loaded, fmt.Sprintf("a step failed: %v", err), nil
		}
		loaded += o.oldStep
		var sum int64
		for _, n := range l.sys.nodes {
			sum += n.rss()
		}
		fmt.Printf("  %d titles: RSS %.2f GiB in all\n", loaded, gib(sum))
		if next := sum + sum/int64(loaded)*int64(o.oldStep); next > o.oldBudget {
			return loaded, fmt.Sprintf("another %d titles would take the nodes to about %.1f GiB, over the %.0f GiB budget", o.oldStep, gib(next), gib(o.oldBudget)), nil
		}
		if loaded >= o.titles {
			return loaded, "reached -titles", nil
		}
	}
}

// caughtUp waits until every node has applied what the leader had when
// it was called.
func caughtUp(ctx context.Context, c *http.Client, s *system) error {
	index := func(n *proc) uint64 {
		var st struct {
			Applied json.Number `json:"applied_index"`
		}
		apicall.Call(ctx, c, "GET", n.url+"/v1/cluster", nil, adminToken, http.StatusOK, &st)
		v, _ := st.Applied.Int64()
		return uint64(v)
	}
	want := index(leaderOf(ctx, c, s))
	for _, n := range s.nodes {
		if err := until(ctx, 5*time.Minute, n.name+" caught up", func() bool { return index(n) >= want }, n); err != nil {
			return err
		}
	}
	return nil
}

// listing measures catalog pages on every node. This tree's listing is
// paged: walkers go through the catalog 50 titles at a time by cursor,
// half of them filtered by a genre. The previous release answers the
// whole catalog to every listing: it gets a few of those.
func listing(ctx context.Context, c *http.Client, s *system, o options, legacy bool) (*latencies, string) {
	l := &latencies{}
	if legacy {
		// Once a node, the followers first; one that dies of it (out of
		// memory) is reported, not waited for.
		var died []string
		for _, n := range slices.Backward(s.nodes) {
			timedGet(ctx, c, n.url+"/v1/titles", adminToken, l)
			select {
			case <-n.exited:
				died = append(died, fmt.Sprintf("%s (%v)", n.name, n.waitErr))
			case <-time.After(time.Second):
			}
		}
		note := fmt.Sprintf("GET /v1/titles (the whole catalog, %.1f MB), once a node", float64(l.maxBody)/1e6)
		if len(died) > 0 {
			note += "; died answering it: " + strings.Join(died, ", ")
		}
		return l, note
	}
	one := walk(ctx, c, s, o.listings/2, 1)
	return one, fmt.Sprintf("GET /v1/titles?limit=50 by cursor, half the walks by genre, %d pages one at a time (largest %.1f kB)", len(one.d), float64(one.maxBody)/1e3)
}

// walk measures n catalog pages, workers at a time, each worker walking
// the catalog 50 titles at a time by cursor from one node, every second
// one filtered by a genre.
func walk(ctx context.Context, c *http.Client, s *system, n, workers int) *latencies {
	l := &latencies{}
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() {
			node := s.nodes[k%3]
			filter := ""
			cursor := ""
			for i := range n / workers {
				if cursor == "" { // from the start, every second walk by genre
					filter = ""
					if (k+i)%2 == 1 {
						filter = "&genre=" + url.QueryEscape(genres[(k+i)%len(genres)])
					}
				}
				b, err := timedGet(ctx, c, node.url+"/v1/titles?limit=50"+filter+cursor, adminToken, l)
				var page struct {
					Next string `json:"next_cursor"`
				}
				if err != nil || json.Unmarshal(b, &page) != nil || page.Next == "" {
					cursor = ""
					continue
				}
				cursor = "&cursor=" + url.QueryEscape(page.Next)
			}
		})
	}
	wg.Wait()
	return l
}

// workersOf is how many pages the loaded listing asked for at once.
func workersOf(rs []*result) int { return rs[len(rs)-1].workers }

func gib(b int64) float64 { return float64(b) / (1 << 30) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

// report prints the releases side by side, then the targets.
func report(w io.Writer, rs []*result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, f func(r *result) string) {
		cells := []string{name}
		for _, r := range rs {
			cells = append(cells, f(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	perNode := func(v [3]int64) string {
		cells := make([]string, len(v))
		for i, b := range v {
			cells[i] = "none"
			if b > 0 {
				cells[i] = fmt.Sprintf("%.1f", float64(b)/(1<<20))
			}
		}
		return strings.Join(cells, " / ") + " MiB"
	}
	fmt.Fprintln(w)
	row("", func(r *result) string { return r.release })
	row("catalog", func(r *result) string { return fmt.Sprintf("%d titles × %d files", r.titles, r.filesPerTitle) })
	row("loaded in", func(r *result) string { return r.load.Round(time.Second).String() })
	row("RSS per node", func(r *result) string { return perNode(r.rss) })
	row("raft log per node", func(r *result) string { return perNode(r.log) })
	row("newest snapshot per node", func(r *result) string { return perNode(r.snapshot) })
	row("restart to serving (a follower)", func(r *result) string { return r.restart.Round(10 * time.Millisecond).String() })
	row("catalog page p50 / p99", func(r *result) string {
		return ms(r.listing.quantile(0.5)) + " / " + ms(r.listing.quantile(0.99)) + errs(r.listing)
	})
	row(fmt.Sprintf("same, %d at once", workersOf(rs)), func(r *result) string {
		if r.listingLoaded == nil {
			return "-"
		}
		return ms(r.listingLoaded.quantile(0.5)) + " / " + ms(r.listingLoaded.quantile(0.99)) + errs(r.listingLoaded)
	})
	row("playback p50 / p99", func(r *result) string {
		return ms(r.playback.quantile(0.5)) + " / " + ms(r.playback.quantile(0.99)) + errs(r.playback)
	})
	row("planner full pass (mean)", func(r *result) string {
		switch {
		case !r.plannerOK:
			return "not measured (no fillcast_planner_pass_seconds)"
		case r.passes == 0:
			return "no pass within a minute of a catalog change"
		}
		return fmt.Sprintf("%s (%d passes)", ms(r.planner), r.passes)
	})
	tw.Flush()
	for _, r := range rs {
		fmt.Fprintf(w, "\n%s: listing is %s", r.release, r.listingNote)
		if r.stopped != "" {
			fmt.Fprintf(w, "; loading stopped at %d titles: %s", r.titles, r.stopped)
		}
		fmt.Fprintln(w)
	}
	cur := rs[len(rs)-1]
	maxRSS := max(cur.rss[0], cur.rss[1], cur.rss[2])
	fmt.Fprintln(w, "\ntargets (this tree):")
	target := func(name string, ok bool, got string) {
		fmt.Fprintf(w, "  %-28s %-6s %s\n", name, map[bool]string{true: "PASS", false: "MISS"}[ok], got)
	}
	target("RSS ≤ 1 GiB per node", maxRSS <= 1<<30, fmt.Sprintf("largest %.0f MiB", float64(maxRSS)/(1<<20)))
	target("restart ≤ 10 s", cur.restart <= 10*time.Second, cur.restart.Round(10*time.Millisecond).String())
	target("listing p99 ≤ 20 ms", cur.listing.quantile(0.99) <= 20*time.Millisecond,
		fmt.Sprintf("%s one at a time; %s %d at once", ms(cur.listing.quantile(0.99)), ms(cur.listingLoaded.quantile(0.99)), workersOf(rs)))
	target("planner pass ≤ 5 s", cur.plannerOK && cur.passes > 0 && cur.planner <= 5*time.Second, ms(cur.planner))
	if len(rs) > 1 {
		old := rs[0]
		ratio := float64(cur.playback.quantile(0.99)) / float64(max(old.playback.quantile(0.99), 1))
		target("playback p99 unchanged", ratio <= 1.25, fmt.Sprintf("%.2f× the previous release's", ratio))
	}
}

func errs(l *latencies) string {
	if l.errors == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d errors)", l.errors)
}
