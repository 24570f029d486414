package controlplane

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/atomicfile"
	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/opsindex"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/fillcast/fillcast/controlplane/qoe"
	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/controlplane/search"
	"github.com/fillcast/fillcast/controlplane/stream"
)

// discovery owns the viewer-facing parts of a node: the projections of
// the event stream (viewing history, QoE, the operators' event index),
// the search index kept in step with the replicated catalog, and the
// recommender. Every node folds the same stream, so every node answers
// the same history; the index follows the catalog through the state
// machine's change hook. It serves the API's Events, Search and Recs
// once open.
type discovery struct {
	dir     string // the history's checkpoint
	log     *slog.Logger
	fsm     *fsm.FSM
	stream  *stream.Stream
	viewing *events.Viewing
	qoe     *qoe.Tracker
	ops     *opsindex.Index
	index   *search.Index
	recs    *recs.Service
	// maxAge is the stream's retention.
	maxAge time.Duration
	// recsCfg and leader build the recommender: the raft leader trains
	// and puts its model on the stream, and every node serves it.
	recsCfg recs.Config
	leader  func() bool
	// br guard the stream, the index and the recommender.
	br *breakers

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

// checkpointEvery is how often the history is saved: a restarted node
// folds the stream on from its checkpoint.
const checkpointEvery = 10 * time.Second

// newDiscovery returns the parts' owner, keeping the history's checkpoint
// in dir, and registers its projections (and popularity's) with the
// stream; open opens them.
func newDiscovery(dir string, f *fsm.FSM, st *stream.Stream, maxAge time.Duration, popularity stream.Handler, recsCfg recs.Config, leader func() bool, log *slog.Logger) (*discovery, error) {
	q, err := qoe.New(qoe.DefaultConfig(), nil)
	if err != nil {
		return nil, err
	}
	ops, err := opsindex.New(opsindex.DefaultConfig(), nil)
	if err != nil {
		return nil, err
	}
	d := &discovery{dir: dir, log: log, fsm: f, stream: st, viewing: events.NewViewing(), qoe: q, ops: ops, recsCfg: recsCfg, leader: leader, maxAge: maxAge,
		dirty: map[string]bool{}, rebuild: true, kick: make(chan struct{}, 1)}
	st.Consume("history", newViewingFold(d.viewing, d.rollup(), log))
	st.Consume("popularity", popularity)
	st.Consume("qoe", &fold{name: "qoe", log: log, seq: q.Applied, reset: q.Reset, events: q.Apply, usage: q.ApplyUsage, recent: qoe.DefaultConfig().Window})
	st.Consume("ops", &fold{name: "ops", log: log, seq: ops.Applied, reset: ops.Reset, events: ops.Apply, recent: opsindex.DefaultConfig().MaxAge})
	return d, nil
}

// rollup is the history the leader saves whole beside the stream, every
// rollupEvery: where a node starts whose position the stream's retention
// (--events-max-age) has passed. The per-profile, per-title summaries
// outlive the raw events.
func (d *discovery) rollup() *stream.Object { return d.stream.Object("fillcast-history", "rollup") }

// rollupEvery is how often the leader saves the rollup: hourly, or four
// times within the stream's retention when that is shorter, so a rollup
// is always younger than the oldest event the stream keeps.
func (d *discovery) rollupEvery() time.Duration {
	return max(time.Minute, min(time.Hour, d.maxAge/4))
}

func (d *discovery) checkpointPath() string { return filepath.Join(d.dir, "history.ckpt") }

// open loads the history's checkpoint, opens the search index and builds
// the recommender over the history.
func (d *discovery) open(context.Context) error {
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	if b, err := os.ReadFile(d.checkpointPath()); err == nil {
		if err := d.viewing.UnmarshalBinary(b); err != nil {
			// The stream still holds the events: fold them again.
			d.log.Warn("controlplane: history checkpoint unreadable; folding the stream from its start", "err", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	idx, err := search.Open(search.Config{}, d.log)
	if err != nil {
		return err
	}
	rs, err := recs.New(d.recsCfg, recs.Deps{Source: d.viewing, Finished: d.viewing, Catalog: d.readyTitles, Leader: d.leader,
		Models: modelStore{d.stream.Object("fillcast-recs", "model")}, Logger: d.log})
	if err != nil {
		idx.Close()
		return err
	}
	d.index, d.recs = idx, rs
	d.signal() // the first index build
	return nil
}

// run keeps the index in step with the catalog, saves the history's
// checkpoint and retrains the recommender, until ctx is done.
func (d *discovery) run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { d.loop(ctx) })
	wg.Go(func() { d.recs.Run(ctx) })
	wg.Go(func() { d.checkpoints(ctx) })
	wg.Go(func() { d.rollups(ctx) })
	wg.Wait()
	return nil
}

// checkpoints saves the history every checkpointEvery when it moved.
func (d *discovery) checkpoints(ctx context.Context) {
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	var saved uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if seq := d.viewing.Applied(); seq != saved {
			if err := d.checkpoint(); err != nil {
				d.log.Warn("controlplane: history checkpoint not saved", "err", err)
				continue
			}
			saved = seq
		}
	}
}

// rollups saves the history as the rollup every rollupEvery while this
// node leads.
func (d *discovery) rollups(ctx context.Context) {
	t := time.NewTicker(d.rollupEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !d.leader() {
			continue
		}
		b, err := d.viewing.MarshalBinary()
		if err == nil {
			err = d.rollup().Put(ctx, b)
		}
		if err != nil {
			d.log.Warn("controlplane: history rollup not saved", "err", err)
		}
	}
}

func (d *discovery) checkpoint() error {
	b, err := d.viewing.MarshalBinary()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(d.checkpointPath(), b)
}

func (d *discovery) close() error {
	return errors.Join(d.checkpoint(), d.recs.Close(), d.index.Close())
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

// Publish puts a profile's batch on the stream, as one message whose id
// is made of the profile and the events' ids: the same batch sent again
// is stored once.
func (d *discovery) Publish(ctx context.Context, profile string, batch []events.Event) error {
	h := sha256.New()
	h.Write([]byte(profile))
	for i := range batch {
		h.Write([]byte{0})
		h.Write([]byte(batch[i].ID))
	}
	id, rec := "v-"+hex.EncodeToString(h.Sum(nil)[:16]), events.AppendRecord(nil, batch)
	return d.br.events.Do(ctx, func(ctx context.Context) error {
		_, _, err := d.stream.Publish(ctx, stream.KindViewer, id, rec)
		return err
	})
}

// PublishUsage puts an appliance's usage summary on the stream, once per
// appliance and summary id.
func (d *discovery) PublishUsage(ctx context.Context, u *fillcast.Usage) error {
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return d.br.events.Do(ctx, func(ctx context.Context) error {
		_, _, err := d.stream.Publish(ctx, stream.KindUsage, "u-"+u.Appliance+"-"+u.ID, b)
		return err
	})
}

func (d *discovery) History(user string, limit int) events.History {
	return d.viewing.History(user, limit)
}
func (d *discovery) QoE(limit int) qoe.Snapshot                    { return d.qoe.Snapshot(limit) }
func (d *discovery) SearchEvents(q opsindex.Query) opsindex.Result { return d.ops.Search(q) }
func (d *discovery) Search(ctx context.Context, r search.Request) (*search.Results, error) {
	return protect.Call(ctx, d.br.search, func(ctx context.Context) (*search.Results, error) { return d.index.Search(ctx, r) })
}
func (d *discovery) Suggest(ctx context.Context, r search.Request) (*search.Results, error) {
	return protect.Call(ctx, d.br.search, func(ctx context.Context) (*search.Results, error) { return d.index.Suggest(ctx, r) })
}
func (d *discovery) Recommend(ctx context.Context, user string, limit int) (*recs.Results, error) {
	return protect.Call(ctx, d.br.recs, func(ctx context.Context) (*recs.Results, error) { return d.recs.Recommend(ctx, user, limit) })
}
func (d *discovery) Similar(ctx context.Context, title string, limit int) (*recs.Results, error) {
	return protect.Call(ctx, d.br.recs, func(ctx context.Context) (*recs.Results, error) { return d.recs.Similar(ctx, title, limit) })
}
func (d *discovery) Fallback(user string, limit int) *recs.Results {
	return d.recs.Fallback(user, limit)
}

// readyTitles lists the ready titles, newest first (by release, then
// year, then id): what recommendations top a short trending list up with.
func (d *discovery) readyTitles() []string {
	var ts []*fillcast.Title
	d.fsm.Read(func(s *fsm.State) {
		for _, t := range s.Titles {
			if t.Status == fillcast.StatusReady {
				ts = append(ts, t)
			}
		}
	})
	slices.SortFunc(ts, func(a, b *fillcast.Title) int {
		var ra, rb time.Time
		if a.Release != nil {
			ra = *a.Release
		}
		if b.Release != nil {
			rb = *b.Release
		}
		return cmp.Or(rb.Compare(ra), cmp.Compare(b.Year, a.Year), cmp.Compare(a.ID, b.ID))
	})
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

// modelStore keeps the recommender's model as an object on the stream.
type modelStore struct{ o *stream.Object }

func (m modelStore) PutModel(ctx context.Context, b []byte) error { return m.o.Put(ctx, b) }
func (m modelStore) WatchModel(ctx context.Context, fn func([]byte)) error {
	return m.o.Watch(ctx, fn)
}
