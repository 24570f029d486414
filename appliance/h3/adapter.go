package h3

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/valyala/fasthttp"
)

// Adapter runs the appliance's one request implementation, a
// fasthttp.RequestHandler, for net/http requests (which is what quic-go's
// http3.Server hands out). It copies the request line and headers into a
// pooled fasthttp.RequestCtx, calls the handler, and writes the response
// back: a memory hit's shared slice goes to the stream as it is; a
// larger cached object (a disk file) is read once
// into a pooled buffer and handed to the stream in one piece; a miss is
// streamed as it fills.
type Adapter struct {
	h    fasthttp.RequestHandler
	log  fasthttp.Logger
	pool sync.Pool
	bufs sync.Pool // *[]byte for writeWhole
}

var _ http.Handler = (*Adapter)(nil)

// NewAdapter returns an http.Handler that serves with h. log receives
// fasthttp's own messages; nil discards them.
func NewAdapter(h fasthttp.RequestHandler, log fasthttp.Logger) *Adapter {
	if log == nil {
		log = discard{}
	}
	a := &Adapter{h: h, log: log}
	a.pool.New = func() any { return &reqState{ctx: new(fasthttp.RequestCtx)} }
	a.bufs.New = func() any { return new([]byte) }
	return a
}

// reqState is the per-request state the adapter recycles.
type reqState struct {
	ctx  *fasthttp.RequestCtx
	conn streamConn
}

// ServeHTTP implements http.Handler.
func (a *Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := a.pool.Get().(*reqState)
	defer a.put(st)
	st.conn.remote = remoteAddr(r.RemoteAddr)
	st.conn.w = w
	ctx := st.ctx
	ctx.Init2(&st.conn, a.log, false)

	req := &ctx.Request
	req.Header.SetMethod(r.Method)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	req.SetRequestURI(uri)
	req.Header.SetHost(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}

	a.h(ctx)

	resp := &ctx.Response
	h := w.Header()
	resp.Header.VisitAll(func(k, v []byte) {
		if string(k) == fasthttp.HeaderContentLength {
			return
		}
		h.Add(string(k), string(v))
	})
	stream := resp.IsBodyStream()
	var body []byte
	n := resp.Header.ContentLength()
	if !stream && !resp.SkipBody {
		body = resp.Body() // the shared slice of a memory hit: not copied
		n = len(body)
	}
	status := resp.StatusCode()
	if n >= 0 && status != http.StatusNotModified && status != http.StatusNoContent {
		h.Set(fasthttp.HeaderContentLength, strconv.Itoa(n))
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead || resp.SkipBody {
		return
	}
	if stream {
		if fr, ok := resp.BodyStream().(*cache.FileRange); ok && n > 0 && n <= maxWhole {
			a.writeWhole(w, resp, fr, n)
			return
		}
		// BodyWriteTo copies the stream to w and closes it (releasing the
		// fill), whether or not the client is still there.
		resp.BodyWriteTo(w)
		return
	}
	if len(body) > 0 {
		w.Write(body)
	}
}

// maxWhole is the largest cached range written to the stream in one
// piece.
const maxWhole = 4 << 20

// writeWhole reads a cached range (a disk file, page
// cache warm) in one go and hands it to the QUIC stream in one Write, so
// the stream always has data queued for the packer instead of waiting for
// the handler between chunks; the buffer is pooled.
func (a *Adapter) writeWhole(w http.ResponseWriter, resp *fasthttp.Response, fr *cache.FileRange, n int) {
	bp := a.bufs.Get().(*[]byte)
	defer a.bufs.Put(bp)
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	buf := (*bp)[:n]
	_, err := io.ReadFull(fr, buf)
	resp.CloseBodyStream() // closes fr once and detaches it: FileRanges are recycled
	if err != nil {
		panic(http.ErrAbortHandler) // resets the stream: a short body is never sent as whole
	}
	w.Write(buf)
}

func (a *Adapter) put(st *reqState) {
	st.ctx.Request.Reset()
	st.ctx.Response.Reset() // closes a body stream the handler left open
	st.ctx.ResetUserValues()
	st.conn = streamConn{}
	a.pool.Put(st)
}

// remoteAddr turns an http.Request's RemoteAddr into the *net.TCPAddr
// fasthttp reads client IPs from (it ignores other address types).
func remoteAddr(s string) net.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return &net.TCPAddr{IP: net.IPv4zero}
	}
	return &net.TCPAddr{IP: ap.Addr().Unmap().AsSlice(), Port: int(ap.Port())}
}

// streamConn is the net.Conn fasthttp's RequestCtx believes it has: it
// reports the client's address and turns the handler's write deadline
// (slow-client protection) into the HTTP/3 stream's deadline. Nothing
// reads from or writes to it.
type streamConn struct {
	net.Conn
	remote net.Addr
	w      http.ResponseWriter
}

var zeroAddr = &net.UDPAddr{IP: net.IPv4zero}

func (c *streamConn) RemoteAddr() net.Addr { return c.remote }
func (c *streamConn) LocalAddr() net.Addr  { return zeroAddr }

func (c *streamConn) SetWriteDeadline(t time.Time) error {
	if d, ok := c.w.(interface{ SetWriteDeadline(time.Time) error }); ok {
		return d.SetWriteDeadline(t)
	}
	return nil
}

type discard struct{}

func (discard) Printf(string, ...any) {}
