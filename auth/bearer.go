package auth

import (
	"crypto/subtle"
	"strings"
)

// BearerOK reports whether an Authorization header value carries the admin
// token ("Bearer <token>"). It compares in constant time and refuses
// everything when token is empty, so an unset admin token disables admin
// calls instead of opening them.
func BearerOK(authorization, token string) bool {
	if token == "" {
		return false
	}
	const prefix = "Bearer "
	if len(authorization) < len(prefix) || !strings.EqualFold(authorization[:len(prefix)], prefix) {
		return false
	}
	got := strings.TrimSpace(authorization[len(prefix):])
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
