package server

import (
	"context"
	"errors"
	"io"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/manifestfilter"
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

// respondFiltered answers a master playlist or MPD (key, of title) for a
// token with a maximum height: the variant without the taller renditions,
// made once per limit and version of the cached object and then served
// from memory with ranges and conditionals like any object. A manifest
// that leaves nothing is a 403. It returns the body bytes sent.
func (s *Server) respondFiltered(ctx *fasthttp.RequestCtx, hit *cache.Hit, maxHeight int, title, object, key string, isHead bool) int64 {
	v, err := s.variants.Get(key, hit.Meta.ETag, maxHeight, func() ([]byte, error) { return readWhole(ctx, hit) })
	hit.Release() // a variant from the cache left the hit unread
	switch {
	case errors.Is(err, manifestfilter.ErrNothingLeft):
		s.forbid(ctx, auth.LimitReason(object), err)
		return 0
	case err != nil:
		s.d.Log.Warn("server: cannot filter a manifest", "key", key, "err", err)
		s.fail(ctx, fasthttp.StatusBadGateway, "cannot filter manifest")
		return 0
	}
	meta := *hit.Meta
	meta.Size, meta.ETag = int64(len(v.Body)), v.ETag
	filtered := cache.Hit{Tier: hit.Tier, Meta: &meta, Body: v.Body}
	return s.respond(ctx, &filtered, title, object, isHead)
}

// readWhole returns the bytes of hit, read to the end from disk or from a
// fill under way when they are not in memory.
func readWhole(ctx context.Context, hit *cache.Hit) ([]byte, error) {
	if hit.Body != nil {
		return hit.Body, nil
	}
	if hit.Meta.Size > manifestfilter.MaxManifestBytes {
		return nil, manifestfilter.ErrTooLarge
	}
	r, err := hit.Stream(ctx, 0, -1)
	if err != nil {
		return nil, err
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	return manifestfilter.ReadAll(r, hit.Meta.Size)
}
