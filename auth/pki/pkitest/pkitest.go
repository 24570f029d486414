// Package pkitest makes certificates for tests: a CA in a temporary
// directory that issues real certificates there (pki.NewCA, pki.Issue),
// and the impostors a test refuses: self-signed certificates claiming
// any identity.
package pkitest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth/pki"
)

// Lab is a CA in a temporary directory, issuing certificates there.
type Lab struct {
	Dir string
	CA  *pki.CA
}

// New makes a Lab with a new CA.
func New(t testing.TB) *Lab {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &Lab{Dir: dir, CA: ca}
}

// CAFile is the path of the lab's CA certificate.
func (l *Lab) CAFile() string { return filepath.Join(l.Dir, pki.CAFile) }

// Issue issues a certificate (see pki.Issue) and returns its files with
// the lab's CA.
func (l *Lab) Issue(t testing.TB, role, id string, hosts ...string) pki.Files {
	t.Helper()
	c, k, err := pki.Issue(l.CA, role, id, hosts, l.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return pki.Files{Cert: c, Key: k, CA: l.CAFile()}
}

// SelfSigned writes to a new temporary directory a certificate signed by
// its own key (no CA's), good for clients and servers, serving
// 127.0.0.1 and carrying the URIs given, and returns its files with ca
// as the CA.
func SelfSigned(t testing.TB, ca string, uris ...string) pki.Files {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "impostor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	for _, u := range uris {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, p)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := pki.Files{Cert: filepath.Join(dir, "self.pem"), Key: filepath.Join(dir, "self-key.pem"), CA: ca}
	write(t, f.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	write(t, f.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return f
}

// Bundle writes the PEM files given into one new file, a CA bundle, and
// returns its path.
func Bundle(t testing.TB, files ...string) string {
	t.Helper()
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	path := filepath.Join(t.TempDir(), "bundle.pem")
	write(t, path, all)
	return path
}

func write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
