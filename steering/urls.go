package steering

import (
	"strings"

	"github.com/fillcast/fillcast/steering/contentsteering"
)

// OriginPathway is the content steering pathway id of the origin target.
const OriginPathway = "origin"

// AppendURLs appends to dst each target's base URL followed by path, and
// returns the extended slice. Every appliance and the origin serve the
// same signed path, so the caller signs once per answer, binding the
// token to the player's network (its /24 or /48), for instance
//
//	tok, err := keys.Sign(title, expiry, auth.ClientPrefix(client))
//	urls = steering.AppendURLs(urls[:0], targets, "/c/"+tok+"/"+title+"/master.m3u8")
//
// with keys a *auth.Keys holding the private key (the control plane's
// API does this, through a cache of signed tokens, in its playback route).
func AppendURLs(dst []string, targets []Target, path string) []string {
	for _, t := range targets {
		dst = append(dst, t.URL+path)
	}
	return dst
}

// AppendPathways appends one content steering pathway per target, in the
// answer's order: an appliance becomes a clone named by its id with its
// URL's host, the origin a clone named OriginPathway. Put the result in a
// contentsteering.Manifest, usually followed by the playlist's own
// default pathway "." as the last resort.
func AppendPathways(dst []contentsteering.Pathway, targets []Target) []contentsteering.Pathway {
	for _, t := range targets {
		id := t.Appliance
		if t.Role == RoleOrigin {
			id = OriginPathway
		}
		dst = append(dst, contentsteering.Pathway{ID: id, Host: hostOf(t.URL)})
	}
	return dst
}

// hostOf returns the host[:port] of a base URL that Build or New checked.
func hostOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return u
}
