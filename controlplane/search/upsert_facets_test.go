package search

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestFacetsOfUpsertedTitles: titles added one at a time, and updated, as
// the replicated-state hook does when a title is created and then
// ingested, count in the facets like rebuilt ones.
func TestFacetsOfUpsertedTitles(t *testing.T) {
	t.Parallel()
	x, err := Open(DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	ctx := context.Background()
	if err := x.Rebuild(ctx, nil); err != nil { // a control plane with no titles yet
		t.Fatal(err)
	}
	for _, tt := range []fillcast.Title{
		{ID: "night-train", Name: "Night Train to Mandelbrot", Genres: []string{"crime", "mystery"}, Year: 2023},
		{ID: "day-train", Name: "Day Train", Genres: []string{"crime"}, Year: 2024},
	} {
		for _, status := range []string{fillcast.StatusNew, fillcast.StatusIngesting, fillcast.StatusReady, fillcast.StatusReady} {
			tt.Status = status
			if err := x.Upsert(ctx, tt); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Wait for the persister to write the segments out: the stale counts
	// came from persisted segments whose facet doc values were stored
	// uncompressed.
	adv, err := x.idx.Advanced()
	if err != nil {
		t.Fatal(err)
	}
	sc := adv.(*scorch.Scorch)
	poll.Until(t, 10*time.Second, "the index to be persisted", func() bool {
		m := sc.StatsMap()
		return m["LastPersistedEpoch"].(uint64) >= m["CurRootEpoch"].(uint64) && m["TotFileMergeLoopEnd"].(uint64) >= 2
	})
	res, err := x.Search(ctx, Request{Q: "train", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	genres := map[string]int{}
	for _, f := range res.Facets.Genre {
		genres[f.Value] = f.Count
	}
	if genres["crime"] != 2 || genres["mystery"] != 1 || len(res.Facets.Year) != 2 {
		t.Errorf("facets of upserted titles: genre %v, year %v; want crime 2, mystery 1 and two years", res.Facets.Genre, res.Facets.Year)
	}
}
