package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/gateway/adaptive"
)

// Priority is a route's criticality: under overload the gateway refuses
// the lowest first, and PriorityCritical never.
//
// Shedding follows a cubic curve, after Zuul's prioritized load shedding
// ("Keeping Netflix Reliable Using Prioritized Load Shedding", Netflix
// Technology Blog, 2020). Utilization u is the node's in-flight requests
// (critical ones aside) over the concurrency limit. As u goes from 50 % to
// 100 %, the priority below which requests are refused rises as the cube
// of the overload x = (u − 0.5) / 0.5, on a scale where telemetry is 0,
// recs 1/3, browse 2/3 and playback 1. A class p is thus refused once
// x³ > p, from u = 0.5 + 0.5·∛p of the limit:
//
//	telemetry  50.0 %   (10 of a limit of 20, 500 of 1000)
//	recs       84.7 %   (16 of 20, 846 of 1000)
//	browse     93.7 %   (18 of 20, 936 of 1000)
//	playback  100.0 %   (20 of 20: only the limit itself)
//	critical   never, and it takes no slot
//
// The cube sheds the least valuable traffic from the first sign of
// pressure, alone over half the range, and keeps the classes above it
// until the node is close to its limit. A class's share is rounded down to
// whole requests.
type Priority int8

// Route priorities, highest first. The zero value is PriorityBrowse.
const (
	// PriorityCritical routes are never shed and do not count against
	// the node's concurrency limit: health checks, heartbeats, the
	// cluster's internal calls. Their latency does not feed the limit
	// either; keep them cheap.
	PriorityCritical Priority = 2
	// PriorityPlayback routes (playback, steering, sessions, account) are
	// shed only when the node is at its limit.
	PriorityPlayback Priority = 1
	// PriorityBrowse routes (catalog, title pages, search) are shed from
	// 93.7 % of the limit.
	PriorityBrowse Priority = 0
	// PriorityRecs routes (recommendations, similar titles, a viewer's
	// history) are shed from 84.7 % of the limit.
	PriorityRecs Priority = -1
	// PriorityTelemetry routes (events, usage reports, operators' event
	// and QoE reads) are shed from half the limit.
	PriorityTelemetry Priority = -2
)

// priorityShares are the fractions of the limit each class may fill,
// lowest class first: 0.5 + 0.5·∛p for p = 0, 1/3, 2/3, 1 (see Priority).
var priorityShares = [...]float64{0.5, 0.8466806, 0.9367902, 1}

// numPriorities counts the classes, for per-class metrics.
const numPriorities = int(PriorityCritical-PriorityTelemetry) + 1

// index maps p to 0 (telemetry) ... 4 (critical).
func (p Priority) index() int { return int(p - PriorityTelemetry) }

// share is the fraction of the concurrency limit requests of p may fill;
// PriorityCritical has none, as it takes no slot.
func (p Priority) share() float64 {
	if p >= PriorityCritical {
		return 0
	}
	return priorityShares[p.index()]
}

// String returns the class's name, as in the priority label of
// fillcast_api_shed_total.
func (p Priority) String() string {
	switch p {
	case PriorityCritical:
		return "critical"
	case PriorityPlayback:
		return "playback"
	case PriorityBrowse:
		return "browse"
	case PriorityRecs:
		return "recs"
	case PriorityTelemetry:
		return "telemetry"
	}
	return fmt.Sprintf("priority(%d)", int8(p))
}

// valid reports whether p is one of the five classes.
func (p Priority) valid() bool { return p >= PriorityTelemetry && p <= PriorityCritical }

// ConcurrencyConfig is the node-wide concurrency limit that requests are
// shed against by Priority. By default the limit is adaptive.
type ConcurrencyConfig struct {
	// Off turns the limit and shedding off: every request is admitted
	// (a benchmark's "protection off"). Zero (false) means on.
	Off bool
	// Fixed, when positive, is a fixed limit instead of the adaptive
	// one. Zero means adaptive.
	Fixed int
	// Adaptive tunes the adaptive limit (Gradient2; see package
	// adaptive). Zero fields mean its defaults: an initial limit of 20,
	// between 8 and 1000.
	Adaptive adaptive.Config
}

// validate reports the first problem with c, as a Config field.
func (c ConcurrencyConfig) validate() error {
	if c.Fixed < 0 {
		return fillcast.ConfigErrorf("gateway", "Concurrency.Fixed", "%d is negative; use 0 for the adaptive limit", c.Fixed)
	}
	if err := c.Adaptive.Validate(); err != nil {
		var ce *fillcast.ConfigError
		if errors.As(err, &ce) {
			return fillcast.ConfigErrorf("gateway", "Concurrency.Adaptive."+ce.Field, "%s", ce.Problem)
		}
		return fmt.Errorf("gateway: concurrency: %w", err)
	}
	return nil
}

// newLimiter returns the node's limiter, or nil when c is Off.
func (c ConcurrencyConfig) newLimiter() (*adaptive.Limiter, error) {
	switch {
	case c.Off:
		return nil, nil
	case c.Fixed > 0:
		return adaptive.NewFixed(c.Fixed)
	}
	return adaptive.New(c.Adaptive)
}

// admit takes a slot of the node's limit for a request of the route, or
// refuses it with 503 and Retry-After when the route's class is over its
// share. Critical routes and a gateway without a limit admit everything.
func (rt *route) admit(rc *RequestContext) error {
	g := rt.g
	if g.limiter == nil || rt.opts.Priority == PriorityCritical {
		return nil
	}
	tok, ok := g.limiter.Acquire(rt.share)
	if !ok {
		rt.m.rejected[reasonShed].Inc()
		g.metrics.shed[rt.opts.Priority.index()].Inc()
		return protectionError(ErrShed, g.cfg.ShedRetryAfter)
	}
	rc.token, rc.admitted = tok, true
	return nil
}

// longRoute is the timeout above which a route's requests are transfers
// whose duration says nothing of the node's load.
const longRoute = 10 * time.Second

// release gives the request's slot back, with its latency d as a sample
// of the node's load when the endpoint ran and did not fail because of the
// client (a 4xx, or the client leaving); a request that timed out is a
// drop. d is the request's time in the gateway, from arrival to the end of
// its response: the time it held its slot, which is what the limit bounds
// (Little's law), and for a route without slow filters the endpoint's
// duration. Requests refused before the endpoint (bulkhead, open circuit,
// rate limit, policy) give their slot back without a sample, and so do
// those of routes allowed more than longRoute (uploads, large downloads):
// their time is the client's transfer, not the node's load. now is when
// the request finished.
func (g *Gateway) release(rc *RequestContext, d time.Duration, now time.Time) {
	if !rc.admitted {
		return
	}
	rc.admitted = false
	st := rc.rw.status
	if !rc.ran || st >= 400 && st < 500 || rc.route.opts.Timeout > longRoute {
		g.limiter.Release(rc.token)
		return
	}
	g.limiter.Done(rc.token, now, d, rc.err != nil && errors.Is(rc.err, ErrTimeout))
}
