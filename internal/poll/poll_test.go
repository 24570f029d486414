package poll

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	if !Wait(time.Second, func() bool { return n.Add(1) == 3 }) {
		t.Fatal("Wait gave up on a condition that came true on the third check")
	}
	start := time.Now()
	if Wait(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("Wait reported a condition that never held")
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Fatalf("Wait gave up after %s, before its 20ms timeout", took)
	}
}

// recorder is a testing.TB that records a Fatalf instead of stopping.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
}

func TestUntilNilReportsTheLastError(t *testing.T) {
	t.Parallel()
	r := &recorder{TB: t}
	UntilNil(r, 10*time.Millisecond, "x", func() error { return errors.New("still down") })
	if r.failed == "" {
		t.Fatal("UntilNil did not fail on a function that never succeeded")
	}
	r = &recorder{TB: t}
	UntilNil(r, time.Second, "x", func() error { return nil })
	if r.failed != "" {
		t.Fatalf("UntilNil failed on a function that succeeded: %s", r.failed)
	}
}
