package liststore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/fillcast/fillcast/filelist"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/origin"
	"github.com/hashicorp/raft"
)

// env is a real state machine and a real origin on loopback, whose
// list GETs are counted and can be held.
type env struct {
	f      *fsm.FSM
	index  uint64
	origin *httptest.Server
	gets   atomic.Int64
	// hold, when set, makes each list GET wait until it is closed.
	hold atomic.Pointer[chan struct{}]
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := origin.DefaultConfig()
	cfg.Root = t.TempDir()
	o, err := origin.New(cfg, origin.Deps{AdminToken: "adm", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{f: fsm.New(nil)}
	e.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/"+filelist.Dir+"/") {
			e.gets.Add(1)
			if h := e.hold.Load(); h != nil {
				<-*h
			}
		}
		o.ServeHTTP(w, r)
	}))
	t.Cleanup(e.origin.Close)
	return e
}

func (e *env) apply(t *testing.T, c fsm.Command) {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	e.index++
	if r := e.f.Apply(&raft.Log{Index: e.index, Data: b}); r != nil {
		t.Fatal(r)
	}
}

// files returns n files of a title, distinct by seed.
func files(seed string, n int) []fillcast.File {
	out := make([]fillcast.File, n)
	for i := range out {
		out[i] = fillcast.File{Path: fmt.Sprintf("720p/seg-%05d.m4s", i), Size: int64(1000 + i), SHA256: filelist.Digest([]byte(seed + fmt.Sprint(i)))}
	}
	return out
}

// putTitle registers title with its files, as an operator does: the
// list is then pending in the state. It returns the list.
func (e *env) putTitle(t *testing.T, title string, fs []fillcast.File) (body []byte, digest string) {
	t.Helper()
	body, sum, err := filelist.Encode(fs)
	if err != nil {
		t.Fatal(err)
	}
	e.apply(t, fsm.Command{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: title, Name: title, Status: fillcast.StatusReady,
		Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Height: 720, Bandwidth: 3e6, Codecs: "avc1"}}, Files: fs}})
	return body, sum.Digest
}

// put writes body at the origin's path, with the admin token.
func (e *env) put(t *testing.T, path string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, e.origin.URL+"/"+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer adm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("PUT %s: %s", path, resp.Status)
	}
}

// filesPublished records title's pending list of digest published, as
// the leader's publisher does.
func (e *env) filesPublished(t *testing.T, title, digest string) {
	t.Helper()
	var index uint64
	e.f.Read(func(s *fsm.State) {
		if pl := s.FileLists[filelist.Path(title, digest)]; pl != nil {
			index = pl.Index
		}
	})
	e.apply(t, fsm.Command{Op: fsm.OpFilesPublished, ID: title, Digest: digest, ListIndex: index})
}

// publish does what the leader's publisher does: the list to the
// origin, then files_published, after which the state has it no more.
func (e *env) publish(t *testing.T, title, digest string, body []byte) {
	t.Helper()
	e.put(t, filelist.Path(title, digest), body)
	e.filesPublished(t, title, digest)
	var pending bool
	e.f.Read(func(s *fsm.State) { _, pending = s.PendingList(title, digest) })
	if pending {
		t.Fatal("still pending after files_published")
	}
}

func (e *env) store(t *testing.T, cfg Config, br *protect.Breaker) *Store {
	t.Helper()
	s, err := New(cfg, Deps{State: e.f, AdminToken: "adm", Breaker: br})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestGet: a pending list comes from the state, a published one from
// the origin once and then from the cache; what is nowhere is
// ErrNotFound.
func TestGet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := e.store(t, Config{Origin: e.origin.URL}, nil)
	body, digest := e.putTitle(t, "t1", files("a", 500))

	got, err := s.Get(ctx, "t1", digest)
	if err != nil || !bytes.Equal(got, body) || e.gets.Load() != 0 {
		t.Fatalf("pending: %d bytes, %v, %d origin GETs; want the list from the state", len(got), err, e.gets.Load())
	}
	e.publish(t, "t1", digest, body)
	for i := range 3 {
		got, err := s.Get(ctx, "t1", digest)
		if err != nil || !bytes.Equal(got, body) || e.gets.Load() != 1 {
			t.Fatalf("published, Get %d: %d bytes, %v, %d origin GETs; want the list, fetched once", i, len(got), err, e.gets.Load())
		}
	}
	noOrigin := e.store(t, Config{}, nil)
	other := filelist.Digest([]byte("other"))
	for _, tt := range []struct {
		name          string
		s             *Store
		title, digest string
	}{
		{"a digest the origin does not have", s, "t1", other},
		{"a published list, without an origin", noOrigin, "t1", digest},
		{"not a digest", s, "t1", "abc"},
		{"not a title id", s, "../t1", digest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.s.Get(ctx, tt.title, tt.digest); !errors.Is(err, ErrNotFound) {
				t.Errorf("got %v, want ErrNotFound", err)
			}
		})
	}
}

// TestBadAnswers: whatever the origin answers that is not the list asked
// for is an error, and is not kept: the next Get asks again.
func TestBadAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	body, digest := e.putTitle(t, "t1", files("a", 200))
	otherBody, otherDigest := e.putTitle(t, "t2", files("b", 200))
	// t2's list where t1's should be.
	e.put(t, filelist.Path("t1", digest), otherBody)
	// Bytes that are not a list, at their own digest.
	junk := []byte("fillcast-files 2\nnot a list\n")
	e.put(t, filelist.Path("t3", filelist.Digest(junk)), junk)
	e.put(t, filelist.Path("t2", otherDigest), otherBody)
	// An origin that promises the whole list and sends half of it.
	short := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body[:len(body)/2])
	}))
	t.Cleanup(short.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "disk on fire", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	tests := []struct {
		name          string
		cfg           Config
		title, digest string
		want          error
		message       string
	}{
		{"another list", Config{Origin: e.origin.URL}, "t1", digest, ErrBadList, "have the digest " + otherDigest},
		{"not a list", Config{Origin: e.origin.URL}, "t3", filelist.Digest(junk), ErrBadList, "header"},
		{"over MaxListBytes", Config{Origin: e.origin.URL, MaxListBytes: 1000}, "t2", otherDigest, ErrBadList, "over the limit of 1000"},
		{"cut short", Config{Origin: short.URL}, "t1", digest, ErrBadList, "cut short"},
		{"a failing origin", Config{Origin: failing.URL}, "t1", digest, ErrUnavailable, "disk on fire"},
		{"an origin down", Config{Origin: down.URL}, "t1", digest, ErrUnavailable, "connect"},
	}
	// Published, so that Get goes to the origin.
	e.filesPublished(t, "t1", digest)
	e.filesPublished(t, "t2", otherDigest)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.store(t, tt.cfg, nil)
			before := e.gets.Load()
			for range 2 {
				got, err := s.Get(ctx, tt.title, tt.digest)
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.message) || got != nil {
					t.Fatalf("got %d bytes, %v; want %v saying %q", len(got), err, tt.want, tt.message)
				}
			}
			if tt.cfg.Origin == e.origin.URL && e.gets.Load()-before != 2 {
				t.Errorf("%d GETs for two Gets: a bad answer was kept", e.gets.Load()-before)
			}
		})
	}
}

// TestOneFetch: concurrent misses of one list fetch it once; a caller
// that gives up neither ends the fetch nor makes the others fetch again.
func TestOneFetch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.store(t, Config{Origin: e.origin.URL}, nil)
	body, digest := e.putTitle(t, "t1", files("a", 300))
	e.publish(t, "t1", digest, body)
	key := filelist.Path("t1", digest)

	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	defer release()
	e.hold.Store(&hold)
	// The first caller gives up while its fetch is held.
	first, leave := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := s.Get(first, "t1", digest)
		firstErr <- err
	}()
	poll.Until(t, 10*time.Second, "the first fetch at the origin", func() bool { return e.gets.Load() == 1 })
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			got, err := s.Get(context.Background(), "t1", digest)
			if err == nil && !bytes.Equal(got, body) {
				err = errors.New("another body")
			}
			errs <- err
		})
	}
	poll.Until(t, 10*time.Second, "8 more callers waiting on the fetch", func() bool { return s.flight.asking(key) == n+1 })
	leave()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that left: %v, want context.Canceled", err)
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := e.gets.Load(); got != 1 {
		t.Errorf("%d GETs at the origin, want 1: the fetch the first caller left goes on for the others", got)
	}
}

// TestCallerDeadlines: callers whose own deadlines expire while a slow
// origin answers do not count against the origin's breaker (shared with
// the node's other calls to the origin); the fetches go on, bounded by
// the Store's Timeout, and what that Timeout cuts does count.
func TestCallerDeadlines(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := protect.DefaultBreakerConfig()
	cfg.MinRequests, cfg.OpenFor = 3, time.Hour
	newBreaker := func() *protect.Breaker {
		br, err := protect.NewBreaker("origin", cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return br
	}
	br := newBreaker()
	s := e.store(t, Config{Origin: e.origin.URL}, br)
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	defer release()
	e.hold.Store(&hold)
	const n = 10
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := s.Get(ctx, "t1", filelist.Digest([]byte{byte(i)}))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Get %d with a 20 ms deadline at a held origin: %v, want its deadline exceeded", i, err)
		}
	}
	poll.Until(t, 10*time.Second, "the held fetches at the origin", func() bool { return e.gets.Load() == n })
	release()
	poll.Until(t, 30*time.Second, "the held fetches done", func() bool { return !s.flight.busy() })
	if br.State() != protect.Closed {
		t.Fatalf("breaker %v after %d callers' deadlines expired, want closed", br.State(), n)
	}
	if _, err := s.Get(context.Background(), "t1", filelist.Digest([]byte("x"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("after the callers' deadlines: %v, want the origin asked (ErrNotFound)", err)
	}

	// The Store's own Timeout is the origin's slowness: it counts.
	br = newBreaker()
	short := e.store(t, Config{Origin: e.origin.URL, Timeout: 50 * time.Millisecond}, br)
	stuck := make(chan struct{})
	defer close(stuck)
	e.hold.Store(&stuck)
	for i := range n {
		if _, err := short.Get(context.Background(), "t1", filelist.Digest([]byte{byte(i)})); !errors.Is(err, ErrUnavailable) && !errors.Is(err, protect.ErrOpen) {
			t.Fatalf("Get %d past the Store's Timeout: %v, want ErrUnavailable (or the breaker open)", i, err)
		}
	}
	if _, err := short.Get(context.Background(), "t1", filelist.Digest([]byte("x"))); !errors.Is(err, protect.ErrOpen) {
		t.Errorf("after %d fetches cut by the Store's Timeout: %v, want the breaker open", n, err)
	}
}

// TestBreaker: a failing origin opens the breaker, after which Get
// fails at once; lists the origin does not have do not count.
func TestBreaker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	cfg := protect.DefaultBreakerConfig()
	cfg.MinRequests, cfg.OpenFor = 3, time.Hour
	br, err := protect.NewBreaker("origin", cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	s := e.store(t, Config{Origin: srv.URL}, br)
	for i := range 10 {
		if _, err := s.Get(ctx, "t1", filelist.Digest([]byte{byte(i)})); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing list %d: %v", i, err)
		}
	}
	if br.State() != protect.Closed {
		t.Fatalf("breaker %v after lists the origin does not have, want closed", br.State())
	}
	// Half the outcomes in the window are then failures.
	fail.Store(true)
	for i := range 10 {
		if _, err := s.Get(ctx, "t1", filelist.Digest([]byte{byte(i)})); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("failing origin, Get %d: %v", i, err)
		}
	}
	if _, err := s.Get(ctx, "t1", filelist.Digest([]byte("x"))); !errors.Is(err, protect.ErrOpen) {
		t.Errorf("after 10 failures: %v, want the breaker open", err)
	}
}

// TestUnopened: a Store that is not open (or closed) still finds lists,
// fetching each time.
func TestUnopened(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body, digest := e.putTitle(t, "t1", files("a", 10))
	e.publish(t, "t1", digest, body)
	s, err := New(Config{Origin: e.origin.URL}, Deps{State: e.f, AdminToken: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := s.Get(context.Background(), "t1", digest); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%d bytes, %v", len(got), err)
		}
	}
	if e.gets.Load() != 2 || s.Close() != nil || s.Close() != nil {
		t.Errorf("%d GETs, want 2", e.gets.Load())
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"zero", Config{}, ""},
		{"defaults", DefaultConfig(), ""},
		{"origin", Config{Origin: "http://origin:9000/"}, ""},
		{"origin without scheme", Config{Origin: "origin:9000"}, "Origin"},
		{"ftp origin", Config{Origin: "ftp://origin"}, "Origin"},
		{"negative cache", Config{CacheBytes: -1}, "CacheBytes"},
		{"negative max list", Config{MaxListBytes: -1}, "MaxListBytes"},
		{"negative timeout", Config{Timeout: -time.Second}, "Timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			var ce *fillcast.ConfigError
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.field != "" && (!errors.As(err, &ce) || ce.Field != tt.field):
				t.Errorf("got %v, want an error of field %s", err, tt.field)
			}
		})
	}
	if _, err := New(Config{}, Deps{}); err == nil {
		t.Error("New without a state: no error")
	}
}
