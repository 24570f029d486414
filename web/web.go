// Package web holds the viewer and operator pages that the control plane
// serves (docs/design.md §3.8), embedded in the binary so they work offline:
// plain HTML, CSS and JavaScript that talk to the control plane's JSON API
// (plans, accounts, sessions and profiles; subscriptions and invoices;
// catalog, search, recommendations, playback and its stream leases,
// events; fleet, jobs, the billing report)
// and play from the appliances. A viewer's session is the control plane's
// HttpOnly cookie; the pages keep only the profile picked. The player library (shaka-player, for DASH and
// for HLS where the browser has no native HLS) comes from npm and is
// copied into static/vendor at build time (`make build`, `make test`);
// without it the pages still play HLS natively where the browser can and
// say what is missing.
package web

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Prefix is the path under which the assets are served; the page itself
// is served at "/".
const Prefix = "/ui/"

// vendorFiles are the npm-built files the pages load from static/vendor.
var vendorFiles = [...]string{"shaka-player.compiled.js"}

// UI serves the pages.
type UI struct {
	files  fs.FS
	assets http.Handler
	index  []byte
}

// New returns the UI over the embedded files.
func New() (*UI, error) { return newUI(static) }

func newUI(root fs.FS) (*UI, error) {
	files, err := fs.Sub(root, "static")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return &UI{files: files, index: index, assets: http.StripPrefix(Prefix, http.FileServerFS(files))}, nil
}

// Missing lists the vendor files that were not bundled at build time.
func (u *UI) Missing() []string {
	var out []string
	for _, f := range vendorFiles {
		if _, err := fs.Stat(u.files, "vendor/"+f); err != nil {
			out = append(out, f)
		}
	}
	return out
}

// pageCSP lets the page load code and styles only from the control plane,
// and video, images and JSON from the appliances (any host: they are
// wherever steering says).
const pageCSP = "default-src 'self'; img-src 'self' http: https: data:; media-src 'self' http: https: blob:; " +
	"connect-src 'self' http: https:; style-src 'self'; script-src 'self'"

// ServeHTTP answers the page at "/" and the assets under Prefix. The
// pages route with the URL fragment (#/title/t1), so "/" is the only page
// URL there is.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/":
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", pageCSP)
		w.Write(u.index)
	case strings.HasPrefix(r.URL.Path, Prefix):
		// The binary is the version: an upgrade changes every asset.
		w.Header().Set("Cache-Control", "no-cache")
		u.assets.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}
