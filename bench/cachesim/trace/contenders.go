package trace

import "github.com/fillcast/fillcast/appliance/evict"

// Contender is a policy a trace replay compares, by name.
type Contender struct {
	Name string
	New  func() evict.Policy
}

// Contenders returns the appliance/evict policies the trace replayers
// (bench/cachesim, bench/fillsim) compare on trace at capacity bytes: the
// disk tier's TinyLFU with a sketch of its own, the session-aware
// Interval policy (an experiment: it needs the requests' sessions), the
// S3-FIFO the tier replaced (with a 10 % small queue), LRU, and Belady's
// optimum, the upper bound.
func Contenders(capacity int64, trace []evict.Request) []Contender {
	return []Contender{
		{"TinyLFU", func() evict.Policy { return evict.NewTinyLFU(capacity, nil) }},
		{"Interval", func() evict.Policy {
			p, err := evict.NewInterval(capacity, nil, evict.IntervalConfig{})
			if err != nil {
				panic(err) // the zero config is the defaults, always valid
			}
			return p
		}},
		{"S3-FIFO", func() evict.Policy { return evict.NewS3FIFO(capacity, 0.1) }},
		{"LRU", func() evict.Policy { return evict.NewLRU() }},
		{"Belady", func() evict.Policy { return evict.NewBelady(trace) }},
	}
}
