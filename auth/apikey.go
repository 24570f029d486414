package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// APIKeyPrefix starts every operator API key: "fck.<key id>.<secret>".
const APIKeyPrefix = "fck."

// SessionPrefix starts every viewer session token: "fcs.<session
// id>.<secret>".
const SessionPrefix = "fcs."

// secretBytes is the entropy of an API key's or a session's secret.
const secretBytes = 32

// NewAPIKey returns a fresh API key with id, to be shown to its holder
// once, and the hash to store instead of it.
func NewAPIKey(id string) (key, hash string, err error) {
	return newSecret(APIKeyPrefix, "api key", id)
}

// APIKeyID returns the id an API key names, and false if key does not
// have an API key's shape. It does not check the secret.
func APIKeyID(key string) (string, bool) { return secretID(APIKeyPrefix, key) }

// NewSession returns a fresh session token with id, for the viewer who
// signed in, and the hash to store instead of it.
func NewSession(id string) (token, hash string, err error) {
	return newSecret(SessionPrefix, "session", id)
}

// SessionID returns the id a session token names, and false if token
// does not have a session token's shape. It does not check the secret.
func SessionID(token string) (string, bool) { return secretID(SessionPrefix, token) }

// newSecret returns prefix, id, '.' and a random secret, and its hash.
func newSecret(prefix, what, id string) (key, hash string, err error) {
	if err := validKeyID(id); err != nil {
		return "", "", fmt.Errorf("auth: %s: %w", what, err)
	}
	var b [secretBytes]byte
	rand.Read(b[:]) // never fails: it crashes the program first
	key = prefix + id + "." + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashSecret(key), nil
}

// secretID returns the id of a newSecret key of prefix.
func secretID(prefix, key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", false
	}
	id, secret, ok := strings.Cut(rest, ".")
	if !ok || validKeyID(id) != nil || len(secret) != base64.RawURLEncoding.EncodedLen(secretBytes) {
		return "", false
	}
	return id, true
}

// HashSecret returns the hex SHA-256 of a high-entropy secret (an API key
// or an appliance credential), the form in which it is stored. A slow
// password hash would add nothing: the secrets are 256-bit random.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches reports, in constant time, whether secret hashes to hash
// (as made by HashSecret).
func SecretMatches(secret, hash string) bool {
	want, err := hex.DecodeString(hash)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// NodeTokenPrefix starts the token nodes call each other with when they
// have no certificates.
const NodeTokenPrefix = "fcn."

// NodeToken is the bearer token control-plane nodes without TLS call each
// other's internal routes with: derived from the bootstrap admin key, so
// every node computes it and no API key, whatever its scope, is one.
func NodeToken(adminToken string) string {
	if adminToken == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(adminToken))
	m.Write([]byte("fillcast-node-v1"))
	return NodeTokenPrefix + hex.EncodeToString(m.Sum(nil))
}

// RouteSecret derives from the bootstrap admin token the password of the
// event stream's routes between nodes. It is not the node token: a route
// password seen on the wire (routes run without TLS unless the nodes
// have certificates) admits no one to the API.
func RouteSecret(adminToken string) string {
	if adminToken == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(adminToken))
	m.Write([]byte("fillcast-event-routes-v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// Bearer returns the credential of an Authorization header value
// ("Bearer <credential>", the scheme in any case), or "".
func Bearer(authorization string) string {
	const prefix = "Bearer "
	if len(authorization) < len(prefix) || !strings.EqualFold(authorization[:len(prefix)], prefix) {
		return ""
	}
	return strings.TrimSpace(authorization[len(prefix):])
}
