// Command steering prints the library and balance figures of issue 4 for
// package steering: the cost of one steering decision over a fleet of
// 1,000 appliances in 50 sites with a 100k-title catalog, how evenly
// bounded-load consistent hashing spreads 5,000 Zipf(0.9) playbacks over
// 20 appliances, and how many titles change primary when one of the 20
// leaves. run.sh next to it runs this and the go test benchmarks.
//
//	go run ./bench/steering [-runs 7] [-strict]
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/steering/steeringtest"
)

func main() {
	runs := flag.Int("runs", 7, "benchmark runs to take the median of")
	strict := flag.Bool("strict", false, "exit 1 when a figure misses its target")
	flag.Parse()
	ok := library(*runs)
	ok = balance() && ok
	if !ok && *strict {
		os.Exit(1)
	}
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

// fleet builds the library benchmark's fleet on the real clock.
func fleet(spec steeringtest.Spec) (*steering.Fleet, []steering.Request) {
	fl := steeringtest.Generate(spec, time.Now().Add(time.Hour))
	s, err := steering.New(steering.Config{Origin: "http://origin.example:8080"}, nil)
	if err != nil {
		panic(err)
	}
	f, err := s.Build(fl.Sites, fl.Appliances)
	if err != nil {
		panic(err)
	}
	r := rand.New(rand.NewPCG(5, 42))
	return f, steeringtest.Requests(r, fl, spec.Titles, 0.9, 1<<16)
}

// measure runs the decision benchmark runs times and returns the median
// wall and CPU nanoseconds per decision and the allocations per decision.
func measure(f *steering.Fleet, reqs []steering.Request, runs int) (wall, cpu float64, allocs int64, all []float64) {
	var cpus []float64
	for i := 0; i < runs; i++ {
		var cpuNS float64
		res := testing.Benchmark(func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			dst := make([]steering.Target, 0, steering.MaxTargets)
			b.ReportAllocs()
			c0, _ := steeringtest.ThreadCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dst = f.Steer(dst[:0], reqs[i&(len(reqs)-1)])
			}
			b.StopTimer()
			c1, _ := steeringtest.ThreadCPU()
			cpuNS = float64(c1-c0) / float64(b.N)
		})
		all = append(all, float64(res.T.Nanoseconds())/float64(res.N))
		cpus = append(cpus, cpuNS)
		allocs = max(allocs, res.AllocsPerOp())
	}
	return median(all), median(cpus), allocs, all
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// sampled times single decisions one by one; each sample includes one
// clock read (tens of ns on a VM).
func sampled(f *steering.Fleet, reqs []steering.Request, n int) (p50, p99 time.Duration) {
	ds := make([]time.Duration, n)
	dst := make([]steering.Target, 0, steering.MaxTargets)
	for i := range ds {
		t := time.Now()
		dst = f.Steer(dst[:0], reqs[i&(len(reqs)-1)])
		ds[i] = time.Since(t)
	}
	slices.Sort(ds)
	return ds[n/2], ds[n*99/100]
}

func library(runs int) bool {
	spec := steeringtest.LibrarySpec()
	f, reqs := fleet(spec)
	fmt.Printf("library: %d appliances in %d sites (%d ISP under %d IX), %d titles, Zipf(0.9), %d CPUs\n",
		f.Len(), spec.ISPSites+spec.IXSites, spec.ISPSites, spec.IXSites, spec.Titles, runtime.NumCPU())
	wall, cpu, allocs, all := measure(f, reqs, runs)
	good := wall <= 2000 && allocs == 0
	fmt.Printf("  decision: median %.0f ns/op over %d runs %v, %.0f CPU ns/op, %d allocs/op  [target <= 2000 ns, 0 allocs] %s\n",
		wall, runs, rounded(all), cpu, allocs, verdict(good))
	p50, p99 := sampled(f, reqs, 200000)
	fmt.Printf("  single decisions timed one by one (each includes a clock read): median %v, p99 %v  [target median <= 2000 ns] %s\n",
		p50, p99, verdict(p50 <= 2*time.Microsecond))

	spec.OwnSets = true
	f, reqs = fleet(spec)
	wall, cpu, allocs, all = measure(f, reqs, runs)
	fmt.Printf("  variant, a title set per flash appliance (not shared per site): median %.0f ns/op %v, %.0f CPU ns/op, %d allocs/op\n",
		wall, rounded(all), cpu, allocs)
	return good
}

func rounded(xs []float64) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x + 0.5)
	}
	return out
}

func balance() bool {
	const (
		n        = 20
		requests = 5000
		titles   = 100000
		eps      = 0.25
	)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := steeringtest.NewClock(t0) // stands still: no decay during the run
	s, err := steering.New(steering.Config{Epsilon: eps}, clock.Now)
	if err != nil {
		panic(err)
	}
	sites, as, client := steeringtest.Site(n, t0)
	f, err := s.Build(sites, as)
	if err != nil {
		panic(err)
	}
	// A second steerer that never counts anything: the hash's own
	// preference, to tell how often load moved a player.
	s0, _ := steering.New(steering.Config{Epsilon: eps}, clock.Now)
	f0, err := s0.Build(sites, as)
	if err != nil {
		panic(err)
	}

	z := steeringtest.NewZipf(rand.New(rand.NewPCG(7, 42)), 0.9, titles)
	players := map[string]int{}
	firstChoice := 0
	dst := make([]steering.Target, 0, steering.MaxTargets)
	for i := 0; i < requests; i++ {
		title := steeringtest.Title(z.Next())
		pref := f0.Steer(dst[:0], steering.Request{Client: client, Title: title, DryRun: true})[0].Appliance
		dst = f.Steer(dst[:0], steering.Request{Client: client, Title: title})
		players[dst[0].Appliance]++
		if dst[0].Appliance == pref {
			firstChoice++
		}
	}
	busiest, idlest := 0, requests
	for _, a := range as {
		busiest, idlest = max(busiest, players[a.ID]), min(idlest, players[a.ID])
	}
	mean := float64(requests) / n
	ratio := float64(busiest) / mean
	good := ratio <= 1.3
	fmt.Printf("balance: %d equal appliances, %d playbacks, Zipf(0.9) over %d titles, epsilon %.2f\n", n, requests, titles, eps)
	fmt.Printf("  busiest appliance: %d players, mean %.0f, idlest %d: busiest/mean %.3f  [target <= 1.3] %s\n", busiest, mean, idlest, ratio, verdict(good))
	fmt.Printf("  playbacks on their title's first-choice appliance: %.1f %%\n", 100*float64(firstChoice)/requests)

	// Movement: every appliance leaves in turn; count titles whose
	// primary changes, at no load.
	before := primaries(f0, client, titles)
	worst, sum := 0.0, 0.0
	for k := 0; k < n; k++ {
		rest := append(append([]steering.Appliance(nil), as[:k]...), as[k+1:]...)
		g, err := s0.Update(f0, rest)
		if err != nil {
			panic(err)
		}
		after := primaries(g, client, titles)
		moved := 0
		for i := range before {
			if before[i] != after[i] {
				moved++
			}
		}
		frac := float64(moved) / titles
		worst, sum = max(worst, frac), sum+frac
	}
	good2 := worst <= 0.10
	fmt.Printf("  removing 1 of %d (each in turn, no load): %.2f %% of %d titles' primaries move on average, %.2f %% at worst  [target <= 10 %%] %s\n",
		n, 100*sum/n, titles, 100*worst, verdict(good2))
	return good && good2
}

func primaries(f *steering.Fleet, client netip.Addr, titles int) []string {
	out := make([]string, titles)
	dst := make([]steering.Target, 0, steering.MaxTargets)
	for k := range out {
		dst = f.Steer(dst[:0], steering.Request{Client: client, Title: steeringtest.Title(k), DryRun: true})
		out[k] = dst[0].Appliance
	}
	return out
}
