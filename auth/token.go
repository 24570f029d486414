// Package auth is Fillcast's one home for trust: who a caller is and what
// it may fetch. It holds the path tokens that authorise a player to fetch
// one title from an appliance (signed by the control plane, verified by
// appliances and the origin), the limits a token carries and the rule
// that enforces them (Limits.Allows), the credentials appliances present
// to the control plane, to their peers and to the origin, and the bearer
// check of the admin token.
//
// A playback URL has the form /c/{token}/{title}/{path...}: the token sits
// in the path so that the relative URLs inside HLS playlists and DASH
// manifests keep it. A token is
//
//	{key id}.{expiry, unix seconds}[.{client prefix}][.{limits}].{signature}
//
// where the signature is the 64-byte Ed25519 signature, base64url without
// padding (86 characters), of the domain-separated message
// "fillcast-token-v3\x00{key id}\x00{title}\x00{expiry}\x00{client prefix}\x00{limits}"
// (absent fields empty). The client prefix is the hex of the masked
// address, '-', the prefix length ("cb007100-24"); the control plane binds
// tokens to the player's /24 (IPv4) or /48 (IPv6), see ClientPrefix. The
// limits field (Limits) is 'h' and the maximum height, then 'n' when
// downloads are refused ("h480n", "h1080", "n"); an unrestricted token
// has none. Every field has exactly one accepted spelling, so exactly one
// string verifies for a signed token.
//
// The control plane signs with the first private key of its key file;
// appliances and the origin hold the public keys only (fillcast keys
// public) and accept a token of any of them, so keys rotate by adding a
// new first line, waiting for old tokens to expire, then removing the old
// line. A token must expire within MaxLifetime (24 h by default) of the
// time it is checked, so a leaked signing oracle cannot mint tokens that
// outlive a rotation.
package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/fillcast/fillcast"
)

// sigLen is the length of an encoded signature: base64url of 64 bytes,
// unpadded.
const sigLen = 86

// maxExpiryDigits bounds the expiry field: 12 digits reach the year 33658,
// which the lifetime check refuses anyway.
const maxExpiryDigits = 12

// maxPrefixLen is the longest client prefix field, "{32 hex}-128".
const maxPrefixLen = 32 + 1 + 3

// MaxTokenLen bounds a token; longer path segments are refused unparsed.
const MaxTokenLen = maxKeyIDLen + 1 + maxExpiryDigits + 1 + maxPrefixLen + 1 + maxLimitsLen + 1 + sigLen

// minTokenLen is the shortest well-formed token: "k.0.{signature}".
const minTokenLen = 1 + 1 + 1 + 1 + sigLen

// DefaultMaxLifetime is how far beyond now a token's expiry may lie
// unless a Verifier is configured otherwise.
const DefaultMaxLifetime = 24 * time.Hour

// Client binding: the prefix lengths ClientPrefix binds tokens to.
const (
	BindBitsIPv4 = 24
	BindBitsIPv6 = 48
)

// tokenDomain starts every signed token message; credentialDomain every
// signed credential message, so neither can pass for the other.
const tokenDomain = "fillcast-token-v3\x00"

// strict decodes base64url and refuses non-zero padding bits, so that
// exactly one spelling decodes to a signature.
var strict = base64.RawURLEncoding.Strict()

// Errors returned by Verify. They all mean 403 to a player.
var (
	ErrMalformed    = errors.New("auth: malformed token")
	ErrUnknownKey   = errors.New("auth: unknown key")
	ErrBadSignature = errors.New("auth: bad signature")
	ErrExpired      = errors.New("auth: token expired")
	ErrLifetime     = errors.New("auth: token expires too far in the future")
	ErrClient       = errors.New("auth: token is for another client")
)

// ErrCannotSign is returned by Sign and SignCredential on a key set of
// public keys only.
var ErrCannotSign = errors.New("auth: the key set holds public keys only and cannot sign: give the private key file")

// ClientPrefix returns the prefix a playback token for a client at addr
// is bound to: its /24 for IPv4 (IPv4-mapped IPv6 included), its /48 for
// IPv6, and the zero Prefix (unbound) for the zero Addr.
func ClientPrefix(addr netip.Addr) netip.Prefix {
	if !addr.IsValid() {
		return netip.Prefix{}
	}
	addr = addr.Unmap()
	bits := BindBitsIPv6
	if addr.Is4() {
		bits = BindBitsIPv4
	}
	p, _ := addr.Prefix(bits)
	return p
}

// Sign returns an unrestricted token for title valid until expiry: it is
// SignLimited with the zero Limits.
func (ks *Keys) Sign(title string, expiry time.Time, client netip.Prefix) (string, error) {
	return ks.SignLimited(title, expiry, client, Limits{})
}

// SignLimited returns a token for title valid until expiry that allows
// only what l allows. If client is valid, the token is bound to that
// prefix and verifies only for addresses in it (an IPv4-mapped prefix is
// bound as the IPv4 prefix it maps). It fails with ErrCannotSign on a set
// of public keys.
func (ks *Keys) SignLimited(title string, expiry time.Time, client netip.Prefix, l Limits) (string, error) {
	if err := fillcast.ValidateTitleID(title); err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return ks.sign(title, expiry, client, l)
}

// sign is SignLimited for any subject: a title, or a fill pass's
// (fillSubject), which no title can be.
func (ks *Keys) sign(title string, expiry time.Time, client netip.Prefix, l Limits) (string, error) {
	k := ks.signer
	if k == nil {
		return "", ErrCannotSign
	}
	if expiry.Unix() < 0 {
		return "", errors.New("auth: sign: expiry before 1970")
	}
	if err := l.validate(); err != nil {
		return "", err
	}
	var ebuf [maxExpiryDigits + 8]byte
	exp := strconv.AppendInt(ebuf[:0], expiry.Unix(), 10)
	var pbuf [maxPrefixLen]byte
	var pfx []byte
	if client.IsValid() {
		p, ok := canonicalPrefix(client)
		if !ok {
			return "", errors.New("auth: sign: an IPv4-mapped client prefix must be at least /96")
		}
		pfx = appendPrefix(pbuf[:0], p)
	}
	var lbuf [maxLimitsLen]byte
	lim := appendLimits(lbuf[:0], l)
	var mbuf [256]byte
	sig := ed25519.Sign(k.priv, appendTokenMessage(mbuf[:0], k.id, title, exp, pfx, lim))
	b := make([]byte, 0, len(k.id)+len(exp)+len(pfx)+len(lim)+sigLen+4)
	b = append(b, k.id...)
	b = append(b, '.')
	b = append(b, exp...)
	b = append(b, '.')
	if pfx != nil {
		b = append(b, pfx...)
		b = append(b, '.')
	}
	if len(lim) > 0 {
		b = append(b, lim...)
		b = append(b, '.')
	}
	b = strict.AppendEncode(b, sig)
	return string(b), nil
}

// SignPath returns the signed path prefix "/c/{token}/{title}". It is for
// tools and tests that hold a private key file: it panics where Sign
// fails, on a public-only key set or an invalid title.
func (ks *Keys) SignPath(title string, expiry time.Time, client netip.Prefix) string {
	return ks.SignPathLimited(title, expiry, client, Limits{})
}

// SignPathLimited is SignPath for a token with limits l.
func (ks *Keys) SignPathLimited(title string, expiry time.Time, client netip.Prefix, l Limits) string {
	tok, err := ks.SignLimited(title, expiry, client, l)
	if err != nil {
		panic(err)
	}
	return "/c/" + tok + "/" + title
}

// appendTokenMessage appends the signed message of a token.
func appendTokenMessage[S string | []byte](b []byte, kid, title string, exp, pfx, lim S) []byte {
	b = append(b, tokenDomain...)
	b = append(b, kid...)
	b = append(b, 0)
	b = append(b, title...)
	b = append(b, 0)
	b = append(b, exp...)
	b = append(b, 0)
	b = append(b, pfx...)
	b = append(b, 0)
	return append(b, lim...)
}

// Verify checks token for title at time now for a client at addr (addr
// may be the zero Addr when the client is unknown; a prefix-bound token
// then fails), refusing tokens that expire more than DefaultMaxLifetime
// after now, and returns the token's limits, which whoever serves the
// title's files enforces (the zero Limits for an unrestricted token, and
// whenever err is not nil). It allocates nothing; a Verifier adds a cache
// in front and a configurable lifetime.
func (ks *Keys) Verify(token, title string, now time.Time, addr netip.Addr) (Limits, error) {
	t, err := ks.check(token, title, now, DefaultMaxLifetime)
	if err == nil {
		err = t.admits(addr)
	}
	if err != nil {
		return Limits{}, err
	}
	return t.limits, nil
}

// checked is what verifying a token established, apart from the client.
type checked struct {
	expiry int64
	client netip.Prefix // zero: unbound
	limits Limits
}

// admits reports whether a client at addr may use the token.
func (t checked) admits(addr netip.Addr) error {
	if t.client.IsValid() && (!addr.IsValid() || !t.client.Contains(addr.Unmap())) {
		return ErrClient
	}
	return nil
}

// check verifies everything about token but the client: shape, key,
// expiry, lifetime and signature, in that order, the Ed25519 check last.
func (ks *Keys) check(token, title string, now time.Time, maxLifetime time.Duration) (checked, error) {
	var t checked
	if len(token) > MaxTokenLen || len(token) < minTokenLen || !validSubject(title) {
		return t, ErrMalformed
	}
	// Split from the right: the signature is fixed-length and never
	// contains '.'.
	sigStr := token[len(token)-sigLen:]
	rest := token[:len(token)-sigLen]
	if rest[len(rest)-1] != '.' {
		return t, ErrMalformed
	}
	rest = rest[:len(rest)-1]
	kid, rest, ok := cut(rest, '.')
	if !ok || !validID(kid, maxKeyIDLen) {
		return t, ErrMalformed
	}
	exp, rest, more := cut(rest, '.')
	if t.expiry, ok = parseUnix(exp); !ok {
		return t, ErrMalformed
	}
	// What follows the expiry is nothing, a prefix, limits, or a prefix
	// and limits: a limits field starts with 'h' or 'n', a prefix always
	// with a hex digit.
	var pfx, lim string
	if more {
		var two bool
		pfx, lim, two = cut(rest, '.')
		if !two && rest != "" && (rest[0] == limitHeight || rest[0] == limitNoDownloads) {
			pfx, lim = "", rest
		}
		if two || pfx != "" || lim == "" {
			if t.client, ok = parsePrefix(pfx); !ok {
				return t, ErrMalformed
			}
		}
		if two || lim != "" {
			if t.limits, ok = parseLimits(lim); !ok {
				return t, ErrMalformed
			}
		}
	}
	var src [sigLen]byte
	copy(src[:], sigStr)
	var sig [ed25519.SignatureSize + 2]byte
	if n, err := strict.Decode(sig[:], src[:]); err != nil || n != ed25519.SignatureSize {
		return t, ErrMalformed
	}
	k := ks.lookup(kid)
	if k == nil {
		return t, ErrUnknownKey
	}
	unix := now.Unix()
	if unix > t.expiry {
		return t, ErrExpired
	}
	if t.expiry-unix > int64(maxLifetime/time.Second) {
		return t, ErrLifetime
	}
	var mbuf [256]byte
	if !ed25519.Verify(k.pub, appendTokenMessage(mbuf[:0], kid, title, exp, pfx, lim), sig[:ed25519.SignatureSize]) {
		return t, ErrBadSignature
	}
	return t, nil
}

// cut is strings.Cut on one byte.
func cut(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// parseUnix parses a canonical non-negative decimal of at most
// maxExpiryDigits digits: no sign, no leading zero.
func parseUnix(s string) (int64, bool) {
	if len(s) == 0 || len(s) > maxExpiryDigits || (len(s) > 1 && s[0] == '0') {
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

// canonicalPrefix returns p masked, an IPv4-mapped prefix as its IPv4
// prefix; false for a mapped prefix shorter than /96.
func canonicalPrefix(p netip.Prefix) (netip.Prefix, bool) {
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() {
		if bits < 96 {
			return netip.Prefix{}, false
		}
		a, bits = a.Unmap(), bits-96
	}
	q, err := a.Prefix(bits)
	return q, err == nil
}

// appendPrefix appends the token form of a canonical prefix: lower-case
// hex of the address, '-', the length in decimal.
func appendPrefix(b []byte, p netip.Prefix) []byte {
	a := p.Addr()
	if a.Is4() {
		v := a.As4()
		b = hex.AppendEncode(b, v[:])
	} else {
		v := a.As16()
		b = hex.AppendEncode(b, v[:])
	}
	b = append(b, '-')
	return strconv.AppendInt(b, int64(p.Bits()), 10)
}

// parsePrefix parses the token form of a prefix and accepts it only when
// it is exactly what appendPrefix writes for the prefix it names.
func parsePrefix(s string) (netip.Prefix, bool) {
	h, bits, ok := cut(s, '-')
	if !ok || (len(h) != 8 && len(h) != 32) || len(bits) == 0 || len(bits) > 3 || (len(bits) > 1 && bits[0] == '0') {
		return netip.Prefix{}, false
	}
	var raw [16]byte
	for i := 0; i < len(h); i += 2 {
		hi, ok1 := lowerHex(h[i])
		lo, ok2 := lowerHex(h[i+1])
		if !ok1 || !ok2 {
			return netip.Prefix{}, false
		}
		raw[i/2] = hi<<4 | lo
	}
	nb := 0
	for i := 0; i < len(bits); i++ {
		if bits[i] < '0' || bits[i] > '9' {
			return netip.Prefix{}, false
		}
		nb = nb*10 + int(bits[i]-'0')
	}
	var a netip.Addr
	if len(h) == 8 {
		a = netip.AddrFrom4([4]byte(raw[:4]))
	} else {
		a = netip.AddrFrom16(raw)
		if a.Is4In6() { // Sign writes those as IPv4
			return netip.Prefix{}, false
		}
	}
	p, err := a.Prefix(nb)
	if err != nil || p.Addr() != a {
		return netip.Prefix{}, false
	}
	return p, true
}

// lowerHex decodes one lower-case hex digit.
func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
