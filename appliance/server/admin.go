package server

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// adminHandler serves everything outside /c/.
func (s *Server) adminHandler() fasthttp.RequestHandler {
	g := s.d.Gatherer
	if g == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(s.Collector())
		g = reg
	}
	metricsHandler := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	return func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/healthz":
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString("ok\n")
		case "/metrics":
			metricsHandler(ctx)
		case "/v1/status":
			if !auth.BearerOK(b2s(ctx.Request.Header.Peek("Authorization")), s.d.AdminToken) {
				s.fail(ctx, fasthttp.StatusUnauthorized, "/v1/status needs Authorization: Bearer <admin token>")
				return
			}
			var v any = struct{}{}
			if s.d.Status != nil {
				v = s.d.Status()
			}
			writeJSON(ctx, fasthttp.StatusOK, v)
		case "/admin/purge":
			s.purge(ctx)
		default:
			s.fail(ctx, fasthttp.StatusNotFound, "not found")
		}
	}
}

// PurgeRequest is the body of POST /admin/purge: a whole title, or every
// object under a path prefix inside one title.
type PurgeRequest struct {
	Title  string `json:"title,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// PurgeResponse answers a purge.
type PurgeResponse struct {
	Prefix string `json:"prefix"`
	Purged int    `json:"purged"`
}

func (s *Server) purge(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "use POST")
		return
	}
	if !auth.BearerOK(string(ctx.Request.Header.Peek("Authorization")), s.d.AdminToken) {
		s.fail(ctx, fasthttp.StatusUnauthorized, "purge needs Authorization: Bearer <admin token>")
		return
	}
	var req PurgeRequest
	if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
		s.fail(ctx, fasthttp.StatusBadRequest, "body: want {\"title\":\"t1\"} or {\"prefix\":\"t1/720p/\"}: "+err.Error())
		return
	}
	prefix, err := purgePrefix(req)
	if err != nil {
		s.fail(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	n := s.cache.Purge(prefix)
	writeJSON(ctx, fasthttp.StatusOK, PurgeResponse{Prefix: prefix, Purged: n})
}

// purgePrefix turns a purge request into a key prefix that stays inside
// one title, so a typo can never empty the whole cache.
func purgePrefix(req PurgeRequest) (string, error) {
	switch {
	case req.Title != "" && req.Prefix != "":
		return "", fmt.Errorf("server: give title or prefix, not both")
	case req.Title != "":
		return TitlePrefix(req.Title)
	case req.Prefix != "":
		title, _, _ := strings.Cut(req.Prefix, "/")
		if err := fillcast.ValidateTitleID(title); err != nil {
			return "", fmt.Errorf("server: prefix must start with a title id: %w", err)
		}
		if strings.Contains(req.Prefix, "..") {
			return "", fmt.Errorf("server: prefix must not contain '..'")
		}
		if !strings.Contains(req.Prefix, "/") {
			return req.Prefix + "/", nil
		}
		return req.Prefix, nil
	}
	return "", fmt.Errorf("server: body needs \"title\" or \"prefix\"")
}

func writeJSON(ctx *fasthttp.RequestCtx, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		ctx.Error("cannot encode response", fasthttp.StatusInternalServerError)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(code)
	ctx.SetBody(append(b, '\n'))
}
