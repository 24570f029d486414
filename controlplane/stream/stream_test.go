package stream

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fillcast/fillcast/appliance/h3/h3test"
	"github.com/fillcast/fillcast/internal/poll"
)

// fold is a Handler that keeps what it folded, as a projection would.
type fold struct {
	mu      sync.Mutex
	created time.Time
	seq     uint64
	got     map[string]int // message body -> times folded
	resets  int
}

func newFold() *fold { return &fold{got: map[string]int{}} }

func (f *fold) Position() (time.Time, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.created, f.seq
}

func (f *fold) Reset(created time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created, f.seq, f.got = created, 0, map[string]int{}
	f.resets++
}

func (f *fold) Handle(seq uint64, kind string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq <= f.seq {
		return
	}
	f.seq = seq
	f.got[kind+":"+string(data)]++
}

func (f *fold) count() (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, once := 0, true
	for _, c := range f.got {
		n++
		once = once && c == 1
	}
	return n, once
}

// members is a membership the test changes, as raft's would.
type members struct {
	mu sync.Mutex
	ms []Member
}

func (m *members) list() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Member(nil), m.ms...)
}

func (m *members) add(mb Member) {
	m.mu.Lock()
	m.ms = append(m.ms, mb)
	m.mu.Unlock()
}

type node struct {
	s    *Stream
	f    *fold
	stop func()
}

func freeAddr(t *testing.T) string {
	p, err := h3test.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(p)
}

func logger(t *testing.T) *slog.Logger {
	if os.Getenv("STREAM_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// start runs a node with a durable handler until the test ends.
func start(t *testing.T, id, dir, listen string, ms *members, f *fold) *node {
	t.Helper()
	return run(t, Config{NodeID: id, Dir: dir, Listen: listen}, Deps{Members: ms.list, Secret: "s3cret"}, f)
}

// run runs a Stream of cfg with a handler (f, or a new one) until the
// test ends or the node's stop is called.
func run(t *testing.T, cfg Config, d Deps, f *fold) *node {
	t.Helper()
	d.Log = logger(t)
	s, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		f = newFold()
	}
	s.Consume("test", f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &node{s: s, f: f, stop: stop}
}

// publish publishes n messages through s, retrying while unavailable.
func publish(t *testing.T, s *Stream, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		body := fmt.Sprint("m", i)
		poll.Until(t, 30*time.Second, "publish "+body, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _, err := s.Publish(ctx, "test", body, []byte(body))
			return err == nil
		})
	}
}

func TestStandaloneThenCluster(t *testing.T) {
	ms := &members{}
	a1 := freeAddr(t)
	ms.add(Member{ID: "n1", Events: a1})
	n1 := start(t, "n1", t.TempDir(), a1, ms, nil)
	publish(t, n1.s, 0, 20)
	// A batch sent again is stored once.
	publish(t, n1.s, 0, 5)
	poll.Until(t, 10*time.Second, "n1 folds 20 messages", func() bool { n, once := n1.f.count(); return n == 20 && once })

	// Two more nodes: n1 restarts clustered and moves its events over.
	nodes := []*node{n1}
	for _, id := range []string{"n2", "n3"} {
		a := freeAddr(t)
		ms.add(Member{ID: id, Events: a})
		nodes = append(nodes, start(t, id, t.TempDir(), a, ms, nil))
	}
	n1.s.MembersChanged()
	publish(t, nodes[2].s, 20, 10)
	for _, nd := range nodes {
		poll.Until(t, 60*time.Second, nd.s.cfg.NodeID+" folds 30 messages once each", func() bool {
			n, once := nd.f.count()
			return n == 30 && once
		})
	}
	js := n1.s.JetStream()
	if js == nil {
		t.Fatal("n1 unavailable")
	}
	st, err := js.Stream(context.Background(), Name)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.CachedInfo().Config.Replicas, 3; got != want {
		t.Errorf("replicas = %d, want %d", got, want)
	}

	// A node stopped and started again folds on from its position.
	nodes[1].stop()
	resets := nodes[1].f.resets
	publish(t, n1.s, 30, 5)
	n2 := start(t, "n2", nodes[1].s.cfg.Dir, nodes[1].s.cfg.Listen, ms, nodes[1].f)
	poll.Until(t, 60*time.Second, "restarted n2 folds 35 messages once each", func() bool {
		n, once := n2.f.count()
		return n == 35 && once
	})
	if n2.f.resets != resets {
		t.Errorf("restarted n2 reset its state %d times; want it to go on from its position", n2.f.resets-resets)
	}
}

// behind is a fold that catches up from an Object, as the history does
// from its rollup.
type behind struct {
	*fold
	obj    *Object
	caught uint64
}

func (b *behind) CatchUp(ctx context.Context, first uint64) {
	data, err := b.obj.Get(ctx)
	if err != nil || data == nil {
		return
	}
	seq, _ := strconv.ParseUint(string(data), 10, 64)
	b.fold.mu.Lock()
	b.fold.seq, b.caught = seq, first
	b.fold.mu.Unlock()
}

// TestAgedOutCatchUp: a handler whose next message has aged out of the
// stream catches up from an object kept beside it, and Watch sees every
// value put.
func TestAgedOutCatchUp(t *testing.T) {
	ms := &members{}
	a1 := freeAddr(t)
	ms.add(Member{ID: "n1", Events: a1})
	n1 := start(t, "n1", t.TempDir(), a1, ms, nil)
	publish(t, n1.s, 0, 6)
	obj := n1.s.Object("test-bucket", "summary")
	ctx := context.Background()
	if err := obj.Put(ctx, []byte("4")); err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 10)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go obj.Watch(wctx, func(b []byte) { seen <- string(b) })
	if got := next(t, seen); got != "4" {
		t.Fatalf("watch first = %q, want 4", got)
	}
	// Messages 1 to 4 age out.
	st, err := n1.s.JetStream().Stream(ctx, Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(5)); err != nil {
		t.Fatal(err)
	}
	b := &behind{fold: newFold(), obj: obj}
	b.fold.created = st.CachedInfo().Created
	// Consume registers before Run; this one starts by hand.
	c := &consumer{name: "late-n1", h: b}
	ran := make(chan struct{})
	go func() { c.run(wctx, n1.s, n1.s.JetStream()); close(ran) }()
	defer func() { cancel(); <-ran }()
	poll.Until(t, 10*time.Second, "the late handler folds 5 and 6", func() bool {
		n, _ := b.fold.count()
		return n == 2
	})
	if b.caught != 5 {
		t.Errorf("CatchUp saw first %d, want 5", b.caught)
	}
	if err := obj.Put(ctx, []byte("6")); err != nil {
		t.Fatal(err)
	}
	if got := next(t, seen); got != "6" {
		t.Errorf("watch next = %q, want 6", got)
	}
}

// TestExternal: with Config.URL the node embeds no server and keeps the
// stream on the NATS cluster there, one replica for a single server.
func TestExternal(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("external server not ready")
	}
	n := run(t, Config{NodeID: "n1", URL: srv.ClientURL()}, Deps{}, nil)
	s, f := n.s, n.f
	publish(t, s, 0, 10)
	publish(t, s, 0, 10) // sent again: stored once
	poll.Until(t, 10*time.Second, "10 messages folded once each", func() bool { n, once := f.count(); return n == 10 && once })
	if got := s.replicasNow.Load(); got != 1 {
		t.Errorf("replicas on one external server = %d, want 1", got)
	}
}

// next is the next value of ch, failing the test after 10 s.
func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no value within 10 s")
		return ""
	}
}

// TestStreamRecreated: a stream deleted while the node runs is made
// again, and the handlers fold the new one from its start, missing
// nothing published to it.
func TestStreamRecreated(t *testing.T) {
	ms := &members{}
	a1 := freeAddr(t)
	ms.add(Member{ID: "n1", Events: a1})
	n1 := start(t, "n1", t.TempDir(), a1, ms, nil)
	publish(t, n1.s, 0, 10)
	poll.Until(t, 10*time.Second, "10 folded", func() bool { n, _ := n1.f.count(); return n == 10 })
	if err := n1.s.JetStream().DeleteStream(context.Background(), Name); err != nil {
		t.Fatal(err)
	}
	publish(t, n1.s, 100, 15)
	poll.Until(t, 30*time.Second, "the 15 messages of the new stream, and nothing else", func() bool {
		n, once := n1.f.count()
		return n == 15 && once
	})
}
