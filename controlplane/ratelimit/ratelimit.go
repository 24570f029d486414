// Package ratelimit limits how many API requests each principal may make:
// a token bucket per principal, per class of principal and per runtime
// rule, changeable while the node runs.
//
// Every principal falls in a Class (ClassOf): a signed-in viewer is
// counted by account, an operator by API key, an appliance by its id, an
// anonymous client by its address (an IPv6 client by its /64, the block
// one subscriber usually holds), and control-plane nodes are never
// limited. Each class has a default Limit (Config.Classes, changed at run
// time with Limiter.SetClass). On top of it, operators write "limit"
// rules into the replicated state; every node hands the current set to
// Limiter.SetRules, and a Rule adds its own bucket per principal for one
// route, one class, or both. A request passes only if every bucket that
// applies to it has a token; a refused request takes nothing from any of
// them, and is told when to try again.
//
// A bucket is a golang.org/x/time/rate Limiter, one per key, asked with
// an explicit time (AllowN, TokensAt) and never waited on. Buckets live
// in Tables: bounded maps from key to limiter, sharded by key hash so
// that the gateway's many goroutines rarely wait on one another, with
// idle (full) limiters swept when a table is full; an unlimited or
// blocked limit keeps none. A request that several limits apply to
// checks every one before taking from any, holding their shards
// together, so that a refused request takes nothing. A Table is also
// usable on its own, for limits that take several tokens at once (events
// per account) and give them back when the work is not done (a
// rate.Reservation cancelled).
//
// Counting is per node: behind a load balancer that spreads a principal
// over n nodes, it may make up to n times its limit. Nothing here starts
// a goroutine or does I/O; the caller passes the time, which keeps tests
// deterministic.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

// Class is a kind of principal that has its own default limit and is
// counted by its own key.
type Class string

// The classes of principal.
const (
	// ClassViewer is a signed-in viewer, counted by account: every
	// profile and device of an account shares its buckets.
	ClassViewer Class = "viewer"
	// ClassAPIKey is an operator, counted by API key id ("bootstrap" for
	// the admin key of the command line).
	ClassAPIKey Class = "apikey"
	// ClassAppliance is an appliance, counted by appliance id.
	ClassAppliance Class = "appliance"
	// ClassAnonymous is a caller without credential, counted by client
	// address: an IPv4 address, or an IPv6 /64.
	ClassAnonymous Class = "anonymous"
	// ClassNode is a control-plane node. Nodes are never limited: they
	// forward writes and heartbeats for everyone else.
	ClassNode Class = "node"
)

// classes are the limited classes, in the order of their index.
var classes = [...]Class{ClassViewer, ClassAPIKey, ClassAppliance, ClassAnonymous}

// numClasses is how many classes are limited.
const numClasses = len(classes)

// anonymousIdx is the index of ClassAnonymous.
const anonymousIdx = 3

// classIndex returns c's index in classes, false for ClassNode and
// unknown classes.
func classIndex(c Class) (int, bool) {
	for i, k := range classes {
		if k == c {
			return i, true
		}
	}
	return 0, false
}

// ClassOf returns the class p is limited as. A principal of an unknown
// kind is treated as anonymous, the most restricted class.
func ClassOf(p auth.Principal) Class {
	switch p.Kind {
	case auth.Viewer:
		return ClassViewer
	case auth.Operator:
		return ClassAPIKey
	case auth.Appliance:
		return ClassAppliance
	case auth.Node:
		return ClassNode
	}
	return ClassAnonymous
}

// Bounds of a Limit, which keep the time a bucket takes to refill within
// an int64 of nanoseconds.
const (
	// MinPerSecond is the slowest limited rate: one request an hour.
	MinPerSecond = 1.0 / 3600
	// MaxPerSecond is the fastest limited rate; a negative PerSecond is
	// unlimited.
	MaxPerSecond = 1e9
	// MaxBurst is the largest burst.
	MaxBurst = 1_000_000
)

// Limit is a token bucket's shape: PerSecond tokens earned a second, up
// to Burst saved. Three shapes are special:
//   - a negative PerSecond is unlimited (Burst is ignored; "off" in the
//     flag form);
//   - the zero Limit (PerSecond 0, Burst 0) blocks: every request is
//     refused, which lets an operator shut a route or a class off with a
//     rule. PerSecond 0 with a positive Burst is invalid, since a bucket
//     that never refills is a block that lets a few through.
//   - otherwise PerSecond is between MinPerSecond and MaxPerSecond and
//     Burst between 1 and MaxBurst.
type Limit struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

// Unlimited reports whether l lets everything through.
func (l Limit) Unlimited() bool { return l.PerSecond < 0 && !math.IsInf(l.PerSecond, -1) }

// Blocked reports whether l refuses everything.
func (l Limit) Blocked() bool { return l == Limit{} }

// String returns l in the flag form: "20/40", or "off" when unlimited.
func (l Limit) String() string {
	if l.Unlimited() {
		return "off"
	}
	return strconv.FormatFloat(l.PerSecond, 'g', -1, 64) + "/" + strconv.Itoa(l.Burst)
}

// Validate reports whether l is one of the shapes Limit describes.
func (l Limit) Validate() error {
	if p := l.problem(); p != "" {
		return fmt.Errorf("ratelimit: limit %s: %s", l, p)
	}
	return nil
}

// problem says what is wrong with l, or "" when nothing is.
func (l Limit) problem() string {
	r := l.PerSecond
	switch {
	case math.IsNaN(r) || math.IsInf(r, 0):
		return "per_second must be a finite number (negative for unlimited)"
	case r < 0 || l.Blocked():
		return ""
	case r == 0:
		return "per_second 0 blocks, and then burst must be 0 too"
	case r < MinPerSecond || r > MaxPerSecond:
		return fmt.Sprintf("per_second %g: want between %g (one an hour) and %g, 0 to block, or negative for unlimited", r, MinPerSecond, float64(MaxPerSecond))
	case l.Burst < 1 || l.Burst > MaxBurst:
		return fmt.Sprintf("burst %d: want between 1 and %d", l.Burst, MaxBurst)
	}
	return ""
}

// DefaultMaxKeys is the number of buckets a table keeps when
// Config.MaxKeys is zero.
const DefaultMaxKeys = 100_000

// Config is the start-up configuration of a Limiter.
type Config struct {
	// Classes are the per-principal request limits by class. A class
	// missing from the map has its default: viewer 20/s burst 40, apikey
	// 100/s burst 200, appliance 20/s burst 40, anonymous 10/s burst 30.
	// ClassNode may not appear: nodes are never limited.
	Classes map[Class]Limit
	// MaxKeys is how many buckets each table (each class, each rule)
	// keeps at most; when full, idle buckets are swept and, if too few
	// were idle, arbitrary ones forgotten. Zero means DefaultMaxKeys.
	MaxKeys int
}

// defaultLimits returns the default limit of every limited class.
func defaultLimits() map[Class]Limit {
	return map[Class]Limit{
		ClassViewer:    {PerSecond: 20, Burst: 40},
		ClassAPIKey:    {PerSecond: 100, Burst: 200},
		ClassAppliance: {PerSecond: 20, Burst: 40},
		ClassAnonymous: {PerSecond: 10, Burst: 30},
	}
}

// DefaultConfig returns the defaults, every class spelled out.
func DefaultConfig() Config {
	return Config{Classes: defaultLimits(), MaxKeys: DefaultMaxKeys}
}

// Validate checks c, naming the first wrong field.
func (c Config) Validate() error {
	for _, k := range sortedClasses(c.Classes) {
		if _, ok := classIndex(k); !ok {
			return fillcast.ConfigErrorf("ratelimit", "Classes", "class %q: want viewer, apikey, appliance or anonymous (nodes are never limited)", k)
		}
		if p := c.Classes[k].problem(); p != "" {
			return fillcast.ConfigErrorf("ratelimit", "Classes."+string(k), "%s", p)
		}
	}
	if c.MaxKeys < 0 {
		return fillcast.ConfigErrorf("ratelimit", "MaxKeys", "%d: want a positive number of buckets, or 0 for %d", c.MaxKeys, DefaultMaxKeys)
	}
	return nil
}

// sortedClasses returns m's keys, known classes first in their order,
// then the others by name, so that errors and output are stable.
func sortedClasses(m map[Class]Limit) []Class {
	var out, odd []Class
	for _, k := range classes {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	for k := range m {
		if _, ok := classIndex(k); !ok {
			odd = append(odd, k)
		}
	}
	slices.Sort(odd)
	return append(out, odd...)
}

// ParseLimits parses the flag form of per-class limits, comma-separated
// class=per_second/burst items ("viewer=20/40,anonymous=10/30"), or
// class=off for unlimited, over the defaults: the result holds every
// limited class. "0/0" blocks a class. The empty string is the defaults.
func ParseLimits(s string) (map[Class]Limit, error) {
	out := defaultLimits()
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	seen := make(map[Class]bool, numClasses)
	for item := range strings.SplitSeq(s, ",") {
		name, val, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("ratelimit: limits %q: item %q: want class=per_second/burst or class=off", s, item)
		}
		c := Class(strings.TrimSpace(name))
		if _, ok := classIndex(c); !ok {
			return nil, fmt.Errorf("ratelimit: limits %q: class %q: want viewer, apikey, appliance or anonymous (nodes are never limited)", s, c)
		}
		if seen[c] {
			return nil, fmt.Errorf("ratelimit: limits %q: class %s given twice", s, c)
		}
		seen[c] = true
		lim, err := parseLimit(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("ratelimit: limits %q: %s: %w", s, c, err)
		}
		out[c] = lim
	}
	return out, nil
}

// errLimitForm is the complaint about a limit that does not parse.
var errLimitForm = errors.New("want per_second/burst (such as 20/40), 0/0 to block, or off")

// parseLimit parses one limit of the flag form.
func parseLimit(s string) (Limit, error) {
	if s == "off" {
		return Limit{PerSecond: -1}, nil
	}
	r, b, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("%q: %w", s, errLimitForm)
	}
	rate, err := strconv.ParseFloat(r, 64)
	if err != nil || rate < 0 || math.IsNaN(rate) {
		return Limit{}, fmt.Errorf("%q: %w", s, errLimitForm)
	}
	burst, err := strconv.Atoi(b)
	if err != nil {
		return Limit{}, fmt.Errorf("%q: %w", s, errLimitForm)
	}
	lim := Limit{PerSecond: rate, Burst: burst}
	if p := lim.problem(); p != "" {
		return Limit{}, fmt.Errorf("%q: %s", s, p)
	}
	return lim, nil
}

// FormatLimits returns the flag form of the limited classes of m, in the
// order viewer, apikey, appliance, anonymous: what ParseLimits reads back.
func FormatLimits(m map[Class]Limit) string {
	var b strings.Builder
	for _, c := range classes {
		lim, ok := m[c]
		if !ok {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(c) + "=" + lim.String())
	}
	return b.String()
}
