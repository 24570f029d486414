package server

import (
	"context"
	"errors"
	"io"

	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/manifestfilter"
	"github.com/valyala/fasthttp"
)

// respondVariant answers a master playlist or MPD (key, of title) for a
// player: the variant without the renditions taller than maxHeight (when
// positive) and advertising Content Steering (with Config.SteeringURL),
// made once per limit and version of the cached object and then served
// from memory with ranges and conditionals like any object. A steered
// MPD's BaseURL is made absolute for the URL the player asked for, the
// one copy per request. A manifest that leaves nothing is a 403. It
// returns the body bytes sent.
func (s *Server) respondVariant(ctx *fasthttp.RequestCtx, hit *cache.Hit, maxHeight int, token, title, object, key string, isHead bool) int64 {
	o := manifestfilter.Options{MaxHeight: maxHeight}
	if token != "" {
		o.SteeringURL = s.cfg.SteeringURL
	}
	v, err := s.variants.Get(key, hit.Meta.ETag, o, func() ([]byte, error) { return readWhole(ctx, hit) })
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
	body := v.Body
	if o.SteeringURL != "" && object == manifestfilter.MPDName {
		body = v.BodyFor(s.contentDir(ctx, token, title))
	}
	meta := *hit.Meta
	meta.Size, meta.ETag = int64(len(body)), v.ETag
	variant := cache.Hit{Tier: hit.Tier, Meta: &meta, Body: body}
	return s.respond(ctx, &variant, title, object, isHead)
}

// contentDir returns the absolute URL of the directory of title that the
// player asked with token for, as it asked ("https://{Host}/c/{token}/
// {title}/"), or "" when its Host header is no host[:port].
func (s *Server) contentDir(ctx *fasthttp.RequestCtx, token, title string) string {
	host := ctx.Host()
	if len(host) == 0 {
		return ""
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return ""
		}
	}
	scheme := "http://"
	if s.cfg.TLS || ctx.IsTLS() {
		scheme = "https://"
	}
	return scheme + string(host) + "/c/" + token + "/" + title + "/"
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
