package gateway

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
)

// responseWriter wraps the server's writer for the whole chain: it runs
// the outbound filters once, just before the header goes out, counts the
// status and bytes for the log and metrics, and turns the ServeMux's own
// plain-text 404 and 405 answers into JSON error bodies.
type responseWriter struct {
	w           http.ResponseWriter
	rc          *RequestContext
	outbound    []OutboundFilter
	status      int
	bytes       int64
	wroteHeader bool
	routed      bool // a route took the request; false for the mux's 404/405/redirects
	swallow     bool // drop the body: the mux's text was replaced by JSON
	// body is the request's body under the route's read deadline; nil
	// when it has none or the route no timeout.
	body *deadlineBody
}

var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
)

// Header returns the response header.
func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

// WriteHeader runs the outbound filters and sends the header. Informational
// (1xx) headers pass straight through.
func (rw *responseWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		rw.w.WriteHeader(code)
		return
	}
	rw.wroteHeader, rw.status = true, code
	h := rw.w.Header()
	var body []byte
	if !rw.routed && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		msg := "no such endpoint; see the API reference"
		if code == http.StatusMethodNotAllowed {
			msg = "method not allowed here; see the Allow header"
		}
		body = errorJSON(msg, rw.rc.id)
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		rw.swallow = true
	}
	for _, f := range rw.outbound {
		f.Outbound(rw.rc, h)
	}
	rw.w.WriteHeader(code)
	if body != nil {
		n, _ := rw.w.Write(body)
		rw.bytes += int64(n)
	}
}

// Write sends body bytes, sending a 200 header first if none was.
func (rw *responseWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.swallow {
		return len(p), nil
	}
	n, err := rw.w.Write(p)
	rw.bytes += int64(n)
	return n, err
}

// Flush sends what is buffered to the client, for streaming endpoints.
func (rw *responseWriter) Flush() {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

// bufferedWriter collects a timed endpoint's response in memory so that it
// can be dropped if the endpoint is late. It deliberately does not
// implement http.Flusher: a route that must stream sets Streaming.
type bufferedWriter struct {
	h        http.Header
	status   int
	buf      bytes.Buffer
	limit    int
	overflow bool
}

var bufferPool = sync.Pool{New: func() any { return new(bufferedWriter) }}

func newBufferedWriter(limit int) *bufferedWriter {
	bw := bufferPool.Get().(*bufferedWriter)
	bw.limit = limit
	return bw
}

// release returns bw to the pool; large buffers are let go so that one
// big response does not pin its memory.
func (bw *bufferedWriter) release() {
	if bw.buf.Cap() > 64<<10 {
		return
	}
	clear(bw.h)
	bw.status, bw.overflow = 0, false
	bw.buf.Reset()
	bufferPool.Put(bw)
}

// Header returns the buffered header.
func (bw *bufferedWriter) Header() http.Header {
	if bw.h == nil {
		bw.h = make(http.Header)
	}
	return bw.h
}

// WriteHeader records the status.
func (bw *bufferedWriter) WriteHeader(code int) {
	if bw.status == 0 && (code < 100 || code >= 200) {
		bw.status = code
	}
}

// Write buffers p, refusing to grow past the limit.
func (bw *bufferedWriter) Write(p []byte) (int, error) {
	if bw.status == 0 {
		bw.status = http.StatusOK
	}
	if bw.overflow || bw.buf.Len()+len(p) > bw.limit {
		bw.overflow = true
		return 0, ErrResponseTooLarge
	}
	return bw.buf.Write(p)
}

// copyTo sends the buffered response through rw; head says the request
// was HEAD, whose empty body says nothing about its length.
func (bw *bufferedWriter) copyTo(rw *responseWriter, head bool) {
	h := rw.Header()
	for k, v := range bw.h {
		h[k] = v
	}
	status := bw.status
	if status == 0 {
		status = http.StatusOK
	}
	if _, ok := h["Content-Length"]; !ok && !head && status != http.StatusNoContent && status != http.StatusNotModified {
		h["Content-Length"] = []string{strconv.Itoa(bw.buf.Len())}
	}
	rw.WriteHeader(status)
	if bw.buf.Len() > 0 {
		rw.Write(bw.buf.Bytes())
	}
}
