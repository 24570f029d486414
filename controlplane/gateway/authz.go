package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/fillcast/fillcast/auth"
)

// Authenticator tells who made a request. It returns the anonymous
// principal when the request carries no credential, and an error (401)
// when it carries one that is not valid: unknown, revoked or malformed.
// An *Error it returns is answered as it is: a store it needs being down
// is a 503, not the caller's bad credential.
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Principal, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (auth.Principal, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(r *http.Request) (auth.Principal, error) { return f(r) }

// RouteInfo is one registered route, as Routes lists them.
type RouteInfo struct {
	Pattern string
	Name    string
	Policy  auth.Policy
}

// Routes returns the registered routes in registration order: the route
// registry that the authorization table test walks.
func (g *Gateway) Routes() []RouteInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]RouteInfo(nil), g.infos...)
}

// Principal returns who made the request ctx belongs to: anonymous outside
// the gateway or on a gateway without an Authenticator.
func Principal(ctx context.Context) auth.Principal {
	if rc := FromContext(ctx); rc != nil {
		return rc.principal
	}
	return auth.Principal{}
}

// authorize is the first inbound filter of every route of a gateway with
// an Authenticator: it finds the principal and refuses it unless the
// route's policy admits it.
type authorize struct {
	authn  Authenticator
	policy auth.Policy
	g      *Gateway
}

// Inbound answers 401 to a missing or bad credential the route needs and
// 403 "forbidden" to a principal the policy does not admit; the reason
// goes to the log and the denied counter, never to the client.
func (a *authorize) Inbound(rc *RequestContext, r *http.Request) error {
	if a.policy.Anonymous && r.Header.Get("Authorization") == "" && r.TLS == nil {
		return nil // the common case of a public route: nothing to look up
	}
	p, err := a.authn.Authenticate(r)
	var unavailable *Error
	if errors.As(err, &unavailable) {
		return unavailable // the authenticator could not tell: not the caller's fault
	}
	if err != nil {
		a.g.deny(rc, "bad_credential", err.Error())
		rc.Header().Set("WWW-Authenticate", `Bearer realm="fillcast"`)
		return &Error{Status: http.StatusUnauthorized, Message: "unauthorized: the credential is not valid", Err: err}
	}
	rc.principal = p
	if a.policy.Allows(p, r.PathValue("id")) {
		return nil
	}
	if p.Kind == auth.Anonymous {
		a.g.deny(rc, "no_credential", "no credential")
		rc.Header().Set("WWW-Authenticate", `Bearer realm="fillcast"`)
		return &Error{Status: http.StatusUnauthorized, Message: "unauthorized: send Authorization: Bearer <key>"}
	}
	return Forbidden(rc, "not_allowed", p.String()+" may not call "+rc.Route())
}

func (g *Gateway) deny(rc *RequestContext, reason, detail string) {
	g.denied.WithLabelValues(rc.Route(), reason).Inc()
	g.log.Info("request denied", "request_id", rc.id, "route", rc.Route(), "client", rc.client.String(),
		"principal", rc.principal.String(), "reason", reason, "detail", detail)
}

// Forbidden returns the one 403 every refusal answers with, its body only
// "forbidden", and sends reason (a short label, such as "url_not_registered")
// and detail to the log and the fillcast_api_denied_total counter. An
// endpoint calls it with its request's context when it refuses a caller
// the route's policy admitted.
func Forbidden(ctx context.Context, reason, detail string) *Error {
	if rc := FromContext(ctx); rc != nil && rc.route != nil {
		rc.route.g.deny(rc, reason, detail)
	}
	return &Error{Status: http.StatusForbidden, Message: "forbidden"}
}
