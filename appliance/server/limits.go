package server

import (
	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/valyala/fasthttp"
)

// Renditions is what the appliance knows of the catalog's renditions:
// title → rendition directory → height in pixels (0 for audio). The
// server enforces a playback token's maximum height with it; a table is
// never changed once handed to SetRenditions.
type Renditions map[string]map[string]int

// NewRenditions makes the table of a fill manifest's catalog
// (fillcast.Manifest.Catalog).
func NewRenditions(catalog []fillcast.TitleRenditions) Renditions {
	r := make(Renditions, len(catalog))
	for _, t := range catalog {
		dirs := make(map[string]int, len(t.Renditions))
		for _, rh := range t.Renditions {
			dirs[rh.ID] = rh.Height
		}
		r[t.ID] = dirs
	}
	return r
}

// SetRenditions replaces the table of renditions that restricted tokens
// are judged by.
func (s *Server) SetRenditions(r Renditions) { s.renditions.Store(&r) }

// heightOf returns the height of a rendition directory of title: from the
// catalog when it lists the title (a directory it does not list is no
// rendition: refused), else, for a title the appliance has not heard of
// yet, from a name such as "720p" (anything else: refused).
func (s *Server) heightOf(title, dir string) (int, bool) {
	if r := s.renditions.Load(); r != nil {
		if dirs, ok := (*r)[title]; ok {
			h, ok := dirs[dir]
			return h, ok
		}
	}
	return auth.NameHeight(dir)
}

// allowed reports whether a token with limits l may fetch object of
// title (auth.Limits.Allows); when not, it has answered 403.
func (s *Server) allowed(ctx *fasthttp.RequestCtx, l auth.Limits, title, object string) bool {
	if l.IsZero() || l.Allows(object, func(dir string) (int, bool) { return s.heightOf(title, dir) }) {
		return true
	}
	s.forbid(ctx, auth.LimitReason(object), nil)
	return false
}
