// Package poll is how Fillcast's tests wait for something to happen: they
// check the condition every few milliseconds until it holds or a deadline
// passes, and never sleep a fixed time hoping it was enough. A test that
// waits this way is as fast as the machine allows and fails only when the
// condition really does not come.
package poll

import (
	"testing"
	"time"
)

// Interval is the time between two checks of a condition.
const Interval = 5 * time.Millisecond

// Until calls cond until it returns true and fails t if that has not
// happened within timeout; what names the condition in the failure.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Wait(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// UntilNil calls fn until it returns nil and fails t with fn's last error
// if that has not happened within timeout.
func UntilNil(t testing.TB, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	var err error
	if !Wait(timeout, func() bool { err = fn(); return err == nil }) {
		t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
	}
}

// Wait calls cond until it returns true or timeout passes, and reports
// whether it did: for callers that are not tests (benchmarks, tools).
func Wait(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(Interval)
	}
	return true
}
