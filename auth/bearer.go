package auth

import "crypto/subtle"

// BearerOK reports whether an Authorization header value carries token
// ("Bearer <token>"). It compares in constant time and refuses everything
// when token is empty, so an unset token disables the calls it guards
// instead of opening them.
func BearerOK(authorization, token string) bool {
	if token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(Bearer(authorization)), []byte(token)) == 1
}
