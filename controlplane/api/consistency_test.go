package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/cluster"
	"github.com/fillcast/fillcast/controlplane/cluster/clustertest"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/steering"
)

// A node of one is always current.
func (n *localNode) CatchUp(context.Context) error { return nil }
func (n *localNode) Staleness() time.Duration      { return 0 }

// apiCluster is three control-plane APIs over real raft nodes on a
// clustertest.Net, which the test cuts and heals.
type apiCluster struct {
	*clustertest.Net
	nodes []*cluster.Node
	srvs  []*httptest.Server
	apis  []*API
}

func startAPICluster(t testing.TB) *apiCluster {
	t.Helper()
	c := &apiCluster{Net: clustertest.New(3)}
	log := slog.New(slog.DiscardHandler)
	keys, _ := auth.ParseKeys(strings.NewReader("k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	for i := range 3 {
		id := fmt.Sprintf("n%d", i+1)
		var h atomic.Pointer[API]
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if a := h.Load(); a != nil {
				a.ServeHTTP(w, r)
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		t.Cleanup(srv.Close)
		c.SetURL(i, srv.URL)
		f := fsm.New(nil)
		n, err := cluster.New(cluster.Config{ID: id, DataDir: t.TempDir(), HTTPURL: srv.URL, Bootstrap: i == 0,
			HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond, ApplyTimeout: 2 * time.Second},
			cluster.Deps{FSM: f, NodeToken: auth.NodeToken("adm"), Transport: c.Transport(i), Client: c.Client(i)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := n.Open(ctx); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { n.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done; n.Close() })
		// As the control plane wires it (controlplane/accounts.go).
		viewerRead := func(ctx context.Context) error { return n.CatchUpOrRecent(ctx, 5*time.Second) }
		steerer, err := steering.New(steering.Config{Origin: "http://origin:9000"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		fl, err := fleet.New(fleet.Config{NodeID: id}, fleet.Deps{Registry: f, Steerer: steerer, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		viewers, err := accounts.NewService(accounts.Config{Argon2: testArgon2}, accounts.Deps{Store: fsm.AccountsStore(f, n.Apply, viewerRead), Log: log})
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{}
		cfg.Gateway.NoAccessLog = true
		a, err := New(cfg, Deps{AdminToken: "adm", Node: n, Fleet: fl, Keys: keys, Log: log, Accounts: viewers})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close(context.Background()) })
		h.Store(a)
		c.nodes, c.srvs, c.apis = append(c.nodes, n), append(c.srvs, srv), append(c.apis, a)
	}
	poll.Until(t, 5*time.Second, "n1 to lead", c.nodes[0].IsLeader)
	for i := 1; i < 3; i++ {
		if err := c.nodes[0].AddVoter(cluster.JoinRequest{ID: c.nodes[i].ID(), RaftAddr: string(c.Transport(i).LocalAddr()), HTTPURL: c.srvs[i].URL}); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, "every node to know the leader's URL", func() bool {
		for _, n := range c.nodes {
			if _, u := n.Leader(); u == "" {
				return false
			}
		}
		return true
	})
	return c
}

// do sends a request with a bearer token (none if empty) and returns the
// answer, its body read.
func do(t *testing.T, method, u, bearer string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// doOK is do that retries through elections until a 2xx.
func doOK(t *testing.T, method, u, bearer string, body any) []byte {
	t.Helper()
	var resp *http.Response
	var b []byte
	if !poll.Wait(15*time.Second, func() bool {
		resp, b = do(t, method, u, bearer, body)
		return resp.StatusCode < 300
	}) {
		t.Fatalf("%s %s: %s %s", method, u, resp.Status, b)
	}
	return b
}

// TestPartitionedLeaderAnswers partitions the leader of three nodes and
// shows, route by route, what it still answers: the reads that must be
// current 503 with Retry-After, the others answer from its copy with
// StaleHeader; the majority answers current reads, with a write made
// after the partition, and the healed node does too.
func TestPartitionedLeaderAnswers(t *testing.T) {
	c := startAPICluster(t)
	u := func(i int, path string) string { return c.srvs[i].URL + path }
	title := fillcast.Title{ID: "t1", Name: "One", Status: "ready",
		Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Bandwidth: 3e6, Codecs: "avc1.64001f"}}}
	doOK(t, "POST", u(0, "/v1/titles"), "adm", title)
	var key APIKeyView
	json.Unmarshal(doOK(t, "POST", u(0, "/v1/apikeys"), "adm", APIKeyRequest{Name: "ops", Scope: "operator"}), &key)
	for _, p := range testPlans[:1] {
		doOK(t, "PUT", u(0, "/v1/plans/"+p.ID), "adm", p)
	}
	doOK(t, "POST", u(0, "/v1/accounts"), "", map[string]string{"email": "v@example.com", "password": "correct horse battery", "plan": "basic"})
	var session signInAnswer
	json.Unmarshal(doOK(t, "POST", u(0, "/v1/sessions"), "", map[string]string{"email": "v@example.com", "password": "correct horse battery"}), &session)

	routes := []struct {
		name, path, bearer string
		current            bool // must be current: 503 when cut off
	}{
		{"title by id", "/v1/titles/t1", "adm", true},
		{"signing keys", "/v1/keys", "", true},
		{"api keys", "/v1/apikeys", "adm", true},
		{"a stale-allowed route with an api key", "/v1/titles", key.Key, false},
		{"account and profiles", "/v1/account", session.Token, true},
		{"title list", "/v1/titles", "adm", false},
		{"steering", "/v1/steering/t1", "", false},
		{"sites", "/v1/sites", "adm", false},
		{"plans", "/v1/plans", "", false},
	}
	// Connected, every node answers every route, none stale (retried
	// only through an election on a loaded machine).
	for i := range c.nodes {
		for _, rt := range routes {
			var resp *http.Response
			var b []byte
			if !poll.Wait(10*time.Second, func() bool {
				resp, b = do(t, "GET", u(i, rt.path), rt.bearer, nil)
				return resp.StatusCode == http.StatusOK && resp.Header.Get(StaleHeader) == ""
			}) {
				t.Errorf("n%d %s: %s %s, stale %q; want 200, not stale", i+1, rt.name, resp.Status, b, resp.Header.Get(StaleHeader))
			}
		}
	}

	// Cut off whichever node leads (n1, unless a loaded machine moved
	// it); m1 and m2 are the majority.
	var p int
	poll.Until(t, 10*time.Second, "a leader", func() bool {
		for p = range c.nodes {
			if c.nodes[p].IsLeader() {
				return true
			}
		}
		return false
	})
	m1, m2 := (p+1)%3, (p+2)%3
	c.Isolate(p)
	start := time.Now()
	// At once, while it may still believe it leads, it refuses a read
	// that must be current: it cannot confirm its leadership.
	if resp, b := do(t, "GET", u(p, "/v1/titles/t1"), "adm", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("the leader just cut off: %s %s, want 503", resp.Status, b)
	}
	t.Logf("the leader just cut off refused a title by id after %s", time.Since(start).Round(time.Millisecond))
	// A write through the majority, once it has a leader, and a read of
	// it through the other node.
	title.Name = "One, renamed"
	doOK(t, "PUT", u(m1, "/v1/titles/t1"), "adm", title)
	var got fillcast.Title
	json.Unmarshal(doOK(t, "GET", u(m2, "/v1/titles/t1"), "adm", nil), &got)
	if got.Name != title.Name {
		t.Errorf("majority: title %q after the write, want %q", got.Name, title.Name)
	}
	// The old leader, once it has been out of touch for the heartbeat
	// timeout, says so.
	poll.Until(t, 10*time.Second, "the old leader to report staleness", func() bool {
		resp, _ := do(t, "GET", u(p, "/v1/titles"), "adm", nil)
		return resp.Header.Get(StaleHeader) != ""
	})
	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) {
			began := time.Now()
			resp, b := do(t, "GET", u(p, rt.path), rt.bearer, nil)
			stale := resp.Header.Get(StaleHeader)
			t.Logf("cut-off n%d: %s in %s, %s %q", p+1, resp.Status, time.Since(began).Round(time.Millisecond), StaleHeader, stale)
			if rt.current {
				if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
					t.Errorf("%s: %s %s, want 503 with Retry-After", rt.path, resp.Status, b)
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: %s %s, want 200", rt.path, resp.Status, b)
			}
			secs, err := strconv.ParseFloat(stale, 64)
			// At most the time since the cut (and a heartbeat timeout more
			// had it stopped leading before).
			if err != nil || secs <= 0 || secs > time.Since(start).Seconds()+0.4 {
				t.Errorf("%s: %s %q, want the seconds since the partition, at most %.1f", rt.path, StaleHeader, stale, time.Since(start).Seconds())
			}
		})
	}
	// Its title list still has the old name, and says it may be behind.
	var list titlePage
	json.Unmarshal(func() []byte { _, b := do(t, "GET", u(p, "/v1/titles"), "adm", nil); return b }(), &list)
	if len(list.Titles) != 1 || list.Titles[0].Name != "One" {
		t.Errorf("cut-off n%d lists %+v, want its old copy of t1", p+1, list)
	}

	c.Heal()
	json.Unmarshal(doOK(t, "GET", u(p, "/v1/titles/t1"), "adm", nil), &got)
	if got.Name != title.Name {
		t.Errorf("healed n%d: title %q, want %q", p+1, got.Name, title.Name)
	}
}

// BenchmarkSessionLookup measures what checking a viewer's session costs
// on a follower of three (loopback): from the session cache, as every
// request but one in CacheTTL does, and the lookups of a cache miss
// (session, account, profiles), linearizable, in one read scope.
func BenchmarkSessionLookup(b *testing.B) {
	c := startAPICluster(b)
	ctx := context.Background()
	if err := c.apis[0].d.Accounts.PutPlan(ctx, testPlans[0]); err != nil {
		b.Fatal(err)
	}
	token := signIn(b, c.apis[0], "bench@example.com", "basic")
	var f *API
	for i, n := range c.nodes {
		if !n.IsLeader() {
			f = c.apis[i]
		}
	}
	id, _ := auth.SessionID(token)
	if _, err := f.d.Accounts.Viewer(ctx, token, ""); err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.d.Accounts.Viewer(ctx, token, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		st := f.d.Accounts.Store()
		for b.Loop() {
			ctx := cluster.ReadScope(ctx) // as the authenticator does
			s, err := st.Session(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.Account(ctx, s.Account); err != nil {
				b.Fatal(err)
			}
			if _, err := st.Profiles(ctx, s.Account); err != nil {
				b.Fatal(err)
			}
		}
	})
}
