package auth

import (
	"bufio"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"

	"github.com/fillcast/fillcast"
)

// publicTag marks a key-file line that holds a public key, not a seed.
const publicTag = "pub:"

// Key is one key as a key-file line and the JSON of GET and PUT /v1/keys
// carry it: an id and either Secret, the hex of a 32-byte Ed25519 seed (a
// private key: it signs and verifies), or Public alone, the hex of a
// 32-byte Ed25519 public key (it verifies). When both are set the key is
// private and Public must be the seed's.
type Key struct {
	ID     string `json:"id"`
	Secret string `json:"secret,omitempty"`
	Public string `json:"public,omitempty"`
}

// Keys is a parsed key set: Ed25519 keys in order, the first private one
// signing and all of them verifying. A set of public keys alone verifies
// but cannot sign. It is immutable and safe for concurrent use.
type Keys struct {
	keys   []*key
	signer *key // the first key with a private part; nil: verify only
}

type key struct {
	id   string
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey // nil: verify only
}

// GenerateKey returns a new private key named id, its seed read from
// rand (crypto/rand.Reader in production).
func GenerateKey(id string, rand io.Reader) (Key, error) {
	if err := validKeyID(id); err != nil {
		return Key{}, fmt.Errorf("auth: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return Key{}, fmt.Errorf("auth: generate key: %w", err)
	}
	return Key{ID: id, Secret: hex.EncodeToString(seed)}, nil
}

// LoadKeys reads a key file: one key a line, blank lines and lines
// starting with '#' ignored. A line is either
//
//	<id> <hex of a 32-byte Ed25519 seed>           a private key, or
//	<id> pub:<hex of a 32-byte Ed25519 public key> a public key.
//
// The control plane needs the private file; appliances and the origin
// should be given the public one (fillcast keys public).
func LoadKeys(path string) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer f.Close()
	k, err := ParseKeys(f)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// ParseKeys parses the key-file format described at LoadKeys.
func ParseKeys(r io.Reader) (*Keys, error) {
	var keys []Key
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("auth: key file line %d: want \"<id> <hex seed>\" or \"<id> pub:<hex public key>\"", n)
		}
		k := Key{ID: fields[0]}
		if pub, ok := strings.CutPrefix(fields[1], publicTag); ok {
			k.Public = pub
		} else {
			k.Secret = fields[1]
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth: read key file: %w", err)
	}
	return NewKeys(keys)
}

// MarshalKeyFile returns keys in the key-file format that ParseKeys reads,
// one line each: the seed of a key with a Secret, the public key of the
// others.
func MarshalKeyFile(keys []Key) []byte {
	var b []byte
	for _, k := range keys {
		b = append(b, k.ID...)
		b = append(b, ' ')
		if k.Secret != "" {
			b = append(b, k.Secret...)
		} else {
			b = append(b, publicTag...)
			b = append(b, k.Public...)
		}
		b = append(b, '\n')
	}
	return b
}

// NewKeys returns the key set of keys, in order: the first private key
// signs. Ids must be unique; see Key for the rest.
func NewKeys(keys []Key) (*Keys, error) {
	ks := &Keys{}
	seen := map[string]bool{}
	for i, k := range keys {
		if err := validKeyID(k.ID); err != nil {
			return nil, fmt.Errorf("auth: key %d: %w", i+1, err)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("auth: key %d: duplicate key id %q", i+1, k.ID)
		}
		seen[k.ID] = true
		pk, err := parseKey(k)
		if err != nil {
			return nil, fmt.Errorf("auth: key %d (%s): %w", i+1, k.ID, err)
		}
		ks.keys = append(ks.keys, pk)
		if ks.signer == nil && pk.priv != nil {
			ks.signer = pk
		}
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("auth: no keys")
	}
	return ks, nil
}

func parseKey(k Key) (*key, error) {
	out := &key{id: k.ID}
	if k.Secret != "" {
		seed, err := hex.DecodeString(k.Secret)
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, errors.New("secret: want the hex of a 32-byte Ed25519 seed (fillcast keys generate)")
		}
		out.priv = ed25519.NewKeyFromSeed(seed)
		out.pub = out.priv.Public().(ed25519.PublicKey)
	}
	if k.Public != "" {
		pub, err := hex.DecodeString(k.Public)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, errors.New("public key: want the hex of a 32-byte Ed25519 public key (fillcast keys public)")
		}
		if out.pub != nil && !out.pub.Equal(ed25519.PublicKey(pub)) {
			return nil, errors.New("public key does not match the secret")
		}
		out.pub = pub
	}
	if out.pub == nil {
		return nil, errors.New("want a secret (hex seed) or a public key")
	}
	if weakPublicKey(out.pub) {
		return nil, errors.New("public key is a point of small order, which would accept forged signatures")
	}
	return out, nil
}

// CanSign reports whether ks holds a private key.
func (ks *Keys) CanSign() bool { return ks.signer != nil }

// SigningKeyID returns the id of the key that signs, or "" when ks holds
// public keys only.
func (ks *Keys) SigningKeyID() string {
	if ks.signer == nil {
		return ""
	}
	return ks.signer.id
}

// IDs returns the ids of ks's keys, in order.
func (ks *Keys) IDs() []string {
	ids := make([]string, len(ks.keys))
	for i, k := range ks.keys {
		ids[i] = k.id
	}
	return ids
}

// Public returns the same keys without their private parts: a set that
// verifies but cannot sign.
func (ks *Keys) Public() *Keys {
	out := &Keys{keys: make([]*key, len(ks.keys))}
	for i, k := range ks.keys {
		out.keys[i] = &key{id: k.id, pub: k.pub}
	}
	return out
}

// PublicList returns every key as a public Key (ID and Public), in order:
// the body of GET /v1/keys and the lines of a public key file.
func (ks *Keys) PublicList() []Key {
	out := make([]Key, len(ks.keys))
	for i, k := range ks.keys {
		out[i] = Key{ID: k.id, Public: hex.EncodeToString(k.pub)}
	}
	return out
}

// lookup returns the key named id, or nil. Key sets are a handful of keys:
// a loop beats a map and allocates nothing.
func (ks *Keys) lookup(id string) *key {
	for _, k := range ks.keys {
		if k.id == id {
			return k
		}
	}
	return nil
}

func validKeyID(id string) error {
	if len(id) == 0 || len(id) > maxKeyIDLen {
		return fmt.Errorf("key id %q: want 1 to %d characters", id, maxKeyIDLen)
	}
	if !validID(id, maxKeyIDLen) {
		return fmt.Errorf("key id %q: only letters, digits, '-' and '_' are allowed", id)
	}
	return nil
}

// maxKeyIDLen bounds a key id.
const maxKeyIDLen = 32

// validID reports whether s is 1 to max id bytes (fillcast.IsIDByte).
func validID(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !fillcast.IsIDByte(s[i]) {
			return false
		}
	}
	return true
}

// curveP is the field prime of Curve25519, 2^255 - 19.
var curveP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

// weakPublicKey reports whether pub encodes a point of small order (or
// not a point of the curve's large subgroup's coset at all, detected the
// same way). Ed25519 verification with such a key accepts signatures
// anyone can make, so a key file or a PUT /v1/keys holding one is refused.
// The check maps the Edwards y to the Montgomery u = (1+y)/(1-y) and asks
// X25519, which refuses points whose multiple by the cofactor is zero.
func weakPublicKey(pub ed25519.PublicKey) bool {
	le := make([]byte, len(pub))
	for i, c := range pub {
		le[len(pub)-1-i] = c
	}
	le[0] &= 0x7f // the sign of x
	y := new(big.Int).SetBytes(le)
	y.Mod(y, curveP)
	den := new(big.Int).Sub(big.NewInt(1), y)
	den.Mod(den, curveP)
	if den.Sign() == 0 {
		return true // y = 1: the identity
	}
	u := new(big.Int).Add(big.NewInt(1), y)
	u.Mul(u, den.ModInverse(den, curveP))
	u.Mod(u, curveP)
	var ub [32]byte
	u.FillBytes(ub[:])
	for i, j := 0, len(ub)-1; i < j; i, j = i+1, j-1 {
		ub[i], ub[j] = ub[j], ub[i]
	}
	peer, err := ecdh.X25519().NewPublicKey(ub[:])
	if err != nil {
		return true
	}
	_, err = probeKey.ECDH(peer)
	return err != nil
}

// probeKey is any X25519 private key: weakPublicKey multiplies by it.
var probeKey, _ = ecdh.X25519().NewPrivateKey([]byte("fillcast weak-key probe scalar!!"))
