package opsindex

import "github.com/fillcast/fillcast/controlplane/events"

// Result is the answer to a query: the body of the operators' event
// search.
type Result struct {
	// Events are the matching events, newest first (in the order they
	// came off the stream), at most the query's limit; never nil.
	Events []events.Event `json:"events"`
	// TotalMatched counts every event kept that matches, beyond the
	// limit too.
	TotalMatched int `json:"total_matched"`
}

// Search answers q over the events kept that are not older than MaxAge.
// It walks the shortest posting list of the fields q names (every event
// when it names none), newest first.
func (x *Index) Search(q Query) Result {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	now := x.now()
	since := now.Add(-x.cfg.MaxAge)
	if q.Since.After(since) {
		since = q.Since
	}
	if q.SinceAgo > 0 && now.Add(-q.SinceAgo).After(since) {
		since = now.Add(-q.SinceAgo)
	}
	sinceNS := since.UnixNano()
	want := [numFields]string{q.Type, q.Title, q.Appliance, q.Site, q.User}

	res := Result{Events: []events.Event{}}
	x.mu.RLock()
	defer x.mu.RUnlock()
	var list *posting // nil: every event
	walked := -1
	for f, v := range want {
		if v == "" {
			continue
		}
		pl := x.postings[f][v]
		if pl == nil {
			return res
		}
		if list == nil || pl.n < list.n {
			list, walked = pl, f
		}
	}
	// The walked list's field matches by construction; the others are
	// checked on the event, when the query names any.
	others := false
	if walked >= 0 {
		want[walked] = ""
	}
	for _, v := range want {
		others = others || v != ""
	}
	visit := func(p uint64) bool {
		i := x.slot(p)
		if x.maxTS[i] < sinceNS {
			return false // this event and every one before it are older
		}
		if x.ts[i] < sinceNS || others && !matches(&x.evs[i], &want) {
			return true
		}
		res.TotalMatched++
		if len(res.Events) < limit {
			res.Events = append(res.Events, x.evs[i])
		}
		return true
	}
	if list != nil {
		res.Events = make([]events.Event, 0, min(limit, list.n, 32))
		list.walk(visit)
	} else {
		res.Events = make([]events.Event, 0, min(limit, int(x.next-x.head), 32))
		for p := x.next; p > x.head && visit(p-1); p-- {
		}
	}
	return res
}

// matches reports whether e's fields equal the values wanted that are
// set.
func matches(e *events.Event, want *[numFields]string) bool {
	for f, v := range fieldsOf(e) {
		if want[f] != "" && want[f] != v {
			return false
		}
	}
	return true
}
