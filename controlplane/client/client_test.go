package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

const token = "adm"

// cluster is a set of control-plane nodes on loopback that serve the
// shapes of the real routes: GET /v1/cluster listing every member, the
// heartbeat, the manifest with its ETag and 304, the keys and playback.
type cluster struct {
	mu       sync.Mutex
	nodes    []*node
	manifest *fillcast.Manifest // nil: 404, as before anything is planned
}

// node is one member. fail, when set, is the status it answers every
// request with.
type node struct {
	c     *cluster
	id    string
	srv   *httptest.Server
	fail  atomic.Int32
	calls atomic.Int64 // requests other than GET /v1/cluster
	beats atomic.Int64
	// auth is the last Authorization header it saw.
	auth atomic.Pointer[string]
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{}
	for range n {
		c.add(t)
	}
	return c
}

// add starts one more member.
func (c *cluster) add(t *testing.T) *node {
	t.Helper()
	c.mu.Lock()
	nd := &node{c: c, id: fmt.Sprintf("n%d", len(c.nodes)+1)}
	c.nodes = append(c.nodes, nd)
	c.mu.Unlock()
	nd.srv = httptest.NewServer(nd.routes())
	t.Cleanup(nd.srv.Close)
	return nd
}

// remove takes a member out of the member list (its server keeps running).
func (c *cluster) remove(nd *node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = slices.DeleteFunc(c.nodes, func(x *node) bool { return x == nd })
}

func (c *cluster) urls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, nd := range c.nodes {
		out = append(out, nd.srv.URL)
	}
	return out
}

func (c *cluster) setManifest(m *fillcast.Manifest) {
	c.mu.Lock()
	c.manifest = m
	c.mu.Unlock()
}

// kill stops a node as SIGKILL would: its connections are cut and
// nothing listens on its port any more.
func (nd *node) kill() {
	nd.srv.CloseClientConnections()
	nd.srv.Close()
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg, "request_id": "r1"})
}

func (nd *node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, r *http.Request) {
		st := fillcast.ClusterStatus{ID: nd.id, State: "Follower", Leader: "n1", Term: "1"}
		nd.c.mu.Lock()
		for _, m := range nd.c.nodes {
			st.Members = append(st.Members, fillcast.ClusterMember{ID: m.id, RaftAddr: "127.0.0.1:1", HTTPURL: m.srv.URL, Voter: true, Leader: m.id == "n1"})
		}
		nd.c.mu.Unlock()
		gateway.WriteJSON(w, http.StatusOK, st)
	})
	admin := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				writeError(w, http.StatusUnauthorized, "admin token required")
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("POST /v1/appliances/{id}/heartbeat", admin(func(w http.ResponseWriter, r *http.Request) {
		var hb fillcast.Heartbeat
		if err := json.NewDecoder(r.Body).Decode(&hb); err != nil || hb.Site == "" {
			writeError(w, http.StatusBadRequest, "heartbeat: site is required")
			return
		}
		nd.beats.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("GET /v1/appliances/{id}/manifest", admin(func(w http.ResponseWriter, r *http.Request) {
		nd.c.mu.Lock()
		m := nd.c.manifest
		nd.c.mu.Unlock()
		if m == nil || m.Appliance != r.PathValue("id") {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no fill manifest for appliance %q", r.PathValue("id")))
			return
		}
		gateway.WriteJSONETag(w, r, m)
	}))
	mux.HandleFunc("GET /v1/keys", admin(func(w http.ResponseWriter, r *http.Request) {
		gateway.WriteJSON(w, http.StatusOK, auth.KeyList{Keys: []auth.Key{{ID: "k2", Secret: strings.Repeat("ab", 32)}}})
	}))
	mux.HandleFunc("GET /v1/playback/{title}", func(w http.ResponseWriter, r *http.Request) {
		t := r.PathValue("title")
		gateway.WriteJSON(w, http.StatusOK, fillcast.Playback{Title: t, Protocol: r.URL.Query().Get("protocol"),
			URLs: []string{"http://edge1/c/tok/" + t + "/master.m3u8"}, ExpiresAt: "2026-11-26T00:00:00Z"})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := r.Header.Get("Authorization")
		nd.auth.Store(&a)
		if r.URL.Path != clusterPath {
			nd.calls.Add(1)
		}
		if s := nd.fail.Load(); s != 0 {
			writeError(w, int(s), "failing on purpose")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

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

func newClient(t *testing.T, cfg Config, d Deps) *Client {
	t.Helper()
	if d.Token == "" {
		d.Token = token
	}
	c, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	return c
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
		{"negative timeout", Config{URLs: []string{"http://cp1"}, Timeout: -time.Second}, "negative"},
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
				if c.cfg.Timeout != 10*time.Second || c.cfg.RefreshEvery != 30*time.Second {
					t.Errorf("defaults: %+v", c.cfg)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "client: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%+v) = %v, want a client: error mentioning %q", tt.cfg, err, tt.want)
			}
		})
	}
}

// TestLearnsMembersFromOneSeed: the first call teaches the client every
// member, and a refresh every RefreshEvery follows the cluster as members
// join and leave; the seeds are always kept.
func TestLearnsMembersFromOneSeed(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, 3)
	clk := &clock{t: time.Unix(1000, 0)}
	seed := cl.nodes[0].srv.URL
	c := newClient(t, Config{URLs: []string{seed}, RefreshEvery: time.Minute}, Deps{Now: clk.now})
	ctx := context.Background()
	if got := c.Members(); !slices.Equal(got, []string{seed}) {
		t.Fatalf("before any call: Members() = %v, want the seed alone", got)
	}
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Members(), cl.urls(); !slices.Equal(got, want) {
		t.Fatalf("after one call: Members() = %v, want %v", got, want)
	}

	n4 := cl.add(t)
	cl.remove(cl.nodes[0]) // the seed leaves the member list
	cl.remove(cl.nodes[0]) // and so does n2
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	if got := c.Members(); slices.Contains(got, n4.srv.URL) {
		t.Errorf("Members() = %v: refreshed before RefreshEvery passed", got)
	}
	clk.add(time.Minute)
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	want := append([]string{seed}, cl.urls()...) // n1 (a seed), n3, n4
	if got := c.Members(); !slices.Equal(got, want) {
		t.Errorf("after RefreshEvery: Members() = %v, want %v", got, want)
	}
}

// TestFailsOverWhenTheSeedDies: a client that knew only node 1 keeps
// working when node 1 dies, through the members it learned, and keeps
// going to the node that answered.
func TestFailsOverWhenTheSeedDies(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, 3)
	n1, n2, n3 := cl.nodes[0], cl.nodes[1], cl.nodes[2]
	c := newClient(t, Config{URLs: []string{n1.srv.URL}}, Deps{})
	ctx := context.Background()
	if err := c.Heartbeat(ctx, "a1", beat); err != nil {
		t.Fatal(err)
	}
	n1.kill()
	for i := range 5 {
		if err := c.Heartbeat(ctx, "a1", beat); err != nil {
			t.Fatalf("heartbeat %d after node 1 died: %v", i, err)
		}
	}
	if n2.beats.Load() != 5 || n3.beats.Load() != 0 {
		t.Errorf("beats after the failover: n2 %d, n3 %d; want 5 and 0 (the node that answered is asked first)", n2.beats.Load(), n3.beats.Load())
	}
	// The member list still names node 1 (the cluster does), so the
	// client knows it, but asks the node that answers.
	if got := c.Members(); len(got) != 3 {
		t.Errorf("Members() = %v", got)
	}
}

// TestTimeoutMovesOn: a node that takes the connection but never answers
// costs one Timeout, then the next node answers.
func TestTimeoutMovesOn(t *testing.T) {
	t.Parallel()
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hung.Close() })
	go func() { // accept and hold every connection, answer nothing
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	cl := newCluster(t, 1)
	c := newClient(t, Config{URLs: []string{"http://" + hung.Addr().String(), cl.nodes[0].srv.URL}, Timeout: 200 * time.Millisecond}, Deps{})
	if err := c.Heartbeat(context.Background(), "a1", beat); err != nil {
		t.Fatalf("heartbeat past a hung node: %v", err)
	}
	if n := cl.nodes[0].beats.Load(); n != 1 {
		t.Errorf("the answering node took %d beats, want 1", n)
	}
}

// TestWhichStatusesMoveOn: 502, 503 and 504 send the call to the next
// node; any other answer is the cluster's and is returned as it is.
func TestWhichStatusesMoveOn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status   int
		moveOn   bool
		wantCode int // StatusCode of the error; 0 for success
	}{
		{http.StatusBadGateway, true, 0},
		{http.StatusServiceUnavailable, true, 0},
		{http.StatusGatewayTimeout, true, 0},
		{http.StatusBadRequest, false, 400},
		{http.StatusUnauthorized, false, 401},
		{http.StatusNotFound, false, 404},
		{http.StatusConflict, false, 409},
		{http.StatusInternalServerError, false, 500},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			cl := newCluster(t, 2)
			cl.nodes[0].fail.Store(int32(tt.status))
			c := newClient(t, Config{URLs: cl.urls()}, Deps{})
			err := c.Heartbeat(context.Background(), "a1", beat)
			if got := StatusCode(err); got != tt.wantCode {
				t.Errorf("status %d: error %v (status %d), want status %d", tt.status, err, got, tt.wantCode)
			}
			if moved := cl.nodes[1].calls.Load() > 0; moved != tt.moveOn {
				t.Errorf("status %d: the second node asked: %v, want %v", tt.status, moved, tt.moveOn)
			}
		})
	}
}

// TestEveryNodeDown: the error wraps ErrUnavailable and each node's.
func TestEveryNodeDown(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, 2)
	cl.nodes[0].fail.Store(http.StatusServiceUnavailable)
	cl.nodes[1].kill()
	c := newClient(t, Config{URLs: cl.urls()}, Deps{})
	err := c.Heartbeat(context.Background(), "a1", beat)
	var e *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.Status != 503 || !strings.Contains(err.Error(), "connect") {
		t.Errorf("every node down: %v; want ErrUnavailable wrapping the 503 and the refused connection", err)
	}
}

func TestErrorCarriesStatusAndMessage(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, 1)
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
		{"control-plane error body", cl.nodes[0].srv.URL, func(c *Client) error { return c.Heartbeat(context.Background(), "a1", fillcast.Heartbeat{}) },
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

// TestManifestETag: the ETag comes back with the manifest, a poll with it
// costs a 304 that keeps the manifest, and a change is fetched whole.
func TestManifestETag(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, 1)
	c := newClient(t, Config{URLs: cl.urls()}, Deps{})
	ctx := context.Background()
	if _, _, err := c.Manifest(ctx, "a1", ""); StatusCode(err) != http.StatusNotFound {
		t.Fatalf("nothing planned: %v, want a 404", err)
	}
	plan := func(v uint64) *fillcast.Manifest {
		return &fillcast.Manifest{Appliance: "a1", Version: v, Site: "s1", Titles: []fillcast.ManifestTitle{{ID: "t1", Files: []fillcast.File{{Path: "720p/seg-00001.m4s", Size: 10}}}}}
	}
	cl.setManifest(plan(1))
	m, etag, err := c.Manifest(ctx, "a1", "")
	if err != nil || m == nil || m.Version != 1 || len(m.Titles) != 1 || etag == "" {
		t.Fatalf("first fetch: %+v %q %v", m, etag, err)
	}
	m, again, err := c.Manifest(ctx, "a1", etag)
	if err != nil || m != nil || again != etag {
		t.Fatalf("unchanged: %+v %q %v; want nil, the same ETag, nil", m, again, err)
	}
	cl.setManifest(plan(2))
	m, next, err := c.Manifest(ctx, "a1", etag)
	if err != nil || m == nil || m.Version != 2 || next == etag || next == "" {
		t.Fatalf("changed: %+v %q %v", m, next, err)
	}
}

func TestKeysPlaybackAndToken(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, 1)
	n := cl.nodes[0]
	ctx := context.Background()
	c := newClient(t, Config{URLs: cl.urls()}, Deps{})
	keys, err := c.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0].ID != "k2" {
		t.Errorf("Keys() = %v, %v", keys, err)
	}
	anon, err := New(Config{URLs: cl.urls()}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := anon.Playback(ctx, "t1", "dash")
	if err != nil || p.Title != "t1" || p.Protocol != "dash" || len(p.URLs) != 1 {
		t.Errorf("Playback() = %+v, %v", p, err)
	}
	if a := n.auth.Load(); a == nil || *a != "" {
		t.Errorf("a client without a token sent Authorization %q", *a)
	}
	if _, err := anon.Keys(ctx); StatusCode(err) != http.StatusUnauthorized {
		t.Errorf("Keys() without the token: %v, want a 401", err)
	}
	st, err := c.Cluster(ctx)
	if err != nil || st.ID != "n1" || len(st.Members) != 1 || st.Members[0].HTTPURL != n.srv.URL {
		t.Errorf("Cluster() = %+v, %v", st, err)
	}
}

// TestCancelledCallStops: a caller's cancelled context ends the call at
// once; it is not a node failure that sends it round every node.
func TestCancelledCallStops(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, 2)
	c := newClient(t, Config{URLs: cl.urls()}, Deps{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Heartbeat(ctx, "a1", beat)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Errorf("cancelled call: %v, want context.Canceled and not ErrUnavailable", err)
	}
	if err := c.Do(context.Background(), "BAD METHOD", "/v1/x", nil, nil); err == nil || cl.nodes[1].calls.Load() != 0 {
		t.Errorf("a request no node can take: %v, second node asked %d times", err, cl.nodes[1].calls.Load())
	}
}

// TestConcurrentUse: the agent and the fill executor share a client; many
// goroutines call it while the node they use dies, and every call after
// the death gets through (run with -race).
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, 3)
	cl.setManifest(&fillcast.Manifest{Appliance: "a1", Version: 1})
	c := newClient(t, Config{URLs: []string{cl.nodes[0].srv.URL}, RefreshEvery: time.Millisecond}, Deps{})
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
					cl.nodes[0].kill()
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
	if got := cl.nodes[1].beats.Load() + cl.nodes[2].beats.Load(); got == 0 {
		t.Errorf("no beat reached the surviving nodes (%d failures)", failures.Load())
	}
}
