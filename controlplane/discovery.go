package controlplane

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/controlplane/search"
)

// discovery owns the viewer-facing parts of a node: the event log, the
// search index kept in step with the replicated catalog, and the
// recommender. Each node has its own (the log is per node, as the
// embedded default); the index follows the catalog through the state
// machine's change hook.
type discovery struct {
	log    *slog.Logger
	fsm    *fsm.FSM
	events *events.Log
	index  *search.Index
	recs   *recs.Service

	mu      sync.Mutex
	dirty   map[string]bool // title ids to re-index
	rebuild bool
	kick    chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

func openDiscovery(dataDir string, f *fsm.FSM, log *slog.Logger) (*discovery, error) {
	ev, err := events.Open(events.DefaultConfig(filepath.Join(dataDir, "events")), log, nil)
	if err != nil {
		return nil, err
	}
	idx, err := search.Open(search.Config{}, log)
	if err != nil {
		ev.Close()
		return nil, err
	}
	rs, err := recs.New(recs.DefaultConfig(), ev, ev, log, nil, nil)
	if err != nil {
		idx.Close()
		ev.Close()
		return nil, err
	}
	d := &discovery{log: log, fsm: f, events: ev, index: idx, recs: rs,
		dirty: map[string]bool{}, rebuild: true, kick: make(chan struct{}, 1), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go d.loop(ctx)
	d.signal()
	return d, nil
}

// changed is the state machine's change hook: it only marks work, so the
// raft apply loop never waits on the index.
func (d *discovery) changed(c fsm.Command) {
	d.mu.Lock()
	switch c.Op {
	case fsm.OpPutTitle:
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
	defer close(d.done)
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

func (d *discovery) close() {
	d.cancel()
	<-d.done
	d.recs.Close()
	d.index.Close()
	d.events.Close()
}
