package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/fillcast/fillcast/appliance/evict"
	"github.com/fillcast/fillcast/bench/cachesim/trace"
)

// comparePolicies replays recorded requests through evict.Replay with the
// disk tier's policy (TinyLFU, as appliance/cache builds it), S3-FIFO, LRU and
// Belady's optimum, at capacity bytes, and prints each byte hit ratio,
// after the one the real appliance measured on the same requests when
// measured says they all went to one appliance of that size.
func comparePolicies(w io.Writer, name string, recorded []served, capacity int64, measured bool) {
	reqs := make([]evict.Request, len(recorded))
	var hitBytes, bytes int64
	for i, r := range recorded {
		reqs[i] = evict.Request{Key: r.key, Size: r.size}
		bytes += r.size
		if r.hit {
			hitBytes += r.size
		}
	}
	policies := trace.Contenders(capacity, reqs)
	results := make([]evict.Result, len(policies))
	var wg sync.WaitGroup
	for i, p := range policies {
		wg.Go(func() { results[i] = evict.Replay(p.New(), capacity, reqs) })
	}
	wg.Wait()
	fmt.Fprintf(w, "%s: %d requests, %.1f MB, cache %.1f MB\n", name, len(reqs), float64(bytes)/1e6, float64(capacity)/1e6)
	if measured && bytes > 0 {
		fmt.Fprintf(w, "  %-22s byte_hit_ratio %.4f (memory and disk tiers)\n", "appliance (measured)", float64(hitBytes)/float64(bytes))
	}
	for i, p := range policies {
		fmt.Fprintf(w, "  %-22s byte_hit_ratio %.4f\n", p.Name+" (replayed)", results[i].ByteHitRatio())
	}
}
