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
	tok := k.Sign("t1", now.Add(time.Hour), netip.Prefix{})
	if n := testing.AllocsPerRun(200, func() { k.Verify(tok, "t1", now, netip.Addr{}) }); n != 0 {
		t.Errorf("Verify allocates %v times per call, want 0", n)
	}
}
