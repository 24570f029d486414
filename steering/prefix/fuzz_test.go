package prefix

import (
	"errors"
	"net/netip"
	"testing"
)

// naive is the obvious linear scan that Table must agree with.
type naive []Entry[int]

func (n naive) lookup(a netip.Addr) (int, bool) {
	a = a.Unmap()
	best, bits := 0, -1
	for _, e := range n {
		p := normalize(e.Prefix)
		if p.Addr().Is4() == a.Is4() && p.Contains(a) && p.Bits() > bits {
			best, bits = e.Value, p.Bits()
		}
	}
	return best, bits >= 0
}

// entriesFrom decodes fuzz bytes into prefixes squeezed into a small part
// of the address space, so that they nest, share ends and collide often.
func entriesFrom(data []byte) (es []Entry[int], probes []netip.Addr) {
	for len(data) >= 4 {
		c, x, y, z := data[0], data[1], data[2], data[3]
		data = data[4:]
		var a netip.Addr
		var bits int
		switch c % 3 {
		case 0: // IPv4
			a = netip.AddrFrom4([4]byte{10 + x%2, y, z, c})
			bits = int(c/3) % 33
		case 1: // IPv6
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, x % 2, y, z, c, 15: c})
			bits = int(c/3) % 129
		default: // v4-mapped IPv6, as an address and as a prefix
			a = netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 10 + x%2, 13: y, 14: z, 15: c})
			bits = 96 + int(c/3)%33
		}
		p := netip.PrefixFrom(a, bits).Masked()
		es = append(es, Entry[int]{p, int(z % 4)})
		probes = append(probes, a, p.Addr())
		if b := p.Addr().AsSlice(); len(b) > 0 {
			// The address just before the prefix and the last one in it.
			probes = append(probes, p.Addr().Prev())
			last := p.Addr()
			for i := 0; i < len(b)*8-p.Bits() && i < 40; i++ {
				last = last.Next()
			}
			probes = append(probes, last, last.Next())
		}
	}
	return es, probes
}

func FuzzLookup(f *testing.F) {
	f.Add([]byte{0, 1, 2, 24, 3, 1, 2, 40, 9, 1, 2, 96})
	f.Add([]byte{1, 0, 0, 0, 2, 0, 0, 0, 30, 1, 1, 1, 31, 1, 1, 3})
	f.Add([]byte{2, 1, 200, 7, 5, 1, 200, 7, 0, 0, 0, 0, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 512 {
			data = data[:512] // keep the quadratic reference check quick
		}
		es, probes := entriesFrom(data)
		tab, err := New(es)
		conflict := false
		seen := map[netip.Prefix]int{}
		for _, e := range es {
			p := normalize(e.Prefix)
			if v, ok := seen[p]; ok && v != e.Value {
				conflict = true
			}
			seen[p] = e.Value
		}
		if conflict {
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("New = %v; want ErrConflict", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		ref := naive(es)
		for _, a := range probes {
			got, gok := tab.Lookup(a)
			want, wok := ref.lookup(a)
			if got != want || gok != wok {
				t.Fatalf("Lookup(%v) = %d, %v; naive scan says %d, %v (entries %v)", a, got, gok, want, wok, es)
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "2001:db8::/32", "::ffff:1.2.3.0/120", "1.2.3.4/24", "x", "::/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if !p.IsValid() || p.Masked() != p || p.Addr().Is4In6() && p.Bits() >= 96 {
			t.Fatalf("Parse(%q) = %v: not valid, masked and normalised", s, p)
		}
		again, err := Parse(p.String())
		if err != nil || again != p {
			t.Fatalf("Parse(%q) = %v; reparsing gives %v, %v", s, p, again, err)
		}
	})
}
