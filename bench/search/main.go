// Command search prints the search figures of issue 7 for package
// controlplane/search: the indexing rate of 50k generated titles and the
// p50/p99 latency of searches (plain words, typos, phrases, genre
// filters) and of suggestions (prefixes of 1 to 8 characters). Target:
// p99 ≤ 10 ms. run.sh next to it runs it.
//
//	go run ./bench/search [-quick] [-titles 50000] [-queries 2000] [-strict]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/search"
)

func main() {
	quick := flag.Bool("quick", false, "5k titles and 300 queries, for development")
	titles := flag.Int("titles", 50000, "titles to index")
	queries := flag.Int("queries", 2000, "queries of each kind")
	strict := flag.Bool("strict", false, "exit 1 when a figure misses its target")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the latency runs to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile of the latency runs to this file")
	flag.Parse()
	if *memProfile != "" {
		runtime.MemProfileRate = 0 // sampling starts with the latency runs
	}
	if *quick {
		*titles, *queries = 5000, 300
	}
	r := rand.New(rand.NewPCG(7, 7))
	g := newGen(r)
	cat := make([]fillcast.Title, *titles)
	for i := range cat {
		cat[i] = g.title(i)
	}
	fmt.Printf("GOMAXPROCS %d, %s, %d titles, %d queries per kind\n\n", runtime.GOMAXPROCS(0), runtime.Version(), *titles, *queries)

	x, err := search.Open(search.DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer x.Close()
	ctx := context.Background()
	start := time.Now()
	if err := x.Rebuild(ctx, cat); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	took := time.Since(start)
	fmt.Printf("== indexing\nRebuild of %d titles: %s, %.0f titles/s (%d segments)\n", len(cat), took.Round(time.Millisecond),
		float64(len(cat))/took.Seconds(), x.Stats().Segments)
	const upserts = 500
	start = time.Now()
	for i := range upserts {
		t := cat[r.IntN(len(cat))]
		t.Description += " " + g.word()
		if err := x.Upsert(ctx, t); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_ = i
	}
	took = time.Since(start)
	fmt.Printf("Upsert one at a time (the replicated-state hook): %s per title, %.0f titles/s\n\n",
		(took / upserts).Round(time.Microsecond), upserts/took.Seconds())
	pop := map[string]float64{}
	for i := range cat {
		pop[cat[i].ID] = float64(r.IntN(100000))
	}
	x.SetPopularity(pop)
	st := x.Stats()
	fmt.Printf("index: %d titles, %d words for typo tolerance, %d segments\n\n", st.Titles, st.Words, st.Segments)

	ok := true
	kinds := []struct {
		name string
		make func() func() error
	}{
		{"search: one name word", func() func() error {
			q := g.nameWord(cat)
			return func() error { _, err := x.Search(ctx, search.Request{Q: q}); return err }
		}},
		{"search: two name words", func() func() error {
			t := cat[r.IntN(len(cat))]
			q := strings.Join(strings.Fields(t.Name)[:2], " ")
			return func() error { _, err := x.Search(ctx, search.Request{Q: q}); return err }
		}},
		{"search: typo", func() func() error {
			q := typo(r, g.nameWord(cat))
			return func() error { _, err := x.Search(ctx, search.Request{Q: q}); return err }
		}},
		{"search: quoted phrase", func() func() error {
			t := cat[r.IntN(len(cat))]
			w := strings.Fields(t.Description)
			i := r.IntN(len(w) - 3)
			q := `"` + strings.Join(w[i:i+3], " ") + `"`
			return func() error { _, err := x.Search(ctx, search.Request{Q: q}); return err }
		}},
		{"search: one word, no facets", func() func() error {
			q := g.nameWord(cat)
			return func() error { _, err := x.Search(ctx, search.Request{Q: q, SkipFacets: true}); return err }
		}},
		{"search: two words, no facets", func() func() error {
			t := cat[r.IntN(len(cat))]
			q := strings.Join(strings.Fields(t.Name)[:2], " ")
			return func() error { _, err := x.Search(ctx, search.Request{Q: q, SkipFacets: true}); return err }
		}},
		{"search: word + genre filter", func() func() error {
			q, genre := g.nameWord(cat), genres[r.IntN(len(genres))]
			return func() error { _, err := x.Search(ctx, search.Request{Q: q, Genre: genre}); return err }
		}},
		{"suggest: 1-8 letter prefix", func() func() error {
			t := cat[r.IntN(len(cat))]
			n := 1 + r.IntN(min(8, len(t.Name)))
			q := t.Name[:n]
			return func() error { _, err := x.Suggest(ctx, search.Request{Q: q, Limit: 10}); return err }
		}},
		{"suggest: word + prefix", func() func() error {
			w := strings.Fields(cat[r.IntN(len(cat))].Name)
			q := w[0] + " " + w[1][:1+r.IntN(len(w[1]))]
			return func() error { _, err := x.Suggest(ctx, search.Request{Q: q, Limit: 10}); return err }
		}},
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if *memProfile != "" {
		// Count only what the queries allocate, not the indexing (not
		// sampled: the rate was 0 until here).
		runtime.MemProfileRate = 64 << 10
		runtime.GC()
		defer writeHeapProfile(*memProfile)
	}
	fmt.Println("== latency (one client, sequential): wall time, and this thread's CPU time, which other")
	fmt.Println("   load on a shared machine does not inflate")
	runtime.LockOSThread()
	for _, k := range kinds {
		fns := make([]func() error, *queries)
		for i := range fns {
			fns[i] = k.make()
		}
		for _, f := range fns[:min(50, len(fns))] { // warm up
			f()
		}
		lat := make([]time.Duration, len(fns))
		cpu := make([]time.Duration, len(fns))
		for i, f := range fns {
			s, c := time.Now(), threadCPU()
			if err := f(); err != nil {
				fmt.Fprintln(os.Stderr, k.name, err)
				os.Exit(1)
			}
			lat[i], cpu[i] = time.Since(s), threadCPU()-c
		}
		slices.Sort(lat)
		slices.Sort(cpu)
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		good := p99 <= 10*time.Millisecond
		ok = ok && good
		rd := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
		fmt.Printf("%-30s wall p50 %7s p99 %7s | CPU p50 %7s p99 %7s | p99 ≤ 10 ms: %s\n", k.name,
			rd(p50), rd(p99), rd(cpu[len(cpu)/2]), rd(cpu[len(cpu)*99/100]), verdict(good))
	}
	fmt.Printf("\nindex after the runs: %d segments\n", x.Stats().Segments)
	if !ok && *strict {
		pprof.StopCPUProfile()
		if *memProfile != "" {
			writeHeapProfile(*memProfile) // os.Exit skips the deferred one
		}
		os.Exit(1)
	}
}

// writeHeapProfile writes the allocation profile (see go tool pprof
// -sample_index=alloc_space) to path.
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

// threadCPU returns the CPU time of the calling thread; the caller has
// locked its goroutine to the thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

var genres = []string{"Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Family",
	"Fantasy", "History", "Horror", "Music", "Mystery", "Romance", "Sci-Fi", "Sport", "Thriller", "War", "Western", "Kids"}

// gen makes pronounceable words, names and titles.
type gen struct {
	r     *rand.Rand
	words []string
	first []string
	last  []string
}

func newGen(r *rand.Rand) *gen {
	g := &gen{r: r}
	syl := func(n int) string {
		const cons, vow = "bcdfghklmnprstvz", "aeiou"
		var b strings.Builder
		for range n {
			b.WriteByte(cons[r.IntN(len(cons))])
			b.WriteByte(vow[r.IntN(len(vow))])
			if r.IntN(3) == 0 {
				b.WriteByte(cons[r.IntN(len(cons))])
			}
		}
		return b.String()
	}
	for range 8000 {
		g.words = append(g.words, syl(1+r.IntN(3)))
	}
	for range 500 {
		g.first = append(g.first, strings.Title(syl(2)))
		g.last = append(g.last, strings.Title(syl(2+r.IntN(2))))
	}
	return g
}

// word draws a word, frequent words more often.
func (g *gen) word() string {
	return g.words[int(float64(len(g.words))*g.r.Float64()*g.r.Float64())]
}

func (g *gen) title(i int) fillcast.Title {
	r := g.r
	var name []string
	for range 2 + r.IntN(3) {
		name = append(name, strings.Title(g.word()))
	}
	var desc []string
	for range 15 + r.IntN(20) {
		desc = append(desc, g.word())
	}
	var cast []string
	for range 3 {
		cast = append(cast, g.first[r.IntN(len(g.first))]+" "+g.last[r.IntN(len(g.last))])
	}
	gs := []string{genres[r.IntN(len(genres))]}
	if r.IntN(2) == 0 {
		gs = append(gs, genres[r.IntN(len(genres))])
	}
	return fillcast.Title{ID: fmt.Sprintf("t%d", i), Name: strings.Join(name, " "), Description: strings.Join(desc, " "),
		Cast: cast, Genres: gs, Year: 1950 + r.IntN(76), Status: fillcast.StatusReady}
}

func (g *gen) nameWord(cat []fillcast.Title) string {
	w := strings.Fields(cat[g.r.IntN(len(cat))].Name)
	return w[g.r.IntN(len(w))]
}

// typo swaps two neighbouring letters, or drops one, in words of four
// letters or more.
func typo(r *rand.Rand, w string) string {
	if len(w) < 4 {
		return w
	}
	b := []byte(w)
	i := 1 + r.IntN(len(b)-2)
	if r.IntN(2) == 0 {
		b[i], b[i+1] = b[i+1], b[i]
		return string(b)
	}
	return string(append(b[:i], b[i+1:]...))
}
