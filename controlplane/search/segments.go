package search

import (
	"context"

	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/index/scorch/mergeplan"
)

// mergePlan tunes scorch's merger for a catalog: small (tens of
// thousands of titles, tens of MB) and read far more than written.
// Every segment costs each term of each search a dictionary lookup and
// a postings iterator, the bulk of a search's allocation, so segments
// are merged four at a time and at most four stay in a tier (bleve's
// defaults are ten and ten); the extra merging is of a few MB at the
// rate of catalog changes.
var mergePlan = map[string]any{
	"MaxSegmentsPerTier":   4,
	"SegmentsPerMergeTask": 4,
}

// persisterOptions let scorch's persister nap between rounds, so that
// the one-document segments of a burst of upserts (a catalog import, a
// snapshot's worth of changes) are merged in memory into one before
// they are written, instead of each becoming a file for the merger to
// catch up with while searches visit them all: 500 upserts left 52
// segments without the nap.
var persisterOptions = map[string]any{
	"PersisterNapTimeMSec":      50,
	"PersisterNapUnderNumFiles": 1000,
}

// Stats describes an index.
type Stats struct {
	// Titles is the number of indexed titles.
	Titles int
	// Words is the size of the typo-tolerance vocabulary.
	Words int
	// Segments is the number of bleve segments a search visits; each
	// adds a dictionary lookup per term, so fewer is faster.
	Segments int
}

// Stats returns the index's counters.
func (x *Index) Stats() Stats {
	s := Stats{Titles: x.Len(), Words: x.voc.Load().len()}
	if adv, err := x.idx.Advanced(); err == nil {
		if r, err := adv.Reader(); err == nil {
			if snap, ok := r.(*scorch.IndexSnapshot); ok {
				s.Segments = len(snap.Segments())
			}
			r.Close()
		}
	}
	return s
}

// compact merges the index into one segment after a Rebuild, which
// leaves one segment per batch: searches then look each term up once.
// Later upserts add small segments that mergePlan keeps few.
func (x *Index) compact(ctx context.Context) {
	adv, err := x.idx.Advanced()
	if err != nil {
		return
	}
	if s, ok := adv.(*scorch.Scorch); ok {
		opts := mergeplan.SingleSegmentMergePlanOptions
		if err := s.ForceMerge(ctx, &opts); err != nil {
			x.logger.Warn("search: merge segments after rebuild", "err", err)
		}
	}
}
