// Package rendezvous is the consistent hash under the second tier of
// steering: weighted rendezvous (highest random weight) hashing, which
// gives every key its own preference order over a set of nodes.
//
// Each (key, node) pair gets a pseudo-random number u in (0, 1); a node of
// weight w scores w / -ln(u) and the key prefers nodes in decreasing score.
// A node's chance of being first is exactly its share of the total weight,
// and adding or removing a node only changes the keys for which that node
// is (or was) first: the minimal movement consistent hashing promises,
// without virtual nodes or a ring to rebuild. The steering package walks
// this order and skips nodes that are full (consistent hashing with
// bounded loads, Mirrokni, Thorup and Zadimoghaddam 2016); because every
// key has an independent order, a full node's overflow spreads over all
// its peers instead of landing on its ring neighbour.
//
// Hashes are fixed functions of their input (FNV-1a followed by a 64-bit
// finalizer), so every control-plane node, on every run, computes the same
// order. Key, Mix, Unit and Score allocate nothing.
package rendezvous

import (
	"math"
	"sort"
)

// Key hashes s (a title or a node id) to 64 bits. It is stable across
// processes and releases; changing it would move every title.
func Key(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return fmix(h)
}

// fmix is the 64-bit finalizer of MurmurHash3: it spreads every input bit
// over the whole output, which FNV alone does poorly for short strings.
func fmix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// Mix returns the pseudo-random number of the pair (key, node), where both
// are Key values (already well mixed, so one finalizer round suffices).
// Among nodes of equal weight, the larger Mix>>11 is preferred; Score
// orders the same way.
func Mix(key, node uint64) uint64 {
	return fmix(key ^ node)
}

// Unit maps a Mix value to the open interval (0, 1) using its top 53
// bits.
func Unit(m uint64) float64 {
	return (float64(m>>11) + 0.5) / (1 << 53)
}

// Score returns how much the node (its Key and weight) is preferred for
// key; higher is better. Weight must be positive; a node's chance of the
// highest score is its weight over the sum of weights.
//
// The score is weight / -ln(u). The logarithm is computed by negLog, a
// short series in plain float64 arithmetic, both because it is several
// times faster than math.Log and because every operation is an IEEE
// operation the compiler may not fuse, so every architecture computes
// bit-identical scores and every node the same order.
func Score(key, node uint64, weight float64) float64 {
	return weight / negLog(Unit(Mix(key, node)))
}

// negLog returns -ln(u) for u in (0, 1) with a relative error below 1e-9:
// u = m·2^e with m in [√½, √2), and ln m = 2·atanh((m-1)/(m+1)) summed to
// the 11th power of an argument below 0.172.
func negLog(u float64) float64 {
	const ln2 = 0.6931471805599453
	bits := math.Float64bits(u)
	e := int64(bits>>52&0x7ff) - 1023
	m := math.Float64frombits(bits&(1<<52-1) | 1023<<52)
	if m > math.Sqrt2 {
		m *= 0.5
		e++
	}
	t := float64(m-1) / float64(m+1)
	t2 := float64(t * t)
	// Horner form of 1 + t²/3 + t⁴/5 + ... + t¹⁰/11, each product rounded
	// on its own (the float64 conversions forbid fused multiply-adds).
	p := float64(1.0 / 11)
	p = float64(p*t2) + 1.0/9
	p = float64(p*t2) + 1.0/7
	p = float64(p*t2) + 1.0/5
	p = float64(p*t2) + 1.0/3
	p = float64(p*t2) + 1
	lnm := float64(2 * t * p)
	return -(float64(float64(e)*ln2) + lnm)
}

// Node is a member of the set that Rank orders.
type Node struct {
	Key    uint64  // the node's Key(id)
	Weight float64 // positive
}

// Rank appends to dst the indexes of nodes in key's order of preference,
// best first, ties broken by index. Steering walks the order itself
// without building it; Rank is for tools, tests and cold paths.
func Rank(dst []int, key uint64, nodes []Node) []int {
	start := len(dst)
	for i := range nodes {
		dst = append(dst, i)
	}
	order := dst[start:]
	sort.SliceStable(order, func(a, b int) bool {
		na, nb := nodes[order[a]], nodes[order[b]]
		return Score(key, na.Key, na.Weight) > Score(key, nb.Key, nb.Weight)
	})
	return dst
}
