package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"

	"github.com/fillcast/fillcast/appliance/cmcd"
	appusage "github.com/fillcast/fillcast/appliance/usage"
	"github.com/valyala/fasthttp"
)

// Recorder takes every content response, for the usage summaries the
// agent sends the control plane (*usage.Recorder). It is called on the
// hit path: it must not block for long, nor keep the strings it is
// given, which view the request's buffers.
type Recorder interface {
	Record(appusage.Response)
}

var _ Recorder = (*appusage.Recorder)(nil)

// record hands the answer to a content request to Deps.Usage once the
// handler has made it, with its status, the body bytes it sends and the
// request's CMCD: it is the one recording point of HTTP/1.1 and HTTP/3
// (the h3 adapter runs Handle). Answers whose path names no valid title
// and object are in the metrics alone. Malformed CMCD is counted and
// left out; the response is recorded all the same.
func (s *Server) record(ctx *fasthttp.RequestCtx, path []byte) {
	if s.d.Usage == nil {
		return
	}
	_, title, object, _, err := parseContentPath(path)
	if err != nil {
		return
	}
	resp := appusage.Response{Title: title, Status: ctx.Response.StatusCode(), Bytes: bodySent(ctx)}
	if dir, _, ok := strings.Cut(object, "/"); ok {
		resp.Rendition = dir
	}
	if err := requestCMCD(ctx, &resp.CMCD); err != nil {
		resp.CMCD.Reset()
		s.metrics.cmcdErrors.Inc()
		if s.d.Log.Enabled(context.Background(), slog.LevelDebug) {
			s.d.Log.Debug("server: malformed CMCD", "path", string(path), "err", err)
		}
	}
	s.d.Usage.Record(resp)
}

// bodySent returns the content bytes of the answer in ctx, as respond
// counts them in the metrics: the body of a 200 or 206 to a GET, none
// for HEAD, 304s and errors.
func bodySent(ctx *fasthttp.RequestCtx) int64 {
	r := &ctx.Response
	if st := r.StatusCode(); st != fasthttp.StatusOK && st != fasthttp.StatusPartialContent || r.SkipBody || ctx.IsHead() {
		return 0
	}
	if r.IsBodyStream() {
		return int64(max(r.Header.ContentLength(), 0))
	}
	return int64(len(r.Body()))
}

var cmcdParam = []byte(cmcd.QueryParam + "=")

// requestCMCD reads the request's CMCD into d: the CMCD query parameter
// (fasthttp has decoded it) and the CMCD-* headers.
func requestCMCD(ctx *fasthttp.RequestCtx, d *cmcd.Data) error {
	if q := ctx.URI().QueryString(); bytes.Contains(q, cmcdParam) {
		if v := ctx.QueryArgs().Peek(cmcd.QueryParam); len(v) > 0 {
			if err := cmcd.Parse(d, v); err != nil {
				return err
			}
		}
	}
	return cmcd.ParseHeaders(d, &ctx.Request.Header)
}
