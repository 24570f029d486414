package breaker

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// event is one step of a scripted breaker history.
type event struct {
	at        time.Duration // since the start
	outcome   byte          // 's' success, 'f' failure, '-' refused expected
	wantState State         // after the event
}

func TestBreaker(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		cfg    Config
		events []event
	}{
		{"ratio needs volume", Config{MinRequests: 4, ErrorRatio: 0.5, Cooldown: time.Second}, []event{
			{0, 'f', Closed}, {0, 'f', Closed}, {0, 's', Closed}, {0, 'f', Open}, {0, '-', Open},
		}},
		{"ratio below threshold stays closed", Config{MinRequests: 4, ErrorRatio: 0.5}, []event{
			{0, 's', Closed}, {0, 's', Closed}, {0, 's', Closed}, {0, 'f', Closed}, {0, 's', Closed},
		}},
		{"max failures regardless of ratio", Config{MinRequests: 1000, MaxFailures: 3, Cooldown: time.Second}, []event{
			{0, 's', Closed}, {0, 'f', Closed}, {0, 's', Closed}, {0, 'f', Closed}, {0, 'f', Open},
		}},
		{"old failures roll out of the window", Config{MaxFailures: 2, Window: 10 * time.Second, Buckets: 10}, []event{
			{0, 'f', Closed}, {11 * time.Second, 'f', Closed}, {12 * time.Second, 'f', Open},
		}},
		{"cooldown then good probe closes", Config{MaxFailures: 1, Cooldown: 5 * time.Second}, []event{
			{0, 'f', Open}, {4 * time.Second, '-', Open}, {5 * time.Second, 's', Closed}, {5 * time.Second, 'f', Open},
		}},
		{"failed probe reopens for a new cooldown", Config{MaxFailures: 1, Cooldown: 5 * time.Second}, []event{
			{0, 'f', Open}, {6 * time.Second, 'f', Open}, {10 * time.Second, '-', Open}, {11 * time.Second, 's', Closed},
		}},
		{"closing forgets the old window", Config{MaxFailures: 2, Cooldown: time.Second}, []event{
			{0, 'f', Closed}, {0, 'f', Open}, {time.Second, 's', Closed}, {time.Second, 'f', Closed},
		}},
		{"two probes must both succeed", Config{MaxFailures: 1, Cooldown: time.Second, Probes: 2}, []event{
			{0, 'f', Open}, {time.Second, 's', HalfOpen}, {time.Second, 's', Closed},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var changes []string
			b, err := New(tt.cfg, func(from, to State) { changes = append(changes, from.String()+">"+to.String()) })
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range tt.events {
				now := base.Add(e.at)
				tk, _, ok := b.Allow(now)
				if e.outcome == '-' {
					if ok {
						t.Fatalf("event %d: Allow = ok, want refused", i)
					}
				} else {
					if !ok {
						t.Fatalf("event %d: Allow refused, want ok (state %v)", i, b.State())
					}
					b.Done(tk, e.outcome == 's', now)
				}
				if got := b.State(); got != e.wantState {
					t.Fatalf("event %d: state = %v, want %v (changes %s)", i, got, e.wantState, strings.Join(changes, " "))
				}
			}
		})
	}
}

func TestHalfOpenAdmitsOnlyProbes(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, err := New(Config{MaxFailures: 1, Cooldown: time.Second, Probes: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	slow, _, _ := b.Allow(now) // admitted while closed, finishes late
	tk, _, _ := b.Allow(now)
	b.Done(tk, false, now)
	now = now.Add(time.Second)
	probe, _, ok := b.Allow(now)
	if !ok || !probe.Probe() {
		t.Fatalf("first request after cooldown: ok %v probe %v, want a probe", ok, probe.Probe())
	}
	if _, _, ok := b.Allow(now); ok {
		t.Fatalf("second request while the probe is out was admitted")
	}
	b.Done(slow, true, now) // stale: must not close the breaker
	if got := b.State(); got != HalfOpen {
		t.Fatalf("state after a stale success = %v, want half-open", got)
	}
	b.Done(probe, true, now)
	if got := b.State(); got != Closed {
		t.Fatalf("state after the probe succeeded = %v, want closed", got)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, _ := New(Config{MaxFailures: 1, Cooldown: 10 * time.Second}, nil)
	tk, _, _ := b.Allow(now)
	b.Done(tk, false, now)
	for _, tt := range []struct{ after, want time.Duration }{{0, 10 * time.Second}, {3 * time.Second, 7 * time.Second}} {
		t.Run(fmt.Sprint(tt.after), func(t *testing.T) {
			_, got, ok := b.Allow(now.Add(tt.after))
			if ok || got != tt.want {
				t.Errorf("Allow = ok %v retry %v, want refused with %v", ok, got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero is defaults", Config{}, ""},
		{"defaults", DefaultConfig(), ""},
		{"negative window", Config{Window: -time.Second}, "window"},
		{"buckets too fine", Config{Window: 5 * time.Millisecond, Buckets: 10}, "under 1ms"},
		{"ratio above one", Config{ErrorRatio: 1.5}, "error ratio"},
		{"negative probes", Config{Probes: -1}, "probes"},
		{"negative cooldown", Config{Cooldown: -1}, "cooldown"},
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
			if err == nil || !strings.HasPrefix(err.Error(), "breaker: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want a breaker: error about %s", err, tt.wantErr)
			}
		})
	}
}

func BenchmarkAllowDone(b *testing.B) {
	br, _ := New(DefaultConfig(), nil)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		tk, _, _ := br.Allow(now)
		br.Done(tk, true, now)
	}
}

func TestStaleOutcomeKeepsNewerBuckets(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, _ := New(Config{MaxFailures: 2, Window: 10 * time.Second, Buckets: 10}, nil)
	now := base.Add(20 * time.Second)
	tk, _, _ := b.Allow(now)
	b.Done(tk, false, now)
	// A success stamped with a start time one window earlier lands on the
	// same slot; it must not erase the recent failure.
	tk, _, _ = b.Allow(now)
	b.Done(tk, true, base.Add(10*time.Second))
	tk, _, _ = b.Allow(now)
	b.Done(tk, false, now)
	if got := b.State(); got != Open {
		t.Fatalf("state = %v, want open after two failures in the window", got)
	}
}
