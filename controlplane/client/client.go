// Package client is the one way Go programs talk to the control plane's
// HTTP API: the appliance's heartbeat agent and fill executor, the demo,
// the benches and the tools. It sends the shared wire types of package
// fillcast (and auth.KeyList) so that no caller declares a body again,
// and it turns every non-2xx answer into an *Error that carries the
// status and the server's message.
//
// A Client starts from a few node URLs (one is enough) and learns the
// rest of the cluster from GET /v1/cluster, so an appliance given only
// node 1's URL keeps its heartbeats and manifests flowing after node 1
// dies, through nodes 2 and 3. The members it learns live in memory only:
// a process that starts while the only node it was given is down finds
// no other, so give it two or more URLs, or a DNS name of every node.
//
// The retry rule: each call goes first to the node that answered last,
// then to the next known node, and so on, each known node at most once.
// A node that fails is not asked first again: the next call starts at the
// node after it. A node fails when it cannot be reached (connection
// refused, Config.DialTimeout passed), when the attempt's time limit
// passes (Config.Timeout; Config.HeartbeatTimeout for a heartbeat), when
// its answer is cut short, or when it answers 502, 503 or 504, the
// statuses of a node that cannot serve now (no leader, overloaded, a
// proxy in front that lost it). Every other answer, 4xx and 500
// included, is the cluster's answer and is returned as it is: another
// node would say the same. Whether a failed call goes on to the next node
// depends on what it sends:
//
//   - Reads (GET, HEAD) and heartbeats go on after every failure. A
//     heartbeat is soft state: when a node took one but died before
//     answering, the next node takes it again and its title bytes count
//     twice, as they did before this client.
//   - Other writes (POST, PUT, DELETE and the rest) go on only when the
//     node surely did not take the request: the connection could not be
//     made, or it answered 502 or 503. After a time limit, a cut-short
//     answer or a 504, the write may have been applied, so the call
//     returns that node's error rather than apply it a second time
//     elsewhere; the caller, who knows what the write means, decides
//     whether to send it again. A write that must not apply twice says
//     what it expects (create if absent, compare and set by version).
//
// When every known node was asked and failed, the error wraps
// ErrUnavailable and each node's error. When the caller's ctx ends, the
// call returns ctx's error, and a node it was waiting for counts as
// failed, so that the next call does not wait on it first.
//
// Bodies are bounded: 64 MiB for Manifest (a storage appliance's manifest
// lists the whole catalog), 1 MiB for every other answer, and at most
// 4 KiB of an answer that is not 2xx, for its message. An answer over its
// bound is an error that no other node is asked about: the cluster's
// answer is too large, not the node at fault.
//
// Members are learned lazily, inside calls, with no goroutine of its own:
// after a node answers, if Config.RefreshEvery has passed since the last
// refresh or a node failed since then, the Client reads GET /v1/cluster
// from that node (a refresh that fails is tried again after the next
// answer) and from then on knows the seeds and the members' http_url. A
// node is dropped only when a status that gives every member's URL no
// longer lists it; a member listed without its URL yet keeps the nodes
// known. A Client is safe for concurrent use; one is shared by the parts
// of a process, and Close releases its idle connections.
package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

// Config configures a Client.
type Config struct {
	// URLs are control-plane nodes to start from ("http://cp1:7000");
	// one is enough, the others are learned. Required.
	URLs []string
	// Timeout bounds one attempt at one node, the whole answer read.
	// Zero means 10 s.
	Timeout time.Duration
	// HeartbeatTimeout bounds one attempt of a heartbeat, and the member
	// refresh that may follow it. Zero means Timeout. An appliance sets
	// its heartbeat interval: steering drops an appliance whose last
	// heartbeat is a few intervals old, so a beat must not wait on a
	// hung node for longer than one.
	HeartbeatTimeout time.Duration
	// DialTimeout bounds a connect to a node when the Client makes its
	// own HTTP client (Deps.HTTP nil). Zero means 2 s.
	DialTimeout time.Duration
	// RefreshEvery is how often the member list is read again from
	// GET /v1/cluster. Zero means 30 s.
	RefreshEvery time.Duration
}

// DefaultConfig returns a Config with every default filled in but the
// URLs, and HeartbeatTimeout, whose default is Timeout.
func DefaultConfig() Config {
	return Config{Timeout: 10 * time.Second, DialTimeout: 2 * time.Second, RefreshEvery: 30 * time.Second}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if len(c.URLs) == 0 {
		return fillcast.ConfigErrorf("client", "URLs", "required: at least one control-plane URL")
	}
	for _, u := range c.URLs {
		if _, err := normalize(u); err != nil {
			return fillcast.ConfigErrorf("client", "URLs", "%v", err)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"Timeout", c.Timeout}, {"HeartbeatTimeout", c.HeartbeatTimeout},
		{"DialTimeout", c.DialTimeout}, {"RefreshEvery", c.RefreshEvery},
	} {
		if f.v < 0 {
			return fillcast.ConfigErrorf("client", f.name, "%v is negative", f.v)
		}
	}
	return nil
}

// withDefaults fills the zero fields and writes the URLs one way; c has
// passed Validate.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	urls := make([]string, len(c.URLs))
	for i, u := range c.URLs {
		urls[i], _ = normalize(u)
	}
	c.URLs = urls
	c.Timeout = cmp.Or(c.Timeout, d.Timeout)
	c.HeartbeatTimeout = cmp.Or(c.HeartbeatTimeout, c.Timeout)
	c.DialTimeout = cmp.Or(c.DialTimeout, d.DialTimeout)
	c.RefreshEvery = cmp.Or(c.RefreshEvery, d.RefreshEvery)
	return c
}

// normalize checks that u is an http(s) URL with a host and returns it
// without a trailing slash.
func normalize(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", fmt.Errorf("%q: want a URL such as http://127.0.0.1:7000", u)
	}
	return strings.TrimRight(u, "/"), nil
}

// Deps are what a Client uses but does not own.
type Deps struct {
	// Token is sent as "Authorization: Bearer" with every call; empty
	// sends none (player calls such as Playback need none).
	Token string
	// HTTP makes the calls. Nil means a client of its own, whose
	// connects are bounded by Config.DialTimeout and whose idle
	// connections Close closes.
	HTTP *http.Client
	// TLS is the TLS configuration of every call to an https node, for
	// the client this Client makes (give it or HTTP, not both): the CAs
	// trusted (pki.ClientTLS; nil means the system's roots) and the
	// certificate presented, if any. Member URLs learned from
	// GET /v1/cluster are used as they are, https when the cluster
	// serves TLS.
	TLS *tls.Config
	// Log receives member changes (info) and failovers (debug). Nil
	// discards.
	Log *slog.Logger
	// Now is the clock refreshes are timed by. Nil means time.Now.
	Now func() time.Time
}

// ErrUnavailable is wrapped by the error of a call that every known node
// failed (see the package doc for what counts as a failure).
var ErrUnavailable = errors.New("client: no control-plane node answered")

// Error is a node's answer with a status the call does not take: not
// 2xx, and from Manifest not 304 either. Branch on it with errors.As, or
// on its status with StatusCode.
type Error struct {
	// Method and URL are the request (the node's base URL and the path).
	Method, URL string
	// Status is the HTTP status.
	Status int
	// Message is the "error" field of the body the control plane sends
	// with every error, or the start of the body when it is not that.
	Message string
}

// Error returns the request, the status and the server's message.
func (e *Error) Error() string {
	return fmt.Sprintf("client: %s %s: %d %s: %s", e.Method, e.URL, e.Status, http.StatusText(e.Status), e.Message)
}

// StatusCode returns the status of the last node's answer in err's
// chain: the *Error's status when one node answered, and when every node
// failed (ErrUnavailable) the status of the last node that answered at
// all (a 503, say). It returns 0 when no node answered: nil, a call whose
// connections all failed or timed out, or an error of the caller's.
func StatusCode(err error) int {
	if e := lastError(err); e != nil {
		return e.Status
	}
	return 0
}

// lastError returns the last *Error in err's tree, depth first as
// errors.As walks it but from the end.
func lastError(err error) *Error {
	for err != nil {
		switch x := err.(type) {
		case *Error:
			return x
		case interface{ Unwrap() []error }:
			errs := x.Unwrap()
			for i := len(errs) - 1; i >= 0; i-- {
				if e := lastError(errs[i]); e != nil {
					return e
				}
			}
			return nil
		case interface{ Unwrap() error }:
			err = x.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

// Client calls the control plane; see the package doc.
type Client struct {
	cfg   Config
	d     Deps
	seed  []string
	owned *http.Transport // the transport of the HTTP client made in New; nil with Deps.HTTP

	mu    sync.Mutex
	nodes []string // the seeds, then the members not among them
	last  string   // the node to ask first: the one that answered last, or the one after a node that failed
	// refreshedAt is when members were last read; stale says a node
	// failed since, and refreshing that a refresh is under way.
	refreshedAt       time.Time
	stale, refreshing bool
}

// New validates cfg and returns a Client. It does no I/O and starts no
// goroutine: the first call is the first contact with the cluster.
func New(cfg Config, d Deps) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if d.HTTP != nil && d.TLS != nil {
		return nil, errors.New("client: give Deps.TLS or Deps.HTTP, not both: TLS is for the client New makes")
	}
	var owned *http.Transport
	if d.HTTP == nil {
		owned = http.DefaultTransport.(*http.Transport).Clone()
		owned.DialContext = (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
		owned.TLSClientConfig = d.TLS
		d.HTTP = &http.Client{Transport: owned}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	seed := dedupe(cfg.URLs)
	return &Client{cfg: cfg, d: d, seed: seed, owned: owned, nodes: slices.Clone(seed), last: seed[0]}, nil
}

// Close closes the idle connections of the HTTP client the Client made
// for itself (none when Deps.HTTP was given). Calls under way finish; a
// call after Close opens connections again. It always returns nil.
func (c *Client) Close() error {
	if c.owned != nil {
		c.owned.CloseIdleConnections()
	}
	return nil
}

// Members returns the node URLs the Client knows now: the seeds and the
// members learned from the cluster.
func (c *Client) Members() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

// Heartbeat posts an appliance's heartbeat
// (POST /v1/appliances/{id}/heartbeat). Each node has
// Config.HeartbeatTimeout to take it, and it goes on to the next node
// after any failure: a heartbeat is soft state (see the package doc).
func (c *Client) Heartbeat(ctx context.Context, applianceID string, hb fillcast.Heartbeat) error {
	r := c.request(http.MethodPost, "/v1/appliances/"+url.PathEscape(applianceID)+"/heartbeat")
	r.timeout, r.resend = c.cfg.HeartbeatTimeout, true
	return c.send(ctx, r, hb, nil)
}

// Manifest fetches an appliance's fill manifest
// (GET /v1/appliances/{id}/manifest), of up to 64 MiB. A non-empty etag
// is sent as If-None-Match: while the manifest is unchanged the answer is
// a 304 and Manifest returns nil, etag, nil. Otherwise it returns the
// manifest and its new ETag. No manifest planned yet is an *Error with
// status 404.
func (c *Client) Manifest(ctx context.Context, applianceID, etag string) (*fillcast.Manifest, string, error) {
	r := c.request(http.MethodGet, "/v1/appliances/"+url.PathEscape(applianceID)+"/manifest")
	r.limit = maxManifest
	if etag != "" {
		r.header = http.Header{"If-None-Match": {etag}}
	}
	a, err := c.call(ctx, r)
	if err != nil {
		return nil, "", err
	}
	if a.status == http.StatusNotModified {
		return nil, etag, nil
	}
	var m fillcast.Manifest
	if err := a.decode(r, &m); err != nil {
		return nil, "", err
	}
	return &m, a.header.Get("ETag"), nil
}

// Playback asks where to play a title (GET /v1/playback/{title}), as a
// player does, with a viewer's session as the client's Token; an empty
// protocol is the server's default (HLS). A stream id of an earlier
// answer keeps the viewer on that screen instead of taking another.
func (c *Client) Playback(ctx context.Context, title, protocol, stream string) (fillcast.Playback, error) {
	q := url.Values{}
	if protocol != "" {
		q.Set("protocol", protocol)
	}
	if stream != "" {
		q.Set("stream", stream)
	}
	path := "/v1/playback/" + url.PathEscape(title)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p fillcast.Playback
	err := c.Do(ctx, http.MethodGet, path, nil, &p)
	return p, err
}

// Cluster reads one node's view of the cluster (GET /v1/cluster) and
// learns its members, as a refresh does.
func (c *Client) Cluster(ctx context.Context) (fillcast.ClusterStatus, error) {
	var st fillcast.ClusterStatus
	if err := c.Do(ctx, http.MethodGet, clusterPath, nil, &st); err != nil {
		return st, err
	}
	c.learn(st)
	return st, nil
}

// Keys fetches the replicated signing keys (GET /v1/keys), the first
// signing and all verifying.
func (c *Client) Keys(ctx context.Context) ([]auth.Key, error) {
	var kl auth.KeyList
	err := c.Do(ctx, http.MethodGet, "/v1/keys", nil, &kl)
	return kl.Keys, err
}

// FillPass asks for a fill pass for appliance id (POST
// /v1/appliances/{id}/fillpass). It changes nothing, so it goes on to
// another node after any failure, as a read does.
func (c *Client) FillPass(ctx context.Context, id string) (fillcast.FillPass, error) {
	var p fillcast.FillPass
	r := c.request(http.MethodPost, "/v1/appliances/"+url.PathEscape(id)+"/fillpass")
	r.resend = true
	return p, c.send(ctx, r, nil, &p)
}

// Do is the generic call: it sends in (nil: no body) as JSON to path (with
// its query, if any) and decodes a 2xx answer's body, of up to 1 MiB,
// into out (nil: the body is dropped). Any other answer is an *Error. A
// method other than GET and HEAD is a write, which goes to another node
// only when the first surely did not take it (see the package doc).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	return c.send(ctx, c.request(method, path), in, out)
}

// send encodes in as r's body, calls, and decodes the answer into out.
func (c *Client) send(ctx context.Context, r request, in, out any) error {
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: %s %s: encode body: %w", r.method, r.path, err)
		}
		r.body = b
	}
	a, err := c.call(ctx, r)
	if err != nil {
		return err
	}
	return a.decode(r, out)
}

// clusterPath is the route the member list is read from.
const clusterPath = "/v1/cluster"

// Bounds of an answer's body: a manifest, any other 2xx answer, and the
// part of a non-2xx answer read for its message.
const (
	maxManifest  = 64 << 20
	maxAnswer    = 1 << 20
	maxErrorBody = 4 << 10
)

var (
	// errRequest marks a request that cannot be sent to any node (a bad
	// method or path): the caller's mistake, not a node's failure.
	errRequest = errors.New("bad request")
	// errTooLarge marks an answer over its bound: every node would send
	// the same, so no other is asked.
	errTooLarge = errors.New("answer too large")
)

// request is one call, sent to one node after another.
type request struct {
	method, path string
	header       http.Header
	body         []byte        // JSON, nil for none
	timeout      time.Duration // bounds one attempt
	limit        int64         // bounds a 2xx answer's body
	// resend says the call may go to the next node after any failure: a
	// read, or a heartbeat. Other writes go on only when the node surely
	// did not take them.
	resend bool
}

// request returns a call of method to path with the defaults: Timeout,
// maxAnswer, and resent after any failure if it is a read. A write gets
// one X-Request-Id for all its attempts, so that the control plane
// applies it once even when two nodes both took it (docs/api.md).
func (c *Client) request(method, path string) request {
	r := request{method: method, path: path, timeout: c.cfg.Timeout, limit: maxAnswer,
		resend: method == http.MethodGet || method == http.MethodHead}
	if !r.resend {
		r.header = http.Header{"X-Request-Id": {"c-" + rand.Text()}}
	}
	return r
}

// answer is a node's whole answer.
type answer struct {
	node   string
	status int
	header http.Header
	body   []byte
}

// decode turns a 2xx answer into out and any other into an *Error.
func (a *answer) decode(r request, out any) error {
	if a.status < 200 || a.status > 299 {
		return a.err(r)
	}
	if out == nil || len(bytes.TrimSpace(a.body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(a.body, out); err != nil {
		return fmt.Errorf("client: %s %s%s: decode answer: %w", r.method, a.node, r.path, err)
	}
	return nil
}

// err is the *Error of a non-2xx answer.
func (a *answer) err(r request) *Error {
	e := &Error{Method: r.method, URL: a.node + r.path, Status: a.status}
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(a.body, &body) == nil && body.Error != "" {
		e.Message = body.Error
	} else {
		msg := strings.TrimSpace(string(a.body[:min(len(a.body), 512)]))
		if msg == "" {
			msg = "(no message)"
		}
		e.Message = msg
	}
	return e
}

// retryable reports whether a status says the node cannot serve now, so
// that the call may go on to the next one.
func retryable(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// call sends r to the known nodes in turn, from the one to ask first, and
// returns the first answer that is not a failure (see the package doc).
// After an answer it refreshes the members when that is due.
func (c *Client) call(ctx context.Context, r request) (*answer, error) {
	var errs []error
	for _, node := range c.order() {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
		}
		a, err := c.attempt(ctx, node, r)
		if err == nil && !retryable(a.status) {
			c.answered(node)
			if r.path != clusterPath {
				c.maybeRefresh(ctx, node, r.timeout)
			}
			return a, nil
		}
		if errors.Is(err, errRequest) || errors.Is(err, errTooLarge) {
			return nil, err
		}
		// notTaken says the node surely did not apply the request.
		var notTaken bool
		if err == nil {
			notTaken = a.status != http.StatusGatewayTimeout
			err = a.err(r)
		} else {
			notTaken = dialFailed(err)
		}
		c.failed(node, err)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: %s %s: %w (waiting for %s)", r.method, r.path, ctx.Err(), node)
		}
		if !r.resend && !notTaken {
			return nil, fmt.Errorf("client: %s %s: not sent to another node: %s may have applied it: %w", r.method, r.path, node, err)
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, r.method, r.path, nodeErrors(errs))
}

// dialFailed reports whether err is a failure to connect (refused, no
// route, a name that does not resolve, DialTimeout passed): the request
// never left.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// nodeErrors are the failures of one call at each node, on one line.
type nodeErrors []error

func (e nodeErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e nodeErrors) Unwrap() []error { return e }

// order returns the known nodes, the one to ask first first.
func (c *Client) order() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := max(slices.Index(c.nodes, c.last), 0)
	return append(slices.Clone(c.nodes[i:]), c.nodes[:i]...)
}

func (c *Client) answered(node string) {
	c.mu.Lock()
	c.last = node
	c.mu.Unlock()
}

// failed marks the members stale and, when node was the one to ask first,
// makes it the node after it: a node that failed is not asked first
// again, even when the call ended before another node answered.
func (c *Client) failed(node string, err error) {
	c.mu.Lock()
	c.stale = true
	if i := slices.Index(c.nodes, node); i >= 0 && c.last == node {
		c.last = c.nodes[(i+1)%len(c.nodes)]
	}
	c.mu.Unlock()
	c.d.Log.Debug("client: control-plane node failed", "node", node, "err", err)
}

// attempt sends r to one node within r.timeout and reads the answer. An
// error means the node did not answer, but for errRequest and
// errTooLarge. Of a non-2xx answer only maxErrorBody is read: its status
// is the answer, the body only its message.
func (c *Client) attempt(ctx context.Context, node string, r request) (*answer, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, node+r.path, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w: %w", r.method, r.path, errRequest, err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.d.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.d.Token)
	}
	resp, err := c.d.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err) // a *url.Error: it names the method and URL
	}
	defer resp.Body.Close()
	a := &answer{node: node, status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		a.body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return a, nil
	}
	a.body, err = io.ReadAll(io.LimitReader(resp.Body, r.limit+1))
	if err != nil {
		return nil, fmt.Errorf("client: %s %s%s: read answer: %w", r.method, node, r.path, err)
	}
	if int64(len(a.body)) > r.limit {
		return nil, fmt.Errorf("client: %s %s%s: %w: more than %d MiB", r.method, node, r.path, errTooLarge, r.limit>>20)
	}
	return a, nil
}

// maybeRefresh reads the members from node, which has just answered, when
// RefreshEvery has passed or a node failed since the last refresh, within
// timeout (the call's). One refresh runs at a time; one that fails leaves
// the refresh due, so the next answer tries again.
func (c *Client) maybeRefresh(ctx context.Context, node string, timeout time.Duration) {
	now := c.d.Now()
	c.mu.Lock()
	due := !c.refreshing && (c.stale || now.Sub(c.refreshedAt) >= c.cfg.RefreshEvery)
	wasStale, wasAt := c.stale, c.refreshedAt
	if due {
		c.refreshing, c.stale, c.refreshedAt = true, false, now
	}
	c.mu.Unlock()
	if !due {
		return
	}
	r := c.request(http.MethodGet, clusterPath)
	r.timeout = timeout
	a, err := c.attempt(ctx, node, r)
	var st fillcast.ClusterStatus
	if err == nil {
		err = a.decode(r, &st)
	}
	c.mu.Lock()
	c.refreshing = false
	if err != nil {
		c.stale, c.refreshedAt = c.stale || wasStale, wasAt
	}
	c.mu.Unlock()
	if err != nil {
		c.d.Log.Debug("client: members not refreshed", "node", node, "err", err)
		return
	}
	c.learn(st)
}

// learn makes the known nodes the seeds and st's members. A status that
// names no member URL (a node that could not read its raft configuration)
// teaches nothing; one that lists some member without its URL (not
// registered yet) adds the members it names and drops no node known.
func (c *Client) learn(st fillcast.ClusterStatus) {
	nodes := slices.Clone(c.seed)
	partial := false
	for _, m := range st.Members {
		if u, err := normalize(m.HTTPURL); err == nil {
			nodes = append(nodes, u)
		} else {
			partial = true
		}
	}
	if len(nodes) == len(c.seed) {
		return
	}
	c.mu.Lock()
	if partial {
		nodes = append(nodes, c.nodes...)
	}
	nodes = dedupe(nodes)
	changed := !slices.Equal(nodes, c.nodes)
	c.nodes = nodes
	c.mu.Unlock()
	if changed {
		c.d.Log.Info("client: control-plane nodes", "nodes", nodes)
	}
}

// dedupe drops the repeats of urls, keeping the first of each.
func dedupe(urls []string) []string {
	out := make([]string, 0, len(urls))
	for _, u := range urls {
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}
