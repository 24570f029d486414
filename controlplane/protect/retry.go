package protect

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/fillcast/fillcast"
)

// RetryConfig says how often and how soon Retry tries a call again. The
// zero value of each field means the default given in its comment;
// DefaultRetryConfig returns them filled in.
type RetryConfig struct {
	// Attempts is how many times a call is made in all, the first
	// included: 1 makes no retry. Zero means 3.
	Attempts int
	// Base is the cap of the wait before the first retry; the cap doubles
	// for each retry after it. Zero means 50 ms.
	Base time.Duration
	// Max caps every wait, a Retry-After included. Zero means 1 s.
	Max time.Duration
}

// DefaultRetryConfig returns the defaults described on RetryConfig.
func DefaultRetryConfig() RetryConfig {
	return RetryConfig{Attempts: 3, Base: 50 * time.Millisecond, Max: time.Second}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c RetryConfig) Validate() error {
	switch {
	case c.Attempts < 0:
		return fillcast.ConfigErrorf("protect", "Attempts", "%d is negative: want 1 for no retry, or 0 for the default (3)", c.Attempts)
	case c.Base < 0:
		return fillcast.ConfigErrorf("protect", "Base", "%v is negative", c.Base)
	case c.Max < 0:
		return fillcast.ConfigErrorf("protect", "Max", "%v is negative", c.Max)
	}
	if d := c.withDefaults(); d.Max < d.Base {
		return fillcast.ConfigErrorf("protect", "Max", "%v is less than Base (%v): want it at least Base", d.Max, d.Base)
	}
	return nil
}

// withDefaults fills the zero fields.
func (c RetryConfig) withDefaults() RetryConfig {
	d := DefaultRetryConfig()
	c.Attempts = cmp.Or(c.Attempts, d.Attempts)
	c.Base = cmp.Or(c.Base, d.Base)
	c.Max = cmp.Or(c.Max, d.Max)
	return c
}

// WithRetryAfter returns err carrying a dependency's own word on when to
// try again (an HTTP Retry-After): Retry waits that long, capped by
// RetryConfig.Max, instead of its backoff. The error's text and chain
// are err's.
func WithRetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: d}
}

// retryAfterError is an error with a Retry-After.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// Retry runs fn, and runs it again while its error is retryable, the
// attempts of cfg are not all made, b allows a retry and ctx lives. It is
// for idempotent calls only: a call that may have taken effect before it
// failed is made again, so never retry one that must not apply twice.
//
// Before each retry it waits a random time between 0 and
// min(cfg.Max, cfg.Base×2^(retry-1)) ("full jitter", so that callers that
// failed together do not retry together), or the Retry-After that the
// error carries (WithRetryAfter), capped by cfg.Max. A retry whose wait
// would outlast ctx's deadline is not made. Zero fields of cfg take their
// defaults; a nil retryable retries every error; a nil b sets no budget.
//
// It returns nil once fn succeeds, and otherwise fn's last error as it
// is, but when ctx ended after fn failed and before a retry (during the
// wait, say) and fn's error does not say so: then an error wrapping both
// ctx's error and fn's last.
func Retry(ctx context.Context, cfg RetryConfig, b *Budget, retryable func(error) bool, fn func(ctx context.Context) error) error {
	cfg = cfg.withDefaults()
	if b != nil {
		b.Request()
	}
	err := fn(ctx)
	for retry := 1; retry < cfg.Attempts && err != nil; retry++ {
		if cerr := ctx.Err(); cerr != nil {
			if errors.Is(err, cerr) { // fn said so already
				return err
			}
			return givenUp(cerr, err)
		}
		if retryable != nil && !retryable(err) {
			return err
		}
		wait := backoff(cfg, retry, rand.Int64N)
		var ra *retryAfterError
		if errors.As(err, &ra) {
			wait = min(max(ra.after, 0), cfg.Max)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return err
		}
		if b != nil && !b.Withdraw() {
			return err
		}
		if cerr := sleep(ctx, wait); cerr != nil {
			return givenUp(cerr, err)
		}
		b.retried()
		err = fn(ctx)
	}
	return err
}

// givenUp is the error of a Retry whose ctx ended (cerr) after fn
// failed with err.
func givenUp(cerr, err error) error {
	return fmt.Errorf("protect: retry given up: %w; last error: %w", cerr, err)
}

// backoff is the wait before retry number retry (1 for the first): a
// random time in [0, min(cfg.Max, cfg.Base×2^(retry-1))], drawn by randN,
// which returns a number in [0, n).
func backoff(cfg RetryConfig, retry int, randN func(n int64) int64) time.Duration {
	ceiling := max(min(cfg.Base, cfg.Max), 0)
	for i := 1; i < retry && ceiling < cfg.Max; i++ {
		if ceiling > cfg.Max/2 { // doubling would pass Max, or overflow
			ceiling = cfg.Max
			break
		}
		ceiling *= 2
	}
	n := int64(ceiling)
	if n < math.MaxInt64 {
		n++ // ceiling itself may be drawn
	}
	return time.Duration(randN(n))
}

// sleep waits d, or until ctx ends, and returns ctx's error if it did.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
