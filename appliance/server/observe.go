package server

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/fillcast/fillcast/appliance/accesslog"
	"github.com/fillcast/fillcast/internal/tracing"
	"github.com/valyala/fasthttp"
)

// AccessLog takes a line for every content response (*accesslog.Log).
// It is called on the hit path: it must not block on I/O, nor keep the
// strings it is given, which view the request's buffers.
type AccessLog interface {
	Add(accesslog.Entry)
}

var _ AccessLog = (*accesslog.Log)(nil)

// observe counts the answer to a content request, which the handler
// started at start and made in took, for the heartbeats' p99 and error
// ratio, and hands it to Deps.AccessLog. It is the one observation point of
// HTTP/1.1 and HTTP/3 (the h3 adapter runs Handle), and takes no lock
// but the access log's, when there is one.
//
// took ends when the handler returns: the status, headers and body
// source are decided, but fasthttp (or the h3 adapter) writes the body
// after, so a client's download is not in it, and neither is a
// streamed body that breaks off later (the cache counts those:
// cache.Stats.StreamsCut).
func (s *Server) observe(ctx *fasthttp.RequestCtx, path []byte, start time.Time, took time.Duration) {
	status := ctx.Response.StatusCode()
	// The histogram first, the failure after, so that a reader that
	// loads failed before the histogram never sees more failures than
	// answers (Usage).
	s.latency.Record(took)
	if failed(ctx, status) {
		s.failed.Add(1)
	}
	if s.d.AccessLog == nil {
		return
	}
	e := accesslog.Entry{
		Time: start, Duration: took, Method: b2s(ctx.Method()), Path: b2s(path), Status: status,
		Bytes: bodySent(ctx), Cache: b2s(ctx.Response.Header.PeekBytes(hdrXCache)), TraceID: traceID(ctx),
	}
	if ip := ctx.RemoteIP(); ip != nil {
		e.Client, _ = netip.AddrFromSlice(ip)
	}
	s.d.AccessLog.Add(e)
}

// started returns when the handler started on ctx. With the wall clock
// that is the time fasthttp read before calling it (the h3 adapter too,
// on taking the request): it reads the clock for every request anyway,
// and a clock read costs 20 ns on a host with a usable TSC but over
// 100 ns on a VM without one.
func (s *Server) started(ctx *fasthttp.RequestCtx) time.Time {
	if s.wallClock {
		if t := ctx.Time(); !t.IsZero() {
			return t
		}
	}
	return s.d.Now()
}

// since returns the time from start to now: with the wall clock, from
// the monotonic clock alone, one clock read where time.Now takes two.
func (s *Server) since(start time.Time) time.Duration {
	if s.wallClock {
		return time.Since(start)
	}
	return s.d.Now().Sub(start)
}

// failed reports whether an answer counts against the appliance in the
// heartbeats' error ratio: a 5xx, but for the 504 that tells a peer's
// only-if-cached probe the object is not here, which is how tier fills
// work.
func failed(ctx *fasthttp.RequestCtx, status int) bool {
	if status < 500 {
		return false
	}
	return status != fasthttp.StatusGatewayTimeout || !onlyIfCached(ctx.Request.Header.Peek("Cache-Control"))
}

var (
	hdrTraceparent   = []byte("Traceparent")
	traceparentParam = []byte(traceparentQuery + "=")
)

// traceparentQuery is the query parameter the control plane's playback
// URLs carry the W3C trace context in. Like every query parameter (CMCD
// among them), it is no part of the cache key, which is the path's title
// and object, nor of the signature, which is the path's token: a
// playback URL with it serves from the same cache entry, with the same
// token, as one without.
const traceparentQuery = "traceparent"

// traceID returns the W3C trace id of the request: that of its
// traceparent header or, without a valid one, of its traceparent query
// parameter; "" if neither is valid. It views the request's buffers.
func traceID(ctx *fasthttp.RequestCtx) string {
	if v := ctx.Request.Header.PeekBytes(hdrTraceparent); len(v) > 0 {
		if id, ok := tracing.TraceID(b2s(v)); ok {
			return id
		}
	}
	if q := ctx.URI().QueryString(); bytes.Contains(q, traceparentParam) {
		if v := ctx.QueryArgs().Peek(traceparentQuery); len(v) > 0 {
			if id, ok := tracing.TraceID(b2s(v)); ok {
				return id
			}
		}
	}
	return ""
}
