package server

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fillcast/fillcast/appliance/latency"
)

// usage counts what the appliance served, for heartbeats: requests and
// body bytes in total and body bytes per title (the popularity signal the
// control plane's fill planner uses). Counters only grow; the agent sends
// differences.
type usage struct {
	requests atomic.Int64
	bytes    atomic.Int64
	titles   sync.Map // string -> *atomic.Int64
}

func (u *usage) add(title string, n int64) {
	u.requests.Add(1)
	if n <= 0 {
		return
	}
	u.bytes.Add(n)
	c, ok := u.titles.Load(title)
	if !ok {
		// title may view a request buffer: store a copy.
		c, _ = u.titles.LoadOrStore(strings.Clone(title), new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(n)
}

// Usage is a snapshot of the cumulative counters.
type Usage struct {
	// Requests and Bytes count the content requests the cache answered
	// and the body bytes sent; TitleBytes those bytes by title.
	Requests   int64
	Bytes      int64
	TitleBytes map[string]int64
	// Latency counts every content request answered, whatever its
	// status, by the time the handler took (observe.go); Failed those of
	// them answered 5xx, but the 504 of a peer's only-if-cached probe.
	// Failed never exceeds Latency.Count().
	Latency latency.Snapshot
	Failed  uint64
}

// Usage returns the cumulative counters since start.
func (s *Server) Usage() Usage {
	failed := s.failed.Load() // before the histogram: see observe
	u := Usage{Requests: s.usage.requests.Load(), Bytes: s.usage.bytes.Load(), TitleBytes: map[string]int64{},
		Latency: s.latency.Snapshot(), Failed: failed}
	s.usage.titles.Range(func(k, v any) bool {
		u.TitleBytes[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return u
}
