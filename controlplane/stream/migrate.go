package stream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// migrate moves the events this node stored while it was alone onto the
// clustered stream dst, then deletes the standalone store. It opens the
// old store with a second, private server (no listener, no routes),
// reads the stream in order and publishes each message again with its
// message id, and purges what it copied as it goes, so a migration cut
// short and run again copies only the rest (what it copies twice is
// within the duplicates window, and stored once). The consumers see a stream with
// another identity and fold it again from the start.
func (s *Stream) migrate(ctx context.Context, dst jetstream.JetStream) error {
	dir := s.dir(modeStandalone)
	if !hasFiles(dir) {
		return nil
	}
	e, err := s.startServer(&server.Options{ServerName: s.cfg.NodeID + "-standalone", DontListen: true, JetStream: true,
		StoreDir: dir, MaxPayload: maxMsgSize, NoSigs: true})
	if err != nil {
		return fmt.Errorf("stream: open the standalone store: %w", err)
	}
	defer e.stop()
	n, err := copyStream(ctx, e.js, dst)
	if err != nil {
		return err
	}
	e.stop()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("stream: remove the standalone store: %w", err)
	}
	s.log.Info("stream: events stored alone moved to the cluster", "messages", n)
	return nil
}

// copyStream publishes every message of src's stream to dst, in order,
// and returns how many it copied.
func copyStream(ctx context.Context, src, dst jetstream.JetStream) (int, error) {
	st, err := src.Stream(ctx, Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream: read the standalone stream: %w", err)
	}
	last := st.CachedInfo().State.LastSeq
	if st.CachedInfo().State.Msgs == 0 {
		return 0, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, fmt.Errorf("stream: read the standalone stream: %w", err)
	}
	n := 0
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return n, fmt.Errorf("stream: read the standalone stream after %d messages: %w", n, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return n, fmt.Errorf("stream: %w", err)
		}
		out := &nats.Msg{Subject: msg.Subject(), Data: msg.Data(), Header: nats.Header{}}
		if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
			out.Header.Set(jetstream.MsgIDHeader, id)
		}
		if _, err := dst.PublishMsg(ctx, out); err != nil {
			return n, fmt.Errorf("stream: copy message %d to the cluster: %w", meta.Sequence.Stream, err)
		}
		n++
		// What is copied leaves the old store, a hundred at a time: a
		// move cut short and run again, even after the duplicates
		// window, copies only the rest (at most a hundred again).
		if done := meta.Sequence.Stream >= last; done || n%100 == 0 {
			if err := st.Purge(ctx, jetstream.WithPurgeSequence(meta.Sequence.Stream+1)); err != nil {
				return n, fmt.Errorf("stream: forget the messages copied: %w", err)
			}
			if done {
				return n, nil
			}
		}
	}
}
