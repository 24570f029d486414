package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/fillcast/fillcast"
)

// Files names the PEM files of one party's TLS: its certificate (a chain,
// leaf first) and private key, and the CAs it trusts for its peers. They
// are paths only: ServerTLS and ClientTLS read them.
type Files struct {
	Cert, Key string
	CA        string
}

// IsZero reports whether no file is named: TLS is off.
func (f Files) IsZero() bool { return f == Files{} }

// Validate reports, as a *fillcast.ConfigError on the field, a
// certificate without its key or the other way round, or a CA without a
// certificate. It reads no file. ValidateMutual also wants a CA.
func (f Files) Validate() error {
	switch {
	case f.Cert != "" && f.Key == "":
		return fillcast.ConfigErrorf("pki", "Key", "required with a certificate: the file of its private key")
	case f.Key != "" && f.Cert == "":
		return fillcast.ConfigErrorf("pki", "Cert", "required with a private key: the file of its certificate")
	case f.CA != "" && f.Cert == "":
		return fillcast.ConfigErrorf("pki", "Cert", "required with a CA: the certificate this party presents")
	}
	return nil
}

// ValidateMutual is Validate for a party of mutual TLS, such as a
// control-plane node: all three files, or none.
func (f Files) ValidateMutual() error {
	if err := f.Validate(); err != nil {
		return err
	}
	if !f.IsZero() && f.CA == "" {
		return fillcast.ConfigErrorf("pki", "CA", "required with a certificate: the CA that signs every peer's certificate")
	}
	return nil
}

// ServerTLS returns the TLS configuration of a server presenting the
// certificate in certFile with its key in keyFile: TLS 1.2 or later (1.3
// when the client has it), HTTP/2 or HTTP/1.1. When caFile is set, a client may present a
// certificate, which must then chain to caFile's CAs
// (tls.VerifyClientCertIfGiven): viewers and operators without one still
// connect, and PeerIdentity names those that have one. RequirePeer makes
// a certificate required.
func ServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("pki: a server needs a certificate and its key")
	}
	cert, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	// HTTP/2 and HTTP/1.1 by ALPN: tls.NewListener, unlike ServeTLS,
	// leaves it to the configuration.
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if caFile != "" {
		if c.ClientCAs, err = loadPool(caFile); err != nil {
			return nil, err
		}
		c.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return c, nil
}

// ClientTLS returns the TLS configuration of a client that trusts the CAs
// in caFile (the system's roots when empty) and presents the certificate
// in certFile, with its key in keyFile, when they are set.
func ClientTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if certFile != "" || keyFile != "" {
		cert, err := loadPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	return c, nil
}

func loadPair(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, errors.New("pki: give both a certificate and its key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: certificate %s with key %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("pki: certificate %s: %w", certFile, err)
		}
	}
	return cert, nil
}

func loadPool(caFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("pki: read the CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("pki: %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

// RequirePeer returns a copy of c that completes a handshake only with a
// peer whose certificate chains to c's CAs and names one of roles; a
// server config (one with ClientCAs) then requires a client certificate.
// The handshake of any other peer fails with an error that says why.
func RequirePeer(c *tls.Config, roles ...string) *tls.Config {
	c = c.Clone()
	if c.ClientCAs != nil {
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	next := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		role, id, ok := PeerIdentity(&cs)
		switch {
		case !ok && len(cs.PeerCertificates) == 0:
			return fmt.Errorf("pki: the peer presented no certificate; want a %v certificate from the CA", roles)
		case !ok:
			return fmt.Errorf("pki: the peer's certificate (%s) names no fillcast identity; want %v", cs.PeerCertificates[0].Subject, roles)
		case !slices.Contains(roles, role):
			return fmt.Errorf("pki: the peer is %s %s; want %v", role, id, roles)
		}
		if next != nil {
			return next(cs)
		}
		return nil
	}
	return c
}

// Check verifies a party's own certificate before it presents it: that it
// chains to roots for the uses of role (a node's: client and server),
// and names role and id. A process calls it when it loads its
// certificate, so a wrong file stops it at start rather than at every
// peer.
func Check(cert tls.Certificate, roots *x509.CertPool, role, id string) error {
	if len(cert.Certificate) == 0 {
		return errors.New("pki: no certificate")
	}
	if roots == nil {
		return errors.New("pki: no CA to check the certificate against")
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	usages := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if role == RoleNode {
		usages = append(usages, x509.ExtKeyUsageServerAuth)
	}
	for _, u := range usages {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			return fmt.Errorf("pki: the certificate %q does not verify against the CA: %w", leaf.Subject, err)
		}
	}
	gotRole, gotID, ok := Identity(leaf)
	if !ok {
		return fmt.Errorf("pki: the certificate %q names no identity; want %s", leaf.Subject, URI(role, id))
	}
	if gotRole != role || gotID != id {
		return fmt.Errorf("pki: the certificate is %s; want %s", URI(gotRole, gotID), URI(role, id))
	}
	return nil
}

// LoadNode loads a control-plane node's certificate, key and the cluster
// CA from f, checks that the certificate is node id's, and returns its
// server configuration (ServerTLS: client certificates verified if given)
// and its client configuration (ClientTLS, presenting the certificate).
// Callers that must talk to nodes alone wrap them with RequirePeer.
func LoadNode(f Files, id string) (server, client *tls.Config, err error) {
	if server, err = ServerTLS(f.Cert, f.Key, f.CA); err != nil {
		return nil, nil, err
	}
	if client, err = ClientTLS(f.Cert, f.Key, f.CA); err != nil {
		return nil, nil, err
	}
	if err := Check(client.Certificates[0], client.RootCAs, RoleNode, id); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", f.Cert, err)
	}
	return server, client, nil
}
