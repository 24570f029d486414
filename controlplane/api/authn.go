package api

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/controlplane/cluster"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// Errors of authentication: the gateway answers 401 and logs them.
var (
	errUnknownKey        = errors.New("api: unknown or revoked api key")
	errUnknownCredential = errors.New("api: unknown or revoked appliance credential")
	errUnknownBearer     = errors.New("api: unknown bearer credential")
)

// authenticator finds who made a request (docs/api.md, "Who may call
// what"):
//   - "Bearer fcs.…", or without an Authorization header the session
//     cookie: a viewer's session, with the profile X-Fillcast-Profile
//     names;
//   - a node certificate of the cluster CA, verified by TLS, or without a
//     bearer credential a registered appliance's certificate;
//   - "Bearer fck.<id>.<secret>": an operator's API key, looked up by id
//     in the replicated state made current (a linearizable read, or 503)
//     and compared by hash;
//   - "Bearer fca.…": an appliance credential, whose signature names the
//     appliance, compared by hash with its registration, so a revoked or
//     reissued credential stops working at once;
//   - "Bearer fcn.…": the NodeToken nodes without certificates call each
//     other with;
//   - "Bearer <admin token>": the bootstrap admin key of the command line.
type authenticator struct {
	api *API
}

var _ gateway.Authenticator = authenticator{}

// Authenticate implements gateway.Authenticator.
func (au authenticator) Authenticate(r *http.Request) (auth.Principal, error) {
	bearer := auth.Bearer(r.Header.Get("Authorization"))
	a := au.api
	// A node is its certificate, whatever bearer it sends along.
	p := au.certificate(r.TLS)
	if p.Kind == auth.Node {
		return p, nil
	}
	if bearer == "" {
		if c, err := r.Cookie(sessionCookie); err == nil && p.Kind == auth.Anonymous {
			v, err := au.session(r, c.Value, true)
			if errors.Is(err, accounts.ErrBadSession) {
				// A stale cookie is no credential: the browser signs in
				// again (the page cannot clear an HttpOnly cookie).
				return auth.Principal{}, nil
			}
			return v, err
		}
		return p, nil
	}
	if strings.HasPrefix(bearer, auth.SessionPrefix) {
		return au.session(r, bearer, false)
	}
	if strings.HasPrefix(bearer, auth.NodeTokenPrefix) {
		if !auth.BearerOK(r.Header.Get("Authorization"), a.nodeToken) {
			return auth.Principal{}, errUnknownBearer
		}
		return auth.Principal{Kind: auth.Node, ID: "token"}, nil
	}
	if id, ok := auth.APIKeyID(bearer); ok {
		// From this node's copy, without a read index: an operator's
		// tools (a Prometheus scrape among them) must still work on a
		// node without a leader. A key revoked elsewhere is refused
		// here once this node applies the revocation; a node cut off
		// from the leader cannot write, and its reads that must be
		// current answer 503 anyway.
		var k *fsm.APIKey
		a.read(func(s *fsm.State) { k = s.APIKeys[id] })
		if k == nil || !auth.SecretMatches(bearer, k.Hash) {
			return auth.Principal{}, errUnknownKey
		}
		scope, err := auth.ParseScope(k.Scope)
		if err != nil {
			return auth.Principal{}, err
		}
		return auth.Principal{Kind: auth.Operator, ID: id, Scope: scope}, nil
	}
	if auth.IsCredential(bearer) {
		id, err := a.signingKeys().VerifyCredential(bearer)
		if err != nil {
			return auth.Principal{}, err
		}
		var reg *fsm.Registration
		a.read(func(s *fsm.State) { reg = s.Registrations[id] })
		if reg == nil || !auth.SecretMatches(bearer, reg.CredentialHash) {
			return auth.Principal{}, errUnknownCredential
		}
		return auth.Principal{Kind: auth.Appliance, ID: id}, nil
	}
	if auth.BearerOK(r.Header.Get("Authorization"), a.d.AdminToken) {
		return auth.Principal{Kind: auth.Operator, ID: "bootstrap", Scope: auth.ScopeAdmin}, nil
	}
	return auth.Principal{}, errUnknownBearer
}

// errCrossSite refuses a cookie sent with a write from another site's
// page (SameSite=Lax already keeps it off cross-site POSTs in browsers
// that honour it).
var errCrossSite = errors.New("api: session cookie on a write from another origin")

// session is the viewer a session token opens, with the profile the
// request names; a cookie on a write must come from this origin.
func (au authenticator) session(r *http.Request, token string, cookie bool) (auth.Principal, error) {
	if cookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
			return auth.Principal{}, errCrossSite
		}
	}
	// One read-index round for the session's lookups (a cache miss).
	v, err := au.api.d.Accounts.Viewer(cluster.ReadScope(r.Context()), token, r.Header.Get(profileHeader))
	switch {
	case errors.Is(err, accounts.ErrBadSession):
		return auth.Principal{}, err
	case err != nil && !errors.Is(err, accounts.ErrNoProfile):
		// The store could not answer: the session may be fine.
		return auth.Principal{}, &gateway.Error{Status: http.StatusServiceUnavailable, Message: "accounts are unavailable: try again shortly", RetryAfter: time.Second, Err: err}
	}
	// An unknown profile leaves Profile nil: viewer() refuses it, and
	// what does not need a profile still applies the plan and the most
	// restrictive view (kidsOnly).
	return auth.Principal{Kind: auth.Viewer, ID: v.Account.ID, Details: v}, nil
}

// sameOrigin reports whether an Origin header names host.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host == host
}

// certificate is the principal of a verified client certificate: a node,
// or a registered appliance; anonymous otherwise.
func (au authenticator) certificate(cs *tls.ConnectionState) auth.Principal {
	if cs == nil {
		return auth.Principal{}
	}
	role, id, ok := pki.PeerIdentity(cs)
	switch {
	case !ok:
	case role == pki.RoleNode:
		return auth.Principal{Kind: auth.Node, ID: id}
	case role == pki.RoleAppliance:
		var registered bool
		au.api.read(func(s *fsm.State) { registered = s.Registrations[id] != nil })
		if registered {
			return auth.Principal{Kind: auth.Appliance, ID: id}
		}
	}
	return auth.Principal{}
}
