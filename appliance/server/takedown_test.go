package server

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/valyala/fasthttp"
)

// TestTakedownRefusesEarlierTokens: with t1 taken down, t1's tokens that
// expire at or before the takedown's bound get 403 saying so; later ones,
// other titles' and peers' fill passes are served; nil refuses nothing.
func TestTakedownRefusesEarlierTokens(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t)
	keys := testKeys(t)
	now := time.Now()
	bound := now.Add(2 * time.Hour).Unix()
	tok := func(title string, exp time.Time) string {
		return keys.SignPath(title, exp, netip.Prefix{}) + "/720p/seg-00001.m4s"
	}
	pass, err := keys.SignFillPass("a2", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, authz string
		set               *auth.Takedowns
		want              int
	}{
		{"issued before", tok("t1", now.Add(time.Hour)), "", auth.NewTakedowns(map[string]int64{"t1": bound}), 403},
		{"expiring at the bound", tok("t1", time.Unix(bound, 0)), "", auth.NewTakedowns(map[string]int64{"t1": bound}), 403},
		{"issued after", tok("t1", time.Unix(bound+60, 0)), "", auth.NewTakedowns(map[string]int64{"t1": bound}), 200},
		{"another title", tok("t2", now.Add(time.Hour)), "", auth.NewTakedowns(map[string]int64{"t1": bound}), 200},
		{"no set", tok("t1", now.Add(time.Hour)), "", nil, 200},
		{"peer fill", "/f/t1/720p/seg-00001.m4s", "Bearer " + pass, auth.NewTakedowns(map[string]int64{"t1": bound}), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetTakedowns(tt.set)
			var ctx fasthttp.RequestCtx
			request(&ctx, tt.path)
			if tt.authz != "" {
				ctx.Request.Header.Set("Authorization", tt.authz)
			}
			s.Handle(&ctx)
			got := ctx.Response.StatusCode()
			if got != tt.want {
				t.Errorf("status %d, want %d (%q)", got, tt.want, ctx.Response.Body())
			}
			if got == 403 && !strings.Contains(string(ctx.Response.Body()), "taken down") {
				t.Errorf("body %q, want it to say the title was taken down", ctx.Response.Body())
			}
		})
	}
}
