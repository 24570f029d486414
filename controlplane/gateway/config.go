package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/gateway/adaptive"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Gateway. The zero value of each field means the
// default given in its comment; DefaultConfig returns them filled in.
type Config struct {
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	// Empty means the header is ignored and the client is the peer.
	TrustedProxies []netip.Prefix
	// Concurrency is the node-wide concurrency limit that requests are
	// shed against by their route's Priority (see Priority for the
	// curve). The zero value is an adaptive limit.
	Concurrency ConcurrencyConfig
	// ShedRetryAfter is the Retry-After sent with a shed request. Zero
	// means 1 s.
	ShedRetryAfter time.Duration
	// MaxBodyBytes bounds request bodies on routes that do not set their
	// own limit. Zero means 1 MiB.
	MaxBodyBytes int64
	// MaxBufferBytes bounds the response a route with a timeout may
	// buffer (see RouteOptions.Timeout); a larger response becomes a 500.
	// Zero means 4 MiB.
	MaxBufferBytes int
	// NoAccessLog turns the per-request access log off. Zero (false)
	// means every request is logged at Info (5xx at Warn).
	NoAccessLog bool
	// Inbound filters run on every routed request, before the route's own.
	Inbound []InboundFilter
	// Outbound filters run on every response, before the route's own.
	Outbound []OutboundFilter
}

// DefaultConfig returns the defaults described on Config.
func DefaultConfig() Config {
	return Config{
		Concurrency:    ConcurrencyConfig{Adaptive: adaptive.DefaultConfig()},
		ShedRetryAfter: time.Second,
		MaxBodyBytes:   1 << 20,
		MaxBufferBytes: 4 << 20,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ShedRetryAfter == 0 {
		c.ShedRetryAfter = d.ShedRetryAfter
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.MaxBufferBytes == 0 {
		c.MaxBufferBytes = d.MaxBufferBytes
	}
	return c
}

// Validate reports the first problem with c, after zero fields take their
// defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(field, format string, args ...any) error {
		return fillcast.ConfigErrorf("gateway", field, format, args...)
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			return bad("TrustedProxies", "prefix %v is not valid", p)
		}
	}
	if err := c.Concurrency.validate(); err != nil {
		return err
	}
	switch {
	case c.ShedRetryAfter < 0:
		return bad("ShedRetryAfter", "%v is negative", c.ShedRetryAfter)
	case c.MaxBodyBytes < 0:
		return bad("MaxBodyBytes", "%d is negative", c.MaxBodyBytes)
	case c.MaxBufferBytes < 0:
		return bad("MaxBufferBytes", "%d is negative", c.MaxBufferBytes)
	}
	for i, f := range c.Inbound {
		if f == nil {
			return bad("Inbound", "filter %d is nil", i)
		}
	}
	for i, f := range c.Outbound {
		if f == nil {
			return bad("Outbound", "filter %d is nil", i)
		}
	}
	return nil
}

// ParseTrustedProxies parses a comma-separated list of CIDR prefixes, as
// given to --trusted-proxies. A bare address counts as a single host.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("gateway: trusted proxy %q: want a CIDR such as 10.0.0.0/8: %w", f, err)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("gateway: trusted proxy %q: want a CIDR such as 10.0.0.0/8: %w", f, err)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("gateway: trusted proxy %q: an IPv4-mapped prefix needs at least /96 (or write it as IPv4)", f)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Deps are the Gateway's collaborators. Every field may be zero.
type Deps struct {
	// Authenticator, when set, finds each request's principal, and every
	// route must declare a Policy that the gateway enforces before the
	// route's filters and endpoint run. Nil leaves routes open (tests of
	// the chain alone).
	Authenticator Authenticator
	// Logger receives the access log and errors. Nil discards them.
	Logger *slog.Logger
	// Registerer gets the gateway's metrics. Nil keeps them unregistered
	// (they are still counted).
	Registerer prometheus.Registerer
	// Now is the clock for request start times and durations, and so
	// for the adaptive concurrency limit's samples and the rate limiter.
	// Nil means time.Now. Route timeouts use the runtime's timers, and
	// circuit breakers the real time, whatever Now is.
	Now func() time.Time
	// Rand seeds generated request ids and trace ids (16 bytes are read
	// once, in New). Nil means crypto/rand.
	Rand io.Reader
	// RateLimiter, when set, is asked about every request of a
	// non-critical route right after the policy check; it refuses with
	// 429. Nil means no rate limits.
	RateLimiter RateLimiter
	// Statics, when set, is looked up for every routed request before
	// anything else of the route runs; a static response found answers
	// instead of the route. Nil means none.
	Statics Statics
	// Tracer, when set, makes a server span of every routed request (see
	// the package doc's Tracing). Nil still gives every request a trace
	// context, but records no span.
	Tracer trace.Tracer
	// Breakers are the metrics of the routes' circuit breakers (series
	// breaker="route_<name>"). A process with one registry creates one
	// protect.Metrics and hands it to every user, as a registry takes
	// each collector once. Nil means the gateway registers its own on
	// Registerer (failing New if the registry already has them).
	Breakers *protect.Metrics
}

// RouteOptions are a route's name and protections. Only Name is required.
type RouteOptions struct {
	// Name labels the route in metrics and logs; letters, digits and '_'.
	Name string
	// Policy is who may call the route (see Deps.Authenticator): others
	// get 401 (no or a bad credential) or 403 before any filter of the
	// route or the endpoint runs.
	Policy auth.Policy
	// Priority decides who is shed first under overload; the zero value
	// is PriorityBrowse.
	Priority Priority
	// Timeout, when positive, bounds the endpoint and the reading of the
	// request body (a body still arriving at the deadline gets 408, so a
	// slow client cannot hold the route's bulkhead): its request context
	// gets this deadline and, unless Streaming, the endpoint runs in its
	// own goroutine writing into a memory buffer, so the client gets 504
	// (or the fallback) on time even if the endpoint ignores its context,
	// and a late endpoint's output is thrown away. The buffer holds the
	// whole response (up to Config.MaxBufferBytes) until the endpoint
	// returns, so memory grows with concurrency times response size.
	Timeout time.Duration
	// Streaming opts a route with a Timeout out of buffering, for uploads
	// and large downloads: the endpoint writes straight to the client and
	// the deadline is only its context's, so a 504 or fallback is
	// possible only if it returns before writing anything.
	Streaming bool
	// MaxConcurrent, when positive, is the route's bulkhead: requests
	// beyond that many in progress get 503 (or the fallback) at once.
	MaxConcurrent int
	// Breaker, when not nil, puts a circuit breaker on the route
	// (protect.Breaker, named "route_<Name>"); endpoint errors of status
	// 500 and above, 5xx responses, timeouts and panics count as
	// failures; client errors and requests the client gave up on count as
	// successes. Bulkhead, rate-limit and shedding refusals do not reach
	// it. Its IsFailure is not used.
	Breaker *protect.BreakerConfig
	// Fallback, when not nil, answers instead of an error on timeout,
	// bulkhead refusal, open circuit or an endpoint error of status 500 or
	// above, as long as nothing has been written yet.
	Fallback FallbackFunc
	// MaxBodyBytes bounds the request body; a larger one gets 413. Zero
	// means Config.MaxBodyBytes; negative means no limit.
	MaxBodyBytes int64
	// Inbound filters run after the policy check and the gateway's.
	Inbound []InboundFilter
	// Outbound filters run after the gateway's.
	Outbound []OutboundFilter
}

// Validate reports the first problem with o.
func (o RouteOptions) Validate() error {
	if o.Name == "" || len(o.Name) > 64 {
		return fmt.Errorf("gateway: route name %q: want 1 to 64 characters", o.Name)
	}
	for i := 0; i < len(o.Name); i++ {
		c := o.Name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("gateway: route name %q: only letters, digits and '_' are allowed", o.Name)
		}
	}
	switch {
	case !o.Priority.valid():
		return fmt.Errorf("gateway: route %s: unknown priority %d", o.Name, o.Priority)
	case o.Timeout < 0:
		return fmt.Errorf("gateway: route %s: timeout %v is negative", o.Name, o.Timeout)
	case o.MaxConcurrent < 0:
		return fmt.Errorf("gateway: route %s: max concurrent %d is negative", o.Name, o.MaxConcurrent)
	}
	if o.Breaker != nil {
		if err := o.Breaker.Validate(); err != nil {
			return fmt.Errorf("gateway: route %s: %w", o.Name, err)
		}
	}
	for i, f := range o.Inbound {
		if f == nil {
			return fmt.Errorf("gateway: route %s: inbound filter %d is nil", o.Name, i)
		}
	}
	for i, f := range o.Outbound {
		if f == nil {
			return fmt.Errorf("gateway: route %s: outbound filter %d is nil", o.Name, i)
		}
	}
	return nil
}
