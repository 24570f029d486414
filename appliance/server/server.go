// Package server is the appliance's HTTP front: it serves
// GET|HEAD /c/{token}/{title}/{path...} to players, with signed-token
// checks, and GET|HEAD /f/{title}/{path...} to site peers filling their
// caches, with appliance-credential checks (Authorization: Bearer fca...),
// both from the cache with byte ranges, conditional requests and CORS,
// plus /healthz, /metrics, and /v1/status and /admin/purge for the admin
// token. A path segment starting with '.' is never served. A player's
// token may carry limits (auth.Limits): the files they do not allow are
// refused, and the master playlist and MPD are served without the
// renditions above the token's height (package manifestfilter), judged by
// the catalog's renditions (SetRenditions). The master playlist and MPD
// served to players advertise the control plane's Content Steering
// manifest (Config.SteeringURL). Fill passes are never restricted and get
// the files as they are. The request logic is written once against fasthttp; HTTP/3
// adapts to it.
package server

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/byterange"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/appliance/latency"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/manifestfilter"
	"github.com/fillcast/fillcast/steering/contentsteering"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Cache is what the server needs of the cache.
type Cache interface {
	Get(ctx context.Context, key string) (cache.Hit, error)
	Lookup(key string) (cache.Hit, bool)
	Purge(prefix string) int
}

// Config configures a Server. Zero values mean the defaults named.
type Config struct {
	// MaxURILen bounds the request URI; longer ones get 414. Zero means
	// 2048; otherwise at least 64.
	MaxURILen int
	// WriteTimeout is the base time a response may take to write. Zero
	// means 10 s.
	WriteTimeout time.Duration
	// MinClientRate is the slowest a client may read, in bytes per second:
	// a response of n bytes gets WriteTimeout + n/MinClientRate before the
	// connection is cut. Zero means 32 KiB/s (256 kbit/s).
	MinClientRate int64
	// AltSvc, when set, is sent as the Alt-Svc header (HTTP/3).
	AltSvc string
	// Tokens configures the checks of player tokens and peer credentials:
	// the longest token lifetime accepted (zero: 24 h) and the size of
	// the cache of verified ones (zero: 65536).
	Tokens auth.VerifierConfig
	// VariantBytes bounds the cache of master playlists and MPDs made for
	// players: filtered for tokens with a maximum height, steered with
	// SteeringURL. Zero means 32 MiB.
	VariantBytes int64
	// SteeringURL, when set, is the public URL of the control plane
	// (contentsteering.ValidateBaseURL): the master playlists and MPDs
	// served to players (/c/) advertise the title's Content Steering
	// manifest there (manifestfilter.SteerMaster, SteerMPD), each made
	// once per version and limit; site peers (/f/) get them as they are.
	// Empty advertises none.
	SteeringURL string
	// TLS says that every request arrives over TLS (HTTPS or HTTP/3), so
	// the absolute URLs written into manifests (an MPD's BaseURL) start
	// https:// even where the connection does not tell (HTTP/3 requests
	// reach Handle through an adapter).
	TLS bool
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{MaxURILen: 2048, WriteTimeout: 10 * time.Second, MinClientRate: 32 << 10, Tokens: auth.DefaultVerifierConfig(),
		VariantBytes: manifestfilter.DefaultCacheBytes}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.MaxURILen != 0 && c.MaxURILen < 64:
		return fillcast.ConfigErrorf("server", "MaxURILen", "%d: want at least 64 (0 means 2048)", c.MaxURILen)
	case c.WriteTimeout < 0:
		return fillcast.ConfigErrorf("server", "WriteTimeout", "%v is negative", c.WriteTimeout)
	case c.MinClientRate < 0:
		return fillcast.ConfigErrorf("server", "MinClientRate", "%d is negative", c.MinClientRate)
	case c.VariantBytes < 0:
		return fillcast.ConfigErrorf("server", "VariantBytes", "%d is negative", c.VariantBytes)
	}
	if c.SteeringURL != "" {
		if err := contentsteering.ValidateBaseURL(c.SteeringURL); err != nil {
			return fillcast.ConfigErrorf("server", "SteeringURL", "%v", err)
		}
	}
	if err := c.Tokens.Validate(); err != nil {
		return fillcast.InField("Tokens", err)
	}
	return nil
}

// withDefaults fills the zero fields; c has passed Validate.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.MaxURILen = cmp.Or(c.MaxURILen, d.MaxURILen)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, d.WriteTimeout)
	c.MinClientRate = cmp.Or(c.MinClientRate, d.MinClientRate)
	c.VariantBytes = cmp.Or(c.VariantBytes, d.VariantBytes)
	return c
}

// Deps are what a Server works with besides its Config.
type Deps struct {
	// Cache serves the content. Required.
	Cache Cache
	// Keys verify player tokens and peers' credentials: public keys are
	// enough. Required; SetKeys replaces them.
	Keys *auth.Keys
	// AdminToken authorises /admin/ calls and /v1/status; empty disables
	// them.
	AdminToken string
	// Log receives the reasons of refusals, at debug level; nil discards
	// them.
	Log *slog.Logger
	// Status returns the body of /v1/status; nil serves {}.
	Status func() any
	// Gatherer is exposed at /metrics; nil exposes only the server's own.
	Gatherer prometheus.Gatherer
	// Now returns the time; nil means time.Now.
	Now func() time.Time
	// Usage, when set, records every content response with the player's
	// CMCD (record.go); nil records nothing.
	Usage Recorder
	// AccessLog, when set, takes a line for every content response, with
	// the request's W3C trace id (observe.go); nil writes none.
	AccessLog AccessLog
}

// Server handles appliance requests.
type Server struct {
	cfg     Config
	d       Deps // its Keys are the first: verifier holds those in force
	cache   Cache
	metrics *metrics
	usage   usage
	// latency and failed count every content answer for the heartbeats'
	// p99 and error ratio (observe.go).
	latency latency.Histogram
	failed  atomic.Uint64
	// wallClock says that Deps.Now is time.Now, so that answers are timed
	// with the clock readings fasthttp takes anyway (observe.go).
	wallClock bool
	admin     fasthttp.RequestHandler
	verify    *auth.Verifier
	// renditions is the catalog's table that restricted tokens are judged
	// by; nil until the first fill manifest.
	renditions atomic.Pointer[Renditions]
	variants   *manifestfilter.Cache // manifests made for players: filtered, steered
	// takedowns are the titles whose earlier tokens are refused
	// (takedown.go); nil refuses none.
	takedowns atomic.Pointer[auth.Takedowns]
}

// New returns a Server over d.Cache.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Cache == nil || d.Keys == nil {
		return nil, errors.New("server: Deps.Cache and Deps.Keys are required")
	}
	wallClock := d.Now == nil
	if wallClock {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg.withDefaults(), d: d, cache: d.Cache, metrics: newMetrics(), wallClock: wallClock}
	s.variants = manifestfilter.NewCache(s.cfg.VariantBytes)
	var err error
	if s.verify, err = auth.NewVerifier(s.cfg.Tokens, d.Keys); err != nil {
		return nil, err
	}
	s.admin = s.adminHandler()
	return s, nil
}

// SetKeys replaces the keys tokens and credentials are verified with, for
// example when the control plane's replicated keys change; what the old
// keys verified is forgotten.
func (s *Server) SetKeys(k *auth.Keys) { s.verify.SetKeys(k) }

// Collector returns the server's own Prometheus metrics.
func (s *Server) Collector() prometheus.Collector { return serverCollector{s} }

// Header values set on every content response.
var (
	hdrAcceptRanges = []byte("Accept-Ranges")
	hdrBytes        = []byte("bytes")
	hdrACAO         = []byte("Access-Control-Allow-Origin")
	hdrStar         = []byte("*")
	hdrACEH         = []byte("Access-Control-Expose-Headers")
	hdrExposed      = []byte("Content-Length, Content-Range, ETag")
	hdrETag         = []byte("ETag")
	hdrCacheControl = []byte("Cache-Control")
	hdrLastModified = []byte("Last-Modified")
	hdrXCache       = []byte("X-Cache")
	hdrAltSvc       = []byte("Alt-Svc")
	tierNames       = [...][]byte{[]byte("HIT-memory"), []byte("HIT-disk"), []byte("MISS")}
)

// Handle is the fasthttp request handler.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	path := ctx.URI().PathOriginal()
	if len(path) >= 3 && path[0] == '/' && path[2] == '/' && (path[1] == 'c' || path[1] == 'f') {
		start := s.started(ctx)
		s.serveContent(ctx, path)
		s.observe(ctx, path, start, s.since(start))
		s.record(ctx, path)
		return
	}
	s.admin(ctx)
}

// b2s views b as a string without copying; the string must not outlive b.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// parseContentPath splits "/c/{token}/{title}/{object}" or
// "/f/{title}/{object}" (no query; token is then empty). key is
// "{title}/{object}", a view into path. An object with a segment starting
// with '.' is errHidden.
func parseContentPath(path []byte) (token, title, object, key string, err error) {
	key = b2s(path[3:])
	if path[1] == 'c' {
		i := strings.IndexByte(key, '/')
		if i <= 0 {
			return "", "", "", "", errBadPath
		}
		token, key = key[:i], key[i+1:]
	}
	j := strings.IndexByte(key, '/')
	if j <= 0 {
		return "", "", "", "", errBadPath
	}
	title, object = key[:j], key[j+1:]
	if fillcast.ValidateTitleID(title) != nil || fillcast.ValidateObjectPath(object) != nil {
		return "", "", "", "", errBadPath
	}
	if object[0] == '.' || strings.Contains(object, "/.") {
		return "", "", "", "", errHidden
	}
	return token, title, object, key, nil
}

var (
	errBadPath = errors.New("server: bad content path: want /c/{token}/{title}/{path} or /f/{title}/{path}")
	// errHidden is a dot-file: the origin's in-flight uploads are named
	// so, and nothing under a dot is content.
	errHidden = errors.New("server: not found")
)

func (s *Server) serveContent(ctx *fasthttp.RequestCtx, path []byte) {
	m := ctx.Method()
	isHead := string(m) == fasthttp.MethodHead
	switch {
	case string(m) == fasthttp.MethodGet || isHead:
	case string(m) == fasthttp.MethodOptions:
		s.preflight(ctx)
		return
	default:
		ctx.Response.Header.Set("Allow", "GET, HEAD, OPTIONS")
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if len(ctx.RequestURI()) > s.cfg.MaxURILen {
		s.fail(ctx, fasthttp.StatusRequestURITooLong, "request URI too long")
		return
	}
	token, title, object, key, err := parseContentPath(path)
	switch {
	case errors.Is(err, errHidden):
		s.fail(ctx, fasthttp.StatusNotFound, "not found")
		return
	case err != nil:
		s.fail(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	limits, ok := s.authorised(ctx, path[1] == 'f', token, title)
	if !ok || !s.allowed(ctx, limits, title, object) {
		return
	}

	var hit cache.Hit
	if onlyIfCached(ctx.Request.Header.Peek("Cache-Control")) {
		var ok bool
		if hit, ok = s.cache.Lookup(key); !ok {
			s.fail(ctx, fasthttp.StatusGatewayTimeout, "not cached")
			return
		}
	} else if hit, err = s.cache.Get(ctx, key); err != nil {
		switch {
		case errors.Is(err, cache.ErrNotFound):
			s.fail(ctx, fasthttp.StatusNotFound, "not found")
		case errors.Is(err, cache.ErrClosed), errors.Is(err, context.Canceled):
			s.fail(ctx, fasthttp.StatusServiceUnavailable, "shutting down")
		default:
			s.fail(ctx, fasthttp.StatusBadGateway, "upstream failed")
		}
		return
	}
	if manifestfilter.Applies(object) && (limits.MaxHeight > 0 || token != "" && s.cfg.SteeringURL != "") {
		s.usage.add(title, s.respondVariant(ctx, &hit, limits.MaxHeight, token, title, object, key, isHead))
		return
	}
	s.usage.add(title, s.respond(ctx, &hit, title, object, isHead))
}

// respond writes the headers and body for hit, honouring conditionals and
// ranges, and returns the body bytes it sends.
func (s *Server) respond(ctx *fasthttp.RequestCtx, hit *cache.Hit, title, object string, isHead bool) int64 {
	meta := hit.Meta
	rh := &ctx.Response.Header
	rh.SetContentType(fillcast.ContentType(object))
	rh.SetCanonical(hdrAcceptRanges, hdrBytes)
	rh.SetCanonical(hdrACAO, hdrStar)
	rh.SetCanonical(hdrACEH, hdrExposed)
	rh.SetCanonical(hdrXCache, tierNames[hit.Tier])
	if meta.ETag != "" {
		rh.SetBytesKV(hdrETag, s2b(meta.ETag))
	}
	if meta.CacheControl != "" {
		rh.SetBytesKV(hdrCacheControl, s2b(meta.CacheControl))
	}
	if meta.LastModified != "" {
		rh.SetBytesKV(hdrLastModified, s2b(meta.LastModified))
	}
	if s.cfg.AltSvc != "" {
		rh.SetBytesKV(hdrAltSvc, s2b(s.cfg.AltSvc))
	}
	if d := fillcast.Disposition(title, object); d != "" {
		rh.Set("Content-Disposition", d)
	}
	req := &ctx.Request.Header
	if notModified(req.Peek("If-None-Match"), req.Peek("If-Modified-Since"), meta) {
		hit.Release()
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		s.metrics.observe(fasthttp.StatusNotModified, hit.Tier, 0)
		return 0
	}

	size := meta.Size
	start, length := int64(0), size
	status := fasthttp.StatusOK
	if size >= 0 && ifRangeMatches(req.Peek("If-Range"), meta) {
		r, ok, err := byterange.Parse(req.Peek("Range"), size)
		switch {
		case err != nil:
			hit.Release()
			rh.Set("Content-Range", "bytes */"+itoa(size))
			s.fail(ctx, fasthttp.StatusRequestedRangeNotSatisfiable, "range not satisfiable")
			return 0
		case ok:
			start, length, status = r.Start, r.Length, fasthttp.StatusPartialContent
			rh.SetContentRange(int(r.Start), int(r.End()), int(size))
		}
	}
	ctx.SetStatusCode(status)
	s.metrics.observe(status, hit.Tier, sent(isHead, max(length, 0)))

	if hit.Body != nil {
		ctx.Response.SetBodyRaw(hit.Body[start : start+length])
		return sent(isHead, length)
	}
	if isHead {
		hit.Release()
		rh.SetContentLength(int(length))
		ctx.Response.SkipBody = true
		return 0
	}
	body, err := hit.Stream(ctx, start, length)
	if err != nil {
		hit.Release()
		s.fail(ctx, fasthttp.StatusInternalServerError, "cannot read object")
		return 0
	}
	if fr, ok := body.(*cache.FileRange); ok {
		if tc, plain := ctx.Conn().(*net.TCPConn); plain {
			// Headers go out first so the body can be sent with sendfile
			// straight to the socket.
			fr.Conn = tc
			fr.Cork()
			ctx.Response.ImmediateHeaderFlush = true
		} else if tb := newTLSBody(ctx.Conn(), fr); tb != nil {
			body = tb // full TLS records (stream.go)
		}
	}
	if length > 0 {
		ctx.SetWriteDeadline(s.d.Now().Add(s.cfg.WriteTimeout + time.Duration(length/s.cfg.MinClientRate)*time.Second))
	}
	ctx.Response.SetBodyStream(body, int(length))
	return max(length, 0)
}

func sent(isHead bool, length int64) int64 {
	if isHead {
		return 0
	}
	return length
}

func (s *Server) preflight(ctx *fasthttp.RequestCtx) {
	rh := &ctx.Response.Header
	rh.SetCanonical(hdrACAO, hdrStar)
	rh.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	rh.Set("Access-Control-Allow-Headers", "Range, If-None-Match, If-Modified-Since, If-Range")
	rh.Set("Access-Control-Max-Age", "86400")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	s.metrics.observe(fasthttp.StatusNoContent, cache.TierMemory, 0)
}

// fail answers with a short plain-text error.
func (s *Server) fail(ctx *fasthttp.RequestCtx, code int, msg string) {
	ctx.Response.Header.SetCanonical(hdrACAO, hdrStar)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(code)
	ctx.SetBodyString(msg + "\n")
	s.metrics.observe(code, cache.TierMemory, 0)
}

func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
