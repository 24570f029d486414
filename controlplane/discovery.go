package controlplane

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/controlplane/search"
)

// discovery owns the viewer-facing parts of a node: the event log, the
// search index kept in step with the replicated catalog, and the
// recommender. Each node has its own (the log is per node, as the
// embedded default); the index follows the catalog through the state
// machine's change hook. It serves the API's Events, Search and Recs
// once open.
type discovery struct {
	dir    string
	log    *slog.Logger
	fsm    *fsm.FSM
	events *events.Log
	index  *search.Index
	recs   *recs.Service

	mu      sync.Mutex
	dirty   map[string]bool // title ids to re-index
	rebuild bool
	kick    chan struct{}
}

var (
	_ api.Events = (*discovery)(nil)
	_ api.Search = (*discovery)(nil)
	_ api.Recs   = (*discovery)(nil)
)

// newDiscovery returns the parts' owner, with the event log to live in
// dir; open opens them.
func newDiscovery(dir string, f *fsm.FSM, log *slog.Logger) *discovery {
	return &discovery{dir: dir, log: log, fsm: f, dirty: map[string]bool{}, rebuild: true, kick: make(chan struct{}, 1)}
}

// open opens the event log (replaying it) and the search index, and
// builds the recommender over the log.
func (d *discovery) open(context.Context) error {
	ev, err := events.Open(events.DefaultConfig(d.dir), d.log, nil)
	if err != nil {
		return err
	}
	idx, err := search.Open(search.Config{}, d.log)
	if err != nil {
		ev.Close()
		return err
	}
	rs, err := recs.New(recs.DefaultConfig(), ev, ev, d.log, nil, nil)
	if err != nil {
		idx.Close()
		ev.Close()
		return err
	}
	d.events, d.index, d.recs = ev, idx, rs
	d.signal() // the first index build
	return nil
}

// run keeps the index in step with the catalog, compacts the event log
// and retrains the recommender, until ctx is done.
func (d *discovery) run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { d.loop(ctx) })
	wg.Go(func() { d.events.Run(ctx) })
	wg.Go(func() { d.recs.Run(ctx) })
	wg.Wait()
	return nil
}

func (d *discovery) close() error {
	return errors.Join(d.recs.Close(), d.index.Close(), d.events.Close())
}

// changed is the state machine's change hook: it only marks work, so the
// raft apply loop never waits on the index.
func (d *discovery) changed(c fsm.Command) {
	d.mu.Lock()
	switch c.Op {
	case fsm.OpPutTitle, fsm.OpCreateTitle:
		d.dirty[c.Title.ID] = true
	case fsm.OpDeleteTitle:
		d.dirty[c.ID] = true
	case fsm.OpRestore:
		d.rebuild = true
	default:
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	d.signal()
}

func (d *discovery) signal() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// loop applies catalog changes to the index and refreshes the popularity
// blended into search ranking.
func (d *discovery) loop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
			d.sync(ctx)
		case <-t.C:
			d.index.SetPopularity(d.recs.PopularityScores())
		}
	}
}

func (d *discovery) sync(ctx context.Context) {
	d.mu.Lock()
	dirty, rebuild := d.dirty, d.rebuild
	d.dirty, d.rebuild = map[string]bool{}, false
	d.mu.Unlock()
	if rebuild {
		var all []fillcast.Title
		d.fsm.Read(func(s *fsm.State) {
			for _, t := range s.Titles {
				all = append(all, *t)
			}
		})
		if err := d.index.Rebuild(ctx, all); err != nil {
			d.log.Error("controlplane: rebuild search index", "err", err)
		}
		d.index.SetPopularity(d.recs.PopularityScores())
		return
	}
	for id := range dirty {
		var t *fillcast.Title
		d.fsm.Read(func(s *fsm.State) { t = s.Titles[id] })
		var err error
		if t == nil {
			err = d.index.Delete(ctx, id)
		} else {
			err = d.index.Upsert(ctx, *t)
		}
		if err != nil {
			d.log.Error("controlplane: update search index", "title", id, "err", err)
		}
	}
}

// The API's Events, Search and Recs, answered by the parts open opened.

func (d *discovery) DecodeBatch(r io.Reader) ([]events.Event, error) { return d.events.DecodeBatch(r) }
func (d *discovery) Append(ctx context.Context, b []events.Event) error {
	return d.events.Append(ctx, b)
}
func (d *discovery) History(user string, limit int) events.History {
	return d.events.History(user, limit)
}
func (d *discovery) Search(ctx context.Context, r search.Request) (*search.Results, error) {
	return d.index.Search(ctx, r)
}
func (d *discovery) Suggest(ctx context.Context, r search.Request) (*search.Results, error) {
	return d.index.Suggest(ctx, r)
}
func (d *discovery) Recommend(ctx context.Context, user string, limit int) (*recs.Results, error) {
	return d.recs.Recommend(ctx, user, limit)
}
func (d *discovery) Similar(ctx context.Context, title string, limit int) (*recs.Results, error) {
	return d.recs.Similar(ctx, title, limit)
}
func (d *discovery) Fallback(user string, limit int) *recs.Results {
	return d.recs.Fallback(user, limit)
}
