package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseKeysErrors(t *testing.T) {
	t.Parallel()
	pubA := mustKeys(t, "k "+secretA+"\n").PublicList()[0].Public
	tests := []struct {
		name, text, want string
	}{
		{"empty", "# nothing\n\n", "no keys"},
		{"one field", "k1\n", "want"},
		{"three fields", "k1 " + secretA + " x\n", "want"},
		{"not hex", "k1 zz\n", "32-byte Ed25519 seed"},
		{"short seed", "k1 0011\n", "32-byte Ed25519 seed"},
		{"long seed (an old HMAC secret)", "k1 " + secretA + "00\n", "32-byte Ed25519 seed"},
		{"short public key", "k1 pub:0011\n", "32-byte Ed25519 public key"},
		{"empty public key", "k1 pub:\n", "want a secret"},
		{"bad id", "k/1 " + secretA + "\n", "key id"},
		{"long id", strings.Repeat("k", 33) + " " + secretA + "\n", "key id"},
		{"duplicate", "k1 " + secretA + "\nk1 " + secretB + "\n", "duplicate"},
		{"duplicate public and private", "k1 pub:" + pubA + "\nk1 " + secretA + "\n", "duplicate"},
		{"identity public key", "k1 pub:01" + strings.Repeat("00", 31) + "\n", "small order"},
		{"zero public key", "k1 pub:" + strings.Repeat("00", 32) + "\n", "small order"},
		{"order-2 public key", "k1 pub:ec" + strings.Repeat("ff", 30) + "7f\n", "small order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeys(strings.NewReader(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseKeys(%q) error = %v, want one containing %q", tt.text, err, tt.want)
			}
		})
	}
	if _, err := NewKeys([]Key{{ID: "k1", Secret: secretA, Public: pubA}}); err != nil {
		t.Errorf("seed with its own public key: %v", err)
	}
	pubB := mustKeys(t, "k "+secretB+"\n").PublicList()[0].Public
	if _, err := NewKeys([]Key{{ID: "k1", Secret: secretA, Public: pubB}}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("seed with another public key: %v", err)
	}
}

// TestPublicFile: the public form of a private key file, as fillcast keys
// public writes it, parses to a set that verifies what the private one
// signs and holds no seed.
func TestPublicFile(t *testing.T) {
	t.Parallel()
	priv := mustKeys(t, "# rotated\nnew "+secretB+"\n\nold "+secretA+"\n")
	file := MarshalKeyFile(priv.PublicList())
	if bytes.Contains(file, []byte(secretA)) || bytes.Contains(file, []byte(secretB)) {
		t.Fatalf("public file holds a seed:\n%s", file)
	}
	lines := strings.Split(strings.TrimSpace(string(file)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "new pub:") || !strings.HasPrefix(lines[1], "old pub:") || len(lines[0]) != len("new pub:")+64 {
		t.Fatalf("public file:\n%s", file)
	}
	pub := mustKeys(t, string(file))
	if pub.CanSign() || strings.Join(pub.IDs(), " ") != "new old" {
		t.Errorf("public set: CanSign %v, ids %v", pub.CanSign(), pub.IDs())
	}
	now := time.Unix(1_800_000_000, 0)
	if _, err := pub.Verify(mustSign(t, priv, "t1", now.Add(time.Hour), netip.Prefix{}), "t1", now, netip.Addr{}); err != nil {
		t.Error(err)
	}
	gen, err := GenerateKey("g1", bytes.NewReader(make([]byte, 32)))
	if err != nil || gen.Secret != strings.Repeat("00", 32) {
		t.Fatalf("GenerateKey = %+v, %v", gen, err)
	}
	if got := string(MarshalKeyFile([]Key{gen})); got != "g1 "+gen.Secret+"\n" {
		t.Errorf("private line %q", got)
	}
	if _, err := GenerateKey("g/1", bytes.NewReader(make([]byte, 32))); err == nil {
		t.Error("GenerateKey with a bad id succeeded")
	}
}

// keyList returns ks as Keys: seeds of private keys, public keys of the
// others.
func keyList(ks *Keys) []Key {
	var out []Key
	for _, k := range ks.keys {
		if k.priv != nil {
			out = append(out, Key{ID: k.id, Secret: hex.EncodeToString(k.priv.Seed())})
		} else {
			out = append(out, Key{ID: k.id, Public: hex.EncodeToString(k.pub)})
		}
	}
	return out
}

// FuzzParseKeys: whatever parses writes back (MarshalKeyFile) to a file
// that parses to the same keys, and every key is a usable Ed25519 key.
func FuzzParseKeys(f *testing.F) {
	pub := MarshalKeyFile(mustKeys(f, "p "+secretB+"\n").PublicList())
	f.Add("k1 " + secretA + "\n")
	f.Add("# c\nnew " + secretB + "\n\nold " + secretA + "\n")
	f.Add(string(pub) + "k1 " + secretA + "\n")
	f.Add("k1 pub:" + strings.Repeat("00", 32) + "\n")
	f.Add("k1 zz\nk2\n")
	f.Fuzz(func(t *testing.T, text string) {
		ks, err := ParseKeys(strings.NewReader(text))
		if err != nil {
			return
		}
		back, err := ParseKeys(bytes.NewReader(MarshalKeyFile(keyList(ks))))
		if err != nil {
			t.Fatalf("%q parses, its written form does not: %v", text, err)
		}
		if len(back.keys) != len(ks.keys) || back.SigningKeyID() != ks.SigningKeyID() {
			t.Fatalf("%q: round trip changed the set", text)
		}
		for i, k := range ks.keys {
			b := back.keys[i]
			if b.id != k.id || !b.pub.Equal(k.pub) || (b.priv == nil) != (k.priv == nil) || len(k.pub) != ed25519.PublicKeySize {
				t.Fatalf("%q: key %d changed in the round trip", text, i)
			}
		}
	})
}
