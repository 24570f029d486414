package agent

import (
	"context"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

// takedownCP answers heartbeats from a takedown record as the control
// plane does: the takedowns after the beat's TakedownSeq.
type takedownCP struct {
	flakyCP
	record []fillcast.Takedown // seq i+1 at i
	resync bool
	seen   []uint64 // the TakedownSeq of every beat
}

func (c *takedownCP) Beat(ctx context.Context, id string, hb fillcast.Heartbeat) (fillcast.HeartbeatReply, error) {
	c.seen = append(c.seen, hb.TakedownSeq)
	r := fillcast.HeartbeatReply{TakedownSeq: uint64(len(c.record)), Resync: c.resync}
	if hb.TakedownSeq < uint64(len(c.record)) {
		r.Takedowns = c.record[hb.TakedownSeq:]
	}
	return r, nil
}

// purges records what a Purger was asked.
type purges struct {
	mu     sync.Mutex
	titles []string
	all    int
}

func (p *purges) PurgeTitle(title string) {
	p.mu.Lock()
	p.titles = append(p.titles, title)
	p.mu.Unlock()
}
func (p *purges) PurgeAll() { p.mu.Lock(); p.all++; p.mu.Unlock() }

// TestTakedownsApplyOnceAndSurviveRestarts: each takedown is purged
// once, its earlier tokens refused until they would have expired, and a
// restarted agent goes on from its state file (refusals included)
// rather than from the start; a resync empties the cache.
func TestTakedownsApplyOnceAndSurviveRestarts(t *testing.T) {
	t.Parallel()
	now := time.Now()
	at := now.Add(-time.Minute)
	cp := &takedownCP{record: []fillcast.Takedown{
		{Seq: 1, Title: "t1", At: at, TokensUntil: now.Add(time.Hour).Unix()},
		{Seq: 2, Title: "t2", At: at, TokensUntil: now.Add(-time.Second).Unix()}, // its tokens have all expired
	}}
	state := filepath.Join(t.TempDir(), "takedowns.json")
	newAgent := func(p *purges, refusals *[]*auth.Takedowns) *Agent {
		a, err := New(Config{ID: "a1", Site: "s1", Profile: "storage", URL: "http://127.0.0.1:1", StateFile: state},
			Deps{ControlPlane: cp, Read: func() Counters { return Counters{} }, Purger: p,
				OnRefusals: func(s *auth.Takedowns) { *refusals = append(*refusals, s) }})
		if err != nil {
			t.Fatal(err)
		}
		a.loadTakedowns() // as Run does first
		return a
	}
	var p purges
	var refusals []*auth.Takedowns
	a := newAgent(&p, &refusals)
	ctx := context.Background()
	a.beat(ctx)
	a.beat(ctx)
	if want := []string{"t1", "t2"}; !reflect.DeepEqual(p.titles, want) || p.all != 0 {
		t.Errorf("purged %v (all %d times), want %v", p.titles, p.all, want)
	}
	if len(refusals) != 1 || refusals[0].Len() != 1 {
		t.Fatalf("refusals handed on: %v, want one set of t1 alone", refusals)
	}
	t1 := auth.NewTakedowns(map[string]int64{"t1": now.Add(time.Hour).Unix()})
	if !reflect.DeepEqual(refusals[0], t1) {
		t.Errorf("refusals %+v, want %+v", refusals[0], t1)
	}

	// Restarted: the refusals are back before any beat, and the beats
	// go on from takedown 2.
	cp.record = append(cp.record, fillcast.Takedown{Seq: 3, Title: "t3", At: now, TokensUntil: now.Add(time.Hour).Unix()})
	var p2 purges
	var refusals2 []*auth.Takedowns
	a = newAgent(&p2, &refusals2)
	if len(refusals2) != 1 || !reflect.DeepEqual(refusals2[0], t1) {
		t.Errorf("refusals after the restart: %v, want t1's", refusals2)
	}
	a.beat(ctx)
	if !reflect.DeepEqual(p2.titles, []string{"t3"}) {
		t.Errorf("purged after the restart %v, want [t3]", p2.titles)
	}
	if got := cp.seen[len(cp.seen)-1]; got != 2 {
		t.Errorf("the restarted agent's first beat says takedown %d, want 2", got)
	}

	// Further behind than the record: everything goes.
	cp.resync = true
	a.beat(ctx)
	if p2.all != 1 {
		t.Errorf("resync purged everything %d times, want 1", p2.all)
	}
}
