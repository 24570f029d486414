package appliance

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/auth/pki"
)

// loadTLS reads the certificate and its key. A problem names the field
// of the file it is in, and the files.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fillcast.ConfigErrorf("appliance", "TLSCert", "read the certificate: %v", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fillcast.ConfigErrorf("appliance", "TLSKey", "read the private key: %v", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fillcast.ConfigErrorf("appliance", "TLSCert", "certificate %s with private key %s: %v", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// credentials checks the appliance's secrets and returns the credential
// it fills with: Deps.Credential, or, given only a private key file, one
// it signs itself (it holds the control plane's signing key, which can
// mint anything: the warning says to give it the public file).
func credentials(id string, d Deps, log *slog.Logger) (string, error) {
	if d.Credential != "" {
		if !auth.IsCredential(d.Credential) {
			return "", errors.New("appliance: Deps.Credential is not an appliance credential (want fca.…): use the one answered when the appliance was registered")
		}
		if _, err := d.Keys.VerifyCredential(d.Credential); err != nil {
			log.Warn("appliance: the credential does not verify with the key file; peers with the same keys will refuse it", "err", err)
		}
	}
	if !d.Keys.CanSign() {
		return d.Credential, nil
	}
	log.Warn("appliance: the key file holds private keys; an appliance only verifies: give it the public file (fillcast keys public)")
	if d.Credential != "" {
		return d.Credential, nil
	}
	cred, err := d.Keys.SignCredential(id)
	if err != nil {
		return "", fmt.Errorf("appliance: %w", err)
	}
	return cred, nil
}

// clientTLS returns the TLS configurations the appliance calls https
// upstreams (peers, the origin) and control-plane nodes with: TLSCA's
// roots and its own certificate; the nodes' must also name a node, so
// that another holder of a certificate of the CA (an appliance) cannot
// pose as one and collect credentials. Both are nil without TLSCA (the
// system's roots, no certificate).
func (c Config) clientTLS() (upstream, controlPlane *tls.Config, err error) {
	if c.TLSCA == "" {
		return nil, nil, nil
	}
	t, err := pki.ClientTLS(c.TLSCert, c.TLSKey, c.TLSCA)
	if err != nil {
		return nil, nil, fillcast.ConfigErrorf("appliance", "TLSCA", "%v", err)
	}
	return t, pki.RequirePeer(t, pki.RoleNode), nil
}
