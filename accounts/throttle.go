package accounts

import (
	"sync"
	"time"
)

// throttle counts attempts per key in fixed windows: limit attempts
// within a window block the key until the window ends. Sign-ins count
// their failures (each attempt, taken back when it succeeds); sign-ups
// every attempt.
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

// attempt counts an attempt against every key, unless one of them holds
// limit attempts in its window already: then it reports how long until
// that window ends. Attempts are counted before they are made, so that
// concurrent attempts cannot all pass the check; forgive takes back the
// ones that succeeded.
func (t *throttle) attempt(keys []string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		f := t.m[k]
		if f == nil || now.Sub(f.start) >= t.window || f.n < t.limit {
			continue
		}
		wait = max(wait, f.start.Add(t.window).Sub(now))
	}
	if wait > 0 {
		return wait, true
	}
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
	return 0, false
}

// forgive takes back an attempt of every key: it succeeded.
func (t *throttle) forgive(keys []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if f := t.m[k]; f != nil && f.n > 0 {
			f.n--
		}
	}
}
