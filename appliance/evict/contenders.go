package evict

// Contender is a policy a trace replay compares, by name.
type Contender struct {
	Name string
	New  func() Policy
}

// Contenders returns the policies the trace replayers (bench/cachesim,
// bench/fillsim) compare on trace at capacity bytes: the disk tier's
// S3-FIFO with the tier's 10 % small queue, LRU, and Belady's optimum,
// the upper bound.
func Contenders(capacity int64, trace []Request) []Contender {
	return []Contender{
		{"S3-FIFO", func() Policy { return NewS3FIFO(capacity, 0.1) }},
		{"LRU", func() Policy { return NewLRU() }},
		{"Belady", func() Policy { return NewBelady(trace) }},
	}
}
