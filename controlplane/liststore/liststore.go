// Package liststore finds titles' file lists (package filelist) for the
// control plane's API: GET /v1/titles/{id}/filelist/{digest}, the files
// of GET /v1/titles/{id}?files=1, and the files a title's file route
// checks a path against.
//
// The replicated catalog keeps only a title's digest; the list itself is
// an object at the origin, at filelist.Path(title, digest). A list given
// to the control plane with a title's files waits in the replicated state
// (fsm.State.PendingList) until the leader has published it; Get answers
// it from there. Any other list comes from a memory cache bounded in
// bytes, or from the origin with the admin token, under the origin's
// circuit breaker. A list from the origin is kept only once it decodes
// and its SHA-256 is the digest asked for; concurrent misses of one list
// fetch it once.
package liststore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/fillcast/fillcast/filelist"
)

// Config configures a Store. Zero values mean the defaults named.
type Config struct {
	// Origin is the origin's base URL ("http://origin:9000"); empty
	// finds pending lists only.
	Origin string
	// CacheBytes bounds the memory cache of lists fetched from the
	// origin. Zero means 64 MiB.
	CacheBytes int64
	// MaxListBytes bounds one list read from the origin: a longer answer
	// is refused. Zero means 64 MiB (some 700,000 files).
	MaxListBytes int64
	// Timeout bounds one fetch from the origin. Zero means 30 s.
	Timeout time.Duration
}

// DefaultConfig returns a Config with every default filled in but the
// Origin.
func DefaultConfig() Config {
	return Config{CacheBytes: 64 << 20, MaxListBytes: 64 << 20, Timeout: 30 * time.Second}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if c.Origin != "" {
		u, err := url.Parse(c.Origin)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fillcast.ConfigErrorf("liststore", "Origin", "%q: want a URL such as http://origin:9000", c.Origin)
		}
	}
	switch {
	case c.CacheBytes < 0:
		return fillcast.ConfigErrorf("liststore", "CacheBytes", "%d is negative", c.CacheBytes)
	case c.MaxListBytes < 0:
		return fillcast.ConfigErrorf("liststore", "MaxListBytes", "%d is negative", c.MaxListBytes)
	case c.Timeout < 0:
		return fillcast.ConfigErrorf("liststore", "Timeout", "%v is negative", c.Timeout)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Origin = strings.TrimSuffix(c.Origin, "/")
	c.CacheBytes = cmp.Or(c.CacheBytes, d.CacheBytes)
	c.MaxListBytes = cmp.Or(c.MaxListBytes, d.MaxListBytes)
	c.Timeout = cmp.Or(c.Timeout, d.Timeout)
	return c
}

// State is the replicated state, as *fsm.FSM reads it.
type State interface {
	Read(fn func(s *fsm.State))
}

// Deps are what a Store uses but does not own.
type Deps struct {
	// State holds the pending lists. Required.
	State State
	// AdminToken is sent to the origin as "Authorization: Bearer".
	AdminToken string
	// Client makes the origin's requests; nil means one of the Store's
	// own over http.DefaultTransport.
	Client *http.Client
	// Breaker, when set, guards the origin's requests: the breaker of
	// every call the node makes to the origin.
	Breaker *protect.Breaker
}

// Errors of Get, by what the caller should do.
var (
	// ErrNotFound: the list is neither pending nor at the origin (or
	// there is no origin to ask).
	ErrNotFound = errors.New("liststore: list not found")
	// ErrUnavailable: the origin could not be asked or failed (no
	// answer, 5xx): try again later.
	ErrUnavailable = errors.New("liststore: origin unavailable")
	// ErrBadList: the origin answered something that is not the list
	// asked for (another digest, not a list, cut short, too long).
	ErrBadList = errors.New("liststore: the origin's list is bad")
)

// Store finds lists; see the package doc. It is safe for concurrent use.
type Store struct {
	cfg Config
	d   Deps
	// cache is nil until Open and after Close: lists are then fetched
	// each time.
	cache  atomic.Pointer[ristretto.Cache[string, []byte]]
	flight flight
	// life, set by Open, is cancelled by Close: it ends the fetches
	// under way, which run apart from their callers (fetch.go), each
	// counted in fetches.
	life    atomic.Pointer[lifetime]
	fetches sync.WaitGroup
}

// lifetime is an open Store's: Close cancels it.
type lifetime struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// New checks cfg and returns a Store. It does no I/O and starts
// nothing: Open makes the cache.
func New(cfg Config, d Deps) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.State == nil {
		return nil, errors.New("liststore: the replicated state is required")
	}
	if d.Client == nil {
		d.Client = &http.Client{Transport: http.DefaultTransport}
	}
	return &Store{cfg: cfg.withDefaults(), d: d, flight: flight{calls: map[string]*call{}}}, nil
}

// Open makes the memory cache (whose goroutines Close stops). A Store
// that is not open works, without caching.
func (s *Store) Open(context.Context) error {
	// About ten counters per list the cache may hold, at a guess of
	// 64 KiB a list (700 files).
	counters := max(s.cfg.CacheBytes/(64<<10), 100) * 10
	c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
		NumCounters: counters, MaxCost: s.cfg.CacheBytes, BufferItems: 64, IgnoreInternalCost: true,
	})
	if err != nil {
		return fmt.Errorf("liststore: cache: %w", err)
	}
	if old := s.cache.Swap(c); old != nil {
		old.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	if old := s.life.Swap(&lifetime{ctx: ctx, cancel: cancel}); old != nil {
		old.cancel()
	}
	return nil
}

// Close ends the fetches under way and waits for them, drops the cache
// and stops its goroutines. It is safe to call twice, and returns nil.
func (s *Store) Close() error {
	if l := s.life.Swap(nil); l != nil {
		l.cancel()
	}
	s.fetches.Wait()
	if c := s.cache.Swap(nil); c != nil {
		c.Close()
	}
	return nil
}

// Get returns title's list of digest: the pending list in the state, or
// the cached one, or the origin's, checked. The bytes are shared: do not
// change them. Errors wrap ErrNotFound, ErrUnavailable, ErrBadList, a
// *protect.OpenError (the origin's breaker is open) or ctx's error. A
// fetch from the origin runs apart from ctx, bounded by Config.Timeout:
// a caller that gives up (ctx done) does not end it, so that the
// origin's breaker, shared with the node's other calls to the origin,
// counts only the origin's own slowness and failures.
func (s *Store) Get(ctx context.Context, title, digest string) ([]byte, error) {
	key := filelist.Path(title, digest)
	if fillcast.ValidateTitleID(title) != nil || !filelist.ValidDigest(digest) {
		return nil, fmt.Errorf("%w: %q names no list", ErrNotFound, key)
	}
	var body []byte
	var pending bool
	s.d.State.Read(func(st *fsm.State) { body, pending = st.PendingList(title, digest) })
	if pending {
		return body, nil
	}
	if c := s.cache.Load(); c != nil {
		if b, ok := c.Get(key); ok {
			return b, nil
		}
	}
	if s.cfg.Origin == "" {
		return nil, fmt.Errorf("%w: %s is not pending and this node has no origin to fetch it from", ErrNotFound, key)
	}
	return s.flight.do(ctx, key, &s.fetches, func() ([]byte, error) { return s.fetch(ctx, key, digest) })
}

// flight runs one fetch of a key at a time, apart from its callers:
// each caller, the one that started it too, waits for its answer within
// its own ctx, and a caller that gives up neither cancels the fetch nor
// makes the others fetch again.
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
}

// call is a fetch under way.
type call struct {
	done    chan struct{}
	body    []byte
	err     error
	callers int // callers that asked for it (for tests)
}

// do returns the answer of the fetch of key under way, or starts fn as
// it (counted in running), and waits for it until ctx is done.
func (f *flight) do(ctx context.Context, key string, running *sync.WaitGroup, fn func() ([]byte, error)) ([]byte, error) {
	f.mu.Lock()
	c := f.calls[key]
	if c == nil {
		// A fetch that panics leaves errFetchPanicked.
		c = &call{done: make(chan struct{}), err: errFetchPanicked}
		f.calls[key] = c
		running.Go(func() {
			defer func() {
				f.mu.Lock()
				delete(f.calls, key)
				f.mu.Unlock()
				close(c.done)
			}()
			c.body, c.err = fn()
		})
	}
	c.callers++
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.body, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("liststore: %s: %w", key, ctx.Err())
	}
}

// errFetchPanicked is the answer of a fetch that panicked.
var errFetchPanicked = errors.New("liststore: the fetch failed")

// asking returns how many callers asked for key's fetch under way.
func (f *flight) asking(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.calls[key]; c != nil {
		return c.callers
	}
	return 0
}

// busy reports whether any fetch is under way.
func (f *flight) busy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls) > 0
}
