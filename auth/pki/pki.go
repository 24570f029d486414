// Package pki is the certificates of a Fillcast deployment: who a TLS
// peer is, and the files that say so. Control-plane nodes run raft and
// call each other over mutual TLS with certificates from one cluster CA;
// the same CA may sign appliances' and operators' client certificates
// and the servers' certificates (docs/design.md §3.5).
//
// A certificate names its holder in one URI SAN,
//
//	fillcast://node/{id}        a control-plane node (client and server)
//	fillcast://appliance/{id}   an appliance
//	fillcast://operator/{name}  an operator
//
// beside the DNS and IP SANs of a certificate that serves. Identity reads
// the URI from a certificate and PeerIdentity from a TLS connection,
// counting only a certificate that the connection verified against a CA
// it trusts: the URI of an unverified certificate says nothing.
//
// NewCA and Issue make a CA and certificates for a lab (fillcast certs);
// real deployments bring their own, with the same URI SANs. ServerTLS and
// ClientTLS load the PEM files into TLS configurations, and RequirePeer
// narrows one to peers of given roles.
package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/fillcast/fillcast"
)

// The roles a certificate's identity URI names.
const (
	// RoleNode is a control-plane node; its certificate serves the API
	// and raft and is presented to the other nodes.
	RoleNode = "node"
	// RoleAppliance is an appliance.
	RoleAppliance = "appliance"
	// RoleOperator is a person or tool operating the cluster.
	RoleOperator = "operator"
)

// RoleServer is not an identity: Issue makes, under this name, a
// certificate that only serves (DNS and IP SANs, no identity URI), such as
// an origin's. Identity never returns it.
const RoleServer = "server"

// Scheme is the scheme of identity URIs.
const Scheme = "fillcast"

// MaxIDLen bounds the id in an identity URI.
const MaxIDLen = 64

// ErrBadIdentity is wrapped by ParseIdentity's errors.
var ErrBadIdentity = errors.New("pki: bad identity")

// URI returns the identity URI of role and id, fillcast://{role}/{id}. It
// does not check them: ParseIdentity(URI(role, id)) does.
func URI(role, id string) *url.URL {
	return &url.URL{Scheme: Scheme, Host: role, Path: "/" + id}
}

// ParseIdentity parses an identity URI written exactly as URI writes it:
// the role one of RoleNode, RoleAppliance and RoleOperator, the id 1 to
// MaxIDLen letters, digits, '-' and '_', not starting with '-'.
func ParseIdentity(s string) (role, id string, err error) {
	rest, ok := strings.CutPrefix(s, Scheme+"://")
	if !ok {
		return "", "", fmt.Errorf("%w %.80q: want %s://{role}/{id}", ErrBadIdentity, s, Scheme)
	}
	role, id, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", fmt.Errorf("%w %.80q: no id after the role", ErrBadIdentity, s)
	}
	switch role {
	case RoleNode, RoleAppliance, RoleOperator:
	default:
		return "", "", fmt.Errorf("%w %.80q: role %.20q: want node, appliance or operator", ErrBadIdentity, s, role)
	}
	if err := validateID(id); err != nil {
		return "", "", fmt.Errorf("%w %.80q: %v", ErrBadIdentity, s, err)
	}
	return role, id, nil
}

// validateID checks an identity's id, which also names its files.
func validateID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("id %.80q: want 1 to %d characters", id, MaxIDLen)
	}
	if id[0] == '-' {
		return fmt.Errorf("id %q: must not start with '-'", id)
	}
	for i := 0; i < len(id); i++ {
		if !fillcast.IsIDByte(id[i]) {
			return fmt.Errorf("id %q: only letters, digits, '-' and '_' are allowed", id)
		}
	}
	return nil
}

// Identity returns the role and id that cert's identity URI names. ok is
// false when cert has none, or more than one, or one that does not
// parse. It trusts cert as it is: call it on a verified certificate only
// (PeerIdentity does).
func Identity(cert *x509.Certificate) (role, id string, ok bool) {
	if cert == nil {
		return "", "", false
	}
	found := 0
	for _, u := range cert.URIs {
		if u.Scheme != Scheme {
			continue
		}
		found++
		r, i, err := ParseIdentity(u.String())
		if err != nil {
			return "", "", false
		}
		role, id = r, i
	}
	if found != 1 {
		return "", "", false
	}
	return role, id, true
}

// PeerIdentity returns the identity of the certificate the peer of a TLS
// connection presented, once the connection verified it against its
// trusted CAs (VerifiedChains); a peer without a certificate, or with one
// not verified, has none. On a server, only a config that asks for client
// certificates (ServerTLS with a CA) verifies them.
func PeerIdentity(cs *tls.ConnectionState) (role, id string, ok bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", "", false
	}
	return Identity(cs.VerifiedChains[0][0])
}
