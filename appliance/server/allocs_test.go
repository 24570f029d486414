//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package server

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/accesslog"
	"github.com/fillcast/fillcast/auth"
	"github.com/valyala/fasthttp"
)

// TestHitPathAllocs: a memory hit allocates nothing, for a player's token
// (with limits or without, with CMCD or a traceparent or without) and
// for a peer's fill pass, once the verifier has cached them, recording
// the usage, the response time and the access-log line included.
func TestHitPathAllocs(t *testing.T) {
	s, path := newTestServer(t)
	var logged logBuffer
	al, err := accesslog.New(accesslog.Config{FlushBytes: 16 << 10}, accesslog.Deps{W: &logged})
	if err != nil {
		t.Fatal(err)
	}
	s.d.AccessLog = al
	keys := testKeys(t)
	cred, err := keys.SignFillPass("a2", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	client := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 9), Port: 5000}
	bound := keys.SignPath("t1", time.Now().Add(time.Hour), auth.ClientPrefix(netip.MustParseAddr("203.0.113.9"))) + "/720p/seg-00001.m4s"
	limited := func(title string) string {
		return keys.SignPathLimited(title, time.Now().Add(time.Hour), auth.ClientPrefix(netip.MustParseAddr("203.0.113.9")),
			auth.Limits{MaxHeight: 1080, NoDownloads: true}) + "/720p/seg-00001.m4s"
	}
	s.SetRenditions(NewRenditions([]fillcast.TitleRenditions{{ID: "t1", Renditions: []fillcast.RenditionHeight{{ID: "720p", Height: 720}}}}))
	rec := withUsage(t, s)
	cmcdQuery := "?CMCD=" + url.QueryEscape(`br=3200,bl=21300,d=4004,mtp=25400,ot=v,sid="6e2fb550-c457-11e9-bb97-0800200c9a66"`)
	tests := []struct {
		name, path, authz string
		headers           []string
	}{
		{"player", path, "", nil},
		{"player with CMCD in the query", path + cmcdQuery, "", nil},
		{"player with CMCD headers", path, "", []string{"CMCD-Object", "br=3200,d=4004,ot=v", "CMCD-Request", "bl=21300,mtp=25400",
			"CMCD-Session", `sid="6e2fb550-c457-11e9-bb97-0800200c9a66"`, "CMCD-Status", "bs"}},
		{"player with a traceparent in the query", path + "?traceparent=" + traceparent, "", nil},
		{"player with CMCD and a traceparent in the query", path + cmcdQuery + "&traceparent=" + traceparent, "", nil},
		{"player with a traceparent header", path, "", []string{"traceparent", traceparent}},
		{"player, token bound to its /24", bound, "", nil},
		{"player, token with limits, title in the catalog", limited("t1"), "", nil},
		{"player, token with limits, title by rendition names", limited("t2"), "", nil},
		{"peer fill", "/f/t1/720p/seg-00001.m4s", "Bearer " + cred, nil},
	}
	for _, tt := range tests {
		var ctx fasthttp.RequestCtx
		ctx.SetRemoteAddr(client)
		req := func() {
			request(&ctx, tt.path)
			if tt.authz != "" {
				ctx.Request.Header.Set("Authorization", tt.authz)
			}
			for i := 0; i+1 < len(tt.headers); i += 2 {
				ctx.Request.Header.Set(tt.headers[i], tt.headers[i+1])
			}
		}
		req()
		s.Handle(&ctx) // warm header buffers and the verifier's cache
		if ctx.Response.StatusCode() != 200 || len(ctx.Response.Body()) != len(body) {
			t.Fatalf("%s: status %d, %d bytes", tt.name, ctx.Response.StatusCode(), len(ctx.Response.Body()))
		}
		n := testing.AllocsPerRun(200, func() {
			req()
			s.Handle(&ctx)
			if al.Stats().Lines%64 == 0 {
				al.Flush() // as Run would, in line
			}
		})
		if n != 0 {
			t.Errorf("%s: memory hit allocates %v times per request, want 0", tt.name, n)
		}
	}
	// Every one of those responses was recorded, with its CMCD: each
	// case's first request, then AllocsPerRun's warm-up and 200 runs.
	const each = 202
	u := rec.Cut()
	if len(u.Titles) != 2 || u.Titles[0].Requests != 9*each || u.Titles[0].CMCD.Requests != 3*each || u.Titles[0].CMCD.Starved != each {
		t.Errorf("usage %+v", u.Titles)
	}
	// And timed, and logged, with the trace id of the three that had one.
	if got, want := s.Usage().Latency.Count(), uint64(len(tests)*each); got != want {
		t.Errorf("%d answers timed, want %d", got, want)
	}
	al.Flush()
	if got, want := strings.Count(logged.String(), `"trace_id":"`+traceHex+`"`), 3*each; got != want {
		t.Errorf("%d access-log lines with the trace id, want %d", got, want)
	}
	if s := al.Stats(); s.Lines != uint64(len(tests)*each) || s.Dropped != 0 {
		t.Errorf("access log %+v, want %d lines", s, len(tests)*each)
	}
}
