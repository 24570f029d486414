package gateway

import (
	"io"
	"net/http"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.1, 2001:db8:1::/48")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"peer only", "203.0.113.5:4000", nil, trusted, "203.0.113.5"},
		{"untrusted peer's header ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, trusted, "203.0.113.5"},
		{"no trusted proxies configured", "10.1.1.1:4000", []string{"198.51.100.1"}, nil, "10.1.1.1"},
		{"one trusted hop", "10.1.1.1:4000", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"spoofed left part ignored", "10.1.1.1:4000", []string{"6.6.6.6, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"chain of trusted proxies", "10.1.1.1:4000", []string{"198.51.100.1, 10.2.2.2, 192.0.2.1"}, trusted, "198.51.100.1"},
		{"several header lines", "10.1.1.1:4000", []string{"6.6.6.6", "198.51.100.1,10.2.2.2"}, trusted, "198.51.100.1"},
		{"all hops trusted", "10.1.1.1:4000", []string{"10.3.3.3, 10.2.2.2"}, trusted, "10.3.3.3"},
		{"garbage stops at last good hop", "10.1.1.1:4000", []string{"not-an-ip, 10.2.2.2"}, trusted, "10.2.2.2"},
		{"garbage right next to peer", "10.1.1.1:4000", []string{"198.51.100.1, bogus"}, trusted, "10.1.1.1"},
		{"empty entries skipped", "10.1.1.1:4000", []string{" , 198.51.100.1 ,"}, trusted, "198.51.100.1"},
		{"hop with port", "10.1.1.1:4000", []string{"198.51.100.1:5555"}, trusted, "198.51.100.1"},
		{"ipv6 peer and hop", "[2001:db8:1::9]:443", []string{"[2001:db8:2::1]:1234"}, trusted, "2001:db8:2::1"},
		{"ipv4-mapped peer", "[::ffff:10.1.1.1]:4000", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"zone dropped", "[fe80::1%eth0]:80", nil, trusted, "fe80::1"},
		{"unparsable peer", "pipe", []string{"198.51.100.1"}, trusted, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientAddr(tt.remote, tt.xff, tt.trusted).String(); got != tt.want {
				t.Errorf("clientAddr(%q, %q) = %s, want %s", tt.remote, tt.xff, got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"", "[]", false},
		{"10.0.0.0/8,192.168.1.7", "[10.0.0.0/8 192.168.1.7/32]", false},
		{" 10.1.2.3/8 , 2001:db8::/32 ", "[10.0.0.0/8 2001:db8::/32]", false},
		{"::ffff:10.0.0.0/104", "[10.0.0.0/8]", false},
		{"10.0.0.0/33", "", true},
		{"proxy.example", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTrustedProxies(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && fmtPrefixes(got) != tt.want {
				t.Errorf("got %s, want %s", fmtPrefixes(got), tt.want)
			}
		})
	}
}

func fmtPrefixes(ps []netip.Prefix) string {
	s := "["
	for i, p := range ps {
		if i > 0 {
			s += " "
		}
		s += p.String()
	}
	return s + "]"
}

func TestClientAddrThroughGateway(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		trusted string
		xff     string
		want    string
	}{
		{"loopback peer not trusted", "", "198.51.100.1", "127.0.0.1"},
		{"loopback peer trusted", "127.0.0.0/8", "198.51.100.1", "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			trusted, err := ParseTrustedProxies(tt.trusted)
			if err != nil {
				t.Fatal(err)
			}
			tg := newTestGateway(t, Config{TrustedProxies: trusted})
			tg.handle(t, "GET /who", RouteOptions{Name: "who"}, func(w http.ResponseWriter, r *http.Request) error {
				_, err := io.WriteString(w, FromContext(r.Context()).Client().String())
				return err
			})
			got := tg.do(t, "GET", "/who", http.Header{"X-Forwarded-For": {tt.xff}}, "")
			if got.body != tt.want {
				t.Errorf("client = %q, want %q", got.body, tt.want)
			}
		})
	}
}

func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"198.51.100.1", "6.6.6.6, 10.2.2.2", "[2001:db8::1]:80,", " , ,", "::ffff:1.2.3.4"} {
		f.Add("10.1.1.1:4000", s)
	}
	trusted, _ := ParseTrustedProxies("10.0.0.0/8,2001:db8::/32")
	f.Fuzz(func(t *testing.T, remote, xff string) {
		got := clientAddr(remote, []string{xff}, trusted)
		peer := parseHost(remote)
		if !isTrusted(peer, trusted) && got != peer {
			t.Fatalf("untrusted peer %v: client %v, want the peer", peer, got)
		}
		if got.Is4In6() || got.Zone() != "" {
			t.Fatalf("client %v not normalised", got)
		}
	})
}
