package ocspstaple

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/tlsconf/tlstest"
	"golang.org/x/crypto/ocsp"
)

// TestVerify: only a Good, current response for the leaf, signed by its
// issuer or a responder the issuer delegated OCSP signing to, is
// accepted.
func TestVerify(t *testing.T) {
	t.Parallel()
	p, err := tlstest.NewPKI(t.TempDir(), "http://127.0.0.1:1/")
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlstest.NewPKI(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	delegate, delegateKey, err := p.Delegate(true)
	if err != nil {
		t.Fatal(err)
	}
	notOCSP, notOCSPKey, err := p.Delegate(false)
	if err != nil {
		t.Fatal(err)
	}
	good := tlstest.Answer{Status: ocsp.Good, Window: time.Hour}
	with := func(f func(*tlstest.Answer)) tlstest.Answer { a := good; f(&a); return a }
	tests := []struct {
		name   string
		serial *big.Int
		answer tlstest.Answer
		want   string // "" when accepted
	}{
		{"good, signed by the issuer", nil, good, ""},
		{"good, signed by a delegated responder", nil, with(func(a *tlstest.Answer) { a.Signer, a.SignerCert = delegateKey, delegate }), ""},
		{"a delegate without OCSP signing", nil, with(func(a *tlstest.Answer) { a.Signer, a.SignerCert = notOCSPKey, notOCSP }), "not for OCSP signing"},
		{"signed by another CA", nil, with(func(a *tlstest.Answer) { a.Signer, a.SignerCert = other.CAKey, other.CA }), "bad OCSP signature"},
		{"revoked", nil, with(func(a *tlstest.Answer) { a.Status = ocsp.Revoked }), "revoked"},
		{"unknown", nil, with(func(a *tlstest.Answer) { a.Status = ocsp.Unknown }), "unknown"},
		{"expired", nil, with(func(a *tlstest.Answer) { a.Shift = -2 * time.Hour }), "expired"},
		{"from the future", nil, with(func(a *tlstest.Answer) { a.Shift = time.Hour }), "future"},
		{"no NextUpdate", nil, with(func(a *tlstest.Answer) { a.Window = 0 }), "no NextUpdate"},
		{"another certificate", big.NewInt(1 << 40), good, "no response matching"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serial := tt.serial
			if serial == nil {
				serial = p.Leaf.SerialNumber
			}
			der, err := p.Response(serial, tt.answer)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Verify(der, p.Leaf, p.CA, time.Now())
			if tt.want == "" {
				if err != nil || r.Status != ocsp.Good {
					t.Fatalf("Verify: %v, want a Good response", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Verify: %v, want an error saying %q", err, tt.want)
			}
			if notGood := errors.Is(err, ErrNotGood); notGood != (tt.answer.Status != ocsp.Good) {
				t.Errorf("errors.Is(%v, ErrNotGood) = %v", err, notGood)
			}
		})
	}
	if _, err := Verify([]byte("not DER"), p.Leaf, p.CA, time.Now()); err == nil {
		t.Error("Verify of garbage: no error")
	}
}

// TestFetch asks a real responder.
func TestFetch(t *testing.T) {
	t.Parallel()
	resp := tlstest.NewResponder()
	srv := httptest.NewServer(resp)
	defer srv.Close()
	p, err := tlstest.NewPKI(t.TempDir(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.SetPKI(p)
	if got := Responder(p.Leaf); got != srv.URL {
		t.Fatalf("Responder = %q, want %q", got, srv.URL)
	}
	r, err := Fetch(context.Background(), srv.Client(), srv.URL, p.Leaf, p.CA, time.Now())
	if err != nil || r.SerialNumber.Cmp(p.Leaf.SerialNumber) != 0 {
		t.Fatalf("Fetch: %v", err)
	}
	resp.Set(tlstest.Answer{Down: true})
	if _, err := Fetch(context.Background(), srv.Client(), srv.URL, p.Leaf, p.CA, time.Now()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Fetch from a responder that is down: %v, want its 503", err)
	}
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write(make([]byte, MaxResponseBytes+1))
	}))
	defer big.Close()
	if _, err := Fetch(context.Background(), big.Client(), big.URL, p.Leaf, p.CA, time.Now()); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("Fetch of an oversized answer: %v", err)
	}
}

func TestRefreshAndBackoff(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	r := &ocsp.Response{ThisUpdate: t0, NextUpdate: t0.Add(4 * 24 * time.Hour)}
	if got, want := Refresh(r, t0.Add(time.Hour), time.Minute), t0.Add(48*time.Hour); !got.Equal(want) {
		t.Errorf("Refresh = %v, want half-way, %v", got, want)
	}
	short := &ocsp.Response{ThisUpdate: t0, NextUpdate: t0.Add(10 * time.Second)}
	if got, want := Refresh(short, t0, time.Minute), t0.Add(time.Minute); !got.Equal(want) {
		t.Errorf("Refresh of a short window = %v, want no sooner than %v", got, want)
	}
	for _, tt := range []struct {
		failures int
		want     time.Duration
	}{{1, 10 * time.Second}, {2, 20 * time.Second}, {4, 80 * time.Second}, {30, 10 * time.Minute}} {
		if got := Backoff(tt.failures, 10*time.Second, 10*time.Minute); got != tt.want {
			t.Errorf("Backoff(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}
