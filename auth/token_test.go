package auth

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const (
	secretA = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	secretB = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
)

func mustKeys(t testing.TB, text string) *Keys {
	t.Helper()
	k, err := ParseKeys(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKeysErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text, want string
	}{
		{"empty", "# nothing\n\n", "no keys"},
		{"one field", "k1\n", "want"},
		{"not hex", "k1 zz\n", "not hex"},
		{"short secret", "k1 0011\n", "at least 32"},
		{"bad id", "k/1 " + secretA + "\n", "key id"},
		{"duplicate", "k1 " + secretA + "\nk1 " + secretB + "\n", "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeys(strings.NewReader(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseKeys(%q) error = %v, want one containing %q", tt.text, err, tt.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	signer := mustKeys(t, "new "+secretB+"\nold "+secretA+"\n")
	oldSigner := mustKeys(t, "old "+secretA+"\n")
	stranger := mustKeys(t, "new "+secretA+"\n") // same id, other secret
	verifier := signer
	client := netip.MustParsePrefix("203.0.113.0/24")

	valid := signer.Sign("t1", now.Add(time.Hour), netip.Prefix{})
	tests := []struct {
		name  string
		token string
		title string
		at    time.Time
		addr  netip.Addr
		want  error
	}{
		{"valid", valid, "t1", now, netip.Addr{}, nil},
		{"valid at expiry second", valid, "t1", now.Add(time.Hour), netip.Addr{}, nil},
		{"expired", valid, "t1", now.Add(time.Hour + time.Second), netip.Addr{}, ErrExpired},
		{"other title", valid, "t2", now, netip.Addr{}, ErrBadMAC},
		{"old key still verifies", oldSigner.Sign("t1", now.Add(time.Minute), netip.Prefix{}), "t1", now, netip.Addr{}, nil},
		{"unknown key", mustKeys(t, "zzz "+secretA+"\n").Sign("t1", now.Add(time.Minute), netip.Prefix{}), "t1", now, netip.Addr{}, ErrUnknownKey},
		{"forged with other secret", stranger.Sign("t1", now.Add(time.Minute), netip.Prefix{}), "t1", now, netip.Addr{}, ErrBadMAC},
		{"expiry edited", strings.Replace(valid, ".18", ".19", 1), "t1", now, netip.Addr{}, ErrBadMAC},
		{"truncated", valid[:len(valid)-1], "t1", now, netip.Addr{}, ErrMalformed},
		{"empty", "", "t1", now, netip.Addr{}, ErrMalformed},
		{"garbage", strings.Repeat("x", 60), "t1", now, netip.Addr{}, ErrMalformed},
		{"client prefix inside", signer.Sign("t1", now.Add(time.Minute), client), "t1", now, netip.MustParseAddr("203.0.113.9"), nil},
		{"client prefix v4-mapped", signer.Sign("t1", now.Add(time.Minute), client), "t1", now, netip.MustParseAddr("::ffff:203.0.113.9"), nil},
		{"client prefix outside", signer.Sign("t1", now.Add(time.Minute), client), "t1", now, netip.MustParseAddr("198.51.100.1"), ErrClient},
		{"client prefix unknown addr", signer.Sign("t1", now.Add(time.Minute), client), "t1", now, netip.Addr{}, ErrClient},
		{"v6 client prefix", signer.Sign("t1", now.Add(time.Minute), netip.MustParsePrefix("2001:db8::/32")), "t1", now, netip.MustParseAddr("2001:db8::1"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verifier.Verify(tt.token, tt.title, tt.at, tt.addr); !errors.Is(got, tt.want) {
				t.Errorf("Verify(%q) = %v, want %v", tt.token, got, tt.want)
			}
		})
	}
}

func TestSignPathIsURLSafe(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, "k1 "+secretA+"\n")
	p := k.SignPath("t1", time.Unix(1_800_000_000, 0), netip.MustParsePrefix("2001:db8::/32"))
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-", c)) {
			t.Fatalf("SignPath = %q: character %q needs escaping", p, c)
		}
	}
	if !strings.HasPrefix(p, "/c/k1.") || !strings.HasSuffix(p, "/t1") {
		t.Errorf("SignPath = %q, want /c/k1.<...>/t1", p)
	}
}

func BenchmarkVerify(b *testing.B) {
	k := mustKeys(b, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	tok := k.Sign("t1", now.Add(time.Hour), netip.Prefix{})
	b.ReportAllocs()
	for b.Loop() {
		if err := k.Verify(tok, "t1", now, netip.Addr{}); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	k := mustKeys(f, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	f.Add(k.Sign("t1", now.Add(time.Hour), netip.Prefix{}), "t1")
	f.Add(k.Sign("t1", now.Add(time.Hour), netip.MustParsePrefix("10.0.0.0/8")), "t1")
	f.Add("k1.1.2.3", "t1")
	f.Fuzz(func(t *testing.T, token, title string) {
		err := k.Verify(token, title, now, netip.MustParseAddr("10.1.2.3"))
		if err == nil {
			// Anything accepted must be exactly what we would sign.
			if !strings.HasPrefix(token, "k1.") {
				t.Fatalf("accepted %q with a foreign key id", token)
			}
		}
	})
}

func TestMerge(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	fileKeys := mustKeys(t, "old "+secretA+"\n")
	replicated, err := NewKeys([]Key{{ID: "new", Secret: secretB}, {ID: "old", Secret: secretB}})
	if err != nil {
		t.Fatal(err)
	}
	m := replicated.Merge(fileKeys)
	if m.SigningKeyID() != "new" {
		t.Errorf("merged set signs with %q, want new", m.SigningKeyID())
	}
	// Replicated "old" (secret B) wins over the file's "old" (secret A).
	if err := m.Verify(fileKeys.Sign("t1", now.Add(time.Hour), netip.Prefix{}), "t1", now, netip.Addr{}); !errors.Is(err, ErrBadMAC) {
		t.Errorf("token of the shadowed file key: %v, want ErrBadMAC", err)
	}
	if err := m.Verify(m.Sign("t1", now.Add(time.Hour), netip.Prefix{}), "t1", now, netip.Addr{}); err != nil {
		t.Errorf("own token: %v", err)
	}
	if _, err := NewKeys(nil); err == nil {
		t.Error("NewKeys(nil) succeeded")
	}
}
