package lifecycle

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// journal records what the parts did, in order.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.lines = append(j.lines, s)
	j.mu.Unlock()
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.lines)
}

// part is a part that writes each step to j. runErr, if set, is what
// its Run returns at once; openErr what its Open returns.
func part(j *journal, name string, openErr, runErr error) Part {
	return Part{
		Name: name,
		Open: func(ctx context.Context) error { j.add("open " + name); return openErr },
		Run: func(ctx context.Context) error {
			j.add("run " + name)
			if runErr != nil {
				return runErr
			}
			<-ctx.Done()
			j.add("stop " + name)
			return ctx.Err()
		},
		Close: func() error { j.add("close " + name); return nil },
	}
}

func TestStopsInReverseOrder(t *testing.T) {
	t.Parallel()
	var j journal
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, part(&j, "a", nil, nil), part(&j, "b", nil, nil), part(&j, "c", nil, nil)) }()
	poll.Until(t, 5*time.Second, "all parts running", func() bool { return len(j.get()) == 6 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v, want nil after a cancel", err)
	}
	got := j.get()[6:]
	want := []string{"stop c", "close c", "stop b", "close b", "stop a", "close a"}
	if !slices.Equal(got, want) {
		t.Fatalf("stop order %v, want %v", got, want)
	}
	// Each part opens before the next one does.
	opens := slices.DeleteFunc(j.get()[:6], func(s string) bool { return !strings.HasPrefix(s, "open") })
	if !slices.Equal(opens, []string{"open a", "open b", "open c"}) {
		t.Fatalf("open order %v", opens)
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	cases := []struct {
		name    string
		parts   func(j *journal) []Part
		wantErr string
		want    []string // the journal after Run returns
	}{
		{
			name: "an open fails: the parts already open stop in reverse, the rest never open",
			parts: func(j *journal) []Part {
				return []Part{part(j, "a", nil, nil), part(j, "b", nil, nil), part(j, "c", boom, nil), part(j, "d", nil, nil)}
			},
			wantErr: "c: boom",
		},
		{
			name: "a run fails: every part stops",
			parts: func(j *journal) []Part {
				return []Part{part(j, "a", nil, nil), part(j, "b", nil, boom), part(j, "c", nil, nil)}
			},
			wantErr: "b: boom",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var j journal
			err := Run(context.Background(), tc.parts(&j)...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, boom) {
				t.Fatalf("Run: %v, want an error wrapping boom that says %q", err, tc.wantErr)
			}
			got := j.get()
			if slices.Contains(got, "open d") {
				t.Errorf("a part after the failed open was opened: %v", got)
			}
			// Whatever opened is closed, last first.
			var opened, closed []string
			for _, s := range got {
				if name, ok := strings.CutPrefix(s, "open "); ok {
					opened = append(opened, name)
				}
				if name, ok := strings.CutPrefix(s, "close "); ok {
					closed = append(closed, name)
				}
			}
			if tc.wantErr == "c: boom" {
				opened = opened[:len(opened)-1] // c failed to open: nothing to close
			}
			slices.Reverse(closed)
			if !slices.Equal(opened, closed) {
				t.Errorf("opened %v but closed (reversed) %v", opened, closed)
			}
		})
	}
}

func TestAPartThatFinishesEarlyStopsNothing(t *testing.T) {
	t.Parallel()
	var j journal
	ctx, cancel := context.WithCancel(context.Background())
	oneShot := Part{Name: "once", Run: func(context.Context) error { j.add("did its work"); return nil }}
	done := make(chan error)
	go func() { done <- Run(ctx, oneShot, part(&j, "server", nil, nil)) }()
	poll.Until(t, 5*time.Second, "both parts ran", func() bool {
		got := j.get()
		return slices.Contains(got, "did its work") && slices.Contains(got, "run server")
	})
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while its context was live", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCancelWhileOpening(t *testing.T) {
	t.Parallel()
	var j journal
	ctx, cancel := context.WithCancel(context.Background())
	slow := Part{Name: "slow", Open: func(ctx context.Context) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}}
	if err := Run(ctx, part(&j, "a", nil, nil), slow, part(&j, "b", nil, nil)); err != nil {
		t.Fatalf("Run: %v, want nil: the stop was asked for", err)
	}
	if got, want := j.get(), []string{"open a", "run a", "stop a", "close a"}; !slices.Equal(got, want) {
		t.Fatalf("journal %v, want %v", got, want)
	}
}
