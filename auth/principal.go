package auth

import (
	"fmt"
	"strings"
)

// Kind is the kind of caller a principal is.
type Kind uint8

// The kinds of caller. The zero value is Anonymous.
const (
	// Anonymous presented no credential.
	Anonymous Kind = iota
	// Viewer is a signed-in viewer: a session token as a bearer or a
	// cookie; ID is the account's id.
	Viewer
	// Appliance presented an appliance credential or certificate.
	Appliance
	// Node is a control-plane node, known by its cluster certificate or,
	// without TLS, by the NodeToken every node derives from the bootstrap
	// admin key.
	Node
	// Operator presented an API key (or the bootstrap admin key).
	Operator
)

// String names k as the authorization table does.
func (k Kind) String() string {
	switch k {
	case Anonymous:
		return "anonymous"
	case Viewer:
		return "viewer"
	case Appliance:
		return "appliance"
	case Node:
		return "node"
	case Operator:
		return "operator"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Scope is a set of operator rights, a bit each.
type Scope uint8

// Operator scopes. Admin may do everything, including managing API keys
// and appliance credentials; the others are narrower.
const (
	// ScopeRead reads the fleet, the cluster, jobs and metrics.
	ScopeRead Scope = 1 << iota
	// ScopeIngest uploads and ingests titles and reads jobs.
	ScopeIngest
	// ScopeOperator changes the catalog, sites, rules, fill plans and
	// ingest, and reads what it changes.
	ScopeOperator
	// ScopeAdmin may do everything.
	ScopeAdmin
)

var scopeNames = []struct {
	s    Scope
	name string
}{{ScopeAdmin, "admin"}, {ScopeOperator, "operator"}, {ScopeIngest, "ingest"}, {ScopeRead, "read"}}

// ParseScope parses one scope name: admin, operator, ingest or read.
func ParseScope(name string) (Scope, error) {
	for _, n := range scopeNames {
		if n.name == name {
			return n.s, nil
		}
	}
	return 0, fmt.Errorf("auth: scope %q: want admin, operator, ingest or read", name)
}

// String names the scopes in s, joined by '|'.
func (s Scope) String() string {
	var parts []string
	for _, n := range scopeNames {
		if s&n.s != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, "|")
}

// Principal is who made a request.
type Principal struct {
	Kind Kind
	// ID is the appliance's, node's or API key's id; "bootstrap" for the
	// admin key given on the command line; empty for Anonymous.
	ID string
	// Scope is an operator's rights; zero for other kinds.
	Scope Scope
	// Details is what the authenticator learned beyond the id, for the
	// handlers: the control plane keeps a viewer's *accounts.Viewer here.
	// A pointer or nil, so that Principals stay comparable.
	Details any
}

// String describes p for logs, without any secret.
func (p Principal) String() string {
	switch {
	case p.Kind == Anonymous:
		return "anonymous"
	case p.Kind == Operator:
		return "operator:" + p.ID + "(" + p.Scope.String() + ")"
	}
	return p.Kind.String() + ":" + p.ID
}

// Appliances says which appliances a Policy admits.
type Appliances uint8

// Appliance rules of a Policy.
const (
	// NoAppliance admits no appliance.
	NoAppliance Appliances = iota
	// ApplianceSelf admits an appliance acting as itself: its id must be
	// the route's {id} path value.
	ApplianceSelf
	// AnyAppliance admits every appliance.
	AnyAppliance
)

// Policy is who may call a route. Operators with the admin scope may call
// every route but the nodes-only and viewers-only ones; a zero Policy
// admits only them.
type Policy struct {
	// NodesOnly admits control-plane nodes alone, not even the admin
	// scope: the routes between nodes (join, forwarded writes, passed-on
	// heartbeats) trust what they are told.
	NodesOnly bool
	// ViewersOnly admits signed-in viewers alone, not even the admin
	// scope: the routes that act for one viewer (their account, their
	// playback) have nothing to do for anyone else.
	ViewersOnly bool
	// Anonymous admits everyone, with or without a credential.
	Anonymous bool
	// Viewer admits signed-in viewers.
	Viewer bool
	// Appliance admits appliances as described by its value.
	Appliance Appliances
	// Node admits control-plane nodes.
	Node bool
	// Scopes admits operators holding any of these scopes.
	Scopes Scope
}

// Common policies.
var (
	// Public routes answer anyone.
	Public = Policy{Anonymous: true}
	// AdminOnly routes answer the admin scope alone.
	AdminOnly = Policy{Scopes: ScopeAdmin}
)

// Allows reports whether p admits pr on a route whose {id} path value is
// pathID.
func (p Policy) Allows(pr Principal, pathID string) bool {
	if p.NodesOnly {
		return pr.Kind == Node
	}
	if p.ViewersOnly {
		return pr.Kind == Viewer
	}
	switch pr.Kind {
	case Operator:
		return p.Anonymous || pr.Scope&(p.Scopes|ScopeAdmin) != 0
	case Appliance:
		return p.Anonymous || p.Appliance == AnyAppliance || (p.Appliance == ApplianceSelf && pr.ID == pathID && pathID != "")
	case Node:
		return p.Anonymous || p.Node
	case Viewer:
		return p.Anonymous || p.Viewer
	}
	return p.Anonymous
}
