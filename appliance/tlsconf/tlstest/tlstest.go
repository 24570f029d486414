// Package tlstest helps the tests of appliance/tlsconf and of the
// processes that serve its configuration: a small CA whose leaf
// certificate names an OCSP responder, a real responder for it (built
// with golang.org/x/crypto/ocsp, answering what the test sets), a TLS
// server on loopback and a client that reports whether its session
// resumed and what was stapled.
package tlstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// PKI is a CA and a leaf it issued for 127.0.0.1 and localhost.
type PKI struct {
	CA    *x509.Certificate
	CAKey crypto.Signer
	// Leaf is the certificate in CertFile, followed there by CA.
	Leaf              *x509.Certificate
	CertFile, KeyFile string
	// Pool trusts CA.
	Pool *x509.CertPool
}

var serial atomic.Int64

func newKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return k
}

// NewPKI creates a CA, and writes to dir a leaf (whose certificate names
// responder as its OCSP server, unless it is "") and its chain.
func NewPKI(dir, responder string) (*PKI, error) {
	caKey := newKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: "tlstest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("tlstest: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlstest: %w", err)
	}
	p := &PKI{CA: ca, CAKey: caKey, Pool: x509.NewCertPool(),
		CertFile: filepath.Join(dir, "chain.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	p.Pool.AddCert(ca)
	return p, p.Issue(responder)
}

// Issue writes a new leaf (a new serial, the same CA) over CertFile and
// KeyFile: an operator's renewal.
func (p *PKI) Issue(responder string) error {
	key := newKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if responder != "" {
		tmpl.OCSPServer = []string{responder}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, &key.PublicKey, p.CAKey)
	if err != nil {
		return fmt.Errorf("tlstest: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("tlstest: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("tlstest: %w", err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.CA.Raw})...)
	// The key first: a watcher that sees the new certificate then finds
	// its key (one that sees only the key keeps the old pair).
	if err := writeAtomic(p.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})); err != nil {
		return err
	}
	if err := writeAtomic(p.CertFile, chain); err != nil {
		return err
	}
	p.Leaf = leaf
	return nil
}

func writeAtomic(path string, b []byte) error {
	if err := os.WriteFile(path+".new", b, 0o600); err != nil {
		return fmt.Errorf("tlstest: %w", err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		return fmt.Errorf("tlstest: %w", err)
	}
	return nil
}

// Delegate returns a responder certificate the CA issued, with the OCSP
// signing usage or without, and its key.
func (p *PKI) Delegate(ocspSigning bool) (*x509.Certificate, crypto.Signer, error) {
	key := newKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: "tlstest OCSP responder"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if ocspSigning {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, &key.PublicKey, p.CAKey)
	if err != nil {
		return nil, nil, fmt.Errorf("tlstest: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("tlstest: %w", err)
	}
	return c, key, nil
}

// Answer is what a Responder answers.
type Answer struct {
	// Down makes it answer 503.
	Down bool
	// Status is ocsp.Good, ocsp.Revoked or ocsp.Unknown.
	Status int
	// Window is NextUpdate-ThisUpdate; zero leaves NextUpdate out.
	// ThisUpdate is now plus Shift.
	Window, Shift time.Duration
	// Signer and SignerCert sign instead of the CA (a delegated
	// responder, or an impostor); SignerCert is embedded.
	Signer     crypto.Signer
	SignerCert *x509.Certificate
}

// Responder is an OCSP responder for a PKI's leaves.
type Responder struct {
	pki    *PKI
	mu     sync.Mutex
	answer Answer
	asked  atomic.Int64
}

// NewResponder returns a responder that answers Good, valid for an hour.
// Set its PKI before the first request.
func NewResponder() *Responder {
	return &Responder{answer: Answer{Status: ocsp.Good, Window: time.Hour}}
}

// SetPKI sets the PKI whose CA signs the answers.
func (r *Responder) SetPKI(p *PKI) { r.mu.Lock(); r.pki = p; r.mu.Unlock() }

// Set sets what the responder answers from now on.
func (r *Responder) Set(a Answer) { r.mu.Lock(); r.answer = a; r.mu.Unlock() }

// Asked counts the requests.
func (r *Responder) Asked() int64 { return r.asked.Load() }

func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.asked.Add(1)
	r.mu.Lock()
	a, p := r.answer, r.pki
	r.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<16))
	if err != nil || a.Down || p == nil {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	q, err := ocsp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	der, err := p.Response(q.SerialNumber, a)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(der)
}

// Response signs an answer about serial.
func (p *PKI) Response(serial *big.Int, a Answer) ([]byte, error) {
	now := time.Now().Add(a.Shift).Truncate(time.Second)
	tmpl := ocsp.Response{Status: a.Status, SerialNumber: serial, ThisUpdate: now}
	if a.Window > 0 {
		tmpl.NextUpdate = now.Add(a.Window)
	}
	if a.Status == ocsp.Revoked {
		tmpl.RevokedAt, tmpl.RevocationReason = now.Add(-time.Minute), ocsp.KeyCompromise
	}
	signer, cert := p.CAKey, p.CA
	if a.Signer != nil {
		signer, cert = a.Signer, a.SignerCert
		tmpl.Certificate = a.SignerCert
	}
	return ocsp.CreateResponse(p.CA, cert, tmpl, signer)
}

// Serve serves TLS with a clone of cfg on loopback until the test ends:
// each connection is sent "ok" and closed.
func Serve(t testing.TB, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg.Clone())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				c.Write([]byte("ok"))
			})
		}
	})
	return ln.Addr().String()
}

// Dial connects to a Serve server trusting pool, with TLS version (0:
// any) and cache, reads the connection to its end (which takes a TLS
// 1.3 ticket in) and returns its state.
func Dial(t testing.TB, addr string, pool *x509.CertPool, version uint16, cache tls.ClientSessionCache) tls.ConnectionState {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost",
		MinVersion: version, MaxVersion: version, ClientSessionCache: cache})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if b, err := io.ReadAll(c); err != nil || string(b) != "ok" {
		t.Fatalf("read: %q, %v", b, err)
	}
	return c.ConnectionState()
}

// HeldCache is a ClientSessionCache that keeps the first ticket it is
// given and offers only that one, so that a test can present an old
// ticket after newer ones were issued.
type HeldCache struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

// Get offers the held ticket.
func (h *HeldCache) Get(string) (*tls.ClientSessionState, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cs, h.cs != nil
}

// Put holds cs if nothing is held yet.
func (h *HeldCache) Put(_ string, cs *tls.ClientSessionState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cs == nil && cs != nil {
		h.cs = cs
	}
}

// Log is a log sink safe for concurrent writers, that a test can search.
type Log struct {
	mu  sync.Mutex
	buf []byte
}

// Logger returns a text logger writing to l.
func (l *Log) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	return len(p), nil
}

// Count counts the times s was logged.
func (l *Log) Count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(string(l.buf), s)
}

// Held reports whether a ticket is held.
func (h *HeldCache) Held() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cs != nil
}
