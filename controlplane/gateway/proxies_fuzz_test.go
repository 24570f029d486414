package gateway

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzTrustedProxies: every prefix --trusted-proxies yields is valid and
// masked, IPv4 written in IPv6 form is taken as IPv4, a bare address
// becomes the prefix of that one host, and each prefix printed and
// parsed again is the same.
func FuzzTrustedProxies(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.0.0.0/8, 192.168.1.7 ,2001:db8::/32", "::ffff:10.0.0.0/104", "::ffff:10.0.0.0/64", "::ffff:1.2.3.4",
		"fe80::1%eth0", "fe80::1%eth0/64", "10.0.0.1/33", "", ",,", "10.0.0.0/8/8", "1.2.3.4/0", "::/0", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseTrustedProxies(s)
		if err != nil {
			if !strings.Contains(err.Error(), "trusted proxy") {
				t.Fatalf("ParseTrustedProxies(%q) error %q does not name the entry", s, err)
			}
			return
		}
		var entries []string
		for _, e := range strings.Split(s, ",") {
			if e = strings.TrimSpace(e); e != "" {
				entries = append(entries, e)
			}
		}
		if len(ps) != len(entries) {
			t.Fatalf("ParseTrustedProxies(%q) = %v: %d prefixes for %d entries", s, ps, len(ps), len(entries))
		}
		for i, p := range ps {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("ParseTrustedProxies(%q)[%d] = %v: not a valid masked prefix", s, i, p)
			}
			if back, err := netip.ParsePrefix(p.String()); err != nil || back != p {
				t.Fatalf("ParseTrustedProxies(%q)[%d] = %v prints as %q, which parses as %v, %v", s, i, p, p.String(), back, err)
			}
			if a, err := netip.ParseAddr(entries[i]); err == nil && (!p.Contains(a.Unmap().WithZone("")) || p.Bits() != a.Unmap().BitLen()) {
				t.Fatalf("ParseTrustedProxies(%q)[%d] = %v, not the host %v", s, i, p, a)
			}
		}
	})
}
