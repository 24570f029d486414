package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The files of a CA in its directory.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// How long what NewCA and Issue make is valid. Certificates start an
// hour in the past, so a peer whose clock is a little behind accepts them.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	LeafValidity = 365 * 24 * time.Hour
)

// ErrExists is wrapped by the error of NewCA or Issue when a file they
// would write is already there: they never replace a key.
var ErrExists = errors.New("pki: file exists")

// CA is a certificate authority: its certificate and signing key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a CA with an ECDSA P-256 key, valid for CAValidity, and
// writes it to dir (created 0700 if missing) as CAFile and CAKeyFile
// (0600). It refuses, with ErrExists, when either file is there already:
// replacing a CA key orphans every certificate it signed.
func NewCA(dir string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "fillcast cluster CA", Organization: []string{"fillcast"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: create the CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if err := writePair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile), der, key); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA reads the CA that NewCA wrote to dir.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("pki: read the CA: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("pki: read the CA key: %w", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("pki: %s: no PEM certificate", filepath.Join(dir, CAFile))
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", filepath.Join(dir, CAFile), err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", filepath.Join(dir, CAFile))
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s is not the key of %s", CAKeyFile, CAFile)
	}
	return &CA{Cert: cert, Key: key}, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM private key")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", k)
	}
	return s, nil
}

// FileName is the base name Issue gives role and id's files: {role}-{id},
// then ".pem" and "-key.pem".
func FileName(role, id string) string { return role + "-" + id }

// Issue makes a certificate signed by ca, with an ECDSA P-256 key, valid
// for LeafValidity, and writes it to dir as FileName(role, id)+".pem" and
// its key as FileName(role, id)+"-key.pem" (0600). It returns the two
// paths, and refuses with ErrExists to replace either file.
//
// role is RoleNode (hosts required; good for servers and clients),
// RoleAppliance (a client; also a server when given hosts), RoleOperator
// (a client; no hosts), or RoleServer (hosts required; no identity URI, id
// only names the files). hosts are the DNS names and IP addresses the
// certificate serves.
func Issue(ca *CA, role, id string, hosts []string, dir string) (certFile, keyFile string, err error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return "", "", errors.New("pki: Issue needs a CA")
	}
	if err := validateID(id); err != nil {
		return "", "", fmt.Errorf("pki: %v", err)
	}
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: role + " " + id, Organization: []string{"fillcast"}},
		KeyUsage:  x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour),
	}
	tmpl.NotAfter = tmpl.NotBefore.Add(time.Hour + LeafValidity)
	server := len(hosts) > 0
	switch role {
	case RoleNode, RoleServer:
		if !server {
			return "", "", fmt.Errorf("pki: a %s certificate serves: give the host names or addresses it is reached at", role)
		}
	case RoleAppliance:
	case RoleOperator:
		if server {
			return "", "", errors.New("pki: an operator certificate is a client's: give no hosts")
		}
	default:
		return "", "", fmt.Errorf("pki: role %q: want node, appliance, operator or server", role)
	}
	if role != RoleServer {
		tmpl.URIs = append(tmpl.URIs, URI(role, id))
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	if server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if validHost(h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		} else {
			return "", "", fmt.Errorf("pki: host %q: want a DNS name or an IP address", h)
		}
	}
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("pki: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return "", "", fmt.Errorf("pki: sign %s %s: %w", role, id, err)
	}
	base := filepath.Join(dir, FileName(role, id))
	certFile, keyFile = base+".pem", base+"-key.pem"
	if err := writePair(certFile, keyFile, der, key); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// validHost reports whether h may be a DNS SAN: labels of letters,
// digits and '-', a leading "*." for a wildcard.
func validHost(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// writePair writes a certificate (0644) and its key (0600), neither of
// which may exist; the key goes first, and is removed again if the
// certificate cannot be written.
func writePair(certFile, keyFile string, der []byte, key crypto.Signer) error {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := writeNew(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	if err := writeNew(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		os.Remove(keyFile)
		return err
	}
	return nil
}

// writeNew creates path with data, refusing to replace a file.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: %s (remove it first to replace it)", ErrExists, path)
	}
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	_, err = f.Write(data)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return nil
}
