package squeeze

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/hashicorp/raft"
)

// memStore is a Store over a real FSM: commands are encoded and applied
// as raft would apply them, one at a time.
type memStore struct {
	mu    sync.Mutex
	f     *fsm.FSM
	index uint64
}

var _ Store = (*memStore)(nil)

func newStore(t *testing.T, appliances ...string) *memStore {
	m := &memStore{f: fsm.New(nil)}
	for _, id := range appliances {
		reg := &fsm.Registration{ID: id, Site: "isp1", Profile: "flash", URLs: []string{"http://127.0.0.1:8080"}, CredentialHash: auth.HashSecret("cred-" + id)}
		if err := m.Apply(context.Background(), fsm.Command{Op: fsm.OpRegisterAppliance, Registration: reg}); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func (m *memStore) Read(fn func(s *fsm.State)) { m.f.Read(fn) }

func (m *memStore) Apply(ctx context.Context, c fsm.Command) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := c.Encode()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.index++
	res := m.f.Apply(&raft.Log{Index: m.index, Data: b})
	m.mu.Unlock()
	if err, ok := res.(error); ok {
		return err
	}
	return nil
}

func (m *memStore) squeeze(id string) *fsm.Squeeze {
	var q *fsm.Squeeze
	m.Read(func(s *fsm.State) { q = s.Squeezes[id] })
	return q
}

// canary returns the share of squeeze id's canary rule, 0 without one.
func (m *memStore) canary(id string) float64 {
	var p float64
	m.Read(func(s *fsm.State) {
		if r := s.Rules[RuleID(id)]; r != nil {
			p = r.Percent
		}
	})
	return p
}

// slowAppliance is an injected slow appliance: its stats follow the share
// of playbacks the squeeze's canary rule sends it, as its heartbeats
// would. A fresh heartbeat is seen at every read unless silent.
type slowAppliance struct {
	store     *memStore
	squeeze   string
	p99       func(percent float64) float64
	errs      func(percent float64) float64
	silent    atomic.Bool
	lastBeat  time.Time
	lastBeatM sync.Mutex
}

func (a *slowAppliance) Appliance(id string) (Stats, bool) {
	a.lastBeatM.Lock()
	defer a.lastBeatM.Unlock()
	if !a.silent.Load() {
		a.lastBeat = time.Now()
	}
	p := a.store.canary(a.squeeze)
	st := Stats{P99Millis: a.p99(p), RPS: 40 * p, Seen: a.lastBeat}
	if a.errs != nil {
		st.ErrorRatio = a.errs(p)
	}
	return st, true
}

func linearP99(p float64) float64 { return 10 + 2*p }

// start runs a Runner with 10 ms ticks until the test ends and returns
// it and the function that stops it (waiting for Run to return).
func start(t *testing.T, store Store, stats StatsSource, leader func() bool) (*Runner, func()) {
	t.Helper()
	r, err := New(Config{Tick: 10 * time.Millisecond}, Deps{Store: store, Stats: stats, Leader: leader})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// newSqueeze is a squeeze of a1 with 100 ms steps.
func newSqueeze(t *testing.T, id string, req Request) *fsm.Squeeze {
	t.Helper()
	req.Appliance = "a1"
	q, err := req.Squeeze(id, "operator:k1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	q.Step = 100 * time.Millisecond
	return q
}

func percents(q *fsm.Squeeze) []float64 {
	var out []float64
	for _, s := range q.Steps {
		out = append(out, s.Percent)
	}
	return out
}

func waitFinished(t *testing.T, store *memStore, id string) *fsm.Squeeze {
	t.Helper()
	var q *fsm.Squeeze
	poll.Until(t, 10*time.Second, "squeeze "+id+" to finish", func() bool {
		q = store.squeeze(id)
		return q != nil && q.Finished() && store.canary(id) == 0
	})
	return q
}

func TestSqueezeOutcomes(t *testing.T) {
	t.Parallel()
	constant := func(v float64) func(float64) float64 { return func(float64) float64 { return v } }
	tests := []struct {
		name     string
		req      Request
		p99      func(float64) float64
		errs     func(float64) float64
		status   string
		reason   string
		steps    []float64
		held     float64
		crossedP float64 // the step that crossed, 0 for none
	}{
		{"slow appliance stops at the first step over 50 ms", Request{}, linearP99, nil, fsm.SqueezeStopped,
			"p99 60 ms > 50 ms at 25 %", []float64{5, 10, 15, 20, 25}, 20, 25},
		{"error ratio crossing", Request{StepPercent: 10}, constant(20), func(p float64) float64 { return 0.001 * p }, fsm.SqueezeStopped,
			"error ratio 0.02 > 0.01 at 20 %", []float64{10, 20}, 10, 20},
		{"first step crosses", Request{MaxP99Millis: 5}, linearP99, nil, fsm.SqueezeStopped,
			"p99 20 ms > 5 ms at 5 %", []float64{5}, 0, 5},
		{"completes at 100 %", Request{StepPercent: 30}, constant(20), nil, fsm.SqueezeCompleted,
			"held 100 % within the bounds", []float64{30, 60, 90, 100}, 100, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := newStore(t, "a1")
			stats := &slowAppliance{store: store, squeeze: "q1", p99: tc.p99, errs: tc.errs}
			var leader atomic.Bool
			leader.Store(true)
			r, _ := start(t, store, stats, leader.Load)
			if err := r.Start(context.Background(), newSqueeze(t, "q1", tc.req)); err != nil {
				t.Fatal(err)
			}
			q := waitFinished(t, store, "q1")
			if q.Status != tc.status || !strings.HasPrefix(q.Reason, tc.reason) {
				t.Errorf("finished %s %q, want %s %q", q.Status, q.Reason, tc.status, tc.reason)
			}
			if got := percents(q); !equal(got, tc.steps) {
				t.Errorf("steps at %v %%, want %v", got, tc.steps)
			}
			if q.HeldPercent != tc.held || q.HeldRPS != 40*tc.held {
				t.Errorf("held %v %% at %v rps, want %v %% at %v", q.HeldPercent, q.HeldRPS, tc.held, 40*tc.held)
			}
			for i, s := range q.Steps {
				if s.Crossed != (s.Percent == tc.crossedP) || s.P99Millis != tc.p99(s.Percent) || s.At.IsZero() {
					t.Errorf("step %d: %+v", i, s)
				}
			}
			if q.Percent != 0 || !q.StepStarted.IsZero() {
				t.Errorf("finished squeeze still at %v %% since %v", q.Percent, q.StepStarted)
			}
			store.Read(func(s *fsm.State) {
				var puts, deletes int
				for _, e := range s.RuleLog {
					if e.ID == RuleID("q1") && e.By == "squeeze:q1" {
						if e.Op == "put" {
							puts++
						} else {
							deletes++
						}
					}
				}
				if puts != len(tc.steps) || deletes != 1 {
					t.Errorf("audit log: %d puts and %d deletions of the canary rule, want %d and 1", puts, deletes, len(tc.steps))
				}
			})
		})
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
