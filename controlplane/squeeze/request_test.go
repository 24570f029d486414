package squeeze

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/fsm"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string // "" valid; else a part of the error
	}{
		{"full", `{"appliance":"a1","step_percent":5,"step":"10s","max_p99_ms":50,"max_error_ratio":0.01}`, ""},
		{"defaults", `{"appliance":"a1"}`, ""},
		{"no appliance", `{"step":"10s"}`, "appliance is required"},
		{"bad appliance", `{"appliance":"a/1"}`, "appliance:"},
		{"unknown field", `{"appliance":"a1","steps":3}`, `unknown field "steps"`},
		{"two objects", `{"appliance":"a1"}{}`, "unexpected data"},
		{"not json", `appliance=a1`, "body:"},
		{"short step", `{"appliance":"a1","step":"500ms"}`, "step 500ms is shorter than 1s"},
		{"long step", `{"appliance":"a1","step":"2h"}`, "longer than 1h0m0s"},
		{"step not a duration", `{"appliance":"a1","step":"10"}`, `step "10" is not a duration`},
		{"step percent over 100", `{"appliance":"a1","step_percent":120}`, "step_percent 120 is not in (0, 100]"},
		{"step percent negative", `{"appliance":"a1","step_percent":-5}`, "step_percent -5 is not in (0, 100]"},
		{"step percent tiny", `{"appliance":"a1","step_percent":0.01}`, "more than 1,000 steps"},
		{"negative p99", `{"appliance":"a1","max_p99_ms":-1}`, "max_p99_ms -1"},
		{"error ratio over 1", `{"appliance":"a1","max_error_ratio":2}`, "max_error_ratio 2 is not in (0, 1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.body))
			switch {
			case tc.want == "" && (err != nil || r == nil):
				t.Fatalf("Parse = %v, want ok", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Parse = %v, want an error with %q", err, tc.want)
			case err != nil && !errors.Is(err, fsm.ErrInvalid):
				t.Fatalf("Parse = %v, want it to wrap fsm.ErrInvalid", err)
			}
		})
	}
}

func TestRequestSqueeze(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	r := Request{Appliance: "a1"}
	q, err := r.Squeeze("q1", "operator:k1", now)
	if err != nil {
		t.Fatal(err)
	}
	want := fsm.Squeeze{ID: "q1", Appliance: "a1", StepPercent: 5, Step: 10 * time.Second, MaxP99Millis: 50, MaxErrorRatio: 0.01,
		Status: fsm.SqueezeRunning, StartedBy: "operator:k1", Started: now, Updated: now, Version: 1}
	if q.ID != want.ID || q.StepPercent != want.StepPercent || q.Step != want.Step || q.MaxP99Millis != want.MaxP99Millis ||
		q.MaxErrorRatio != want.MaxErrorRatio || q.Status != want.Status || q.StartedBy != want.StartedBy || q.Version != 1 || !q.Started.Equal(now) {
		t.Errorf("Squeeze() = %+v\nwant %+v", q, want)
	}
	if err := (fsm.Command{Op: fsm.OpPutSqueeze, Squeeze: q}).Validate(); err != nil {
		t.Errorf("the fsm refuses a new squeeze: %v", err)
	}
	r = Request{Appliance: "a1", StepPercent: 20, Step: "1m", MaxP99Millis: 80, MaxErrorRatio: 0.05}
	if q, err := r.Squeeze("q2", "", now); err != nil || q.StepPercent != 20 || q.Step != time.Minute || q.MaxP99Millis != 80 || q.MaxErrorRatio != 0.05 {
		t.Errorf("Squeeze() = %+v, %v", q, err)
	}
	if _, err := r.Squeeze("bad id", "", now); !errors.Is(err, fsm.ErrInvalid) {
		t.Errorf("bad id: %v", err)
	}
}

func TestStepPercent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p    float64
		k    int
		want float64
	}{{5, 1, 5}, {5, 20, 100}, {30, 4, 100}, {0.1, 3, 0.3}, {33.3, 3, 99.9}} {
		if got := stepPercent(tc.p, tc.k); got != tc.want {
			t.Errorf("stepPercent(%v, %d) = %v, want %v", tc.p, tc.k, got, tc.want)
		}
	}
}

// FuzzParse: any body parses or is refused with fsm.ErrInvalid, and a
// request that parses makes a record the fsm accepts.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"appliance":"a1","step_percent":5,"step":"10s","max_p99_ms":50,"max_error_ratio":0.01}`,
		`{"appliance":"a1"}`, `{"appliance":"a1","step":"1h"}`, `{"step_percent":1e308}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			if !errors.Is(err, fsm.ErrInvalid) {
				t.Fatalf("Parse(%q) = %v, want an error wrapping fsm.ErrInvalid", b, err)
			}
			return
		}
		q, err := r.Squeeze("q1", "x", time.Unix(0, 0))
		if err != nil {
			t.Fatalf("%q parsed, Squeeze = %v", b, err)
		}
		if err := (fsm.Command{Op: fsm.OpPutSqueeze, Squeeze: q}).Validate(); err != nil {
			t.Fatalf("%q parsed, the fsm refuses %+v: %v", b, q, err)
		}
	})
}
