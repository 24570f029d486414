package auth

import (
	"net/netip"
	"testing"
	"time"
)

// TestTokenExpiry: the expiry read from every form of token is the one
// signed into it; what is no token has none.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	ks := mustKeys(t, "k1 "+secretA+"\n")
	exp := time.Unix(1_800_000_000, 0)
	bound := netip.MustParsePrefix("203.0.113.0/24")
	tests := []struct {
		name  string
		token string
		want  int64
		ok    bool
	}{
		{"unrestricted", mustSign(t, ks, "t1", exp, netip.Prefix{}), exp.Unix(), true},
		{"bound", mustSign(t, ks, "t1", exp, bound), exp.Unix(), true},
		{"bound with limits", mustSignLimited(t, ks, "t1", exp, bound, Limits{MaxHeight: 480, NoDownloads: true}), exp.Unix(), true},
		{"limits", mustSignLimited(t, ks, "t1", exp, netip.Prefix{}, Limits{MaxHeight: 720}), exp.Unix(), true},
		{"empty", "", 0, false},
		{"no expiry", "k1", 0, false},
		{"leading zero", "k1.0123.sig", 0, false},
		{"sign", "k1.-5.sig", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := TokenExpiry(tt.token)
			if got != tt.want || ok != tt.ok {
				t.Errorf("TokenExpiry(%q) = %d, %v; want %d, %v", tt.token, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzTokenExpiry: reading an expiry never panics, and of a token that
// verifies it is the expiry the verification saw.
func FuzzTokenExpiry(f *testing.F) {
	ks := mustKeys(f, "k1 "+secretA+"\n")
	f.Add(mustSign(f, ks, "t1", time.Now().Add(time.Hour), netip.Prefix{}))
	f.Add("k1.17.h480.x")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		exp, ok := TokenExpiry(token)
		now := time.Now()
		if _, err := ks.Verify(token, "t1", now, netip.Addr{}); err == nil {
			if !ok || exp < now.Unix() {
				t.Fatalf("TokenExpiry(%q) = %d, %v for a token that verifies", token, exp, ok)
			}
			set := NewTakedowns(map[string]int64{"t1": exp})
			if !set.Refuses(token, "t1") || set.Refuses(token, "t2") {
				t.Fatalf("takedown at the token's own expiry does not refuse it, or refuses another title")
			}
		}
	})
}
