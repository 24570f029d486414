package client

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fillcast/fillcast/controlplane/protect"
)

// retrying is call, made again under the Client's retry budget while
// every node fails, when r is idempotent (see the package doc).
func (c *Client) retrying(ctx context.Context, r request) (*answer, error) {
	if !r.idempotent {
		return c.call(ctx, r)
	}
	var a *answer
	err := protect.Retry(ctx, c.cfg.Retry, c.budget, unavailable, func(ctx context.Context) error {
		var err error
		a, err = c.call(ctx, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// unavailable says a call failed at every node: each one could not be
// reached, timed out, cut its answer short or answered 502, 503 or 504.
// Any other error is the cluster's answer, a caller's mistake or ctx's,
// and trying again would not change it.
func unavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// retryAfter reads an answer's Retry-After, in seconds or an HTTP date
// (RFC 9110 10.2.3), as a wait from now; 0 when there is none or it is
// not understood.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
