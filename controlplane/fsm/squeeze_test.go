package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func squeezeRecord(id, appliance string, version uint64, status string) *Squeeze {
	return &Squeeze{ID: id, Appliance: appliance, StepPercent: 5, Step: 10 * time.Second, MaxP99Millis: 50,
		MaxErrorRatio: 0.01, Status: status, Version: version,
		Started: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
}

func TestSqueezeWrites(t *testing.T) {
	t.Parallel()
	f := New(nil)
	tests := []struct {
		name string
		q    *Squeeze
		want error // nil, ErrStale, ErrExists or ErrInvalid
	}{
		{"new", squeezeRecord("q1", "a1", 1, SqueezeRunning), nil},
		{"new again", squeezeRecord("q1", "a1", 1, SqueezeRunning), ErrStale},
		{"skips a version", squeezeRecord("q1", "a1", 3, SqueezeRunning), ErrStale},
		{"second on the appliance", squeezeRecord("q2", "a1", 1, SqueezeRunning), ErrExists},
		{"other appliance", squeezeRecord("q3", "a2", 1, SqueezeRunning), nil},
		{"next version", squeezeRecord("q1", "a1", 2, SqueezeRunning), nil},
		{"finish", squeezeRecord("q1", "a1", 3, SqueezeStopped), nil},
		{"revive", squeezeRecord("q1", "a1", 4, SqueezeRunning), ErrInvalid},
		{"appliance free again", squeezeRecord("q2", "a1", 1, SqueezeRunning), nil},
		{"no step", &Squeeze{ID: "q9", Appliance: "a9", StepPercent: 5, MaxP99Millis: 50, Status: SqueezeRunning, Version: 1}, ErrInvalid},
		{"bad status", squeezeRecord("q9", "a9", 1, "paused"), ErrInvalid},
	}
	for i, tt := range tests {
		r := f.Apply(logOf(t, uint64(i+1), Command{Op: OpPutSqueeze, Squeeze: tt.q}))
		err, _ := r.(error)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: Apply = %v, want %v", tt.name, err, tt.want)
		}
	}
	f.Read(func(s *State) {
		if q := s.Squeezes["q1"]; q == nil || q.Version != 3 || q.Status != SqueezeStopped {
			t.Errorf("q1 = %+v, want version 3 stopped", q)
		}
	})
}

func TestSqueezesBounded(t *testing.T) {
	t.Parallel()
	f := New(nil)
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	i := uint64(0)
	put := func(q *Squeeze) {
		i++
		if r := f.Apply(logOf(t, i, Command{Op: OpPutSqueeze, Squeeze: q})); r != nil {
			t.Fatalf("put %s: %v", q.ID, r)
		}
	}
	put(squeezeRecord("running", "a0", 1, SqueezeRunning))
	for n := range KeptSqueezes + 10 {
		q := squeezeRecord(fmt.Sprintf("q%03d", n), fmt.Sprintf("a%d", n+1), 1, SqueezeCompleted)
		q.Updated = start.Add(time.Duration(n) * time.Minute)
		put(q)
	}
	g := snapshotCopy(t, f)
	for name, x := range map[string]*FSM{"live": f, "restored": g} {
		x.Read(func(s *State) {
			if len(s.Squeezes) != KeptSqueezes+1 || s.Squeezes["running"] == nil {
				t.Errorf("%s: %d squeezes, want %d finished and the running one", name, len(s.Squeezes), KeptSqueezes)
			}
			if s.Squeezes["q009"] != nil || s.Squeezes["q010"] == nil {
				t.Errorf("%s: want the 10 oldest finished forgotten", name)
			}
			if q := s.Squeezes["q010"]; q != nil && q.Step != 10*time.Second {
				t.Errorf("%s: step %v after a round trip, want 10s", name, q.Step)
			}
		})
	}
}

func TestSqueezeJSON(t *testing.T) {
	t.Parallel()
	q := squeezeRecord("q1", "a1", 1, SqueezeRunning)
	q.Steps = []SqueezeStep{{Percent: 5, RPS: 100, P99Millis: 20, ErrorRatio: 0.001, At: q.Started}}
	b, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"step":"10s"`, `"max_p99_ms":50`, `"p99_ms":20`, `"step_percent":5`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back Squeeze
	if err := json.Unmarshal(b, &back); err != nil || back.Step != q.Step || len(back.Steps) != 1 || back.Steps[0] != q.Steps[0] {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"step":"ten"}`), &back); err == nil {
		t.Error("step \"ten\" decoded without error")
	}
}
