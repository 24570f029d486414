package qoe

import (
	"cmp"
	"slices"
	"time"
)

// slot is one minute of the window: each dimension's sums of that
// minute, by key.
type slot struct {
	used   bool
	minute int64
	keys   [numDims]map[string]*agg
}

// add counts s (and the startup time in bin) for key of dimension d in
// minute m, making room for a new key when the dimension is full.
func (t *Tracker) add(d int, key string, m int64, s *sums, bin int) {
	tot := t.totals[d][key]
	if tot == nil {
		if len(t.totals[d]) >= t.cfg.MaxKeys {
			t.evict(d)
		}
		tot = &agg{}
		t.totals[d][key] = tot
	}
	tot.add(s, bin)
	sl := &t.slots[m%int64(len(t.slots))]
	if !sl.used {
		sl.used, sl.minute = true, m
	}
	if sl.keys[d] == nil {
		sl.keys[d] = map[string]*agg{}
	}
	a := sl.keys[d][key]
	if a == nil {
		a = &agg{}
		sl.keys[d][key] = a
		tot.slots++
	}
	a.add(s, bin)
}

// evict drops the tenth of dimension d's keys with the fewest plays
// (then CMCD requests), at least one: dropping many at once keeps a
// stream of new keys from sorting the dimension for each of them.
func (t *Tracker) evict(d int) {
	type ranked struct {
		key         string
		plays       int64
		cmcdRequest int64
	}
	all := make([]ranked, 0, len(t.totals[d]))
	for k, a := range t.totals[d] {
		all = append(all, ranked{k, a.playCount(), a.cmcdRequests})
	}
	slices.SortFunc(all, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(a.plays, b.plays), cmp.Compare(a.cmcdRequest, b.cmcdRequest), cmp.Compare(a.key, b.key))
	})
	n := max(1, t.cfg.MaxKeys/10)
	for _, r := range all[:min(n, len(all))] {
		delete(t.totals[d], r.key)
		for i := range t.slots {
			delete(t.slots[i].keys[d], r.key)
		}
	}
}

// minuteOf returns the minute of the window at (the zero time: now) is
// counted in: now for times ahead of the clock, and ok false for times
// before the window.
func (t *Tracker) minuteOf(at time.Time, now int64) (m int64, ok bool) {
	if at.IsZero() {
		return now, true
	}
	m = min(floorDiv(at.Unix(), 60), now)
	return m, m >= 0 && m > now-int64(len(t.slots))
}

// advance moves the window to the clock's minute (never back) and
// returns it, dropping the minutes that fell out of the window.
func (t *Tracker) advance() int64 {
	now := max(floorDiv(t.now().Unix(), 60), t.last)
	t.last = now
	for i := range t.slots {
		if sl := &t.slots[i]; sl.used && sl.minute <= now-int64(len(t.slots)) {
			t.expire(i)
		}
	}
	return now
}

// expire empties slot i, taking its sums off the totals of its keys; a
// key no minute holds any more is forgotten.
func (t *Tracker) expire(i int) {
	sl := &t.slots[i]
	sl.used = false
	for d := range sl.keys {
		for key, a := range sl.keys[d] {
			tot := t.totals[d][key]
			if tot == nil {
				continue
			}
			tot.sub(a)
			if tot.slots--; tot.slots <= 0 {
				delete(t.totals[d], key)
			}
		}
		clear(sl.keys[d])
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
