package appliance

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/tlsconf"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/auth/pki"
)

// ticketKeyFile is the default session ticket key file, beside the disk
// tier's objects/ and tmp/ in its first directory (as takedownFile): the
// processes of an upgrade share it, so tickets survive the upgrade.
const ticketKeyFile = "tls-ticket-keys"

// TicketKeysNone as Config.TLSTicketKeys keeps the session ticket keys
// in memory, each process its own: no key touches a disk, but tickets do
// not survive an upgrade.
const TicketKeysNone = "none"

// defaultTicketRotate is how often the appliance rotates the default
// ticket key file.
const defaultTicketRotate = time.Hour

// tlsFields names the appliance's field for each of tlsconf.Config's.
var tlsFields = map[string]string{
	"CertFile": "TLSCert", "KeyFile": "TLSKey",
	"TicketKeys": "TLSTicketKeys", "TicketRotate": "TLSTicketRotate", "TicketLifetime": "TLSTicketLifetime",
}

// tlsConfig is the served TLS's configuration: without TLSTicketKeys,
// the default file, which the appliance owns (rotates) and may do
// without when its disk has failed.
func (c Config) tlsConfig() tlsconf.Config {
	t := tlsconf.DefaultConfig()
	t.CertFile, t.KeyFile = c.TLSCert, c.TLSKey
	t.TicketKeys, t.TicketRotate = c.TLSTicketKeys, c.TLSTicketRotate
	t.TicketLifetime = cmp.Or(c.TLSTicketLifetime, t.TicketLifetime)
	switch t.TicketKeys {
	case "":
		t.TicketKeys, t.TicketKeysOptional = filepath.Join(filepath.Dir(c.takedownState()), ticketKeyFile), true
		t.TicketRotate = cmp.Or(t.TicketRotate, defaultTicketRotate)
	case TicketKeysNone:
		t.TicketKeys = ""
	}
	return t
}

// validateTLS checks the TLS fields through tlsconf's Validate, whose
// problems it reports under the appliance's field names.
func (c Config) validateTLS() error {
	if c.TLSCert == "" || c.TLSKey == "" {
		for _, f := range []struct {
			name string
			set  bool
		}{{"TLSTicketKeys", c.TLSTicketKeys != ""}, {"TLSTicketRotate", c.TLSTicketRotate != 0}, {"TLSTicketLifetime", c.TLSTicketLifetime != 0}} {
			if f.set {
				return fillcast.ConfigErrorf("appliance", f.name, "given without a certificate (TLSCert and TLSKey): session tickets are TLS's")
			}
		}
		return nil
	}
	if c.TLSTicketKeys == TicketKeysNone && c.TLSTicketRotate != 0 {
		return fillcast.ConfigErrorf("appliance", "TLSTicketRotate", "given with TLSTicketKeys %q: there is no file to rotate", TicketKeysNone)
	}
	return tlsError(c.tlsConfig().Validate())
}

// tlsError renames the field of a tlsconf *fillcast.ConfigError.
func tlsError(err error) error {
	var ce *fillcast.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	return fillcast.ConfigErrorf("appliance", cmp.Or(tlsFields[ce.Field], ce.Field), "%s", ce.Problem)
}

// loadTLS reads the certificate, its key and the session ticket keys. A
// problem names the field of the file it is in, and the files.
func loadTLS(c Config, log *slog.Logger) (*tlsconf.Server, error) {
	tc := c.tlsConfig()
	s, err := tlsconf.New(tc, tlsconf.Deps{Log: log})
	if err != nil {
		return nil, tlsError(err)
	}
	if c.TLSTicketKeys == "" {
		// The cache, opened next, would create its directory anyway; a
		// failure leaves the key file optional.
		os.MkdirAll(filepath.Dir(tc.TicketKeys), 0o755)
	}
	if err := s.Load(); err != nil {
		return nil, tlsError(err)
	}
	return s, nil
}

// runTLS keeps the served TLS current (certificate files, ticket keys,
// OCSP staple) until ctx is done; nothing without a certificate.
func (a *Appliance) runTLS(ctx context.Context) {
	if a.tlsm != nil {
		a.tlsm.Run(ctx)
	}
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
