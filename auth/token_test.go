package auth

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Seeds of test keys (the key file's hex).
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

func mustSign(t testing.TB, ks *Keys, title string, expiry time.Time, client netip.Prefix) string {
	t.Helper()
	return mustSignLimited(t, ks, title, expiry, client, Limits{})
}

func mustSignLimited(t testing.TB, ks *Keys, title string, expiry time.Time, client netip.Prefix, l Limits) string {
	t.Helper()
	tok, err := ks.SignLimited(title, expiry, client, l)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	signer := mustKeys(t, "new "+secretB+"\nold "+secretA+"\n")
	oldSigner := mustKeys(t, "old "+secretA+"\n")
	stranger := mustKeys(t, "new "+secretA+"\n") // same id, other key
	verifier := signer.Public()
	client := netip.MustParsePrefix("203.0.113.0/24")
	sign := func(ks *Keys, d time.Duration, p netip.Prefix) string { return mustSign(t, ks, "t1", now.Add(d), p) }

	valid := sign(signer, time.Hour, netip.Prefix{})
	limited := mustSignLimited(t, signer, "t1", now.Add(time.Hour), client, Limits{MaxHeight: 480, NoDownloads: true})
	in := netip.MustParseAddr("203.0.113.9")
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
		{"other title", valid, "t2", now, netip.Addr{}, ErrBadSignature},
		{"old key still verifies", sign(oldSigner, time.Minute, netip.Prefix{}), "t1", now, netip.Addr{}, nil},
		{"unknown key", sign(mustKeys(t, "zzz "+secretA+"\n"), time.Minute, netip.Prefix{}), "t1", now, netip.Addr{}, ErrUnknownKey},
		{"forged with other key", sign(stranger, time.Minute, netip.Prefix{}), "t1", now, netip.Addr{}, ErrBadSignature},
		{"expiry edited", strings.Replace(valid, ".1800003600.", ".1800003601.", 1), "t1", now, netip.Addr{}, ErrBadSignature},
		{"binding removed", strings.Replace(sign(signer, time.Minute, client), ".cb007100-24.", ".", 1), "t1", now, netip.Addr{}, ErrBadSignature},
		{"truncated", valid[:len(valid)-1], "t1", now, netip.Addr{}, ErrMalformed},
		{"empty", "", "t1", now, netip.Addr{}, ErrMalformed},
		{"garbage", strings.Repeat("x", 100), "t1", now, netip.Addr{}, ErrMalformed},
		{"bad title", valid, "t/1", now, netip.Addr{}, ErrMalformed},
		{"client prefix inside", sign(signer, time.Minute, client), "t1", now, netip.MustParseAddr("203.0.113.9"), nil},
		{"client prefix v4-mapped", sign(signer, time.Minute, client), "t1", now, netip.MustParseAddr("::ffff:203.0.113.9"), nil},
		{"client prefix outside", sign(signer, time.Minute, client), "t1", now, netip.MustParseAddr("198.51.100.1"), ErrClient},
		{"client prefix unknown addr", sign(signer, time.Minute, client), "t1", now, netip.Addr{}, ErrClient},
		{"v6 client prefix", sign(signer, time.Minute, netip.MustParsePrefix("2001:db8::/32")), "t1", now, netip.MustParseAddr("2001:db8::1"), nil},
		{"v4-mapped prefix signs as v4", sign(signer, time.Minute, netip.MustParsePrefix("::ffff:203.0.113.0/120")), "t1", now, netip.MustParseAddr("203.0.113.9"), nil},
		{"limited", limited, "t1", now, in, nil},
		{"limits raised", strings.Replace(limited, ".h480n.", ".h1080n.", 1), "t1", now, in, ErrBadSignature},
		{"downloads allowed", strings.Replace(limited, ".h480n.", ".h480.", 1), "t1", now, in, ErrBadSignature},
		{"limits removed", strings.Replace(limited, ".h480n.", ".", 1), "t1", now, in, ErrBadSignature},
		{"limits added", strings.Replace(valid, ".1800003600.", ".1800003600.h2160.", 1), "t1", now, in, ErrBadSignature},
		{"limits before the prefix", strings.Replace(limited, ".cb007100-24.h480n.", ".h480n.cb007100-24.", 1), "t1", now, in, ErrMalformed},
		{"empty limits", strings.Replace(limited, ".h480n.", "..", 1), "t1", now, in, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := verifier.Verify(tt.token, tt.title, tt.at, tt.addr); !errors.Is(got, tt.want) {
				t.Errorf("Verify(%q) = %v, want %v", tt.token, got, tt.want)
			}
		})
	}
}

// TestCanonical: exactly one spelling of a signed token verifies. Every
// other last character (four of which decode to the same signature bytes
// without the strict check), a leading zero in the expiry, upper-case or
// padded prefix fields are all refused.
func TestCanonical(t *testing.T) {
	t.Parallel()
	ks := mustKeys(t, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	addr := netip.MustParseAddr("203.0.113.9")
	tok := mustSign(t, ks, "t1", now.Add(time.Hour), ClientPrefix(addr))
	if _, err := ks.Verify(tok, "t1", now, addr); err != nil {
		t.Fatalf("Verify(%q) = %v", tok, err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for _, c := range alphabet {
		m := tok[:len(tok)-1] + string(c)
		if m == tok {
			continue
		}
		if _, err := ks.Verify(m, "t1", now, addr); err == nil {
			t.Errorf("last character %q: %q verifies, want it refused", c, m)
		}
	}
	for name, m := range map[string]string{
		"leading zero in expiry": strings.Replace(tok, ".1800003600.", ".01800003600.", 1),
		"plus in expiry":         strings.Replace(tok, ".1800003600.", ".+1800003600.", 1),
		"upper-case prefix":      strings.Replace(tok, ".cb007100-24.", ".CB007100-24.", 1),
		"leading zero in bits":   strings.Replace(tok, ".cb007100-24.", ".cb007100-024.", 1),
		"v4 prefix as mapped v6": strings.Replace(tok, ".cb007100-24.", ".00000000000000000000ffffcb007100-120.", 1),
		"unmasked prefix":        strings.Replace(tok, ".cb007100-24.", ".cb007109-24.", 1),
		"padding":                tok + "==",
		"trailing dot":           tok + ".",
	} {
		if m == tok {
			t.Fatalf("%s: the mutation did not apply to %q", name, tok)
		}
		if _, err := ks.Verify(m, "t1", now, addr); err == nil {
			t.Errorf("%s: %q verifies, want it refused", name, m)
		}
	}

	// The limits field too has one spelling.
	lim := mustSignLimited(t, ks, "t1", now.Add(time.Hour), ClientPrefix(addr), Limits{MaxHeight: 480, NoDownloads: true})
	if !strings.Contains(lim, ".cb007100-24.h480n.") {
		t.Fatalf("limited token %q: want the fields .cb007100-24.h480n.", lim)
	}
	for name, field := range map[string]string{
		"leading zero in height": "h0480n",
		"plus in height":         "h+480n",
		"upper-case letters":     "H480N",
		"fields out of order":    "nh480",
		"repeated flag":          "h480nn",
		"zero height":            "h0n",
		"height without digits":  "hn",
		"unknown letter":         "h480d",
		"six digits":             "h000480n",
	} {
		m := strings.Replace(lim, ".h480n.", "."+field+".", 1)
		if _, err := ks.Verify(m, "t1", now, addr); err == nil {
			t.Errorf("%s: %q verifies, want it refused", name, m)
		}
	}
}

// TestEveryCharacter: a token with every field, client prefix and limits
// included, stops verifying when any one character is changed to any
// other that may appear in a token.
func TestEveryCharacter(t *testing.T) {
	t.Parallel()
	ks := mustKeys(t, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	addr := netip.MustParseAddr("203.0.113.9")
	tok := mustSignLimited(t, ks, "t1", now.Add(time.Hour), ClientPrefix(addr), Limits{MaxHeight: 720, NoDownloads: true})
	if _, err := ks.Verify(tok, "t1", now, addr); err != nil {
		t.Fatalf("Verify(%q) = %v", tok, err)
	}
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	for i := range len(tok) {
		for _, c := range []byte(chars) {
			if tok[i] == c {
				continue
			}
			m := tok[:i] + string(c) + tok[i+1:]
			if _, err := ks.Verify(m, "t1", now, addr); err == nil {
				t.Fatalf("%q with character %d changed to %q verifies: %q", tok, i, c, m)
			}
		}
	}
}

// TestLimitsRoundTrip: a token gives back exactly the limits it was
// signed with, bound or not, from the keys and from the Verifier, whose
// cache holds them.
func TestLimitsRoundTrip(t *testing.T) {
	t.Parallel()
	ks := mustKeys(t, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	addr := netip.MustParseAddr("2001:db8:aa::9")
	v, err := NewVerifier(VerifierConfig{}, ks.Public())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		l     Limits
		field string // the token's limits field, "" for none
	}{
		{"unrestricted", Limits{}, ""},
		{"basic", Limits{MaxHeight: 480, NoDownloads: true}, "h480n"},
		{"standard", Limits{MaxHeight: 1080}, "h1080"},
		{"premium", Limits{MaxHeight: 2160}, "h2160"},
		{"no downloads alone", Limits{NoDownloads: true}, "n"},
		{"highest", Limits{MaxHeight: MaxLimitHeight, NoDownloads: true}, "h99999n"},
	}
	for _, tt := range tests {
		for _, client := range []netip.Prefix{{}, ClientPrefix(addr)} {
			name := tt.name + ", unbound"
			if client.IsValid() {
				name = tt.name + ", bound"
			}
			t.Run(name, func(t *testing.T) {
				tok := mustSignLimited(t, ks, "t1", now.Add(time.Hour), client, tt.l)
				fields := strings.Split(tok, ".")
				hasField := tt.field != "" && fields[len(fields)-2] == tt.field
				if tt.field != "" && !hasField || tt.field == "" && len(fields) != 3+btoi(client.IsValid()) {
					t.Errorf("token %q: want limits field %q", tok, tt.field)
				}
				if got, err := ks.Verify(tok, "t1", now, addr); err != nil || got != tt.l {
					t.Errorf("Keys.Verify = %+v, %v; want %+v", got, err, tt.l)
				}
				for _, pass := range []string{"verified", "cached"} {
					if got, err := v.Verify(tok, "t1", now, addr); err != nil || got != tt.l {
						t.Errorf("Verifier.Verify, %s = %+v, %v; want %+v", pass, got, err, tt.l)
					}
				}
				if got, err := v.Verify(tok, "t1", now.Add(2*time.Hour), addr); err == nil || got != (Limits{}) {
					t.Errorf("expired: Verify = %+v, %v; want the zero Limits and an error", got, err)
				}
			})
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestMaxLifetime: a token whose expiry lies further than the lifetime
// beyond now is refused, however well signed (an expiry in the year 33658
// passed the old 12-digit parser).
func TestMaxLifetime(t *testing.T) {
	t.Parallel()
	ks := mustKeys(t, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	far := mustSign(t, ks, "t1", time.Unix(999_999_999_999, 0), netip.Prefix{})
	if y := time.Unix(999_999_999_999, 0).UTC().Year(); y != 33658 {
		t.Fatalf("year %d", y)
	}
	if _, err := ks.Verify(far, "t1", now, netip.Addr{}); !errors.Is(err, ErrLifetime) {
		t.Errorf("year-33658 token: %v, want ErrLifetime", err)
	}
	day := mustSign(t, ks, "t1", now.Add(DefaultMaxLifetime), netip.Prefix{})
	if _, err := ks.Verify(day, "t1", now, netip.Addr{}); err != nil {
		t.Errorf("token of exactly the lifetime: %v", err)
	}
	over := mustSign(t, ks, "t1", now.Add(DefaultMaxLifetime+time.Second), netip.Prefix{})
	if _, err := ks.Verify(over, "t1", now, netip.Addr{}); !errors.Is(err, ErrLifetime) {
		t.Errorf("token a second over the lifetime: %v, want ErrLifetime", err)
	}
	v, err := NewVerifier(VerifierConfig{MaxLifetime: time.Hour}, ks.Public())
	if err != nil {
		t.Fatal(err)
	}
	two := mustSign(t, ks, "t1", now.Add(2*time.Hour), netip.Prefix{})
	if _, err := v.Verify(two, "t1", now, netip.Addr{}); !errors.Is(err, ErrLifetime) {
		t.Errorf("2 h token, 1 h lifetime: %v, want ErrLifetime", err)
	}
	if _, err := v.Verify(two, "t1", now.Add(time.Hour), netip.Addr{}); err != nil {
		t.Errorf("2 h token an hour later: %v", err)
	}
}

func TestClientBinding(t *testing.T) {
	t.Parallel()
	ks := mustKeys(t, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		client, other string
		wantPrefix    string
		sameNet       []string
	}{
		{"203.0.113.77", "203.0.114.77", "203.0.113.0/24", []string{"203.0.113.1", "203.0.113.254", "::ffff:203.0.113.5"}},
		{"::ffff:198.51.100.7", "198.51.101.7", "198.51.100.0/24", []string{"198.51.100.200"}},
		{"2001:db8:aa:bb::1", "2001:db8:ab::1", "2001:db8:aa::/48", []string{"2001:db8:aa:ffff::9"}},
	}
	for _, tt := range tests {
		t.Run(tt.client, func(t *testing.T) {
			p := ClientPrefix(netip.MustParseAddr(tt.client))
			if p.String() != tt.wantPrefix {
				t.Fatalf("ClientPrefix(%s) = %s, want %s", tt.client, p, tt.wantPrefix)
			}
			tok := mustSign(t, ks, "t1", now.Add(time.Hour), p)
			for _, a := range append(tt.sameNet, tt.client) {
				if _, err := ks.Verify(tok, "t1", now, netip.MustParseAddr(a)); err != nil {
					t.Errorf("client %s: %v", a, err)
				}
			}
			if _, err := ks.Verify(tok, "t1", now, netip.MustParseAddr(tt.other)); !errors.Is(err, ErrClient) {
				t.Errorf("client %s: %v, want ErrClient", tt.other, err)
			}
		})
	}
	if p := ClientPrefix(netip.Addr{}); p.IsValid() {
		t.Errorf("ClientPrefix(zero) = %v, want the zero Prefix", p)
	}
}

func TestPublicKeysCannotSign(t *testing.T) {
	t.Parallel()
	priv := mustKeys(t, "k1 "+secretA+"\n")
	pub := priv.Public()
	if !priv.CanSign() || pub.CanSign() {
		t.Fatalf("CanSign: private %v, public %v", priv.CanSign(), pub.CanSign())
	}
	if _, err := pub.Sign("t1", time.Now().Add(time.Hour), netip.Prefix{}); !errors.Is(err, ErrCannotSign) {
		t.Errorf("Sign with public keys: %v, want ErrCannotSign", err)
	}
	if _, err := pub.SignCredential("a1"); !errors.Is(err, ErrCannotSign) {
		t.Errorf("SignCredential with public keys: %v, want ErrCannotSign", err)
	}
	if pub.SigningKeyID() != "" || priv.SigningKeyID() != "k1" {
		t.Errorf("SigningKeyID: public %q, private %q", pub.SigningKeyID(), priv.SigningKeyID())
	}
	now := time.Now()
	if _, err := pub.Verify(mustSign(t, priv, "t1", now.Add(time.Hour), netip.Prefix{}), "t1", now, netip.Addr{}); err != nil {
		t.Errorf("public keys do not verify the private key's token: %v", err)
	}
}

// TestRotation: the first private key signs, every key verifies, and a
// public key ahead of the private one in the file does not change which
// signs.
func TestRotation(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	old := mustKeys(t, "old "+secretA+"\n")
	oldTok := mustSign(t, old, "t1", now.Add(time.Hour), netip.Prefix{})
	rotated := mustKeys(t, "new "+secretB+"\nold "+secretA+"\n")
	if rotated.SigningKeyID() != "new" {
		t.Errorf("signs with %q, want new", rotated.SigningKeyID())
	}
	newTok := mustSign(t, rotated, "t1", now.Add(time.Hour), netip.Prefix{})
	if !strings.HasPrefix(newTok, "new.") {
		t.Errorf("token %q, want one of key new", newTok)
	}
	for _, tok := range []string{oldTok, newTok} {
		if _, err := rotated.Public().Verify(tok, "t1", now, netip.Addr{}); err != nil {
			t.Errorf("%s: %v", tok, err)
		}
	}
	pubFirst := mustKeys(t, string(MarshalKeyFile(old.PublicList()))+"new "+secretB+"\n")
	if pubFirst.SigningKeyID() != "new" {
		t.Errorf("signs with %q, want new: the first private key", pubFirst.SigningKeyID())
	}
}

func TestSignRefuses(t *testing.T) {
	t.Parallel()
	ks := mustKeys(t, "k1 "+secretA+"\n")
	for name, f := range map[string]func() error{
		"bad title":   func() error { _, err := ks.Sign("t/1", time.Now(), netip.Prefix{}); return err },
		"1969":        func() error { _, err := ks.Sign("t1", time.Unix(-1, 0), netip.Prefix{}); return err },
		"short v4in6": func() error { _, err := ks.Sign("t1", time.Now(), netip.MustParsePrefix("::ffff:0:0/80")); return err },
		"negative height": func() error {
			_, err := ks.SignLimited("t1", time.Now(), netip.Prefix{}, Limits{MaxHeight: -1})
			return err
		},
		"six-digit height": func() error {
			_, err := ks.SignLimited("t1", time.Now(), netip.Prefix{}, Limits{MaxHeight: MaxLimitHeight + 1})
			return err
		},
	} {
		if f() == nil {
			t.Errorf("%s: Sign succeeded, want an error", name)
		}
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
	longest := strings.Repeat("k", maxKeyIDLen) + ".999999999999.20010db8000000000000000000000000-128.h99999n." + strings.Repeat("A", sigLen)
	if len(longest) != MaxTokenLen {
		t.Errorf("MaxTokenLen = %d, the longest token has %d", MaxTokenLen, len(longest))
	}
}

// FuzzVerify: any token Verify accepts is byte for byte what
// SignLimited makes of the fields it carries, its limits included.
func FuzzVerify(f *testing.F) {
	ks := mustKeys(f, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	addr := netip.MustParseAddr("10.1.2.3")
	f.Add(mustSign(f, ks, "t1", now.Add(time.Hour), netip.Prefix{}), "t1")
	f.Add(mustSign(f, ks, "t1", now.Add(time.Hour), netip.MustParsePrefix("10.0.0.0/8")), "t1")
	f.Add(mustSign(f, ks, "t1", now.Add(time.Hour), ClientPrefix(addr)), "t1")
	f.Add(mustSign(f, ks, "t-2_x", now, netip.MustParsePrefix("::/0")), "t-2_x")
	f.Add(mustSignLimited(f, ks, "t1", now.Add(time.Hour), netip.Prefix{}, Limits{MaxHeight: 480, NoDownloads: true}), "t1")
	f.Add(mustSignLimited(f, ks, "t1", now.Add(time.Hour), ClientPrefix(addr), Limits{MaxHeight: 1080}), "t1")
	f.Add(mustSignLimited(f, ks, "t1", now.Add(time.Hour), ClientPrefix(addr), Limits{NoDownloads: true}), "t1")
	f.Add("k1.1.2.3", "t1")
	f.Add("k1.1.h480.3", "t1")
	f.Fuzz(func(t *testing.T, token, title string) {
		l, err := ks.Verify(token, title, now, addr)
		if err != nil {
			return
		}
		parts := strings.Split(token, ".")
		exp, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil {
			t.Fatalf("accepted %q: expiry: %v", token, err)
		}
		var client netip.Prefix
		if len(parts) >= 4 {
			if p, ok := parsePrefix(parts[2]); ok {
				client = p
			} else if len(parts) == 5 {
				t.Fatalf("accepted %q with a prefix that does not parse", token)
			}
		}
		again := mustSignLimited(t, ks, title, time.Unix(exp, 0), client, l)
		if again != token {
			t.Fatalf("accepted %q; SignLimited makes %q of its fields", token, again)
		}
	})
}

func BenchmarkSign(b *testing.B) {
	k := mustKeys(b, "k1 "+secretA+"\n")
	exp := time.Unix(1_800_000_000, 0)
	client := ClientPrefix(netip.MustParseAddr("203.0.113.9"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign("t1", exp, client); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is the full check, signature included, without the
// Verifier's cache.
func BenchmarkVerify(b *testing.B) {
	k := mustKeys(b, "k1 "+secretA+"\n")
	now := time.Unix(1_800_000_000, 0)
	tok := mustSign(b, k, "t1", now.Add(time.Hour), netip.Prefix{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Verify(tok, "t1", now, netip.Addr{}); err != nil {
			b.Fatal(err)
		}
	}
}
