package server

import (
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Bounds on what Refuse reads of a request it refuses.
const (
	drainQuiet = 100 * time.Millisecond // stop once the client is silent this long
	drainTotal = time.Second            // and never read for longer than this
	drainBytes = 1 << 20                // nor more than this
)

// Refuse is the fasthttp.Server's ErrorHandler: it answers a request
// fasthttp could not read, as the handler answers its own errors (plain
// text, counted in the metrics): 431 for a header over the read buffer,
// 413 for a body over the limit, 408 for a read timeout, 400 for a
// malformed request. First it reads and discards what the client is still
// sending, within bounds: fasthttp closes the connection after the
// answer, closing it with unread bytes makes the kernel reset it, and a
// client still writing its oversized header would see "broken pipe"
// instead of the 431.
func (s *Server) Refuse(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var nerr net.Error
	switch {
	case errors.As(err, &nerr) && nerr.Timeout():
		s.fail(ctx, fasthttp.StatusRequestTimeout, "request timeout")
		return // the client is not sending: nothing to drain
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.fail(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large")
	case errors.As(err, &small):
		s.fail(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "request header too large")
	default:
		s.fail(ctx, fasthttp.StatusBadRequest, "malformed request")
	}
	drain(ctx.Conn())
}

// drain discards what c receives until it is quiet for drainQuiet, for at
// most drainTotal and drainBytes; then it clears the read deadline.
func drain(c net.Conn) {
	buf := make([]byte, 16<<10)
	end := time.Now().Add(drainTotal)
	for n := 0; n < drainBytes; {
		d := time.Now().Add(drainQuiet)
		if d.After(end) {
			d = end
		}
		if c.SetReadDeadline(d) != nil {
			break
		}
		m, err := c.Read(buf)
		n += m
		if err != nil { // quiet, closed or done: all end the draining
			break
		}
	}
	c.SetReadDeadline(time.Time{})
}
