package auth

import (
	"crypto/ed25519"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCredential(t *testing.T) {
	t.Parallel()
	priv := mustKeys(t, "new "+secretB+"\nold "+secretA+"\n")
	pub := priv.Public()
	cred, err := priv.SignCredential("a1")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(cred, ".")
	if len(parts) != 5 || parts[0] != "fca" || parts[1] != "new" || parts[2] != "a1" || len(parts[3]) != 22 || len(parts[4]) != 86 {
		t.Fatalf("credential %q: want fca.new.a1.{22-char nonce}.{86-char signature}", cred)
	}
	if !IsCredential(cred) || IsCredential("adm") || IsCredential("fck.k1.x") {
		t.Error("IsCredential")
	}
	if id, err := pub.VerifyCredential(cred); err != nil || id != "a1" {
		t.Errorf("VerifyCredential = %q, %v; want a1", id, err)
	}
	again, _ := priv.SignCredential("a1")
	if again == cred {
		t.Error("two credentials for a1 are equal: the nonce is not fresh")
	}
	oldOnly := mustKeys(t, "old "+secretA+"\n")
	oldCred, _ := oldOnly.SignCredential("a2")
	stranger, _ := mustKeys(t, "new "+secretA+"\n").SignCredential("a1")
	now := time.Unix(1_800_000_000, 0)
	token := mustSign(t, priv, "a1", now.Add(time.Hour), netip.Prefix{})
	tests := []struct {
		name, cred string
		ok         bool
	}{
		{"valid", cred, true},
		{"second key", oldCred, true},
		{"other key under the same id", stranger, false},
		{"appliance id changed", strings.Replace(cred, ".a1.", ".a2.", 1), false},
		{"key id changed", strings.Replace(cred, "fca.new.", "fca.old.", 1), false},
		{"unknown key", strings.Replace(cred, "fca.new.", "fca.zzz.", 1), false},
		{"no prefix", strings.TrimPrefix(cred, "fca."), false},
		{"a playback token", "fca." + token, false},
		{"extra field", cred + ".x", false},
		{"empty", "", false},
		{"too long", cred + strings.Repeat("A", MaxCredentialLen), false},
	}
	for i := range cred { // every character of the credential altered
		if i < len("fca.") {
			continue
		}
		c := byte('A')
		if cred[i] == 'A' {
			c = 'B'
		}
		tests = append(tests, struct {
			name, cred string
			ok         bool
		}{"char " + strconv.Itoa(i), cred[:i] + string(c) + cred[i+1:], false})
	}
	for _, tt := range tests {
		id, err := pub.VerifyCredential(tt.cred)
		if tt.ok != (err == nil) {
			t.Errorf("%s: VerifyCredential(%q) = %q, %v; want ok=%v", tt.name, tt.cred, id, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadCredential) {
			t.Errorf("%s: error %v, want ErrBadCredential", tt.name, err)
		}
	}
	if _, err := priv.SignCredential("a/1"); err == nil {
		t.Error("SignCredential with a bad appliance id succeeded")
	}
}

// A credential's signature never passes for a token's, and the other way
// round: the messages have distinct domains.
func TestCredentialIsNotAToken(t *testing.T) {
	t.Parallel()
	ks := mustKeys(t, "k1 "+secretA+"\n")
	cred, _ := ks.SignCredential("a1")
	parts := strings.Split(cred, ".")
	// A token whose fields spell the credential's message as well as
	// they can: key k1, title a1, the nonce as expiry field.
	forged := "k1." + parts[3] + "." + parts[4]
	if _, err := ks.Verify(forged, "a1", time.Now(), netip.Addr{}); err == nil {
		t.Errorf("credential signature accepted as token %q", forged)
	}
}

func BenchmarkVerifyCredential(b *testing.B) {
	ks := mustKeys(b, "k1 "+secretA+"\n")
	cred, _ := ks.SignCredential("a1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.VerifyCredential(cred); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerifyCredential: any credential VerifyCredential accepts is byte
// for byte what the signing key makes of the key id, appliance id and
// nonce it carries (Ed25519 signatures are deterministic), so no altered
// spelling of a credential verifies.
func FuzzVerifyCredential(f *testing.F) {
	ks := mustKeys(f, "k1 "+secretA+"\n")
	for _, id := range []string{"a1", "edge-7_x"} {
		c, err := ks.SignCredential(id)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c)
	}
	f.Add("fca.k1.a1.AAAAAAAAAAAAAAAAAAAAAA.x")
	f.Fuzz(func(t *testing.T, cred string) {
		id, err := ks.VerifyCredential(cred)
		if err != nil {
			return
		}
		parts := strings.Split(strings.TrimPrefix(cred, CredentialPrefix), ".")
		if len(parts) != 4 || parts[1] != id {
			t.Fatalf("accepted %q for %q", cred, id)
		}
		sig := ed25519.Sign(ks.signer.priv, appendCredentialMessage(nil, parts[0], id, parts[2]))
		if want := CredentialPrefix + parts[0] + "." + id + "." + parts[2] + "." + strict.EncodeToString(sig); want != cred {
			t.Fatalf("accepted %q; the key makes %q of its fields", cred, want)
		}
	})
}
