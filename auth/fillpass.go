package auth

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
)

// A fill pass is what an appliance shows its site peers and the origin
// when it fills its cache from them:
//
//	fcp.{appliance id}.{token}
//
// where token is a path token (§6.4 of docs/design.md) whose subject is
// "fill:{appliance id}" instead of a title (no title can be that: ':' is
// not allowed in one), unbound to any client. The control plane signs one
// for a registered appliance that asks (POST /v1/appliances/{id}/fillpass,
// with its credential), valid for an hour; peers and the origin check it
// with the public keys through the Verifier's cache. So the appliance's
// credential never leaves it for the control plane, and a revoked
// appliance fills from no one once its last pass expires.
const FillPassPrefix = "fcp."

const fillPrefix = "fill:"

func fillSubject(applianceID string) string { return fillPrefix + applianceID }

// validSubject reports whether a token may be for s: a title id, or a
// fill pass's subject.
func validSubject(s string) bool {
	return validID(strings.TrimPrefix(s, fillPrefix), fillcast.MaxTitleIDLen)
}

// SignFillPass returns a fill pass for applianceID valid until expiry. It
// fails with ErrCannotSign on a set of public keys.
func (ks *Keys) SignFillPass(applianceID string, expiry time.Time) (string, error) {
	if err := fillcast.ValidateTitleID(applianceID); err != nil {
		return "", fmt.Errorf("auth: fill pass: appliance id: %w", err)
	}
	tok, err := ks.sign(fillSubject(applianceID), expiry, netip.Prefix{}, Limits{})
	if err != nil {
		return "", err
	}
	return FillPassPrefix + applianceID + "." + tok, nil
}

// VerifyFillPass checks a fill pass at now, through the cache, and returns
// the appliance it was signed for. It refuses what Verify refuses:
// malformed, unknown key, bad signature, expired, beyond the lifetime;
// and a pass with limits, which SignFillPass never makes, as malformed.
func (v *Verifier) VerifyFillPass(pass string, now time.Time) (string, error) {
	rest, ok := strings.CutPrefix(pass, FillPassPrefix)
	if !ok {
		return "", ErrMalformed
	}
	id, tok, ok := strings.Cut(rest, ".")
	if !ok || fillcast.ValidateTitleID(id) != nil {
		return "", ErrMalformed
	}
	l, err := v.Verify(tok, fillSubject(id), now, netip.Addr{})
	if err != nil {
		return "", err
	}
	if !l.IsZero() {
		return "", ErrMalformed
	}
	return id, nil
}
