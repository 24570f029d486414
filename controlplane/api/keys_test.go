package api

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fillcast/fillcast/auth"
)

// TestSignedPathLimited: playback paths carry the limits they were asked
// for, and the token cache tells limits apart: a cached path is never
// handed to a request for other limits.
func TestSignedPathLimited(t *testing.T) {
	a := newTestAPI(t)
	addr := netip.MustParseAddr("192.0.2.7")
	basic := auth.Limits{MaxHeight: 480, NoDownloads: true}
	standard := auth.Limits{MaxHeight: 1080}
	tests := []struct {
		name string
		l    auth.Limits
	}{
		{"unrestricted", auth.Limits{}},
		{"basic", basic},
		{"standard", standard},
		{"no downloads", auth.Limits{NoDownloads: true}},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		p, expiry, err := a.signedPathLimited("t1", addr, tt.l)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		again, _, _ := a.signedPathLimited("t1", addr, tt.l)
		if again != p {
			t.Errorf("%s: signed twice in a bucket: %q then %q, want the cached path", tt.name, p, again)
		}
		if other, ok := seen[p]; ok {
			t.Errorf("%s: same path as %s: %q", tt.name, other, p)
		}
		seen[p] = tt.name
		tok := strings.Split(p, "/")[2]
		got, err := a.signingKeys().Verify(tok, "t1", expiry.Add(-a.cfg.TokenTTL), addr)
		if err != nil || got != tt.l {
			t.Errorf("%s: token limits %+v, %v; want %+v", tt.name, got, err, tt.l)
		}
	}
	if p, _, _ := a.signedPath("t1", addr); seen[p] != "unrestricted" {
		t.Errorf("signedPath = %q, want the unrestricted path", p)
	}
}
