package prefix

import (
	"errors"
	"net/netip"
	"testing"
)

func mustTable(t *testing.T, m map[string]string) *Table[string] {
	t.Helper()
	var es []Entry[string]
	for p, v := range m {
		pp, err := Parse(p)
		if err != nil {
			t.Fatalf("Parse(%q): %v", p, err)
		}
		es = append(es, Entry[string]{pp, v})
	}
	tab, err := New(es)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tab
}

func TestLookup(t *testing.T) {
	t.Parallel()
	tab := mustTable(t, map[string]string{
		"10.0.0.0/8":              "isp-a",
		"10.1.0.0/16":             "isp-b",
		"10.1.2.0/24":             "isp-c",
		"10.255.0.0/16":           "isp-d", // shares its last address with 10.0.0.0/8
		"203.0.113.0/24":          "isp-a",
		"0.0.0.0/0":               "ix-default",
		"192.0.2.7/32":            "host",
		"2001:db8::/32":           "isp-a",
		"2001:db8:1::/48":         "isp-b",
		"2001:db8:1:2::/64":       "isp-c",
		"ffff::/16":               "top6",
		"::ffff:198.51.100.0/120": "mapped", // stored as 198.51.100.0/24
	})
	tests := []struct {
		name, addr, want string
	}{
		{"v4 short", "10.9.9.9", "isp-a"},
		{"v4 longer", "10.1.9.9", "isp-b"},
		{"v4 longest", "10.1.2.3", "isp-c"},
		{"v4 after nested", "10.1.3.0", "isp-b"},
		{"v4 back to outer", "10.2.0.0", "isp-a"},
		{"v4 shared end inner", "10.255.255.255", "isp-d"},
		{"v4 after shared end", "11.0.0.0", "ix-default"},
		{"v4 default", "8.8.8.8", "ix-default"},
		{"v4 first address", "0.0.0.0", "ix-default"},
		{"v4 last address", "255.255.255.255", "ix-default"},
		{"v4 host route", "192.0.2.7", "host"},
		{"v4 next to host route", "192.0.2.8", "ix-default"},
		{"v4-mapped v6 client", "::ffff:10.1.2.3", "isp-c"},
		{"v4-mapped prefix, v4 client", "198.51.100.9", "mapped"},
		{"v4-mapped prefix, mapped client", "::ffff:198.51.100.9", "mapped"},
		{"v6 short", "2001:db8:ffff::1", "isp-a"},
		{"v6 longer", "2001:db8:1:ffff::1", "isp-b"},
		{"v6 longest", "2001:db8:1:2::abcd", "isp-c"},
		{"v6 with zone", "2001:db8:1:2::abcd%eth0", "isp-c"},
		{"v6 top of space", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "top6"},
		{"v6 no match", "2001:db9::1", ""},
		{"v6 zero", "::", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tab.Lookup(netip.MustParseAddr(tc.addr))
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("Lookup(%s) = %q, %v; want %q", tc.addr, got, ok, tc.want)
			}
		})
	}
}

func TestLookupNoMatch(t *testing.T) {
	t.Parallel()
	tab := mustTable(t, map[string]string{"10.0.0.0/8": "a", "2001:db8::/32": "b"})
	for _, addr := range []netip.Addr{{}, netip.MustParseAddr("11.0.0.1"), netip.MustParseAddr("9.255.255.255"), netip.MustParseAddr("2001:db7::1")} {
		if got, ok := tab.Lookup(addr); ok {
			t.Errorf("Lookup(%v) = %q, true; want no match", addr, got)
		}
	}
	var empty Table[string]
	if got, ok := empty.Lookup(netip.MustParseAddr("10.0.0.1")); ok {
		t.Errorf("zero Table Lookup = %q, true; want no match", got)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		err      error
	}{
		{"203.0.113.0/24", "203.0.113.0/24", nil},
		{"2001:db8::/32", "2001:db8::/32", nil},
		{"::ffff:203.0.113.0/120", "203.0.113.0/24", nil},
		{"::ffff:0:0/96", "0.0.0.0/0", nil},
		{"::/0", "::/0", nil},
		{"203.0.113.5/24", "", ErrInvalid},
		{"203.0.113.0/33", "", ErrInvalid},
		{"203.0.113.0", "", ErrInvalid},
		{"2001:db8::/129", "", ErrInvalid},
		{"fe80::%eth0/64", "", ErrInvalid},
		{"", "", ErrInvalid},
		{" 10.0.0.0/8", "", ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Parse(%q) error = %v; want %v", tc.in, err, tc.err)
			}
			if err != nil {
				return
			}
			if got.String() != tc.want {
				t.Errorf("Parse(%q) = %s; want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseErrorNamesPrefix(t *testing.T) {
	t.Parallel()
	_, err := Parse("203.0.113.5/24")
	want := `prefix: invalid prefix "203.0.113.5/24": host bits are set; did you mean "203.0.113.0/24"?`
	if err == nil || err.Error() != want {
		t.Errorf("Parse error = %v; want %s", err, want)
	}
}

func TestNewConflicts(t *testing.T) {
	t.Parallel()
	p := netip.MustParsePrefix("10.0.0.0/8")
	tests := []struct {
		name    string
		entries []Entry[string]
		err     error
	}{
		{"same prefix two values", []Entry[string]{{p, "a"}, {p, "b"}}, ErrConflict},
		{"mapped and plain are the same prefix", []Entry[string]{{p, "a"}, {netip.MustParsePrefix("::ffff:10.0.0.0/104"), "b"}}, ErrConflict},
		{"same prefix same value", []Entry[string]{{p, "a"}, {p, "a"}}, nil},
		{"nested is fine", []Entry[string]{{p, "a"}, {netip.MustParsePrefix("10.0.0.0/9"), "b"}}, nil},
		{"host bits", []Entry[string]{{netip.MustParsePrefix("10.0.0.1/8"), "a"}}, ErrInvalid},
		{"invalid", []Entry[string]{{netip.Prefix{}, "a"}}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.entries)
			if !errors.Is(err, tc.err) {
				t.Errorf("New error = %v; want %v", err, tc.err)
			}
		})
	}
}

func TestLen(t *testing.T) {
	t.Parallel()
	tab := mustTable(t, map[string]string{"10.0.0.0/8": "a", "::ffff:10.0.0.0/104": "a", "2001:db8::/32": "b"})
	if got, want := tab.Len(), 2; got != want {
		t.Errorf("Len = %d; want %d", got, want)
	}
}
