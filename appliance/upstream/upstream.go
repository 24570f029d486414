// Package upstream fetches objects for the appliance's cache on a miss:
// from site peers first ("tier fill"), then the origin, with connect,
// header and idle-read timeouts, failover before the body starts, and a
// body that reports a truncated or over-long transfer as an error so that
// it is never cached.
//
// Every fetch uses the fill URL form /f/{title}/{path} and carries the
// appliance's current fill pass (auth.SignFillPass, signed by the control
// plane for an hour) as "Authorization: Bearer fcp...": peers and an
// origin with keys check it with their public keys, as they check
// players' tokens; an origin without keys serves fills openly. An
// appliance cannot mint tokens, so it never signs what it fetches. All upstreams but the last
// are asked with "Cache-Control: only-if-cached" (RFC 9111 §5.2.1.7): a
// peer answers from its own cache or 504, and never fills from its own
// upstreams on a peer's behalf, so tier fills cannot loop. Without a
// pass the peers, which would refuse, are skipped.
package upstream

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/cache"
)

// Config configures a Client. Zero values mean the defaults named.
type Config struct {
	// URLs are the upstream base URLs in the order to try them: site peers,
	// then the origin last. Required.
	URLs []string
	// ConnectTimeout bounds a TCP connect. Zero means 2 s.
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for response headers. Zero means 10 s.
	HeaderTimeout time.Duration
	// IdleTimeout aborts a body that makes no progress for this long. Zero
	// means 10 s.
	IdleTimeout time.Duration
	// PeerBackoff is how long a peer that failed to answer is skipped.
	// Zero means 10 s.
	PeerBackoff time.Duration
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if len(c.URLs) == 0 {
		return fillcast.ConfigErrorf("upstream", "URLs", "required: the upstream base URLs, site peers first and the origin last")
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fillcast.ConfigErrorf("upstream", "URLs", "%q is not an http(s) URL", u)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ConnectTimeout", c.ConnectTimeout}, {"HeaderTimeout", c.HeaderTimeout}, {"IdleTimeout", c.IdleTimeout},
		{"PeerBackoff", c.PeerBackoff},
	} {
		if d.v < 0 {
			return fillcast.ConfigErrorf("upstream", d.name, "%v is negative", d.v)
		}
	}
	return nil
}

// DefaultConfig returns a Config with every default filled in but the
// URLs.
func DefaultConfig() Config {
	return Config{
		ConnectTimeout: 2 * time.Second, HeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second,
		PeerBackoff: 10 * time.Second,
	}
}

// withDefaults fills the zero fields; c has passed Validate.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, d.ConnectTimeout)
	c.HeaderTimeout = cmp.Or(c.HeaderTimeout, d.HeaderTimeout)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, d.IdleTimeout)
	c.PeerBackoff = cmp.Or(c.PeerBackoff, d.PeerBackoff)
	return c
}

// Deps are what a Client works with besides its Config.
type Deps struct {
	// Pass returns the Authorization header value of the appliance's
	// current fill pass ("Bearer fcp..."), sent to every upstream, or ""
	// while it has none: the peers (they refuse fills without one) are
	// then skipped and the origin is asked without one, which an origin
	// without keys allows. Nil means never one.
	Pass func() string
	// Log receives failed fetches; nil discards them.
	Log *slog.Logger
	// TLS, if set, is the client TLS configuration of https upstreams:
	// the CA they are checked against and the certificate presented.
	// Nil means the system's roots and no certificate.
	TLS *tls.Config
	// Transport, if set, replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// Now returns the time peer back-offs are judged by; nil means
	// time.Now.
	Now func() time.Time
}

// Client fetches from the upstream list. It implements cache.Source.
type Client struct {
	cfg   Config
	d     Deps
	hc    *http.Client
	log   *slog.Logger
	ups   []*target
	owned *http.Transport
}

var _ cache.Source = (*Client)(nil)

// target is one upstream with its counters.
type target struct {
	base      string
	fetches   atomic.Int64
	errors    atomic.Int64
	downUntil atomic.Int64 // unix nanos; peers only
}

// Stat is one upstream's counters.
type Stat struct {
	URL             string
	Fetches, Errors int64
}

// New returns a Client.
func New(cfg Config, d Deps) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	cfg = cfg.withDefaults()
	if d.Pass == nil {
		d.Pass = func() string { return "" }
	}
	c := &Client{cfg: cfg, d: d, log: d.Log}
	rt := d.Transport
	if rt == nil {
		c.owned = &http.Transport{
			DialContext:           (&net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
			ResponseHeaderTimeout: cfg.HeaderTimeout,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true,
			TLSClientConfig:       d.TLS,
		}
		rt = c.owned
	}
	c.hc = &http.Client{
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	for _, u := range cfg.URLs {
		c.ups = append(c.ups, &target{base: strings.TrimSuffix(u, "/")})
	}
	return c, nil
}

// Close drops idle connections.
func (c *Client) Close() {
	if c.owned != nil {
		c.owned.CloseIdleConnections()
	}
}

// Stats returns each upstream's counters, in order.
func (c *Client) Stats() []Stat {
	out := make([]Stat, len(c.ups))
	for i, t := range c.ups {
		out[i] = Stat{URL: t.base, Fetches: t.fetches.Load(), Errors: t.errors.Load()}
	}
	return out
}

// errNotCached is a peer's 504 to only-if-cached.
var errNotCached = errors.New("upstream: peer does not hold the object")

// Fetch implements cache.Source. key is "{title}/{path}".
func (c *Client) Fetch(ctx context.Context, key string) (*cache.Fetched, error) {
	title, _, ok := strings.Cut(key, "/")
	if !ok {
		return nil, fmt.Errorf("upstream: bad key %q", key)
	}
	if title == "" {
		return nil, fmt.Errorf("upstream: bad key %q", key)
	}
	now := c.d.Now()
	path := "/f/" + key
	var errs []error
	authz := c.d.Pass()
	for i, t := range c.ups {
		last := i == len(c.ups)-1
		if !last && (authz == "" || t.downUntil.Load() > now.UnixNano()) {
			continue
		}
		f, err := c.fetchOne(ctx, t, path, authz, !last)
		if err == nil {
			return f, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, cache.ErrNotFound) && last {
			return nil, err
		}
		if !errors.Is(err, errNotCached) && !errors.Is(err, cache.ErrNotFound) {
			t.errors.Add(1)
			if !last {
				t.downUntil.Store(now.Add(c.cfg.PeerBackoff).UnixNano())
			}
			c.log.Warn("upstream: fetch failed", "upstream", t.base, "key", key, "err", err)
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("upstream: no upstream could serve %s: %w", key, errors.Join(errs...))
}

func (c *Client) fetchOne(ctx context.Context, t *target, path, authz string, peer bool) (*cache.Fetched, error) {
	t.fetches.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+path, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("upstream: %w", err)
	}
	if peer {
		req.Header.Set("Cache-Control", "only-if-cached")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("upstream: %s: %w", t.base, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("%w: %s answered 404", cache.ErrNotFound, t.base)
	case peer && resp.StatusCode == http.StatusGatewayTimeout:
		resp.Body.Close()
		cancel()
		return nil, errNotCached
	default:
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("upstream: %s answered %s", t.base, resp.Status)
	}
	h := resp.Header
	meta := cache.Meta{
		Size:         resp.ContentLength,
		ContentType:  h.Get("Content-Type"),
		ETag:         h.Get("ETag"),
		LastModified: h.Get("Last-Modified"),
		CacheControl: h.Get("Cache-Control"),
	}
	if strings.HasPrefix(meta.ETag, "W/") {
		meta.ETag = "" // weak validators do not guarantee identical bytes
	}
	return &cache.Fetched{Meta: meta, Body: newBody(resp.Body, resp.ContentLength, c.cfg.IdleTimeout, cancel)}, nil
}

// body enforces the declared length and an idle timeout on an upstream
// response body.
type body struct {
	rc      io.ReadCloser
	remain  int64 // -1: unknown
	timer   *time.Timer
	idle    time.Duration
	cancel  context.CancelFunc
	stalled atomic.Bool
	once    sync.Once
}

func newBody(rc io.ReadCloser, size int64, idle time.Duration, cancel context.CancelFunc) *body {
	b := &body{rc: rc, remain: size, idle: idle, cancel: cancel}
	b.timer = time.AfterFunc(idle, func() {
		b.stalled.Store(true)
		cancel()
	})
	return b
}

func (b *body) Read(p []byte) (int, error) {
	if b.remain == 0 {
		// Only EOF may follow a complete body.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errors.New("upstream: body longer than Content-Length")
		}
		if err == nil || errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		return 0, b.wrap(err)
	}
	if b.remain > 0 && int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
		if b.remain > 0 {
			b.remain -= int64(n)
		}
	}
	if errors.Is(err, io.EOF) && b.remain > 0 {
		return n, fmt.Errorf("upstream: body truncated, %d bytes missing: %w", b.remain, io.ErrUnexpectedEOF)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return n, b.wrap(err)
	}
	return n, err
}

func (b *body) wrap(err error) error {
	if b.stalled.Load() {
		return fmt.Errorf("upstream: body stalled for %s: %w", b.idle, err)
	}
	return fmt.Errorf("upstream: read body: %w", err)
}

func (b *body) Close() error {
	b.once.Do(func() {
		b.timer.Stop()
		b.cancel()
	})
	return b.rc.Close()
}
