package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/steering"
	"github.com/hashicorp/raft"
)

// localNode is a single-node state: commands go straight into a real FSM
// in log order, as raft applies them on a cluster of one.
type localNode struct {
	f     *fsm.FSM
	index atomic.Uint64
}

func (n *localNode) Apply(_ context.Context, c fsm.Command) error {
	b, err := c.Encode()
	if err != nil {
		return err
	}
	if r := n.f.Apply(&raft.Log{Index: n.index.Add(1), Data: b}); r != nil {
		return r.(error)
	}
	return nil
}
func (n *localNode) FSM() *fsm.FSM { return n.f }

// Read reads the state (for a squeeze runner's store).
func (n *localNode) Read(fn func(s *fsm.State)) { n.f.Read(fn) }
func (n *localNode) Status() fillcast.ClusterStatus {
	return fillcast.ClusterStatus{ID: "n1", State: "Leader"}
}
func (n *localNode) ServeApply(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNotImplemented)
}
func (n *localNode) ServeJoin(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNotImplemented)
}
func (n *localNode) ServeReadIndex(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNotImplemented)
}

// newTestAPI returns an API over one site with 20 live appliances and a
// ready title t1.
func newTestAPI(tb testing.TB) *API {
	tb.Helper()
	return newTestAPIWith(tb, nil)
}

// newTestAPIWith is newTestAPI with deps changed by more, if not nil.
func newTestAPIWith(tb testing.TB, more func(*Deps)) *API {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The state's change hook tells the API of rule changes, as a node's
	// does.
	var api atomic.Pointer[API]
	node := &localNode{f: fsm.New(func(c fsm.Command) {
		if a := api.Load(); a != nil && (c.Op == fsm.OpPutRule || c.Op == fsm.OpDeleteRule) {
			a.RulesChanged()
		}
	})}
	ctx := context.Background()
	node.Apply(ctx, fsm.Command{Op: fsm.OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"192.0.2.0/24"}}})
	node.Apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: "t1", Name: "One", Status: "ready",
		Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Bandwidth: 3e6, Codecs: "avc1.64001f"}},
		Files:      []fillcast.File{{Path: "poster.jpg", Size: 1000}}}})
	steerer, err := steering.New(steering.Config{Origin: "http://origin:9000"}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	fl, err := fleet.New(fleet.Config{NodeID: "n1", RebuildEvery: 5 * time.Millisecond}, fleet.Deps{Registry: node.f, Steerer: steerer, Log: log})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range 20 {
		id := "a" + string(rune('a'+i))
		node.Apply(ctx, fsm.Command{Op: fsm.OpRegisterAppliance, Registration: &fsm.Registration{ID: id, Site: "isp1", Profile: "storage",
			URLs: []string{"http://" + id + ":8080"}, CredentialHash: auth.HashSecret(id)}})
		fl.Heartbeat(id, fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://" + id + ":8080", Health: "ok"}, true)
	}
	// The fleet runs until the heartbeats are steerable, then stops: no
	// more rebuilds, so the benchmark measures requests alone.
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- fl.Run(fctx) }()
	poll.Until(tb, 10*time.Second, "20 appliances in the steering fleet", func() bool { return fl.Current().Len() == 20 })
	stop()
	<-done
	keys, _ := auth.ParseKeys(strings.NewReader("k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	cfg := Config{}
	cfg.Gateway.NoAccessLog = true
	viewers, err := accounts.NewService(accounts.Config{Argon2: testArgon2}, accounts.Deps{Store: fsm.AccountsStore(node.f, node.Apply, nil), Log: log})
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range testPlans {
		if err := viewers.PutPlan(ctx, p); err != nil {
			tb.Fatal(err)
		}
	}
	d := Deps{AdminToken: "adm", Node: node, Fleet: fl, Keys: keys, Log: log, Accounts: viewers}
	if more != nil {
		more(&d)
	}
	a, err := New(cfg, d)
	if err != nil {
		tb.Fatal(err)
	}
	api.Store(a)
	tb.Cleanup(func() { a.Close(context.Background()) })
	return a
}

// testArgon2 keeps the tests' password hashing cheap.
var testArgon2 = accounts.Argon2{MemoryKiB: 64, Time: 1}

// testPlans are the plans of the test API.
var testPlans = []accounts.Plan{
	{ID: "basic", Name: "Basic", MaxHeight: 480, MaxStreams: 1, Price: accounts.Money{Amount: 799, Currency: "EUR"}, Period: "month"},
	{ID: "premium", Name: "Premium", MaxHeight: 2160, MaxStreams: 4, Downloads: true, Price: accounts.Money{Amount: 1999, Currency: "EUR"}, Period: "month"},
	{ID: "wall", Name: "Video wall", MaxHeight: 2160, MaxStreams: 16, Downloads: true, Price: accounts.Money{Amount: 9999, Currency: "EUR"}, Period: "month"},
}

// signIn creates an account on plan (with a kids second profile when
// kids) and returns a session token for it.
func signIn(tb testing.TB, a *API, email, plan string) string {
	tb.Helper()
	ctx := context.Background()
	if _, err := a.d.Accounts.SignUp(ctx, email, "correct horse battery", plan, netip.Addr{}); err != nil {
		tb.Fatal(err)
	}
	token, _, err := a.d.Accounts.SignIn(ctx, email, "correct horse battery", netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		tb.Fatal(err)
	}
	return token
}

// BenchmarkPlayback measures GET /v1/playback through the whole filter
// chain, without the network, for a signed-in viewer asking again for
// its stream (the lease is reused, without a write).
func BenchmarkPlayback(b *testing.B) {
	a := newTestAPI(b)
	token := signIn(b, a, "bench@example.com", "premium")
	first := httptest.NewRequest("GET", "/v1/playback/t1?protocol=hls", nil)
	first.RemoteAddr = "192.0.2.7:5555"
	first.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	a.ServeHTTP(w, first)
	var pb fillcast.Playback
	if err := json.Unmarshal(w.Body.Bytes(), &pb); err != nil || pb.StreamID == "" {
		b.Fatalf("first playback: %d %s", w.Code, w.Body)
	}
	req := httptest.NewRequest("GET", "/v1/playback/t1?protocol=hls&stream="+pb.StreamID, nil)
	req.RemoteAddr = "192.0.2.7:5555"
	req.Header.Set("Authorization", "Bearer "+token)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
