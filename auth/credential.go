package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/fillcast/fillcast"
)

// CredentialPrefix starts every appliance credential.
const CredentialPrefix = "fca."

// An appliance credential is the bearer secret an appliance presents to
// the control plane (heartbeats, manifests, fill passes), and to no one
// else: its site peers and the origin see its fill passes (fillpass.go).
//
//	fca.{key id}.{appliance id}.{nonce}.{signature}
//
// The nonce is 16 random bytes, the signature the Ed25519 signature of
// "fillcast-credential-v1\x00{key id}\x00{appliance id}\x00{nonce}" by
// the control plane's signing key, both base64url without padding. It
// does not expire: the control plane stores its hash to revoke it one by
// one, and rotating the signing key out revokes them all. Peers and the
// origin check it with the public keys alone.
const (
	credentialDomain = "fillcast-credential-v1\x00"
	nonceBytes       = 16
	nonceLen         = 22 // base64url of 16 bytes, unpadded
	// MaxCredentialLen bounds a credential; longer ones are refused
	// unparsed.
	MaxCredentialLen = len(CredentialPrefix) + maxKeyIDLen + 1 + fillcast.MaxTitleIDLen + 1 + nonceLen + 1 + sigLen
)

// ErrBadCredential is returned by VerifyCredential for anything but a
// credential signed by one of the keys; it means 403.
var ErrBadCredential = errors.New("auth: invalid appliance credential")

// IsCredential reports whether bearer (the token of an Authorization
// header) has an appliance credential's prefix, so the caller knows which
// check to apply. It checks nothing else.
func IsCredential(bearer string) bool { return strings.HasPrefix(bearer, CredentialPrefix) }

// SignCredential returns a new credential for the appliance applianceID,
// signed with the signing key and a fresh random nonce: every call gives
// another one. It fails with ErrCannotSign on a set of public keys.
func (ks *Keys) SignCredential(applianceID string) (string, error) {
	k := ks.signer
	if k == nil {
		return "", ErrCannotSign
	}
	if err := fillcast.ValidateTitleID(applianceID); err != nil {
		return "", fmt.Errorf("auth: credential: appliance id: %w", err)
	}
	var nonce [nonceBytes]byte
	rand.Read(nonce[:]) // never fails: it crashes the program first
	b := make([]byte, 0, MaxCredentialLen)
	b = append(b, CredentialPrefix...)
	b = append(b, k.id...)
	b = append(b, '.')
	b = append(b, applianceID...)
	b = append(b, '.')
	start := len(b)
	b = strict.AppendEncode(b, nonce[:])
	var mbuf [256]byte
	sig := ed25519.Sign(k.priv, appendCredentialMessage(mbuf[:0], k.id, applianceID, string(b[start:])))
	b = append(b, '.')
	b = strict.AppendEncode(b, sig)
	return string(b), nil
}

func appendCredentialMessage(b []byte, kid, applianceID, nonce string) []byte {
	b = append(b, credentialDomain...)
	b = append(b, kid...)
	b = append(b, 0)
	b = append(b, applianceID...)
	b = append(b, 0)
	return append(b, nonce...)
}

// VerifyCredential checks a credential against the keys and returns the
// id of the appliance it was issued to. Every field has one accepted
// spelling, so a credential cannot be altered and still verify. It
// allocates nothing.
func (ks *Keys) VerifyCredential(cred string) (applianceID string, err error) {
	rest, ok := strings.CutPrefix(cred, CredentialPrefix)
	if !ok || len(cred) > MaxCredentialLen {
		return "", ErrBadCredential
	}
	kid, rest, _ := cut(rest, '.')
	id, rest, _ := cut(rest, '.')
	nonce, sigStr, _ := cut(rest, '.')
	if !validID(kid, maxKeyIDLen) || fillcast.ValidateTitleID(id) != nil || len(nonce) != nonceLen || len(sigStr) != sigLen {
		return "", ErrBadCredential
	}
	var src [sigLen]byte
	var raw [ed25519.SignatureSize + 2]byte
	copy(src[:], nonce)
	if n, err := strict.Decode(raw[:], src[:nonceLen]); err != nil || n != nonceBytes {
		return "", ErrBadCredential
	}
	copy(src[:], sigStr)
	if n, err := strict.Decode(raw[:], src[:]); err != nil || n != ed25519.SignatureSize {
		return "", ErrBadCredential
	}
	k := ks.lookup(kid)
	if k == nil {
		return "", ErrBadCredential
	}
	var mbuf [256]byte
	if !ed25519.Verify(k.pub, appendCredentialMessage(mbuf[:0], kid, id, nonce), raw[:ed25519.SignatureSize]) {
		return "", ErrBadCredential
	}
	return id, nil
}
