package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/internal/poll"
)

// controlPlane is a control-plane node that records the heartbeats it
// accepts. GET /v1/cluster lists the nodes of members, when set.
type controlPlane struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []fillcast.Heartbeat
	down    atomic.Bool
	members func() []string
}

func newControlPlane(t *testing.T) *controlPlane {
	cp := &controlPlane{}
	cp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cp.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/v1/cluster" && cp.members != nil {
			var st fillcast.ClusterStatus
			for _, u := range cp.members() {
				st.Members = append(st.Members, fillcast.ClusterMember{HTTPURL: u})
			}
			json.NewEncoder(w).Encode(st)
			return
		}
		if r.URL.Path != "/v1/appliances/a1/heartbeat" || r.Header.Get("Authorization") != "Bearer adm" {
			http.Error(w, "bad request", 400)
			return
		}
		var hb fillcast.Heartbeat
		if err := json.NewDecoder(r.Body).Decode(&hb); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		cp.mu.Lock()
		cp.got = append(cp.got, hb)
		cp.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(cp.srv.Close)
	return cp
}

func (cp *controlPlane) beats() []fillcast.Heartbeat {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]fillcast.Heartbeat(nil), cp.got...)
}

// newClient returns a control-plane client of urls with the admin token.
func newClient(t *testing.T, urls ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{URLs: urls}, client.Deps{Token: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// run runs a until the test ends.
func run(t *testing.T, a *Agent) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestHeartbeatsFailOverAndDrain(t *testing.T) {
	t.Parallel()
	first, second := newControlPlane(t), newControlPlane(t)
	var served atomic.Int64
	a, err := New(Config{
		ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1", Interval: 20 * time.Millisecond,
	}, Deps{
		ControlPlane: newClient(t, first.srv.URL, second.srv.URL), Log: quiet(),
		Read: func() Counters {
			n := served.Add(1000)
			return Counters{Requests: n / 1000, Bytes: n, TitleBytes: map[string]int64{"t1": n}, UsedBytes: 5, CapacityBytes: 10}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)

	poll.Until(t, 10*time.Second, "two beats at the first node", func() bool { return len(first.beats()) >= 2 })
	hb := first.beats()[1]
	if hb.Site != "s1" || hb.Profile != "flash" || hb.Health != "ok" || hb.CapacityBytes != 10 || hb.TitleBytes["t1"] != 1000 {
		t.Errorf("heartbeat = %+v", hb)
	}
	first.down.Store(true)
	poll.Until(t, 10*time.Second, "a beat at the second node", func() bool { return len(second.beats()) >= 1 })
	a.SetDraining()
	poll.Until(t, 10*time.Second, "a draining beat", func() bool {
		b := second.beats()
		return len(b) > 0 && b[len(b)-1].Health == fillcast.HealthDraining
	})
	// No title bytes are lost across the failover: every 1000 is counted once.
	var total int64
	for _, b := range append(first.beats(), second.beats()...) {
		total += b.TitleBytes["t1"]
	}
	if total%1000 != 0 || total == 0 {
		t.Errorf("title bytes sum %d", total)
	}
}

// TestBeatsGoOnWhenTheSeedDies: an appliance given only node 1's URL
// learns the other nodes from it, and its heartbeats keep flowing when
// node 1 dies.
func TestBeatsGoOnWhenTheSeedDies(t *testing.T) {
	t.Parallel()
	nodes := []*controlPlane{newControlPlane(t), newControlPlane(t), newControlPlane(t)}
	members := func() []string { return []string{nodes[0].srv.URL, nodes[1].srv.URL, nodes[2].srv.URL} }
	for _, n := range nodes {
		n.members = members
	}
	cp := newClient(t, nodes[0].srv.URL)
	a, err := New(Config{ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1", Interval: 10 * time.Millisecond},
		Deps{ControlPlane: cp, Read: func() Counters { return Counters{} }, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	poll.Until(t, 10*time.Second, "the client to learn every node", func() bool { return len(cp.Members()) == 3 })
	nodes[0].srv.CloseClientConnections()
	nodes[0].srv.Close()
	acked := a.Acked()
	poll.Until(t, 10*time.Second, "beats after node 1 died", func() bool {
		return a.Acked() >= acked+5 && len(nodes[1].beats())+len(nodes[2].beats()) >= 5
	})
}

func TestKeysReachTheAppliance(t *testing.T) {
	t.Parallel()
	var got atomic.Pointer[[]string]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer adm" {
			http.Error(w, "no", 401)
			return
		}
		if r.URL.Path == "/v1/keys" {
			io.WriteString(w, `{"keys":[{"id":"k2","secret":"`+strings.Repeat("cd", 32)+`"}]}`)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	var calls atomic.Int64
	a, err := New(Config{
		ID: "a1", Site: "s1", Profile: "storage", URL: "http://127.0.0.1:1",
		Interval: 10 * time.Millisecond, KeysEvery: time.Millisecond,
	}, Deps{
		ControlPlane: newClient(t, srv.URL), Log: quiet(),
		Read: func() Counters { return Counters{} },
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
	if p := got.Load(); p == nil || (*p)[0] != "k2" || calls.Load() != 1 {
		t.Errorf("OnKeys got %v in %d calls; want k2 once (unchanged keys are not handed over again)", p, calls.Load())
	}
}

func TestHeartbeatHitRatioIsPerInterval(t *testing.T) {
	t.Parallel()
	var c Counters
	now := time.Unix(1000, 0)
	a, err := New(Config{ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1"}, Deps{
		ControlPlane: newClient(t, "http://127.0.0.1:1"), Log: quiet(),
		Read: func() Counters { return c }, Now: func() time.Time { return now },
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

// TestHeartbeatCarriesCompleteTitles: the fill plan's version and the
// titles held in full go out with every beat, for steering.
func TestHeartbeatCarriesCompleteTitles(t *testing.T) {
	t.Parallel()
	var c Counters
	a, err := New(Config{ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1"}, Deps{
		ControlPlane: newClient(t, "http://127.0.0.1:1"), Log: quiet(),
		Read: func() Counters { return c },
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
