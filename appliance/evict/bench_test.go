package evict

import (
	"fmt"
	"testing"
)

// benchPolicies are the disk tier's policy and the one it replaced, for
// ns/op side by side.
var benchPolicies = []struct {
	name string
	new  func(capacity int64) Policy
}{
	{"TinyLFU", func(c int64) Policy { return NewTinyLFU(c, nil) }},
	{"S3-FIFO", func(c int64) Policy { return NewS3FIFO(c, 0.1) }},
}

// fullPolicy returns a policy holding objects objects of 100 bytes at its
// capacity, and keys four times as many as fit, the first objects of
// which it held last.
func fullPolicy(newPolicy func(int64) Policy, objects int) (Policy, []string) {
	keys := make([]string, 4*objects)
	for i := range keys {
		keys[i] = fmt.Sprintf("t%04d/720p/seg-%05d.m4s", i%97, i)
	}
	p := newPolicy(int64(objects) * 100)
	for i := range keys {
		p.Insert(keys[i], 100)
		if i >= objects {
			p.Victim()
		}
	}
	return p, keys
}

func BenchmarkAccess(b *testing.B) {
	for _, bp := range benchPolicies {
		b.Run(bp.name, func(b *testing.B) {
			const objects = 10_000
			p, keys := fullPolicy(bp.new, objects)
			held := keys[len(keys)-objects:]
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.Access(held[i%objects])
				i++
			}
		})
	}
}

func BenchmarkInsertVictim(b *testing.B) {
	for _, bp := range benchPolicies {
		b.Run(bp.name, func(b *testing.B) {
			const objects = 10_000
			p, keys := fullPolicy(bp.new, objects)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.Insert(keys[i%len(keys)], 100)
				p.Victim()
				i++
			}
		})
	}
}

func BenchmarkTinyLFU(b *testing.B) {
	trace := scanTrace(3)
	b.ReportAllocs()
	for b.Loop() {
		Replay(NewTinyLFU(6000, nil), 6000, trace)
	}
}
