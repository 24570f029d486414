package server

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/auth"
	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"
)

// TestAccess: who gets what. Players need a token for the title, peers
// (/f/) an appliance credential signed by one of the keys; every refusal
// is a 403 whose body is "forbidden" alone, and dot-files (the origin's
// in-flight uploads among them) are never served, not even to a valid
// token.
func TestAccess(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	meta := &cache.Meta{Size: 10}
	c := memCache{"t1/master.m3u8": meta, "t1/.tmp-seg.m4s-1700000000": meta, "t1/720p/.hidden": meta}
	var logBuf bytes.Buffer
	s, err := New(Config{}, Deps{Cache: c, Keys: keys.Public(), AdminToken: "adm", Log: slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	tok := keys.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{})
	cred, err := keys.SignFillPass("a2", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	credential, err := keys.SignCredential("a2")
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := keys.SignFillPass("a2", time.Now().Add(-time.Minute))
	other, _ := auth.ParseKeys(strings.NewReader("k1 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"))
	forged, _ := other.SignFillPass("a2", time.Now().Add(time.Hour))
	far := keys.SignPath("t1", time.Now().Add(48*time.Hour), netip.Prefix{})
	elsewhere := keys.SignPath("t1", time.Now().Add(time.Hour), netip.MustParsePrefix("198.51.100.0/24"))
	tests := []struct {
		name, path, authz string
		code              int
		body              string // "" to skip
	}{
		{"token", tok + "/master.m3u8", "", 200, ""},
		{"bad token", "/c/k1.1.x/t1/master.m3u8", "", 403, "forbidden\n"},
		{"token of another title", strings.Replace(tok, "/t1", "/t2", 1) + "/master.m3u8", "", 403, "forbidden\n"},
		{"token beyond the lifetime", far + "/master.m3u8", "", 403, "forbidden\n"},
		{"token for another client", elsewhere + "/master.m3u8", "", 403, "forbidden\n"},
		{"pass on a player path", "/c/x/t1/master.m3u8", "Bearer " + cred, 403, "forbidden\n"},
		{"fill with a pass", "/f/t1/master.m3u8", "Bearer " + cred, 200, ""},
		{"fill with a pass, lower-case scheme", "/f/t1/master.m3u8", "bearer " + cred, 200, ""},
		{"fill without a pass", "/f/t1/master.m3u8", "", 403, "forbidden\n"},
		{"fill with a forged pass", "/f/t1/master.m3u8", "Bearer " + forged, 403, "forbidden\n"},
		{"fill with an expired pass", "/f/t1/master.m3u8", "Bearer " + expired, 403, "forbidden\n"},
		{"fill with the control-plane credential", "/f/t1/master.m3u8", "Bearer " + credential, 403, "forbidden\n"},
		{"fill with a tampered pass", "/f/t1/master.m3u8", "Bearer " + strings.Replace(cred, ".a2.", ".a3.", 1), 403, "forbidden\n"},
		{"fill with the admin token", "/f/t1/master.m3u8", "Bearer adm", 403, "forbidden\n"},
		{"fill with a token as credential", "/f/t1/master.m3u8", "Bearer " + strings.Split(tok, "/")[2], 403, "forbidden\n"},
		{"in-flight temp file, token", tok + "/.tmp-seg.m4s-1700000000", "", 404, ""},
		{"dot directory, token", tok + "/720p/.hidden", "", 404, ""},
		{"in-flight temp file, fill", "/f/t1/.tmp-seg.m4s-1700000000", "Bearer " + cred, 404, ""},
		{"status without the admin token", "/v1/status", "", 401, ""},
		{"status with a credential", "/v1/status", "Bearer " + cred, 401, ""},
		{"status with the admin token", "/v1/status", "Bearer adm", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			request(&ctx, tt.path)
			if tt.authz != "" {
				ctx.Request.Header.Set("Authorization", tt.authz)
			}
			s.Handle(&ctx)
			if got := ctx.Response.StatusCode(); got != tt.code {
				t.Fatalf("GET %s = %d %q, want %d", tt.path, got, ctx.Response.Body(), tt.code)
			}
			if tt.body != "" && string(ctx.Response.Body()) != tt.body {
				t.Errorf("GET %s body %q, want %q", tt.path, ctx.Response.Body(), tt.body)
			}
		})
	}
	for reason, want := range map[string]float64{"malformed": 5, "bad_signature": 3, "lifetime": 1, "client": 1, "missing_pass": 1, "expired": 1} {
		var m dto.Metric
		if err := s.metrics.forbidden.WithLabelValues(reason).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != want {
			t.Errorf("forbidden{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if !strings.Contains(logBuf.String(), "reason=lifetime") {
		t.Errorf("the log does not say why:\n%s", logBuf.String())
	}
}

// TestSetKeysRevokes: replacing the keys forgets what the old ones
// verified, cached or not.
func TestSetKeysRevokes(t *testing.T) {
	t.Parallel()
	s, path := newTestServer(t)
	var ctx fasthttp.RequestCtx
	request(&ctx, path)
	s.Handle(&ctx)
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("status %d", ctx.Response.StatusCode())
	}
	other, _ := auth.ParseKeys(strings.NewReader("k2 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"))
	s.SetKeys(other.Public())
	request(&ctx, path)
	s.Handle(&ctx)
	if ctx.Response.StatusCode() != 403 {
		t.Errorf("token of a key no longer in the set: %d, want 403", ctx.Response.StatusCode())
	}
}
