package auth

import (
	"crypto/sha256"
	"crypto/subtle"
)

// BearerOK reports whether an Authorization header value carries token
// ("Bearer <token>"). It compares digests in constant time, so neither
// the token nor its length shows in the timing, and refuses everything
// when token is empty, so an unset token disables the calls it guards
// instead of opening them.
func BearerOK(authorization, token string) bool {
	if token == "" {
		return false
	}
	got, want := sha256.Sum256([]byte(Bearer(authorization))), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}
