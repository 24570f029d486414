// Package auth is Fillcast's one home for trust: who a caller is and what
// it may fetch. It holds the path tokens that authorise a player to fetch
// one title from an appliance (signed by the control plane, verified by
// appliances and the origin) and the bearer check of the admin token that
// operators, appliances and control-plane nodes present.
//
// A playback URL has the form /c/{token}/{title}/{path...}: the token sits
// in the path so that the relative URLs inside HLS playlists and DASH
// manifests keep it. A token is
//
//	{key id}.{expiry, unix seconds}.{MAC}            or
//	{key id}.{expiry}.{client prefix}.{MAC}
//
// where the MAC is HMAC-SHA256, base64url without padding, over the key
// id, title, expiry and optional client prefix (written as the hex of the
// masked address, '-', the prefix length, e.g. "cb007100-24"). The control
// plane signs with the first key of the key file; appliances accept any key
// in it, so keys rotate by adding a new first line, waiting for old tokens
// to expire, then removing the old line.
package auth

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
)

// MinSecretLen is the shortest secret a key file may hold, in bytes.
const MinSecretLen = 32

// macLen is the length of the encoded MAC: base64url of 32 bytes, unpadded.
const macLen = 43

// MaxTokenLen bounds a token; longer path segments are refused unparsed.
const MaxTokenLen = 160

// Errors returned by Verify. They all mean 403 to a player.
var (
	ErrMalformed  = errors.New("auth: malformed token")
	ErrUnknownKey = errors.New("auth: unknown key")
	ErrBadMAC     = errors.New("auth: bad signature")
	ErrExpired    = errors.New("auth: token expired")
	ErrClient     = errors.New("auth: token is for another client")
)

// Keys is a parsed key file. It is safe for concurrent use.
type Keys struct {
	keys []*key // keys[0] signs
}

type key struct {
	id   string
	pool sync.Pool // of *macState
}

type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
	msg []byte
}

// LoadKeys reads a key file: one key a line, "<id> <hex secret>", blank
// lines and lines starting with '#' ignored. The first key signs.
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

// Key is one signing key: an id and its secret in hex.
type Key struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// ParseKeys parses the key file format described at LoadKeys.
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
			return nil, fmt.Errorf("auth: key file line %d: want \"<id> <hex secret>\"", n)
		}
		keys = append(keys, Key{ID: fields[0], Secret: fields[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth: read key file: %w", err)
	}
	return NewKeys(keys)
}

// NewKeys returns the key set of keys, in order: the first signs. Ids must be
// unique and secrets at least MinSecretLen bytes of hex.
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
		secret, err := hex.DecodeString(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("auth: key %d (%s): secret is not hex: %w", i+1, k.ID, err)
		}
		if len(secret) < MinSecretLen {
			return nil, fmt.Errorf("auth: key %d (%s): secret has %d bytes, want at least %d (openssl rand -hex 32)", i+1, k.ID, len(secret), MinSecretLen)
		}
		seen[k.ID] = true
		ks.keys = append(ks.keys, newKey(k.ID, secret))
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("auth: no keys")
	}
	return ks, nil
}

// Merge returns a key set that signs with ks's first key and verifies with
// every key of ks and of more (ks wins when both have an id).
func (ks *Keys) Merge(more *Keys) *Keys {
	out := &Keys{keys: append([]*key(nil), ks.keys...)}
	if more == nil {
		return out
	}
	for _, k := range more.keys {
		dup := false
		for _, have := range ks.keys {
			dup = dup || have.id == k.id
		}
		if !dup {
			out.keys = append(out.keys, k)
		}
	}
	return out
}

func validKeyID(id string) error {
	if len(id) == 0 || len(id) > 32 {
		return fmt.Errorf("key id %q: want 1 to 32 characters", id)
	}
	for i := 0; i < len(id); i++ {
		if !fillcast.IsIDByte(id[i]) {
			return fmt.Errorf("key id %q: only letters, digits, '-' and '_' are allowed", id)
		}
	}
	return nil
}

func newKey(id string, secret []byte) *key {
	k := &key{id: id}
	k.pool.New = func() any {
		return &macState{h: hmac.New(sha256.New, secret), msg: make([]byte, 0, 128)}
	}
	return k
}

// SigningKeyID returns the id of the key that signs.
func (ks *Keys) SigningKeyID() string { return ks.keys[0].id }

// Sign returns a token for title valid until expiry. If client is valid,
// the token is bound to that prefix and verifies only for addresses in it.
func (ks *Keys) Sign(title string, expiry time.Time, client netip.Prefix) string {
	k := ks.keys[0]
	exp := strconv.FormatInt(expiry.Unix(), 10)
	pfx := ""
	if client.IsValid() {
		pfx = encodePrefix(client.Masked())
	}
	st := k.pool.Get().(*macState)
	mac := st.compute(k.id, title, exp, pfx)
	var b strings.Builder
	b.Grow(len(k.id) + len(exp) + len(pfx) + macLen + 3)
	b.WriteString(k.id)
	b.WriteByte('.')
	b.WriteString(exp)
	b.WriteByte('.')
	if pfx != "" {
		b.WriteString(pfx)
		b.WriteByte('.')
	}
	var enc [macLen]byte
	base64.RawURLEncoding.Encode(enc[:], mac)
	b.Write(enc[:])
	k.pool.Put(st)
	return b.String()
}

// SignPath returns the signed path prefix "/c/{token}/{title}".
func (ks *Keys) SignPath(title string, expiry time.Time, client netip.Prefix) string {
	return "/c/" + ks.Sign(title, expiry, client) + "/" + title
}

// compute returns the MAC over the fields; the slice is valid until st is
// reused.
func (st *macState) compute(kid, title, exp, pfx string) []byte {
	m := append(st.msg[:0], "fillcast-v1\n"...)
	m = append(m, kid...)
	m = append(m, '\n')
	m = append(m, title...)
	m = append(m, '\n')
	m = append(m, exp...)
	m = append(m, '\n')
	m = append(m, pfx...)
	st.msg = m
	st.h.Reset()
	st.h.Write(m)
	return st.h.Sum(st.sum[:0])
}

// Verify checks token for title at time now for a client at addr (addr
// may be the zero Addr when the client is unknown; a prefix-bound token then
// fails). It allocates nothing and compares MACs in constant time.
func (ks *Keys) Verify(token, title string, now time.Time, addr netip.Addr) error {
	if len(token) > MaxTokenLen || len(token) < macLen+4 {
		return ErrMalformed
	}
	// Split from the right: the MAC is fixed-length and never contains '.'.
	macStr := token[len(token)-macLen:]
	rest := token[:len(token)-macLen]
	if rest[len(rest)-1] != '.' {
		return ErrMalformed
	}
	rest = rest[:len(rest)-1]
	kid, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return ErrMalformed
	}
	exp, pfx, _ := strings.Cut(rest, ".")
	expUnix, ok := parseUnix(exp)
	if !ok {
		return ErrMalformed
	}
	var k *key
	for _, c := range ks.keys {
		if c.id == kid {
			k = c
			break
		}
	}
	if k == nil {
		return ErrUnknownKey
	}
	var src [macLen]byte
	copy(src[:], macStr)
	var got [sha256.Size + 1]byte
	if n, err := base64.RawURLEncoding.Decode(got[:], src[:]); err != nil || n != sha256.Size {
		return ErrMalformed
	}
	st := k.pool.Get().(*macState)
	want := st.compute(kid, title, exp, pfx)
	equal := hmac.Equal(got[:sha256.Size], want)
	k.pool.Put(st)
	if !equal {
		return ErrBadMAC
	}
	if now.Unix() > expUnix {
		return ErrExpired
	}
	if pfx != "" {
		p, ok := decodePrefix(pfx)
		if !ok {
			return ErrMalformed
		}
		if !addr.IsValid() || !p.Contains(addr.Unmap()) {
			return ErrClient
		}
	}
	return nil
}

// parseUnix parses a non-negative decimal of at most 12 digits.
func parseUnix(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 12 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func encodePrefix(p netip.Prefix) string {
	a := p.Addr().Unmap()
	b := a.AsSlice()
	return hex.EncodeToString(b) + "-" + strconv.Itoa(p.Bits())
}

func decodePrefix(s string) (netip.Prefix, bool) {
	h, bits, ok := strings.Cut(s, "-")
	if !ok || (len(h) != 8 && len(h) != 32) {
		return netip.Prefix{}, false
	}
	var src [32]byte
	copy(src[:], h)
	var buf [16]byte
	n, err := hex.Decode(buf[:], src[:len(h)])
	if err != nil {
		return netip.Prefix{}, false
	}
	nb, err := strconv.Atoi(bits)
	if err != nil {
		return netip.Prefix{}, false
	}
	var a netip.Addr
	if n == 4 {
		a = netip.AddrFrom4([4]byte(buf[:4]))
	} else {
		a = netip.AddrFrom16(buf)
	}
	p, err := a.Prefix(nb)
	if err != nil || p.Addr() != a {
		return netip.Prefix{}, false
	}
	return p, true
}
