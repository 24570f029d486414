package auth

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestFillPass: a pass signed for an appliance verifies, with the public
// keys, for that appliance alone and until it expires; it is no playback
// token, and no playback token is a pass.
func TestFillPass(t *testing.T) {
	t.Parallel()
	priv := mustKeys(t, "k1 "+secretA+"\n")
	v, err := NewVerifier(VerifierConfig{}, priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	pass, err := priv.SignFillPass("a1", now.Add(time.Hour))
	if err != nil || !strings.HasPrefix(pass, "fcp.a1.k1.") {
		t.Fatalf("SignFillPass = %q, %v", pass, err)
	}
	if _, err := priv.Public().SignFillPass("a1", now); !errors.Is(err, ErrCannotSign) {
		t.Errorf("a public key set signed a pass: %v", err)
	}
	token := mustSign(t, priv, "a1", now.Add(time.Hour), netip.Prefix{})
	tests := []struct {
		name, pass string
		at         time.Time
		want       error
	}{
		{"valid", pass, now, nil},
		{"valid from the cache", pass, now.Add(time.Minute), nil},
		{"expired", pass, now.Add(2 * time.Hour), ErrExpired},
		{"another appliance's id", strings.Replace(pass, "fcp.a1.", "fcp.a2.", 1), now, ErrBadSignature},
		{"a playback token of a title named a1", "fcp.a1." + token, now, ErrBadSignature},
		{"no prefix", strings.TrimPrefix(pass, "fcp."), now, ErrMalformed},
		{"a bad id", "fcp.a/1." + token, now, ErrMalformed},
	}
	for _, tt := range tests {
		id, err := v.VerifyFillPass(tt.pass, tt.at)
		if !errors.Is(err, tt.want) || (err == nil && id != "a1") {
			t.Errorf("%s: VerifyFillPass = %q, %v; want a1, %v", tt.name, id, err, tt.want)
		}
	}
	// The pass's token is no playback token for any title.
	tok := strings.TrimPrefix(pass, "fcp.a1.")
	if _, err := v.Verify(tok, "a1", now, netip.Addr{}); err == nil {
		t.Error("a fill pass's token verified as a playback token")
	}
}
