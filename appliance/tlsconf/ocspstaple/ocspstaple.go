// Package ocspstaple fetches and checks the OCSP responses an appliance
// staples to its certificate: a player's TLS stack then learns that the
// certificate is not revoked from the handshake itself, without asking
// the CA's responder (a round trip, and a privacy leak). Only a response
// that is signed by the issuer (or a responder it delegated to), names
// the certificate's serial, says Good and is current is ever stapled; a
// Revoked or Unknown one is refused, as is an expired one. When to fetch
// again is Refresh's answer: half-way through the response's validity.
// appliance/tlsconf runs the schedule.
package ocspstaple

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"
)

// MaxResponseBytes bounds a responder's answer.
const MaxResponseBytes = 64 << 10

// clockSkew is how far ahead of our clock a response's ThisUpdate may be.
const clockSkew = 5 * time.Minute

// Responder is the first OCSP responder URL leaf names, or "" when it
// names none (and is then not stapled).
func Responder(leaf *x509.Certificate) string {
	for _, u := range leaf.OCSPServer {
		if u != "" {
			return u
		}
	}
	return ""
}

// Fetch asks url for the status of leaf, issued by issuer, and returns the
// response (its Raw is what is stapled) once Verify accepts it.
func Fetch(ctx context.Context, c *http.Client, url string, leaf, issuer *x509.Certificate, now time.Time) (*ocsp.Response, error) {
	req, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return nil, fmt.Errorf("ocspstaple: request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req))
	if err != nil {
		return nil, fmt.Errorf("ocspstaple: responder %q: %w", url, err)
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	hr.Header.Set("Accept", "application/ocsp-response")
	resp, err := c.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("ocspstaple: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ocspstaple: responder %s answered %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("ocspstaple: read the response of %s: %w", url, err)
	}
	if len(body) > MaxResponseBytes {
		return nil, fmt.Errorf("ocspstaple: responder %s answered more than %d bytes", url, MaxResponseBytes)
	}
	return Verify(body, leaf, issuer, now)
}

// ErrNotGood is a response that says Revoked or Unknown.
var ErrNotGood = errors.New("ocspstaple: the certificate's status is not good")

// Verify parses der and accepts it only if it may be stapled to leaf at
// now: signed by issuer, or by a responder certificate issuer signed for
// OCSP signing and valid now; for leaf's serial; Good; ThisUpdate not in
// the future; NextUpdate set and not past.
func Verify(der []byte, leaf, issuer *x509.Certificate, now time.Time) (*ocsp.Response, error) {
	r, err := ocsp.ParseResponseForCert(der, leaf, issuer)
	if err != nil {
		return nil, fmt.Errorf("ocspstaple: %w", err)
	}
	if d := r.Certificate; d != nil && !d.Equal(issuer) {
		// ParseResponseForCert checked that issuer signed d and d the
		// response; RFC 6960 4.2.2.2 wants d meant for OCSP signing.
		if !slices.Contains(d.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return nil, errors.New("ocspstaple: the delegated responder's certificate is not for OCSP signing")
		}
		if now.Before(d.NotBefore) || now.After(d.NotAfter) {
			return nil, fmt.Errorf("ocspstaple: the delegated responder's certificate is valid %v to %v, not now", d.NotBefore, d.NotAfter)
		}
	}
	switch {
	case r.SerialNumber == nil || r.SerialNumber.Cmp(leaf.SerialNumber) != 0:
		return nil, errors.New("ocspstaple: the response is for another certificate")
	case r.Status == ocsp.Revoked:
		return nil, fmt.Errorf("%w: revoked at %v (reason %d)", ErrNotGood, r.RevokedAt, r.RevocationReason)
	case r.Status != ocsp.Good:
		return nil, fmt.Errorf("%w: unknown to the responder", ErrNotGood)
	case r.NextUpdate.IsZero():
		return nil, errors.New("ocspstaple: the response has no NextUpdate, so no validity to staple it for")
	case r.ThisUpdate.After(now.Add(clockSkew)):
		return nil, fmt.Errorf("ocspstaple: the response's ThisUpdate %v is in the future", r.ThisUpdate)
	case !now.Before(r.NextUpdate):
		return nil, fmt.Errorf("ocspstaple: the response expired at its NextUpdate %v", r.NextUpdate)
	case !r.NextUpdate.After(r.ThisUpdate):
		return nil, errors.New("ocspstaple: the response's NextUpdate is not after its ThisUpdate")
	}
	return r, nil
}

// Refresh is when to fetch again after r: half-way between its
// ThisUpdate and NextUpdate, and not before now+least (a responder
// answering very short windows is not asked in a loop).
func Refresh(r *ocsp.Response, now time.Time, least time.Duration) time.Time {
	at := r.ThisUpdate.Add(r.NextUpdate.Sub(r.ThisUpdate) / 2)
	if earliest := now.Add(least); at.Before(earliest) {
		return earliest
	}
	return at
}

// Backoff is the wait before the attempt after failures failed ones in
// a row: first, doubling, at most most.
func Backoff(failures int, first, most time.Duration) time.Duration {
	d := first
	for i := 1; i < failures && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}
