package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/latency"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/controlplane/client/clienttest"
	"github.com/fillcast/fillcast/internal/poll"
)

// newClient returns a control-plane client of urls with the admin token.
func newClient(t *testing.T, urls ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{URLs: urls}, client.Deps{Token: clienttest.Token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// run runs a until the test ends.
func run(t *testing.T, a *Agent) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestHeartbeatsFailOverAndDrain(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 2)
	first, second := cl.Nodes()[0], cl.Nodes()[1]
	var served atomic.Int64
	a, err := New(Config{
		ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1", Interval: 20 * time.Millisecond,
	}, Deps{
		ControlPlane: newClient(t, cl.URLs()...),
		Read: func() Counters {
			n := served.Add(1000)
			return Counters{Requests: n / 1000, Bytes: n, TitleBytes: map[string]int64{"t1": n}, UsedBytes: 5, CapacityBytes: 10}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)

	poll.Until(t, 10*time.Second, "two beats at the first node", func() bool { return len(first.Heartbeats()) >= 2 })
	hb := first.Heartbeats()[1]
	if hb.Site != "s1" || hb.Profile != "flash" || hb.Health != "ok" || hb.CapacityBytes != 10 || hb.TitleBytes["t1"] != 1000 {
		t.Errorf("heartbeat = %+v", hb)
	}
	first.Fail(http.StatusServiceUnavailable)
	poll.Until(t, 10*time.Second, "a beat at the second node", func() bool { return len(second.Heartbeats()) >= 1 })
	a.SetDraining()
	poll.Until(t, 10*time.Second, "a draining beat", func() bool {
		b := second.Heartbeats()
		return len(b) > 0 && b[len(b)-1].Health == fillcast.HealthDraining
	})
}

// TestTitleBytesCarriedOver: the title bytes of beats no node accepted
// go out with the next accepted one, so the control plane counts every
// byte served once.
func TestTitleBytesCarriedOver(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 2)
	var served int64
	a, err := New(Config{ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1"}, Deps{
		ControlPlane: newClient(t, cl.URLs()...),
		Read: func() Counters {
			served += 1000
			return Counters{TitleBytes: map[string]int64{"t1": served}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	down := func(status int) {
		for _, n := range cl.Nodes() {
			n.Fail(status)
		}
	}
	for i, up := range []bool{true, true, false, false, false, true, false, true, true} {
		if up {
			down(0)
		} else {
			down(http.StatusServiceUnavailable)
		}
		acked := a.Acked()
		a.beat(ctx)
		if accepted := a.Acked() > acked; accepted != up {
			t.Fatalf("beat %d: accepted %v, want %v", i, accepted, up)
		}
	}
	var total int64
	for _, b := range cl.Heartbeats() {
		total += b.TitleBytes["t1"]
	}
	if total != served {
		t.Errorf("accepted beats carry %d title bytes, %d were served", total, served)
	}
}

// TestBeatsGoOnWhenTheSeedDies: an appliance given only node 1's URL
// learns the other nodes from it, and its heartbeats keep flowing when
// node 1 dies.
func TestBeatsGoOnWhenTheSeedDies(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 3)
	nodes := cl.Nodes()
	cp := newClient(t, nodes[0].URL)
	a, err := New(Config{ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1", Interval: 10 * time.Millisecond},
		Deps{ControlPlane: cp, Read: func() Counters { return Counters{} }})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	poll.Until(t, 10*time.Second, "the client to learn every node", func() bool { return len(cp.Members()) == 3 })
	nodes[0].Kill()
	acked := a.Acked()
	poll.Until(t, 10*time.Second, "beats after node 1 died", func() bool {
		return a.Acked() >= acked+5 && len(nodes[1].Heartbeats())+len(nodes[2].Heartbeats()) >= 5
	})
}

func TestKeysReachTheAppliance(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	var got atomic.Pointer[[]string]
	var calls atomic.Int64
	a, err := New(Config{
		ID: "a1", Site: "s1", Profile: "storage", URL: "http://127.0.0.1:1",
		Interval: 10 * time.Millisecond, KeysEvery: time.Millisecond,
	}, Deps{
		ControlPlane: newClient(t, cl.URLs()...),
		Read:         func() Counters { return Counters{} },
		OnKeys: func(k []auth.Key) {
			calls.Add(1)
			ids := []string{k[0].ID}
			got.Store(&ids)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	poll.Until(t, 10*time.Second, "five accepted beats", func() bool { return a.Acked() >= 5 })
	cancel()
	<-done
	if p, want := got.Load(), cl.Keys()[0].ID; p == nil || (*p)[0] != want || calls.Load() != 1 {
		t.Errorf("OnKeys got %v in %d calls; want %s once (unchanged keys are not handed over again)", p, calls.Load(), want)
	}
}

// TestHungKeysDoNotHoldTheBeats: a node that takes heartbeats but hangs
// on the keys costs the beats one Interval, not the client's Timeout.
func TestHungKeysDoNotHoldTheBeats(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	cl.Nodes()[0].SetFault(clienttest.Fault{Path: "/v1/keys", Delay: time.Hour})
	cp, err := client.New(client.Config{URLs: cl.URLs(), Timeout: time.Hour}, client.Deps{Token: clienttest.Token})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1", Interval: 20 * time.Millisecond}, Deps{
		ControlPlane: cp, Read: func() Counters { return Counters{} }, OnKeys: func([]auth.Key) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	poll.Until(t, 30*time.Second, "beats while the keys hang", func() bool { return a.Acked() >= 5 })
}

func TestHeartbeatHitRatioIsPerInterval(t *testing.T) {
	t.Parallel()
	var c Counters
	now := time.Unix(1000, 0)
	a, err := New(Config{ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1"}, Deps{
		ControlPlane: newClient(t, "http://127.0.0.1:1"),
		Read:         func() Counters { return c }, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		hits, lookups    int64
		planned, present int64
		wantRatio        float64
	}{
		{90, 100, 1000, 10, 0.9},    // 90 of the first 100 lookups hit
		{90, 100, 1000, 500, 0},     // no lookups since: no ratio
		{140, 200, 1000, 1000, 0.5}, // 50 of the next 100
	}
	for i, tt := range tests {
		c = Counters{Hits: tt.hits, Lookups: tt.lookups, FillPlannedBytes: tt.planned, FillPresentBytes: tt.present}
		now = now.Add(2 * time.Second)
		hb := a.Heartbeat()
		if hb.HitRatio != tt.wantRatio || hb.FillPlannedBytes != tt.planned || hb.FillPresentBytes != tt.present {
			t.Errorf("beat %d: hit ratio %v, fill %d/%d; want %v, %d/%d", i, hb.HitRatio, hb.FillPresentBytes, hb.FillPlannedBytes, tt.wantRatio, tt.present, tt.planned)
		}
	}
}

// TestHeartbeatLatencyIsPerInterval: a beat's requests, p99 and error
// ratio are those of the requests since the previous beat; after a beat
// no node accepted, the next one covers both intervals.
func TestHeartbeatLatencyIsPerInterval(t *testing.T) {
	t.Parallel()
	var h latency.Histogram
	var failed uint64
	cp := &flakyCP{}
	a, err := New(Config{ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1"}, Deps{
		ControlPlane: cp,
		Read:         func() Counters { return Counters{Latency: h.Snapshot(), Failed: failed} },
	})
	if err != nil {
		t.Fatal(err)
	}
	record := func(n int, d time.Duration) {
		for range n {
			h.Record(d)
		}
	}
	tests := []struct {
		name     string
		fast     int           // requests at 1 ms
		slow     int           // requests at slowTook
		slowTook time.Duration // 0: none
		failed   uint64
		refused  bool // no node accepts the beat
		requests uint64
		p99      time.Duration // as the histogram can tell
		ratio    float64
	}{
		{name: "no requests"},
		{name: "fast", fast: 1000, requests: 1000, p99: time.Millisecond},
		{name: "a slow tail over 1%", fast: 980, slow: 20, slowTook: 250 * time.Millisecond, failed: 10, requests: 1000,
			p99: 250 * time.Millisecond, ratio: 0.01},
		{name: "fast again, the tail forgotten", fast: 500, requests: 500, p99: time.Millisecond},
		{name: "refused", fast: 100, slow: 100, slowTook: 2 * time.Second, failed: 50, refused: true, requests: 200,
			p99: 2 * time.Second, ratio: 0.25},
		{name: "the refused interval carried into the next", fast: 200, failed: 50, requests: 400, p99: 2 * time.Second, ratio: 0.25},
		{name: "more failures than requests: a cut stream of an earlier request", fast: 1, failed: 3, requests: 1,
			p99: time.Millisecond, ratio: 1},
	}
	for _, tt := range tests {
		record(tt.fast, time.Millisecond)
		record(tt.slow, tt.slowTook)
		failed += tt.failed
		cp.refuse.Store(tt.refused)
		a.beat(context.Background())
		hb := cp.last()
		lo, hi := latency.Bounds(latency.Bucket(tt.p99))
		p99 := time.Duration(hb.P99Millis * float64(time.Millisecond))
		if tt.p99 == 0 {
			lo, hi = 0, 0
		}
		if hb.Requests != tt.requests || p99 < lo || p99 > hi || math.Abs(hb.ErrorRatio-tt.ratio) > 1e-9 {
			t.Errorf("%s: requests %d, p99 %v, error ratio %v; want %d, p99 in [%v, %v], %v",
				tt.name, hb.Requests, p99, hb.ErrorRatio, tt.requests, lo, hi, tt.ratio)
		}
	}
}

// flakyCP is a ControlPlane that keeps the last heartbeat posted and
// refuses it when told to.
type flakyCP struct {
	refuse atomic.Bool
	mu     sync.Mutex
	beat   fillcast.Heartbeat
}

func (c *flakyCP) Beat(_ context.Context, _ string, hb fillcast.Heartbeat) (fillcast.HeartbeatReply, error) {
	c.mu.Lock()
	c.beat = hb
	c.mu.Unlock()
	if c.refuse.Load() {
		return fillcast.HeartbeatReply{}, errors.New("refused")
	}
	return fillcast.HeartbeatReply{TakedownSeq: hb.TakedownSeq}, nil
}

func (c *flakyCP) last() fillcast.Heartbeat {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.beat
}

func (*flakyCP) Keys(context.Context) ([]auth.Key, error) { return nil, errors.New("no keys") }

func (*flakyCP) FillPass(context.Context, string) (fillcast.FillPass, error) {
	return fillcast.FillPass{}, errors.New("no pass")
}

// TestHeartbeatCarriesCompleteTitles: the fill plan's version and the
// titles held in full go out with every beat, for steering.
func TestHeartbeatCarriesCompleteTitles(t *testing.T) {
	t.Parallel()
	var c Counters
	a, err := New(Config{ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1"}, Deps{
		ControlPlane: newClient(t, "http://127.0.0.1:1"),
		Read:         func() Counters { return c },
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		version  uint64
		complete []string
		same     bool // left out as unchanged
	}{
		{0, nil, false},
		{3, []string{"t1"}, false},
		{3, []string{"t1"}, true},
		{4, []string{"t1"}, false},
		{4, []string{"t1", "t2"}, false},
		{4, []string{"t1", "t2"}, true},
	}
	for i, tt := range tests {
		c = Counters{PlanVersion: tt.version, CompleteTitles: tt.complete}
		hb := a.Heartbeat()
		want := tt.complete
		if tt.same {
			want = nil
		}
		if hb.PlanVersion != tt.version || hb.CompleteSame != tt.same || fmt.Sprint(hb.CompleteTitles) != fmt.Sprint(want) {
			t.Errorf("beat %d: plan v%d %v same=%v, want v%d %v same=%v", i, hb.PlanVersion, hb.CompleteTitles, hb.CompleteSame, tt.version, want, tt.same)
		}
	}
	// An unchanged list still goes out after resendCompleteEvery beats
	// without it.
	run, longest := 0, 0
	for range 3 * resendCompleteEvery {
		if a.Heartbeat().CompleteSame {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if longest != resendCompleteEvery {
		t.Errorf("%d beats in a row without the list, want %d", longest, resendCompleteEvery)
	}
}

// TestFillPassRenewed: the agent hands over a fill pass from the control
// plane at its start, one that the control plane's public keys verify for
// this appliance, and renews it only once half its life has passed.
func TestFillPassRenewed(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	now := time.Now()
	var mu sync.Mutex
	var passes []fillcast.FillPass
	a, err := New(Config{ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1", Interval: 20 * time.Millisecond}, Deps{
		ControlPlane: newClient(t, cl.URLs()...), Read: func() Counters { return Counters{} },
		OnFillPass: func(p fillcast.FillPass) { mu.Lock(); passes = append(passes, p); mu.Unlock() },
		Now:        func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(passes) }
	poll.Until(t, 10*time.Second, "a fill pass", func() bool { return count() == 1 })
	keys, err := auth.NewKeys(cl.Keys())
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{}, keys.Public())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	first := passes[0]
	mu.Unlock()
	if id, err := v.VerifyFillPass(first.Pass, time.Now()); err != nil || id != "a1" {
		t.Fatalf("the pass handed over: %q, %v", id, err)
	}
	poll.Until(t, 10*time.Second, "a few more beats", func() bool { return a.Acked() >= 5 })
	if n := count(); n != 1 {
		t.Fatalf("%d passes before half the first one's life passed, want 1", n)
	}
	mu.Lock()
	now = now.Add(first.ExpiresAt.Sub(now)/2 + time.Second)
	mu.Unlock()
	poll.Until(t, 10*time.Second, "a renewed pass", func() bool { return count() == 2 })
}
