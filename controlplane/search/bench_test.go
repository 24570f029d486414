package search

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/fillcast/fillcast"
)

// benchIndex indexes n titles built from a small vocabulary so that
// words repeat across titles, as in a real catalog.
func benchIndex(b *testing.B, n int) *Index {
	b.Helper()
	x, err := Open(DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { x.Close() })
	words := []string{"night", "river", "storm", "garden", "silver", "empire", "shadow", "winter", "ocean", "crown",
		"forest", "desert", "echo", "harbor", "lantern", "meadow", "orbit", "prairie", "quartz", "rocket"}
	cat := make([]fillcast.Title, n)
	for i := range cat {
		w := func(k int) string { return words[(i/k+k)%len(words)] }
		cat[i] = fillcast.Title{ID: fmt.Sprintf("t%d", i), Name: fmt.Sprintf("%s %s %d", w(1), w(7), i),
			Description: fmt.Sprintf("a %s and a %s by the %s", w(3), w(11), w(13)),
			Genres:      []string{w(5)}, Year: 1950 + i%70, Cast: []string{"Ann " + w(17)}}
	}
	if err := x.Rebuild(context.Background(), cat); err != nil {
		b.Fatal(err)
	}
	return x
}

func BenchmarkSearch(b *testing.B) {
	x := benchIndex(b, 5000)
	ctx := context.Background()
	for _, q := range []Request{{Q: "storm"}, {Q: "strom"}, {Q: "silver river"}, {Q: "storm", SkipFacets: true}} {
		b.Run(fmt.Sprintf("%s/facets=%v", q.Q, !q.SkipFacets), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := x.Search(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSuggest(b *testing.B) {
	x := benchIndex(b, 5000)
	ctx := context.Background()
	for _, q := range []string{"s", "sil", "silver ri"} {
		b.Run(q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := x.Suggest(ctx, Request{Q: q, Limit: 10}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
