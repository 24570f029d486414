package controlplane

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/stream"
)

// fold adapts a projection of the stream (history, QoE, the operators'
// event index) to stream.Handler: it decodes each message and hands it
// to the projection, which skips what it has folded already.
type fold struct {
	name string
	log  *slog.Logger
	// seq is the projection's last folded sequence; reset empties it.
	seq   func() uint64
	reset func()
	// events and usage fold a message of each kind; nil skips the kind.
	events func(seq uint64, batch []events.Event)
	usage  func(seq uint64, u *fillcast.Usage)
	// recent, when set, is how far back a projection with nothing
	// folded starts (it keeps only the recent past); zero: from the
	// stream's first message.
	recent time.Duration

	mu     sync.Mutex
	stream time.Time
}

var (
	_ stream.Handler = (*fold)(nil)
	_ stream.Starter = (*fold)(nil)
)

func (f *fold) Position() (time.Time, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stream, f.seq()
}

func (f *fold) Reset(s time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stream = s
	f.reset()
}

func (f *fold) Start() time.Time {
	if f.recent == 0 {
		return time.Time{}
	}
	return time.Now().Add(-f.recent)
}

func (f *fold) Handle(seq uint64, kind string, data []byte) {
	switch {
	case kind == stream.KindViewer && f.events != nil:
		batch, err := events.DecodeRecord(data)
		if err != nil {
			f.log.Warn("controlplane: stream message skipped", "projection", f.name, "seq", seq, "err", err)
			batch = nil
		}
		f.events(seq, batch)
		return
	case kind == stream.KindUsage && f.usage != nil:
		var u fillcast.Usage
		err := json.Unmarshal(data, &u)
		if err == nil {
			f.usage(seq, &u)
			return
		}
		f.log.Warn("controlplane: stream message skipped", "projection", f.name, "seq", seq, "err", err)
	}
	// A message this projection does not fold still moves it on.
	if f.events != nil {
		f.events(seq, nil)
	}
}

// viewingFold is the history's Handler: the Viewing keeps the stream's
// identity itself, so that its checkpoint holds it. When the events
// after its position have aged out of the stream (a new node, or one
// down longer than the stream keeps events), it starts from the rollup:
// the history the leader saved whole beside the stream.
type viewingFold struct {
	fold
	v      *events.Viewing
	rollup *stream.Object
}

var _ stream.Behind = (*viewingFold)(nil)

func newViewingFold(v *events.Viewing, rollup *stream.Object, log *slog.Logger) *viewingFold {
	return &viewingFold{fold: fold{name: "history", log: log, events: v.Apply}, v: v, rollup: rollup}
}

func (f *viewingFold) Position() (time.Time, uint64) { return f.v.Position() }
func (f *viewingFold) Reset(s time.Time)             { f.v.ResetStream(s) }

// CatchUp takes the rollup when it is of this stream and further on.
func (f *viewingFold) CatchUp(ctx context.Context, first uint64) {
	data, err := f.rollup.Get(ctx)
	if err != nil || data == nil {
		f.log.Warn("controlplane: no history rollup to start from", "err", err)
		return
	}
	r := events.NewViewing()
	if err := r.UnmarshalBinary(data); err != nil {
		f.log.Warn("controlplane: history rollup unreadable", "err", err)
		return
	}
	at, seq := f.v.Position()
	if rat, rseq := r.Position(); rat.Equal(at) && rseq > seq {
		f.v.UnmarshalBinary(data)
		f.log.Info("controlplane: history taken from the rollup", "seq", rseq, "stream_first", first)
	}
}
