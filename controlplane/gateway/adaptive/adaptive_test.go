package adaptive

import (
	"strings"
	"testing"
	"time"
)

// sim drives a Limiter with a clock of its own.
type sim struct {
	t   *testing.T
	l   *Limiter
	now time.Time
}

func newSim(t *testing.T, cfg Config) *sim {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &sim{t: t, l: l, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// window runs one sampling window: busy requests in flight at once (all
// the limit when busy is 0), each taking rtt, the last finishing a second
// after the first so that the window closes; it returns the new limit.
func (s *sim) window(busy int, rtt time.Duration, dropped bool) int {
	s.t.Helper()
	if busy == 0 {
		busy = s.l.Limit()
	}
	toks := make([]Token, 0, busy)
	for range busy {
		tok, ok := s.l.Acquire(1)
		if !ok {
			s.t.Fatalf("Acquire refused at %d in flight of limit %d", s.l.InFlight(), s.l.Limit())
		}
		toks = append(toks, tok)
	}
	for i, tok := range toks {
		at := s.now
		if i == len(toks)-1 {
			at = s.now.Add(time.Second)
		}
		s.l.Done(tok, at, rtt, dropped && i == 0)
	}
	s.now = s.now.Add(time.Second)
	return s.l.Limit()
}

// TestRiseFallRecover: the limit grows while latency stays at its floor,
// shrinks when latency grows fivefold, and grows again once it is back.
func TestRiseFallRecover(t *testing.T) {
	s := newSim(t, Config{})
	floor, slow := 2*time.Millisecond, 10*time.Millisecond
	start := s.l.Limit()
	if start != 20 {
		t.Fatalf("initial limit = %d, want 20", start)
	}
	for range 30 {
		s.window(0, floor, false)
	}
	risen := s.l.Limit()
	if risen <= 30 {
		t.Fatalf("limit after 30 quiet windows = %d, want it well above the initial 20", risen)
	}
	if st := s.l.State(); st.ShortRTT != floor || st.LongRTT < floor*9/10 || st.LongRTT > floor*11/10 {
		t.Errorf("state = %+v, want short %v and long about the same", st, floor)
	}
	prev := risen
	for i := range 5 {
		got := s.window(0, slow, false)
		if got >= prev {
			t.Fatalf("slow window %d: limit %d, want below %d", i, got, prev)
		}
		prev = got
	}
	fallen := prev
	if fallen > risen*3/4 {
		t.Errorf("limit after 5 slow windows = %d, want well below %d (about 10 %% less a window)", fallen, risen)
	}
	for range 30 {
		s.window(0, floor, false)
	}
	if got := s.l.Limit(); got <= fallen+5 {
		t.Errorf("limit after latency recovered = %d, want it growing again from %d", got, fallen)
	}
	if st := s.l.State(); st.LongRTT > 2*floor {
		t.Errorf("long RTT %v did not come back toward the floor %v", st.LongRTT, floor)
	}
}

func TestWindows(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		busy    int
		rtt     time.Duration
		dropped bool
		want    func(before, after int) bool
		wantMsg string
	}{
		{"busy and fast grows", Config{}, 0, time.Millisecond, false, func(b, a int) bool { return a > b }, "grow"},
		{"app limited holds", Config{MinSamples: 5}, 5, time.Millisecond, false, func(b, a int) bool { return a == b }, "stay"},
		{"a drop shrinks even when app limited", Config{MinSamples: 5}, 5, time.Millisecond, true, func(b, a int) bool { return a < b }, "shrink"},
		{"too few samples hold", Config{MinSamples: 50}, 0, time.Millisecond, false, func(b, a int) bool { return a == b }, "stay"},
		{"never below the minimum", Config{InitialLimit: 8}, 0, time.Millisecond, true, func(b, a int) bool { return a == 8 }, "stay at 8"},
		{"never above the maximum", Config{InitialLimit: 30, MaxLimit: 30}, 0, time.Millisecond, false, func(b, a int) bool { return a == 30 }, "stay at 30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, tt.cfg)
			// The limit moves by less than one a window at 20: look
			// after three.
			before := s.l.Limit()
			var got int
			for range 3 {
				got = s.window(tt.busy, tt.rtt, tt.dropped)
			}
			if !tt.want(before, got) {
				t.Errorf("limit %d -> %d, want it to %s", before, got, tt.wantMsg)
			}
			if s.l.InFlight() != 0 {
				t.Errorf("in flight = %d after every token came back", s.l.InFlight())
			}
		})
	}
}

func TestAcquireShare(t *testing.T) {
	s := newSim(t, Config{})
	var toks []Token
	for {
		tok, ok := s.l.Acquire(0.5)
		if !ok {
			break
		}
		toks = append(toks, tok)
	}
	if len(toks) != 10 {
		t.Fatalf("half of limit 20 admitted %d, want 10", len(toks))
	}
	for {
		tok, ok := s.l.Acquire(1)
		if !ok {
			break
		}
		toks = append(toks, tok)
	}
	if len(toks) != 20 {
		t.Fatalf("the whole limit admitted %d in all, want 20", len(toks))
	}
	for _, tok := range toks {
		s.l.Release(tok)
	}
	if got := s.l.State(); got.InFlight != 0 || got.Limit != 20 {
		t.Errorf("after releasing: %+v, want nothing in flight and the limit unchanged", got)
	}
}

func TestFixed(t *testing.T) {
	l, err := NewFixed(3)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for range 100 {
		tok, ok := l.Acquire(1)
		if !ok {
			t.Fatal("refused below the limit")
		}
		now = now.Add(time.Second)
		l.Done(tok, now, time.Hour, true)
	}
	if got := l.State(); got.Limit != 3 || got.ShortRTT != 0 {
		t.Errorf("fixed limiter state = %+v, want limit 3 and no RTT", got)
	}
	if _, err := NewFixed(0); err == nil {
		t.Error("NewFixed(0) = nil error")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero", Config{}, ""},
		{"defaults", DefaultConfig(), ""},
		{"negative minimum", Config{MinLimit: -1}, "config MinLimit: "},
		{"max below min", Config{MinLimit: 50, InitialLimit: 50, MaxLimit: 10}, "config MaxLimit: "},
		{"initial below min", Config{MinLimit: 30}, "config InitialLimit: "},
		{"tolerance below one", Config{Tolerance: 0.9}, "config Tolerance: "},
		{"smoothing above one", Config{Smoothing: 1.5}, "config Smoothing: "},
		{"negative window", Config{Window: -time.Second}, "config Window: "},
		{"negative samples", Config{MinSamples: -1}, "config MinSamples: "},
		{"negative long window", Config{LongWindow: -1}, "config LongWindow: "},
		{"negative min rtt", Config{MinRTT: -1}, "config MinRTT: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "adaptive: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want an adaptive: error about %q", err, tt.wantErr)
			}
		})
	}
}
