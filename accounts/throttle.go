package accounts

import (
	"sync"
	"time"
)

// throttle counts failures per key in fixed windows: more than limit
// failures within a window block the key until the window ends.
type throttle struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	m      map[string]*failures
}

type failures struct {
	start time.Time
	n     int
}

// maxThrottleKeys bounds the table; past it, ended windows are swept.
const maxThrottleKeys = 100_000

func newThrottle(limit int, window time.Duration) *throttle {
	return &throttle{limit: limit, window: window, m: make(map[string]*failures)}
}

// blocked reports whether any of keys is blocked at now, and for how long.
func (t *throttle) blocked(keys []string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		f := t.m[k]
		if f == nil || now.Sub(f.start) >= t.window || f.n < t.limit {
			continue
		}
		if w := f.start.Add(t.window).Sub(now); w > wait {
			wait = w
		}
	}
	return wait, wait > 0
}

// fail counts a failure against every key.
func (t *throttle) fail(keys []string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxThrottleKeys {
		for k, f := range t.m {
			if now.Sub(f.start) >= t.window {
				delete(t.m, k)
			}
		}
	}
	for _, k := range keys {
		f := t.m[k]
		if f == nil || now.Sub(f.start) >= t.window {
			if len(t.m) >= maxThrottleKeys {
				continue // full of live windows: count no more keys
			}
			f = &failures{start: now}
			t.m[k] = f
		}
		f.n++
	}
}
