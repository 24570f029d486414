package origin

import (
	"net/http"
	"net/netip"

	"github.com/fillcast/fillcast/auth"
)

// authorised reports whether r may GET title, and with what limits:
// always, unrestricted, without keys; with keys, unrestricted for the
// admin token and an appliance's fill pass (/f/ or the bare form), with
// the token's limits for a player's token (/c/), checked through the
// verifier's cache with the public keys. When not, it has answered 403
// "forbidden" and logged why.
func (s *Server) authorised(w http.ResponseWriter, r *http.Request, token, title string) (auth.Limits, bool) {
	if s.verify == nil {
		return auth.Limits{}, true
	}
	authz := r.Header.Get("Authorization")
	if auth.BearerOK(authz, s.d.AdminToken) {
		return auth.Limits{}, true
	}
	if token != "" {
		var addr netip.Addr
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			addr = ap.Addr()
		}
		limits, err := s.verify.Verify(token, title, s.d.Now(), addr)
		if err != nil {
			s.forbid(w, r, auth.RejectReason(err), err)
			return auth.Limits{}, false
		}
		if s.takenDown(w, r, token, title) {
			return auth.Limits{}, false
		}
		return limits, true
	}
	pass := auth.Bearer(authz)
	if pass == "" {
		s.forbid(w, r, "missing_pass", nil)
		return auth.Limits{}, false
	}
	if _, err := s.verify.VerifyFillPass(pass, s.d.Now()); err != nil {
		s.forbid(w, r, auth.RejectReason(err), err)
		return auth.Limits{}, false
	}
	return auth.Limits{}, true
}

// forbid answers 403 with the body "forbidden" alone: why goes to the
// debug log and to fillcast_origin_forbidden_total{reason}.
func (s *Server) forbid(w http.ResponseWriter, r *http.Request, reason string, err error) {
	s.forbidden.WithLabelValues(reason).Inc()
	s.log.Debug("origin: forbidden", "reason", reason, "path", r.URL.Path, "client", r.RemoteAddr, "err", err)
	httpError(w, http.StatusForbidden, "forbidden")
}
