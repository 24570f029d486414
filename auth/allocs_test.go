//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package auth

import (
	"net/netip"
	"testing"
	"time"
)

func TestVerifyAllocs(t *testing.T) {
	k := mustKeys(t, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	addr := netip.MustParseAddr("203.0.113.9")
	tok := mustSign(t, k, "t1", now.Add(time.Hour), ClientPrefix(addr))
	limited := mustSignLimited(t, k, "t1", now.Add(time.Hour), ClientPrefix(addr), Limits{MaxHeight: 480, NoDownloads: true})
	cred, _ := k.SignCredential("a1")
	pass, _ := k.SignFillPass("a1", now.Add(time.Hour))
	v, err := NewVerifier(VerifierConfig{}, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    func()
	}{
		{"Keys.Verify", func() { k.Verify(tok, "t1", now, addr) }},
		{"Keys.VerifyCredential", func() { k.VerifyCredential(cred) }},
		{"Verifier.Verify hit", func() { v.Verify(tok, "t1", now, addr) }},
		{"Verifier.Verify hit, other client", func() { v.Verify(tok, "t1", now, netip.MustParseAddr("198.51.100.1")) }},
		{"Keys.Verify, limited", func() { k.Verify(limited, "t1", now, addr) }},
		{"Verifier.Verify hit, limited", func() { v.Verify(limited, "t1", now, addr) }},
		{"Verifier.VerifyFillPass hit", func() { v.VerifyFillPass(pass, now) }},
	}
	for _, tt := range tests {
		tt.f() // fill the cache
		if n := testing.AllocsPerRun(100, tt.f); n != 0 {
			t.Errorf("%s allocates %v times per call, want 0", tt.name, n)
		}
	}
}
