package server

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/fillcast/fillcast/auth"
	"github.com/valyala/fasthttp"
)

// authorised checks who may fetch a content path: a player with a token
// for the title (/c/), or a site peer filling its cache with its fill
// pass (/f/, Authorization: Bearer fcp...), and returns the token's limits
// (none for a pass). Both checks go through the verifier's cache, so a
// session or a pass costs one Ed25519 check and every request after it
// none. When not authorised it has answered 403.
func (s *Server) authorised(ctx *fasthttp.RequestCtx, fill bool, token, title string) (auth.Limits, bool) {
	if fill {
		pass := auth.Bearer(b2s(ctx.Request.Header.Peek("Authorization")))
		if pass == "" {
			s.forbid(ctx, "missing_pass", nil)
			return auth.Limits{}, false
		}
		if _, err := s.verify.VerifyFillPass(pass, s.d.Now()); err != nil {
			s.forbid(ctx, auth.RejectReason(err), err)
			return auth.Limits{}, false
		}
		return auth.Limits{}, true
	}
	var addr netip.Addr
	if ip := ctx.RemoteIP(); ip != nil {
		addr, _ = netip.AddrFromSlice(ip)
	}
	limits, err := s.verify.Verify(token, title, s.d.Now(), addr)
	if err != nil {
		s.metrics.tokenRejects.Inc()
		s.forbid(ctx, auth.RejectReason(err), err)
		return auth.Limits{}, false
	}
	if s.takenDown(ctx, token, title) {
		return auth.Limits{}, false
	}
	return limits, true
}

// forbid answers 403 with the body "forbidden" alone: why goes to the
// debug log and to fillcast_appliance_forbidden_total{reason}, never to
// the client, who would learn which part of a forgery to fix.
func (s *Server) forbid(ctx *fasthttp.RequestCtx, reason string, err error) {
	s.metrics.forbidden.WithLabelValues(reason).Inc()
	if s.d.Log.Enabled(context.Background(), slog.LevelDebug) {
		s.d.Log.Debug("server: forbidden", "reason", reason, "path", string(ctx.Path()), "client", ctx.RemoteIP().String(), "err", err)
	}
	s.fail(ctx, fasthttp.StatusForbidden, "forbidden")
}
