package steering_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/steering/steeringtest"
)

// BenchmarkSteer is issue 4's library benchmark: one decision over 1,000
// appliances in 50 sites (40 ISP sites of 12 flash and 8 storage
// appliances with unequal weights, under 10 IX sites) and a 100k-title
// catalog with Zipf(0.9) popularity, on the real clock, counting every
// decision.
func BenchmarkSteer(b *testing.B) { benchmarkSteer(b, steeringtest.LibrarySpec()) }

// BenchmarkSteerOwnSets is BenchmarkSteer with a title set per flash
// appliance instead of one per site: more memory, more cache misses.
func BenchmarkSteerOwnSets(b *testing.B) {
	spec := steeringtest.LibrarySpec()
	spec.OwnSets = true
	benchmarkSteer(b, spec)
}

func benchmarkSteer(b *testing.B, spec steeringtest.Spec) {
	fl := steeringtest.Generate(spec, time.Now().Add(time.Hour)) // stays fresh through the run
	s, err := steering.New(steering.Config{Origin: "http://origin.example:8080"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	f, err := s.Build(fl.Sites, fl.Appliances)
	if err != nil {
		b.Fatal(err)
	}
	reqs := steeringtest.Requests(randFor(5), fl, spec.Titles, 0.9, 1<<16)
	dst := make([]steering.Target, 0, steering.MaxTargets)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, ok := steeringtest.ThreadCPU()
	for i := 0; i < b.N; i++ {
		dst = f.Steer(dst[:0], reqs[i&(1<<16-1)])
	}
	cpu1, _ := steeringtest.ThreadCPU()
	b.StopTimer()
	if ok {
		// Wall time per op includes waiting for a core on a busy machine;
		// this is the CPU the decisions themselves took.
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
	if len(dst) == 0 {
		b.Fatal("empty answer")
	}
}

// BenchmarkSteerParallel runs the same decisions from every core at once,
// sharing one Fleet and its counters.
func BenchmarkSteerParallel(b *testing.B) {
	spec := steeringtest.LibrarySpec()
	fl := steeringtest.Generate(spec, time.Now().Add(time.Hour))
	s, _ := steering.New(steering.Config{}, nil)
	f, err := s.Build(fl.Sites, fl.Appliances)
	if err != nil {
		b.Fatal(err)
	}
	reqs := steeringtest.Requests(randFor(6), fl, spec.Titles, 0.9, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]steering.Target, 0, steering.MaxTargets)
		i := 0
		for pb.Next() {
			dst = f.Steer(dst[:0], reqs[i&(1<<16-1)])
			i++
		}
	})
}

// BenchmarkUpdate is the cost of a new Fleet after a heartbeat: 1,000
// appliances re-laid-out, sites and prefix table reused.
func BenchmarkUpdate(b *testing.B) {
	fl := steeringtest.Generate(steeringtest.LibrarySpec(), time.Now())
	s, _ := steering.New(steering.Config{}, nil)
	f, err := s.Build(fl.Sites, fl.Appliances)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Update(f, fl.Appliances); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuild is the cost of a new Fleet after a site change: prefix
// table and all.
func BenchmarkBuild(b *testing.B) {
	fl := steeringtest.Generate(steeringtest.LibrarySpec(), time.Now())
	s, _ := steering.New(steering.Config{}, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Build(fl.Sites, fl.Appliances); err != nil {
			b.Fatal(err)
		}
	}
}
