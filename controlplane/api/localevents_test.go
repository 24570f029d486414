package api

import (
	"context"
	"sync"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/opsindex"
	"github.com/fillcast/fillcast/controlplane/qoe"
)

// localEvents is Events without a stream: each published message is
// folded at once into the same projections a node keeps, in publishing
// order, as a one-node stream would deliver it. (The stream itself is
// tested in package stream and through nodes in package controlplane.)
type localEvents struct {
	mu      sync.Mutex
	seq     uint64
	viewing *events.Viewing
	ops     *opsindex.Index
	qoe     *qoe.Tracker
}

var _ Events = (*localEvents)(nil)

func newLocalEvents(t testing.TB) *localEvents {
	ops, err := opsindex.New(opsindex.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	q, err := qoe.New(qoe.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &localEvents{viewing: events.NewViewing(), ops: ops, qoe: q}
}

func (l *localEvents) Publish(_ context.Context, _ string, batch []events.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	// Through the stream's encoding, as a consumer would read it.
	b, err := events.DecodeRecord(events.AppendRecord(nil, batch))
	if err != nil {
		return err
	}
	l.viewing.Apply(l.seq, b)
	l.ops.Apply(l.seq, b)
	l.qoe.Apply(l.seq, b)
	return nil
}

func (l *localEvents) PublishUsage(_ context.Context, u *fillcast.Usage) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	l.qoe.ApplyUsage(l.seq, u)
	return nil
}

func (l *localEvents) History(user string, limit int) events.History {
	return l.viewing.History(user, limit)
}
func (l *localEvents) QoE(limit int) qoe.Snapshot                    { return l.qoe.Snapshot(limit) }
func (l *localEvents) SearchEvents(q opsindex.Query) opsindex.Result { return l.ops.Search(q) }
