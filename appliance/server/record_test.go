package server

import (
	"net/url"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
	appusage "github.com/fillcast/fillcast/appliance/usage"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"
)

// withUsage makes s record its responses into a new Recorder.
func withUsage(tb testing.TB, s *Server) *appusage.Recorder {
	tb.Helper()
	rec, err := appusage.New(appusage.Config{Appliance: "a1", Site: "s1"}, appusage.Deps{})
	if err != nil {
		tb.Fatal(err)
	}
	s.d.Usage = rec
	return rec
}

// TestRecord: every answer to a content path that names a title is
// recorded once, with its status, the body bytes sent and the request's
// CMCD from the query and the headers; malformed CMCD is counted and
// left out.
func TestRecord(t *testing.T) {
	t.Parallel()
	s, path := newTestServer(t)
	token := strings.Split(path, "/")[2]
	seg := "/c/" + token + "/t1/720p/seg-00001.m4s"
	q := func(payload string) string { return "?CMCD=" + url.QueryEscape(payload) }
	tests := []struct {
		name          string
		method, path  string
		headers       []string
		status        int
		bytes         int64
		cmcd          fillcast.UsageCMCD
		recorded      bool
		rendition     string
		malformedCMCD bool
	}{
		{name: "segment", path: seg, status: 200, bytes: int64(len(body)), recorded: true, rendition: "720p"},
		{name: "range", path: seg, headers: []string{"Range", "bytes=0-99"}, status: 206, bytes: 100, recorded: true, rendition: "720p"},
		{name: "head", method: "HEAD", path: seg, status: 200, recorded: true, rendition: "720p"},
		{name: "not modified", path: seg, headers: []string{"If-None-Match", `"e1"`}, status: 304, recorded: true, rendition: "720p"},
		{name: "cmcd in the query", path: seg + q(`br=3200,bl=21300,mtp=25400,ot=v,sid="s1"`), status: 200, bytes: int64(len(body)),
			cmcd: fillcast.UsageCMCD{Requests: 1, BitrateRequests: 1, BitrateKbpsSum: 3200, BufferRequests: 1, BufferMsSum: 21300,
				ThroughputRequests: 1, ThroughputKbpsSum: 25400, Sessions: 1}, recorded: true, rendition: "720p"},
		{name: "cmcd in query and headers", path: seg + q("br=3200") + "&x=1", headers: []string{"CMCD-Status", "bs", "CMCD-Request", "bl=400"},
			status: 200, bytes: int64(len(body)), cmcd: fillcast.UsageCMCD{Requests: 1, BitrateRequests: 1, BitrateKbpsSum: 3200,
				BufferRequests: 1, BufferMsSum: 400, Starved: 1}, recorded: true, rendition: "720p"},
		{name: "malformed cmcd", path: seg + q("br=fast"), headers: []string{"CMCD-Status", "bs"}, status: 200, bytes: int64(len(body)),
			recorded: true, rendition: "720p", malformedCMCD: true},
		{name: "bad token", path: "/c/nope/t1/720p/seg-00001.m4s", status: 403, recorded: true, rendition: "720p"},
		{name: "not found", path: "/c/" + token + "/t1/720p/seg-00009.m4s", status: 404, recorded: true, rendition: "720p"},
		{name: "title root", path: "/c/" + token + "/t1/master.m3u8", status: 404, recorded: true},
		{name: "method refused", method: "POST", path: seg, status: 405, recorded: true, rendition: "720p"},
		{name: "bad path", path: "/c/" + token + "/t1/../x", status: 400},
		{name: "hidden", path: "/c/" + token + "/t1/.tmp-x", status: 404},
		{name: "admin", path: "/healthz", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := withUsage(t, s)
			var ctx fasthttp.RequestCtx
			request(&ctx, tt.path)
			if tt.method != "" {
				ctx.Request.Header.SetMethod(tt.method)
			}
			for i := 0; i+1 < len(tt.headers); i += 2 {
				ctx.Request.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			malformed := value(s.metrics.cmcdErrors)
			s.Handle(&ctx)
			if got := ctx.Response.StatusCode(); got != tt.status {
				t.Fatalf("status %d, want %d", got, tt.status)
			}
			if got := value(s.metrics.cmcdErrors) - malformed; (got == 1) != tt.malformedCMCD {
				t.Errorf("malformed CMCD counted %v times", got)
			}
			u := rec.Cut()
			if !tt.recorded {
				if u != nil {
					t.Errorf("recorded %+v, want nothing", u.Titles)
				}
				return
			}
			if u == nil || len(u.Titles) != 1 {
				t.Fatalf("usage %+v, want one row", u)
			}
			r := u.Titles[0]
			classes := [4]int64{r.Status2xx, r.Status3xx, r.Status4xx, r.Status5xx}
			if r.Title != "t1" || r.Rendition != tt.rendition || r.Requests != 1 || r.Bytes != tt.bytes || classes[tt.status/100-2] != 1 || r.CMCD != tt.cmcd {
				t.Errorf("row %+v, want rendition %q, %d bytes, status %d, CMCD %+v", r, tt.rendition, tt.bytes, tt.status, tt.cmcd)
			}
		})
	}
}

// BenchmarkMemoryHitCMCD is BenchmarkMemoryHit with the usage recorded
// and a player's CMCD in the query, as hls.js and dash.js send it.
func BenchmarkMemoryHitCMCD(b *testing.B) {
	s, path := newTestServer(b)
	withUsage(b, s)
	path += "?CMCD=" + url.QueryEscape(`br=3200,bl=21300,d=4004,mtp=25400,ot=v,sf=h,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",st=v`)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		request(&ctx, path)
		s.Handle(&ctx)
	}
}

// value reads a counter.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}
