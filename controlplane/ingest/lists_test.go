package ingest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/filelist"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/origin"
	"github.com/fillcast/fillcast/transcoder"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// flakyOrigin serves a real origin on loopback that cuts every
// connection while down is set; it returns the origin's root and URL.
func flakyOrigin(t *testing.T, d origin.Deps, down *atomic.Bool) (root, url string) {
	t.Helper()
	cfg := origin.DefaultConfig()
	cfg.Root = t.TempDir()
	d.AdminToken, d.Log = "adm", quiet()
	o, err := origin.New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		o.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); o.Close() })
	return cfg.Root, srv.URL
}

// newListManager returns a Manager over st publishing to originURL, led
// while leads is set.
func newListManager(t *testing.T, st State, originURL string, leads *atomic.Bool) *Manager {
	t.Helper()
	tc, err := transcoder.New(transcoder.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Node: "n1", Dir: t.TempDir(), OriginURL: originURL, PublishEvery: 10 * time.Millisecond},
		Deps{Transcoder: tc, State: st, AdminToken: "adm", Log: quiet(), Leader: leads.Load})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPendingListsPublished: titles written with their files keep their
// lists pending in the state; the leader's loop publishes each to the
// origin, byte for byte, once the origin is back from being down, and
// records it published, which drops it from the state. A follower
// publishes nothing.
func TestPendingListsPublished(t *testing.T) {
	t.Parallel()
	var down, leads atomic.Bool
	down.Store(true)
	root, url := flakyOrigin(t, origin.Deps{}, &down)
	st := &localState{f: fsm.New(nil)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sum := filelist.Digest([]byte("segment"))
	titles := map[string][]fillcast.File{
		"t1": {{Path: "720p/seg-00002.m4s", Size: 1500, SHA256: sum}, {Path: "720p/init.mp4", Size: 800}, {Path: "poster.jpg", Size: 20}},
		"t2": {{Path: "1080p/seg-00001.m4s", Size: 3000, SHA256: sum}},
	}
	want := map[string][]byte{} // list object path: body
	for id, files := range titles {
		body, s, err := filelist.Encode(files)
		if err != nil {
			t.Fatal(err)
		}
		want[filelist.Path(id, s.Digest)] = body
		if err := st.Apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: id, Name: id, Status: fillcast.StatusReady,
			Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Bandwidth: 3e6}}, Files: files}}); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() (n int) {
		st.Read(func(s *fsm.State) { n = len(s.PendingLists()) })
		return n
	}
	if got := pending(); got != len(want) {
		t.Fatalf("%d lists pending after the writes, want %d", got, len(want))
	}
	m := newListManager(t, st, url, &leads)

	// A follower, the origin up: nothing published.
	down.Store(false)
	if err := m.publishPending(ctx); err != nil || pending() != len(want) {
		t.Fatalf("as a follower: %v, %d pending, want nothing done", err, pending())
	}
	if _, err := os.Stat(filepath.Join(root, "t1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a follower wrote to the origin: %v", err)
	}
	// The leader's loop, the origin down: rounds fail, lists stay.
	down.Store(true)
	leads.Store(true)
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	poll.Until(t, 30*time.Second, "failed rounds against the down origin", func() bool {
		return testutil.ToFloat64(m.metrics.listErrors) >= 2
	})
	if got := pending(); got != len(want) {
		t.Fatalf("%d lists pending while the origin is down, want %d", got, len(want))
	}
	// The origin back: every list published, and no longer pending.
	down.Store(false)
	poll.Until(t, 90*time.Second, "the lists published once the origin is back", func() bool { return pending() == 0 })
	for path, body := range want {
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(path)))
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s at the origin: %q (%v), want %q", path, got, err, body)
		}
	}
	if got := testutil.ToFloat64(m.metrics.listsPublished); got != float64(len(want)) {
		t.Errorf("fillcast_ingest_file_lists_published_total = %v, want %d", got, len(want))
	}
	if got := testutil.ToFloat64(m.metrics.listsPending); got != 0 {
		t.Errorf("fillcast_ingest_file_lists_pending = %v, want 0", got)
	}
	st.Read(func(s *fsm.State) {
		for id := range titles {
			if tt := s.Titles[id]; len(tt.Files) != 0 || want[filelist.Path(id, tt.FilesDigest)] == nil {
				t.Errorf("%s in the catalog: %+v, want its list's digest and no files", id, tt)
			}
		}
	})
}

// TestVerifyList: ingest reads a list back from the origin and accepts
// it only as written.
func TestVerifyList(t *testing.T) {
	t.Parallel()
	var down, leads atomic.Bool
	root, url := flakyOrigin(t, origin.Deps{}, &down)
	m := newListManager(t, &localState{f: fsm.New(nil)}, url, &leads)
	body, sum, err := filelist.Encode([]fillcast.File{{Path: "720p/init.mp4", Size: 800}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	path := filepath.Join(root, filepath.FromSlash(filelist.Path("t1", sum.Digest)))
	tests := []struct {
		name   string
		stored []byte // nil: none
		ok     bool
	}{
		{"as written", body, true},
		{"missing", nil, false},
		{"truncated", body[:len(body)-1], false},
		{"longer", append(bytes.Clone(body), "x\n"...), false},
	}
	for _, tt := range tests {
		os.Remove(path)
		if tt.stored != nil {
			if err := m.putList(ctx, "t1", sum.Digest, tt.stored); err != nil {
				t.Fatalf("%s: put: %v", tt.name, err)
			}
		}
		if err := m.verifyList(ctx, "t1", sum.Digest, len(body)); (err == nil) != tt.ok {
			t.Errorf("%s: verify: %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// snapshotHook is the state, which runs then once after the first Read
// once then is set: what happens to the state between a publish round's
// copy of the pending lists and its PUTs.
type snapshotHook struct {
	*localState
	once sync.Once
	then func()
}

func (h *snapshotHook) Read(fn func(*fsm.State)) {
	h.localState.Read(fn)
	if h.then != nil {
		h.once.Do(h.then)
	}
}

// TestPublishAfterTakedown: a title taken down after a publish round
// copied the pending lists gets no PUT of its list (its files are being
// purged from the origin); the other lists of the round are published.
func TestPublishAfterTakedown(t *testing.T) {
	t.Parallel()
	var down, leads atomic.Bool
	leads.Store(true)
	root, url := flakyOrigin(t, origin.Deps{}, &down)
	ctx := context.Background()
	st := &localState{f: fsm.New(nil)}
	digests := map[string]string{}
	for _, id := range []string{"gone", "kept"} {
		files := []fillcast.File{{Path: "720p/init.mp4", Size: 800}, {Path: "720p/seg-00001.m4s", Size: int64(len(id)) * 1000}}
		_, sum, err := filelist.Encode(files)
		if err != nil {
			t.Fatal(err)
		}
		digests[id] = sum.Digest
		if err := st.Apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: id, Name: id, Status: fillcast.StatusReady,
			Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Bandwidth: 3e6}}, Files: files}}); err != nil {
			t.Fatal(err)
		}
	}
	hook := &snapshotHook{localState: st}
	m := newListManager(t, hook, url, &leads)
	var copied int
	hook.then = func() {
		st.Read(func(s *fsm.State) { copied = len(s.PendingLists()) })
		td := &fsm.Takedown{Takedown: fillcast.Takedown{Title: "gone", At: time.Now(), TokensUntil: time.Now().Add(time.Hour).Unix()}, Origin: true}
		if err := st.Apply(ctx, fsm.Command{Op: fsm.OpDeleteTitle, ID: "gone", Takedown: td}); err != nil {
			t.Error(err)
		}
	}
	if err := m.publishPending(ctx); err != nil {
		t.Fatal(err)
	}
	if copied != 2 {
		t.Fatalf("%d lists pending when the round copied them, want both", copied)
	}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(filelist.Path("gone", digests["gone"])))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the list of the title taken down after the round's copy was PUT (%v): want no PUT", err)
	}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(filelist.Path("kept", digests["kept"])))); err != nil {
		t.Errorf("the other list: %v, want it published", err)
	}
	st.Read(func(s *fsm.State) {
		if n := len(s.PendingLists()); n != 0 {
			t.Errorf("%d lists pending, want none", n)
		}
	})
	if got := testutil.ToFloat64(m.metrics.listsPublished); got != 1 {
		t.Errorf("fillcast_ingest_file_lists_published_total = %v, want 1", got)
	}
}
