// Package prefix is the first tier of steering: a longest-prefix-match
// table from the IPv4 and IPv6 prefixes that ISPs announce to the sites
// that serve them.
//
// A Table is built once from all sites' prefixes and is then immutable, so
// any number of goroutines may look addresses up without locks. Each
// address family is flattened into sorted, non-overlapping ranges, each
// labelled with the longest prefix that covers it; a lookup is one binary
// search and allocates nothing.
//
// Overlaps: a more specific prefix wins over a shorter one that contains
// it, whichever sites they belong to. The same prefix given twice for the
// same value is accepted once; the same prefix for two different values is
// ambiguous and New rejects it with ErrConflict.
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are looked up as the IPv4
// address they carry, and a v4-mapped prefix of at least /96 is stored as
// the IPv4 prefix it denotes. IPv4 addresses match IPv4 prefixes only: an
// IPv6 prefix such as ::/0 does not capture IPv4 clients.
package prefix

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
)

// ErrInvalid is wrapped by errors for a prefix that cannot be used: not
// CIDR notation, or host bits set.
var ErrInvalid = errors.New("prefix: invalid prefix")

// ErrConflict is wrapped by New's error when one prefix is given for two
// different values (for steering: claimed by two sites).
var ErrConflict = errors.New("prefix: prefix claimed twice")

// Parse parses s in CIDR notation ("203.0.113.0/24", "2001:db8::/32")
// and normalises a v4-mapped IPv6 prefix of at least /96 to IPv4. It
// rejects a prefix with host bits set, naming the prefix it probably
// meant, rather than silently widening what an operator typed.
func Parse(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w %q: %v", ErrInvalid, s, err)
	}
	p = normalize(p)
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%w %q: host bits are set; did you mean %q?", ErrInvalid, s, m.String())
	}
	return p, nil
}

// normalize turns a v4-mapped IPv6 prefix into the IPv4 prefix it denotes,
// so that it matches the IPv4 clients it was written for.
func normalize(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// Entry is one prefix and the value a matching address maps to.
type Entry[V comparable] struct {
	Prefix netip.Prefix
	Value  V
}

// Table is an immutable longest-prefix-match table. The zero Table matches
// nothing. It is safe for concurrent use.
type Table[V comparable] struct {
	v4, v6 ranges
	values []V
	n      int
}

// ranges is one address family flattened into sorted range starts; the
// range beginning at starts[i] maps to values[vals[i]], or to nothing when
// vals[i] is -1.
type ranges struct {
	starts []u128
	vals   []int32
}

// New builds a table from entries. Prefixes must be valid and masked (as
// Parse returns them). A prefix listed twice with the same value is kept
// once; with different values New fails with ErrConflict.
func New[V comparable](entries []Entry[V]) (*Table[V], error) {
	t := &Table[V]{}
	seen := make(map[netip.Prefix]int, len(entries))
	var items4, items6 []item
	for _, e := range entries {
		if !e.Prefix.IsValid() {
			return nil, fmt.Errorf("%w %q", ErrInvalid, e.Prefix.String())
		}
		p := normalize(e.Prefix)
		if p.Masked() != p {
			return nil, fmt.Errorf("%w %q: host bits are set", ErrInvalid, e.Prefix.String())
		}
		if i, ok := seen[p]; ok {
			if t.values[i] != e.Value {
				return nil, fmt.Errorf("%w: %s maps to both %v and %v", ErrConflict, p, t.values[i], e.Value)
			}
			continue
		}
		idx := len(t.values)
		seen[p] = idx
		t.values = append(t.values, e.Value)
		it := newItem(p, int32(idx))
		if p.Addr().Is4() {
			items4 = append(items4, it)
		} else {
			items6 = append(items6, it)
		}
	}
	t.n = len(t.values)
	t.v4 = flatten(items4)
	t.v6 = flatten(items6)
	return t, nil
}

// Len returns the number of distinct prefixes in the table.
func (t *Table[V]) Len() int { return t.n }

// Lookup returns the value of the longest prefix containing addr. A
// v4-mapped IPv6 address is looked up as IPv4; an invalid address matches
// nothing.
func (t *Table[V]) Lookup(addr netip.Addr) (V, bool) {
	var zero V
	var r *ranges
	var k u128
	addr = addr.Unmap()
	switch {
	case addr.Is4():
		r, k = &t.v4, key4(addr)
	case addr.Is6():
		r, k = &t.v6, key6(addr)
	default:
		return zero, false
	}
	// Find the last range starting at or before k.
	lo, hi := 0, len(r.starts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if k.less(r.starts[m]) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == 0 {
		return zero, false
	}
	v := r.vals[lo-1]
	if v < 0 {
		return zero, false
	}
	return t.values[v], true
}

// u128 is an address as an unsigned 128-bit integer (IPv4 in the low 32
// bits), so both families share one range code.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) next() u128 {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

func key4(a netip.Addr) u128 {
	b := a.As4()
	return u128{0, uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
}

func key6(a netip.Addr) u128 {
	b := a.As16()
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	return u128{hi, lo}
}

// item is a prefix as the inclusive range [start, end] it covers.
type item struct {
	start, end u128
	bits       int
	last       bool // end is the family's last address
	idx        int32
}

func newItem(p netip.Prefix, idx int32) item {
	var start u128
	width := 128
	if p.Addr().Is4() {
		start, width = key4(p.Addr()), 32
	} else {
		start = key6(p.Addr())
	}
	host := width - p.Bits() // number of host bits
	end := start
	switch {
	case host >= 128:
		end = u128{^uint64(0), ^uint64(0)}
	case host > 64:
		end.lo = ^uint64(0)
		end.hi |= 1<<(host-64) - 1
	case host == 64:
		end.lo = ^uint64(0)
	case host > 0:
		end.lo |= 1<<host - 1
	}
	last := end == u128{^uint64(0), ^uint64(0)} || width == 32 && end == u128{0, 1<<32 - 1}
	return item{start: start, end: end, bits: p.Bits(), last: last, idx: idx}
}

// flatten turns nested or disjoint prefixes (CIDR blocks never partially
// overlap) into sorted ranges labelled with their longest covering prefix,
// sweeping left to right with a stack of the prefixes still open.
func flatten(items []item) ranges {
	sort.Slice(items, func(i, j int) bool {
		if items[i].start != items[j].start {
			return items[i].start.less(items[j].start)
		}
		return items[i].bits < items[j].bits
	})
	var r ranges
	emit := func(pos u128, v int32) {
		n := len(r.starts)
		if n > 0 && r.starts[n-1] == pos {
			r.vals[n-1] = v
			if n > 1 && r.vals[n-2] == v || n == 1 && v < 0 {
				r.starts, r.vals = r.starts[:n-1], r.vals[:n-1]
			}
			return
		}
		if n > 0 && r.vals[n-1] == v || n == 0 && v < 0 {
			return
		}
		r.starts = append(r.starts, pos)
		r.vals = append(r.vals, v)
	}
	var stack []item
	// pop closes the innermost open prefix: past its end, the address
	// space belongs to the prefix around it, if any.
	pop := func() {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if top.last {
			return
		}
		v := int32(-1)
		if len(stack) > 0 {
			v = stack[len(stack)-1].idx
		}
		emit(top.end.next(), v)
	}
	for _, it := range items {
		for len(stack) > 0 && stack[len(stack)-1].end.less(it.start) {
			pop()
		}
		stack = append(stack, it)
		emit(it.start, it.idx)
	}
	for len(stack) > 0 {
		pop()
	}
	return r
}
