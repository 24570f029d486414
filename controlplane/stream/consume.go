package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Handler folds the stream's messages into a node's state (history,
// popularity, QoE, the operators' event index). Messages come in stream
// order, one at a time; a message may come again after a restart or a
// lost acknowledgement, so Handle skips what it has folded already.
type Handler interface {
	// Position says where the state stands: the creation time of the
	// stream it was folded from (zero for none), the stream's identity,
	// and the sequence of the last message folded in.
	Position() (stream time.Time, seq uint64)
	// Reset empties the state, which from now on folds the stream
	// created at stream, from its first message: the stream it had
	// folded is gone (recreated, or moved to a cluster).
	Reset(stream time.Time)
	// Handle folds the message at seq, of kind (its subject after
	// SubjectPrefix). It skips a message at or before the last one
	// folded in.
	Handle(seq uint64, kind string, data []byte)
}

// Starter is a Handler whose state may keep only the recent past: with
// nothing folded, delivery starts at the first message stored at or
// after Start, not at the stream's first (the zero time: its first).
type Starter interface {
	Start() time.Time
}

// Behind is a Handler that can catch up from elsewhere (a summary
// another node saved) when the messages after its position have aged
// out of the stream: first is the stream's first sequence.
type Behind interface {
	CatchUp(ctx context.Context, first uint64)
}

// consumer runs one Handler from a durable consumer of this node.
type consumer struct {
	name string // the durable's name: handler and node
	h    Handler
}

// Consume registers h under name (letters, digits, '-' and '_'): while
// the stream is available, a durable consumer of this node delivers it
// every message after its Position. Call it before Run.
func (s *Stream) Consume(name string, h Handler) {
	durable := name + "-" + s.cfg.NodeID
	durable = strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			return r
		}
		return '_'
	}, durable)
	s.consumers = append(s.consumers, &consumer{name: durable, h: h})
}

// run delivers messages to the handler until ctx ends, starting again
// from the handler's position after an error.
func (c *consumer) run(ctx context.Context, s *Stream, js jetstream.JetStream) {
	for ctx.Err() == nil {
		err := c.once(ctx, s, js)
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Warn("stream: consumer stopped; starting it again", "consumer", c.name, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// once (re)creates the durable at the handler's position and delivers
// until an error or the end of ctx. The durable is made anew each time
// so that delivery starts right after what the state holds, whatever
// the server remembered (a checkpoint older than its acknowledgements,
// messages delivered and never acknowledged).
func (c *consumer) once(ctx context.Context, s *Stream, js jetstream.JetStream) error {
	// The stream as it is now: one deleted and made again while the
	// node runs is another stream, folded from its start.
	st, err := js.Stream(ctx, Name)
	if err != nil {
		return fmt.Errorf("stream: consumer %s: %w", c.name, err)
	}
	created := st.CachedInfo().Created
	at, seq := c.h.Position()
	if !at.Equal(created) {
		c.h.Reset(created)
		seq = 0
	}
	if first := st.CachedInfo().State.FirstSeq; seq+1 < first {
		if b, ok := c.h.(Behind); ok {
			b.CatchUp(ctx, first)
			_, seq = c.h.Position()
		}
		if seq+1 < first {
			s.log.Warn("stream: messages aged out before this node folded them", "consumer", c.name, "from", seq+1, "first", first)
		}
	}
	if err := js.DeleteConsumer(ctx, Name, c.name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("stream: consumer %s: %w", c.name, err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       c.name,
		Description:   "a control-plane node's projection of the events",
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   seq + 1,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 10_000,
		// The position that matters is the handler's, saved with its
		// state; the server's copy is made anew at each start, so it
		// needs neither replicas nor a disk (a consumer lost with its
		// server is made again by the next attempt).
		Replicas:      1,
		MemoryStorage: true,
	}
	if st, ok := c.h.(Starter); ok && seq == 0 && !st.Start().IsZero() {
		at := st.Start()
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, 0, &at
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, Name, cfg)
	if err != nil {
		return fmt.Errorf("stream: consumer %s: %w", c.name, err)
	}
	// Short pulls: a pull lost while the consumer's leader is being
	// elected is made again within seconds, not after the default 30 s.
	it, err := cons.Messages(jetstream.PullMaxMessages(500), jetstream.PullExpiry(2*time.Second), jetstream.PullHeartbeat(500*time.Millisecond))
	if err != nil {
		return fmt.Errorf("stream: consumer %s: %w", c.name, err)
	}
	defer context.AfterFunc(ctx, it.Stop)()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("stream: consumer %s: %w", c.name, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("stream: consumer %s: %w", c.name, err)
		}
		c.h.Handle(meta.Sequence.Stream, strings.TrimPrefix(msg.Subject(), SubjectPrefix), msg.Data())
		// Acknowledging all up to here spares the server a redelivery;
		// correctness rests on the handler's position, not on this.
		msg.Ack()
	}
}
