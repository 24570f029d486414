package auth

import (
	"errors"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"
)

func newVerifier(t testing.TB, cfg VerifierConfig, ks *Keys) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg, ks)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVerifierCache: a cached token answers as the full check would:
// expiry and the client are judged on every call, a different title is
// not a hit, and SetKeys drops what the old keys verified.
func TestVerifierCache(t *testing.T) {
	t.Parallel()
	ks := mustKeys(t, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	in, out := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("198.51.100.1")
	tok := mustSign(t, ks, "t1", now.Add(time.Hour), ClientPrefix(in))
	v := newVerifier(t, VerifierConfig{}, ks.Public())
	steps := []struct {
		name  string
		title string
		at    time.Time
		addr  netip.Addr
		want  error
	}{
		{"first, verified", "t1", now, in, nil},
		{"cached", "t1", now, in, nil},
		{"cached, other client", "t1", now, out, ErrClient},
		{"cached, unknown client", "t1", now, netip.Addr{}, ErrClient},
		{"other title", "t2", now, in, ErrBadSignature},
		{"cached, at expiry", "t1", now.Add(time.Hour), in, nil},
		{"cached, expired", "t1", now.Add(time.Hour + time.Second), in, ErrExpired},
	}
	for _, s := range steps {
		if _, got := v.Verify(tok, s.title, s.at, s.addr); !errors.Is(got, s.want) {
			t.Errorf("%s: Verify = %v, want %v", s.name, got, s.want)
		}
	}
	pass, _ := ks.SignFillPass("a1", now.Add(time.Hour))
	for range 2 {
		if id, err := v.VerifyFillPass(pass, now); err != nil || id != "a1" {
			t.Errorf("VerifyFillPass = %q, %v", id, err)
		}
	}
	// Revoked: the new set lacks k1.
	v.SetKeys(mustKeys(t, "k2 "+secretB+"\n").Public())
	if _, err := v.Verify(tok, "t1", now, in); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("after SetKeys without k1: %v, want ErrUnknownKey", err)
	}
	if _, err := v.VerifyFillPass(pass, now); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("fill pass after SetKeys without k1: %v, want ErrUnknownKey", err)
	}
	if v.Keys().IDs()[0] != "k2" {
		t.Errorf("Keys() = %v", v.Keys().IDs())
	}
}

// TestVerifierBounded: more tokens than entries all verify, the table
// does not grow, and concurrent callers agree (run with -race).
func TestVerifierBounded(t *testing.T) {
	t.Parallel()
	ks := mustKeys(t, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	v := newVerifier(t, VerifierConfig{CacheEntries: 8}, ks.Public())
	toks := make([]string, 64)
	for i := range toks {
		toks[i] = mustSign(t, ks, "t"+strconv.Itoa(i), now.Add(time.Duration(i+1)*time.Minute), netip.Prefix{})
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for round := range 3 {
				for i, tok := range toks {
					if _, err := v.Verify(tok, "t"+strconv.Itoa(i), now, netip.Addr{}); err != nil {
						t.Errorf("goroutine %d round %d token %d: %v", g, round, i, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	st := v.st.Load()
	if len(st.slots) != 8 {
		t.Errorf("%d slots, want 8", len(st.slots))
	}
	held := 0
	for i := range st.slots {
		if st.slots[i].Load() != nil {
			held++
		}
	}
	if held == 0 || held > 8 {
		t.Errorf("%d entries held, want 1 to 8", held)
	}
}

func TestVerifierConfig(t *testing.T) {
	t.Parallel()
	ks := mustKeys(t, "k1 "+secretA+"\n")
	for _, cfg := range []VerifierConfig{{MaxLifetime: -1}, {CacheEntries: -1}, {CacheEntries: 1 << 25}} {
		if _, err := NewVerifier(cfg, ks); err == nil {
			t.Errorf("NewVerifier(%+v) succeeded", cfg)
		}
	}
	if _, err := NewVerifier(VerifierConfig{}, nil); err == nil {
		t.Error("NewVerifier without keys succeeded")
	}
	reasons := map[error]string{ErrMalformed: "malformed", ErrUnknownKey: "unknown_key", ErrBadSignature: "bad_signature",
		ErrExpired: "expired", ErrLifetime: "lifetime", ErrClient: "client", ErrBadCredential: "credential", errors.New("x"): "other"}
	for err, want := range reasons {
		if got := RejectReason(err); got != want {
			t.Errorf("RejectReason(%v) = %q, want %q", err, got, want)
		}
	}
}

// BenchmarkVerifierHit is the appliance's per-request check of a
// session's token: a cache hit.
func BenchmarkVerifierHit(b *testing.B) {
	ks := mustKeys(b, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	addr := netip.MustParseAddr("203.0.113.9")
	tok := mustSign(b, ks, "t1", now.Add(time.Hour), ClientPrefix(addr))
	v := newVerifier(b, VerifierConfig{}, ks.Public())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, "t1", now, addr); err != nil {
			b.Fatal(err)
		}
	}
}
