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
)

// controlPlane records the heartbeats it accepts.
type controlPlane struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []fillcast.Heartbeat
	down atomic.Bool
}

func newControlPlane(t *testing.T) *controlPlane {
	cp := &controlPlane{}
	cp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cp.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
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

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHeartbeatsFailOverAndDrain(t *testing.T) {
	first, second := newControlPlane(t), newControlPlane(t)
	var served atomic.Int64
	a, err := New(Config{
		ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1", AdminToken: "adm",
		ControlPlanes: []string{first.srv.URL, second.srv.URL}, Interval: 20 * time.Millisecond,
		Read: func() Counters {
			n := served.Add(1000)
			return Counters{Requests: n / 1000, Bytes: n, TitleBytes: map[string]int64{"t1": n}, UsedBytes: 5, CapacityBytes: 10}
		},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor(t, func() bool { return len(first.beats()) >= 2 })
	hb := first.beats()[1]
	if hb.Site != "s1" || hb.Profile != "flash" || hb.Health != "ok" || hb.CapacityBytes != 10 || hb.TitleBytes["t1"] != 1000 {
		t.Errorf("heartbeat = %+v", hb)
	}
	first.down.Store(true)
	waitFor(t, func() bool { return len(second.beats()) >= 1 })
	a.SetDraining()
	waitFor(t, func() bool {
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

func TestKeysReachTheAppliance(t *testing.T) {
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
		ID: "a1", Site: "s1", Profile: "storage", URL: "http://127.0.0.1:1", AdminToken: "adm",
		ControlPlanes: []string{srv.URL}, Interval: 10 * time.Millisecond, KeysEvery: time.Millisecond,
		Read: func() Counters { return Counters{} },
		OnKeys: func(k []auth.Key) {
			calls.Add(1)
			ids := []string{k[0].ID}
			got.Store(&ids)
		},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	waitFor(t, func() bool { return a.Acked() >= 5 })
	cancel()
	<-done
	if p := got.Load(); p == nil || (*p)[0] != "k2" || calls.Load() != 1 {
		t.Errorf("OnKeys got %v in %d calls; want k2 once (unchanged keys are not handed over again)", p, calls.Load())
	}
}

func TestHeartbeatHitRatioIsPerInterval(t *testing.T) {
	var c Counters
	now := time.Unix(1000, 0)
	a, err := New(Config{
		ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1", ControlPlanes: []string{"http://127.0.0.1:1"},
		Read: func() Counters { return c }, Now: func() time.Time { return now },
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	var c Counters
	a, err := New(Config{
		ID: "a1", Site: "s1", Profile: "flash", URL: "http://127.0.0.1:1", ControlPlanes: []string{"http://127.0.0.1:1"},
		Read: func() Counters { return c },
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
