package server

import (
	"fmt"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/valyala/fasthttp"
)

// SetTakedowns replaces the taken-down titles whose earlier tokens are
// refused (the agent's, from heartbeats): a player's token for such a
// title, issued before its takedown, gets a 403 that says so although
// it verifies. nil refuses none.
func (s *Server) SetTakedowns(t *auth.Takedowns) { s.takedowns.Store(t) }

// takenDown reports whether token, verified for title, was issued before
// title's takedown, and if so answers 403. It allocates nothing when it
// lets the request through.
func (s *Server) takenDown(ctx *fasthttp.RequestCtx, token, title string) bool {
	if !s.takedowns.Load().Refuses(token, title) {
		return false
	}
	s.metrics.tokenRejects.Inc()
	s.metrics.forbidden.WithLabelValues("taken_down").Inc()
	s.fail(ctx, fasthttp.StatusForbidden, "forbidden: this title was taken down")
	return true
}

// TitlePrefix returns the cache key prefix of every object of title:
// what /admin/purge and takedowns purge.
func TitlePrefix(title string) (string, error) {
	if err := fillcast.ValidateTitleID(title); err != nil {
		return "", fmt.Errorf("server: title: %w", err)
	}
	return title + "/", nil
}
