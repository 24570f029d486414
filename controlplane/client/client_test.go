package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/client/clienttest"
	"github.com/fillcast/fillcast/internal/poll"
)

// hang is a Delay that outlasts every test: a node that never answers.
const hang = time.Hour

// clock is a settable clock for refresh timing.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newClient returns a Client of cfg with the admin token, unless d has
// another.
func newClient(t *testing.T, cfg Config, d Deps) *Client {
	t.Helper()
	if d.Token == "" {
		d.Token = clienttest.Token
	}
	c, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// returnsWithin runs call and fails t unless it returns within limit: a
// call that would wait on a hung node for its whole 1 h Timeout fails
// the test instead of holding it.
func returnsWithin(t *testing.T, limit time.Duration, what string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	var err error
	poll.Until(t, limit, what, func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	return err
}

var beat = fillcast.Heartbeat{Site: "s1", Profile: fillcast.ProfileFlash, URL: "http://a1", Health: fillcast.HealthOK}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		cfg  Config
		want string // "" for no error
	}{
		{"no urls", Config{}, "at least one"},
		{"not a url", Config{URLs: []string{"cp1:7000"}}, "want a URL"},
		{"no host", Config{URLs: []string{"http://"}}, "want a URL"},
		{"other scheme", Config{URLs: []string{"ftp://cp1"}}, "want a URL"},
		{"negative timeout", Config{URLs: []string{"http://cp1"}, Timeout: -time.Second}, "config Timeout"},
		{"negative heartbeat timeout", Config{URLs: []string{"http://cp1"}, HeartbeatTimeout: -time.Second}, "config HeartbeatTimeout"},
		{"negative dial timeout", Config{URLs: []string{"http://cp1"}, DialTimeout: -time.Second}, "config DialTimeout"},
		// New does no I/O: a node that is down is fine until a call.
		{"node down", Config{URLs: []string{closed.URL}}, ""},
		{"trailing slash", Config{URLs: []string{"http://cp1:7000/"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg, Deps{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if m := c.Members(); len(m) != 1 || strings.HasSuffix(m[0], "/") {
					t.Errorf("Members() = %v, want the one URL without a trailing slash", m)
				}
				want := Config{URLs: c.cfg.URLs, Timeout: 10 * time.Second, HeartbeatTimeout: 10 * time.Second, DialTimeout: 2 * time.Second, RefreshEvery: 30 * time.Second}
				if fmt.Sprint(c.cfg) != fmt.Sprint(want) {
					t.Errorf("defaults: %+v, want %+v", c.cfg, want)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "client: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%+v) = %v, want a client: error mentioning %q", tt.cfg, err, tt.want)
			}
		})
	}
}

func TestErrorCarriesStatusAndMessage(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "teapot here", http.StatusTeapot)
	}))
	t.Cleanup(plain.Close)
	tests := []struct {
		name, url string
		call      func(c *Client) error
		status    int
		message   string
	}{
		{"control-plane error body", cl.URLs()[0], func(c *Client) error { return c.Heartbeat(context.Background(), "a1", fillcast.Heartbeat{}) },
			400, "heartbeat: site is required"},
		{"plain text body", plain.URL, func(c *Client) error { return c.Do(context.Background(), http.MethodGet, "/x", nil, nil) },
			418, "teapot here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(newClient(t, Config{URLs: []string{tt.url}}, Deps{}))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.Status != tt.status || e.Message != tt.message || !strings.HasPrefix(err.Error(), "client: ") {
				t.Errorf("got %d %q (%v), want %d %q", e.Status, e.Message, err, tt.status, tt.message)
			}
		})
	}
}

// TestBodyLimits: a manifest may be larger than other answers; an answer
// over its bound is an error no other node is asked about; of an error
// answer only the start is read, however long it is.
func TestBodyLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	cl := clienttest.New(t, 1)
	// The catalog of a large service: every title's renditions.
	big := &fillcast.Manifest{Appliance: "a1", Version: 1, Titles: []fillcast.ManifestTitle{{ID: "t1"}}}
	for i := range 20_000 {
		big.Catalog = append(big.Catalog, fillcast.TitleRenditions{ID: fmt.Sprintf("title-%05d", i),
			Renditions: []fillcast.RenditionHeight{{ID: "1080p", Height: 1080}, {ID: "720p", Height: 720}, {ID: "audio", Height: 0}}})
	}
	cl.SetManifest("a1", big)
	c := newClient(t, Config{URLs: cl.URLs()}, Deps{})
	if m, _, err := c.Manifest(ctx, "a1", ""); err != nil || m == nil || len(m.Catalog) != 20_000 {
		t.Errorf("a manifest over 1 MiB: %v", err)
	}

	var asked atomic.Int64
	huge := func(status int, n int64) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/keys" { // the member refresh after an answer
				http.NotFound(w, r)
				return
			}
			asked.Add(1)
			w.WriteHeader(status)
			io.WriteString(w, `{"keys":[], "pad": "`)
			io.Copy(w, io.LimitReader(zeros{}, n)) // stops when the client hangs up
			io.WriteString(w, `"}`)
		}
	}
	tests := []struct {
		name    string
		h       http.HandlerFunc
		check   func(err error) bool
		message string
	}{
		{"keys over 1 MiB", huge(200, 2<<20), func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "more than 1 MiB") && !errors.Is(err, ErrUnavailable)
		}, "an error that is not ErrUnavailable"},
		{"an error body over 64 MiB", huge(400, 70<<20), func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Status == 400 && len(e.Message) <= 512
		}, "the 400 with the start of its body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked.Store(0)
			first, second := httptest.NewServer(tt.h), httptest.NewServer(tt.h)
			t.Cleanup(first.Close)
			t.Cleanup(second.Close)
			c := newClient(t, Config{URLs: []string{first.URL, second.URL}}, Deps{})
			_, err := c.Keys(ctx)
			if !tt.check(err) || asked.Load() != 1 {
				t.Errorf("got %v after %d nodes asked, want %s from one node", err, asked.Load(), tt.message)
			}
		})
	}
}

// zeros reads as endless '0's.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}

// TestManifestETag: the ETag comes back with the manifest, a poll with it
// costs a 304 that keeps the manifest, and a change is fetched whole.
func TestManifestETag(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	c := newClient(t, Config{URLs: cl.URLs()}, Deps{})
	ctx := context.Background()
	if _, _, err := c.Manifest(ctx, "a1", ""); StatusCode(err) != http.StatusNotFound {
		t.Fatalf("nothing planned: %v, want a 404", err)
	}
	plan := func(v uint64) *fillcast.Manifest {
		return &fillcast.Manifest{Appliance: "a1", Version: v, Site: "s1", Titles: []fillcast.ManifestTitle{{ID: "t1", FilesDigest: strings.Repeat("ab", 32), Bytes: 10, FileCount: 1}}}
	}
	cl.SetManifest("a1", plan(1))
	m, etag, err := c.Manifest(ctx, "a1", "")
	if err != nil || m == nil || m.Version != 1 || len(m.Titles) != 1 || etag == "" {
		t.Fatalf("first fetch: %+v %q %v", m, etag, err)
	}
	m, again, err := c.Manifest(ctx, "a1", etag)
	if err != nil || m != nil || again != etag {
		t.Fatalf("unchanged: %+v %q %v; want nil, the same ETag, nil", m, again, err)
	}
	cl.SetManifest("a1", plan(2))
	m, next, err := c.Manifest(ctx, "a1", etag)
	if err != nil || m == nil || m.Version != 2 || next == etag || next == "" {
		t.Fatalf("changed: %+v %q %v", m, next, err)
	}
}

func TestKeysPlaybackAndToken(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	n := cl.Nodes()[0]
	ctx := context.Background()
	c := newClient(t, Config{URLs: cl.URLs()}, Deps{})
	keys, err := c.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0].ID != "k2" {
		t.Errorf("Keys() = %v, %v", keys, err)
	}
	anon, err := New(Config{URLs: cl.URLs()}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := anon.Playback(ctx, "t1", "dash", "")
	if err != nil || p.Title != "t1" || p.Protocol != "dash" || len(p.URLs) != 1 {
		t.Errorf("Playback() = %+v, %v", p, err)
	}
	if a, seen := n.Authorization(); !seen || a != "" {
		t.Errorf("a client without a token sent Authorization %q (a request seen: %v)", a, seen)
	}
	if _, err := anon.Keys(ctx); StatusCode(err) != http.StatusUnauthorized {
		t.Errorf("Keys() without the token: %v, want a 401", err)
	}
	st, err := c.Cluster(ctx)
	if err != nil || st.ID != "n1" || len(st.Members) != 1 || st.Members[0].HTTPURL != n.URL {
		t.Errorf("Cluster() = %+v, %v", st, err)
	}
}

// TestCancelledCallStops: a caller's cancelled context ends the call at
// once; it is not a node failure that sends it round every node.
func TestCancelledCallStops(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 2)
	n := cl.Nodes()
	c := newClient(t, Config{URLs: cl.URLs()}, Deps{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Heartbeat(ctx, "a1", beat)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Errorf("cancelled call: %v, want context.Canceled and not ErrUnavailable", err)
	}
	if err := c.Do(context.Background(), "BAD METHOD", "/v1/x", nil, nil); err == nil || n[1].Calls() != 0 {
		t.Errorf("a request no node can take: %v, second node asked %d times", err, n[1].Calls())
	}
	if err := c.Heartbeat(context.Background(), "a1", beat); err != nil || len(n[0].Heartbeats()) != 1 {
		t.Errorf("after a cancelled call, the first node is still asked first: %v, %d beats there", err, len(n[0].Heartbeats()))
	}
}

// TestCloseDropsIdleConnections: the connections of the HTTP client a
// Client made for itself are closed by Close.
func TestCloseDropsIdleConnections(t *testing.T) {
	t.Parallel()
	var open atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, Config{URLs: []string{srv.URL}}, Deps{})
	if err := c.Do(context.Background(), http.MethodGet, "/x", nil, nil); err != nil {
		t.Fatal(err)
	}
	if open.Load() != 1 {
		t.Fatalf("%d connections open after a call, want the one kept alive", open.Load())
	}
	c.Close()
	poll.Until(t, 10*time.Second, "the idle connection closed", func() bool { return open.Load() == 0 })
}

// TestConcurrentUse: the agent and the fill executor share a client; many
// goroutines call it while the node they use dies, and every call after
// the death gets through (run with -race).
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 3)
	n := cl.Nodes()
	cl.SetManifest("a1", &fillcast.Manifest{Appliance: "a1", Version: 1})
	c := newClient(t, Config{URLs: []string{n[0].URL}, RefreshEvery: time.Millisecond}, Deps{})
	ctx := context.Background()
	if _, err := c.Cluster(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			for i := range 40 {
				if g == 0 && i == 10 {
					n[0].Kill()
				}
				var err error
				switch i % 3 {
				case 0:
					err = c.Heartbeat(ctx, "a1", beat)
				case 1:
					_, _, err = c.Manifest(ctx, "a1", "")
				case 2:
					_, err = c.Keys(ctx)
				}
				if err != nil {
					failures.Add(1)
					t.Errorf("goroutine %d call %d: %v", g, i, err)
				}
				c.Members()
			}
		})
	}
	wg.Wait()
	if got := len(n[1].Heartbeats()) + len(n[2].Heartbeats()); got == 0 {
		t.Errorf("no beat reached the surviving nodes (%d failures)", failures.Load())
	}
}

// TestDoIdempotent: the key goes with every attempt, and a write sent
// with one is sent again to the next node after a failure (a plain
// write that a node may have taken is not).
func TestDoIdempotent(t *testing.T) {
	t.Parallel()
	var keys []string
	var mu sync.Mutex
	handler := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/subscriptions" {
				w.WriteHeader(http.StatusNotFound) // a refresh of the member list
				return
			}
			mu.Lock()
			keys = append(keys, r.Header.Get("Idempotency-Key"))
			mu.Unlock()
			w.WriteHeader(status)
		}
	}
	failing := httptest.NewServer(handler(http.StatusBadGateway))
	t.Cleanup(failing.Close)
	ok := httptest.NewServer(handler(http.StatusCreated))
	t.Cleanup(ok.Close)
	c := newClient(t, Config{URLs: []string{failing.URL, ok.URL}, RefreshEvery: time.Hour}, Deps{})
	if err := c.DoIdempotent(context.Background(), http.MethodPost, "/v1/subscriptions", "k1", map[string]string{"plan": "basic"}, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 2 || keys[0] != "k1" || keys[1] != "k1" {
		t.Fatalf("keys sent %q, want k1 to each node", keys)
	}
}
