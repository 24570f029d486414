package appliance

import (
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Bounds on what refuseRequest reads of a request it refuses.
const (
	drainQuiet = 100 * time.Millisecond // stop once the client is silent this long
	drainTotal = time.Second            // and never read for longer than this
	drainBytes = 1 << 20                // nor more than this
)

// refuseRequest answers a request fasthttp could not read (a header over
// the read buffer, a body over the limit, a malformed request) as
// fasthttp's default handler does, but with 413 for the body, and first
// reads and discards what the client is still sending, within bounds.
// fasthttp closes the connection after the answer; closing it with
// unread bytes makes the kernel reset it, and a client still writing its
// oversized header would see "broken pipe" instead of the 431.
func refuseRequest(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var nerr net.Error
	switch {
	case errors.As(err, &nerr) && nerr.Timeout():
		ctx.Error("Request timeout", fasthttp.StatusRequestTimeout)
		return // the client is not sending: nothing to drain
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("Request body too large", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small):
		ctx.Error("Too big request header", fasthttp.StatusRequestHeaderFieldsTooLarge)
	default:
		ctx.Error("Error when parsing request", fasthttp.StatusBadRequest)
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
