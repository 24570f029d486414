package appliance

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

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

// checkSecrets refuses a Deps.Credential that is not one and warns of a
// private key file (an appliance only verifies).
func checkSecrets(d Deps, log *slog.Logger) error {
	if d.Credential != "" && !auth.IsCredential(d.Credential) {
		return errors.New("appliance: Deps.Credential is not an appliance credential (want fca.…): use the one answered when the appliance was registered")
	}
	if d.Keys.CanSign() {
		log.Warn("appliance: the key file holds private keys; an appliance only verifies: give it the public file (fillcast keys public)")
	}
	return nil
}

// labPassTTL is how long the passes an appliance signs itself last.
const labPassTTL = time.Hour

// fillPass is the Authorization header value the appliance fills with:
// the control plane's fill pass, renewed by the agent, or, given a
// private key file (a lab), one it signs itself.
type fillPass struct {
	id   string
	keys *auth.Keys // signs, in the lab case; nil otherwise
	cur  atomic.Pointer[passHeader]
	mu   sync.Mutex // one signer at a time
}

type passHeader struct {
	value   string // "Bearer fcp..."
	expires time.Time
}

// set takes a pass from the control plane, unless the appliance signs
// its own.
func (p *fillPass) set(fp fillcast.FillPass) {
	if p.keys == nil {
		p.cur.Store(&passHeader{value: "Bearer " + fp.Pass, expires: fp.ExpiresAt})
	}
}

// header returns the header value of a pass still valid, or "".
func (p *fillPass) header() string {
	h := p.cur.Load()
	if p.keys != nil && (h == nil || time.Until(h.expires) < labPassTTL/2) {
		h = p.sign()
	}
	if h == nil || time.Now().After(h.expires) {
		return ""
	}
	return h.value
}

// sign signs a new pass unless another caller just did.
func (p *fillPass) sign() *passHeader {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h := p.cur.Load(); h != nil && time.Until(h.expires) >= labPassTTL/2 {
		return h
	}
	exp := time.Now().Add(labPassTTL).Truncate(time.Second)
	pass, err := p.keys.SignFillPass(p.id, exp)
	if err != nil { // the id was validated with the config: not expected
		return p.cur.Load()
	}
	h := &passHeader{value: "Bearer " + pass, expires: exp}
	p.cur.Store(h)
	return h
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
