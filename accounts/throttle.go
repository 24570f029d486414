package accounts

import (
	"sync"
	"time"
)

// throttle counts failures per key in fixed windows: limit failures
// within a window block the key until the window ends. A strict key (an
// email) also counts its attempts in flight, so that concurrent guesses
// at one account cannot all pass the check before the first fails; a
// loose key (a client address, which many viewers may share behind one
// NAT) counts failures only.
type throttle struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	m      map[string]*failures
}

type failures struct {
	start    time.Time
	n        int // failures in the window from start
	inflight int // attempts under way (strict keys)
}

// maxThrottleKeys bounds the table; past it, idle ended windows are swept.
const maxThrottleKeys = 100_000

func newThrottle(limit int, window time.Duration) *throttle {
	return &throttle{limit: limit, window: window, m: make(map[string]*failures)}
}

// entry returns k's counts in the window of now, made if needed; nil
// when the table is full of live windows.
func (t *throttle) entry(k string, now time.Time) *failures {
	f := t.m[k]
	if f != nil && now.Sub(f.start) < t.window {
		return f
	}
	if f == nil && len(t.m) >= maxThrottleKeys {
		for k, f := range t.m {
			if now.Sub(f.start) >= t.window && f.inflight == 0 {
				delete(t.m, k)
			}
		}
		if len(t.m) >= maxThrottleKeys {
			return nil
		}
	}
	inflight := 0
	if f != nil {
		inflight = f.inflight
	}
	f = &failures{start: now, inflight: inflight}
	t.m[k] = f
	return f
}

// attempt begins an attempt: refused, with how long until the window
// ends, when a key is blocked; else the strict keys count it in flight
// until done.
func (t *throttle) attempt(strict, loose []string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	check := func(k string, inflight bool) {
		f := t.m[k]
		if f == nil || now.Sub(f.start) >= t.window {
			return
		}
		n := f.n
		if inflight {
			n += f.inflight
		}
		if n >= t.limit {
			wait = max(wait, f.start.Add(t.window).Sub(now))
		}
	}
	for _, k := range strict {
		check(k, true)
	}
	for _, k := range loose {
		check(k, false)
	}
	if wait > 0 {
		return wait, true
	}
	for _, k := range strict {
		if f := t.entry(k, now); f != nil {
			f.inflight++
		}
	}
	return 0, false
}

// done ends an attempt begun by attempt, counting a failure against
// every key when it failed.
func (t *throttle) done(strict, loose []string, now time.Time, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range strict {
		if f := t.m[k]; f != nil && f.inflight > 0 {
			f.inflight--
		}
	}
	if !failed {
		return
	}
	for _, keys := range [][]string{strict, loose} {
		for _, k := range keys {
			if f := t.entry(k, now); f != nil {
				f.n++
			}
		}
	}
}
