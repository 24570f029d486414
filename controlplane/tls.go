package controlplane

// The node's TLS (docs/design.md §3.3.1). Its certificate is read when
// Run opens the node, first of all its parts; the HTTP clients that New
// hands to the fleet and to ingest dial through transports made then.

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast/auth/pki"
)

// nodeTLS is the node's TLS settings and, once open, its configurations.
type nodeTLS struct {
	files    pki.Files
	originCA string
	id       string
	api      *tls.Config   // the API listener's; nil without TLS
	routes   *tls.Config   // the event stream's routes; nil without TLS
	peers    lateTransport // to the other nodes
	origin   lateTransport // to the origin
}

func newNodeTLS(cfg Config) *nodeTLS {
	return &nodeTLS{files: cfg.TLS, originCA: cfg.OriginCA, id: cfg.ID}
}

// peerClient is the client of calls to other nodes (passed-on
// heartbeats), or nil for the fleet's own without TLS.
func (t *nodeTLS) peerClient() *http.Client {
	if t.files.IsZero() {
		return nil
	}
	return &http.Client{Timeout: 2 * time.Second, Transport: &t.peers}
}

// originClient is ingest's client, or nil for its own when neither TLS
// nor OriginCA asks for another. It has no overall timeout: files can be
// large.
func (t *nodeTLS) originClient() *http.Client {
	if t.files.IsZero() && t.originCA == "" {
		return nil
	}
	return &http.Client{Transport: &t.origin}
}

// open reads the certificate, key and CAs, checks that the certificate
// is this node's, and makes the configurations and transports.
func (t *nodeTLS) open(context.Context) error {
	f := t.files
	if !f.IsZero() {
		api, client, err := pki.LoadNode(f, t.id)
		if err != nil {
			return err
		}
		t.api = api
		t.peers.set(pki.RequirePeer(client, pki.RoleNode))
		// One configuration both accepts and dials the stream's routes:
		// the node's certificate, the CA both ways, nodes only.
		routes := api.Clone()
		routes.RootCAs = client.RootCAs
		t.routes = pki.RequirePeer(routes, pki.RoleNode)
	}
	if ca := cmp.Or(t.originCA, f.CA); ca != "" || !f.IsZero() {
		c, err := pki.ClientTLS(f.Cert, f.Key, ca)
		if err != nil {
			return err
		}
		t.origin.set(c)
	}
	return nil
}

// routeTLS is the event stream's route configuration, nil without TLS;
// the stream asks for it when a clustered server starts, after open.
func (t *nodeTLS) routeTLS() *tls.Config { return t.routes }

// close drops the transports' idle connections.
func (t *nodeTLS) close() error {
	t.peers.CloseIdleConnections()
	t.origin.CloseIdleConnections()
	return nil
}

// lateTransport is an http.RoundTripper whose transport is made once the
// certificates are read: the clients that hold it are built by New,
// which reads no file.
type lateTransport struct {
	t atomic.Pointer[http.Transport]
}

var _ http.RoundTripper = (*lateTransport)(nil)

func (l *lateTransport) set(c *tls.Config) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = c
	l.t.Store(t)
}

// errNotOpen is the error of a call made before the node opened.
var errNotOpen = errors.New("controlplane: the node's TLS is not loaded: it is not open")

// RoundTrip sends r through the transport, once there is one.
func (l *lateTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t := l.t.Load()
	if t == nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errNotOpen
	}
	return t.RoundTrip(r)
}

// CloseIdleConnections closes the transport's idle connections.
func (l *lateTransport) CloseIdleConnections() {
	if t := l.t.Load(); t != nil {
		t.CloseIdleConnections()
	}
}
