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
// dies, through nodes 2 and 3.
//
// The retry rule: each call goes first to the node that answered last,
// then to the next known node, and so on, each known node at most once.
// It moves on only when a node cannot be reached (connection refused or
// reset, Config.Timeout passed for the attempt, the answer cut short) or
// answers 502, 503 or 504, the statuses of a node that cannot serve now
// (no leader, overloaded, a proxy in front that lost it). Every other
// answer, 4xx and 500 included, is the cluster's answer and is returned
// as it is: another node would say the same. When every node fails, the
// error wraps ErrUnavailable and each node's error. A write may thus
// reach two nodes when the first took it but died before answering (a
// heartbeat's title bytes can then count twice, as before this client),
// so a write that must not apply twice says what it expects: create if
// absent, compare and set by version.
//
// Members are learned lazily, inside calls, with no goroutine of its own:
// after a node answers, if Config.RefreshEvery has passed since the last
// refresh or a node failed since then, the Client reads GET /v1/cluster
// from that node and from then on knows the seeds and the members'
// http_url. A Client is safe for concurrent use; one is shared by the
// parts of a process.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// RefreshEvery is how often the member list is read again from
	// GET /v1/cluster. Zero means 30 s.
	RefreshEvery time.Duration
}

// DefaultConfig returns a Config with every default filled in but the
// URLs.
func DefaultConfig() Config {
	return Config{Timeout: 10 * time.Second, RefreshEvery: 30 * time.Second}
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
	if c.Timeout < 0 {
		return fillcast.ConfigErrorf("client", "Timeout", "%v is negative", c.Timeout)
	}
	if c.RefreshEvery < 0 {
		return fillcast.ConfigErrorf("client", "RefreshEvery", "%v is negative", c.RefreshEvery)
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
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.RefreshEvery == 0 {
		c.RefreshEvery = d.RefreshEvery
	}
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
	// HTTP makes the calls. Nil means a client of its own.
	HTTP *http.Client
	// Log receives member changes (info) and failovers (debug). Nil
	// discards.
	Log *slog.Logger
	// Now is the clock refreshes are timed by. Nil means time.Now.
	Now func() time.Time
}

// ErrUnavailable is wrapped by the error of a call that no known node
// answered (see the package doc for what counts as an answer).
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

// StatusCode returns the status of the *Error in err's chain, or 0 when
// there is none (the call did not get an answer).
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Client calls the control plane; see the package doc.
type Client struct {
	cfg  Config
	d    Deps
	seed []string

	mu    sync.Mutex
	nodes []string // the seeds, then the members not among them
	last  string   // the node that answered last
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
	if d.HTTP == nil {
		d.HTTP = &http.Client{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	seed := dedupe(cfg.URLs)
	return &Client{cfg: cfg, d: d, seed: seed, nodes: slices.Clone(seed), last: seed[0]}, nil
}

// Members returns the node URLs the Client knows now: the seeds and the
// members learned from the cluster.
func (c *Client) Members() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

// Heartbeat posts an appliance's heartbeat
// (POST /v1/appliances/{id}/heartbeat).
func (c *Client) Heartbeat(ctx context.Context, applianceID string, hb fillcast.Heartbeat) error {
	return c.Do(ctx, http.MethodPost, "/v1/appliances/"+url.PathEscape(applianceID)+"/heartbeat", hb, nil)
}

// Manifest fetches an appliance's fill manifest
// (GET /v1/appliances/{id}/manifest). A non-empty etag is sent as
// If-None-Match: while the manifest is unchanged the answer is a 304 and
// Manifest returns nil, etag, nil. Otherwise it returns the manifest and
// its new ETag. No manifest planned yet is an *Error with status 404.
func (c *Client) Manifest(ctx context.Context, applianceID, etag string) (*fillcast.Manifest, string, error) {
	r := request{method: http.MethodGet, path: "/v1/appliances/" + url.PathEscape(applianceID) + "/manifest"}
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
// player does; an empty protocol is the server's default (HLS).
func (c *Client) Playback(ctx context.Context, title, protocol string) (fillcast.Playback, error) {
	path := "/v1/playback/" + url.PathEscape(title)
	if protocol != "" {
		path += "?protocol=" + url.QueryEscape(protocol)
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

// Do is the generic call: it sends in (nil: no body) as JSON to path (with
// its query, if any) and decodes a 2xx answer's body into out (nil: the
// body is dropped). Any other answer is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	r := request{method: method, path: path}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: %s %s: encode body: %w", method, path, err)
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

// maxAnswer bounds an answer's body: a storage appliance's manifest lists
// every file of the catalog.
const maxAnswer = 64 << 20

// errRequest marks a request that cannot be sent to any node (a bad
// method or path): the caller's mistake, not a node's failure.
var errRequest = errors.New("bad request")

// request is one call, sent to one node after another.
type request struct {
	method, path string
	header       http.Header
	body         []byte // JSON, nil for none
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
// that the next one is asked.
func retryable(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// call sends r to the known nodes in turn, from the one that answered
// last, and returns the first answer that is not a failure (see the
// package doc). After an answer it refreshes the members when that is
// due.
func (c *Client) call(ctx context.Context, r request) (*answer, error) {
	var errs []error
	for _, node := range c.order() {
		a, err := c.attempt(ctx, node, r)
		if err == nil && !retryable(a.status) {
			c.answered(node)
			if r.path != clusterPath {
				c.maybeRefresh(ctx, node)
			}
			return a, nil
		}
		if err == nil {
			err = a.err(r)
		}
		if errors.Is(err, errRequest) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, ctx.Err())
		}
		c.failed(node, err)
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, r.method, r.path, nodeErrors(errs))
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

// order returns the known nodes, the one that answered last first.
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

func (c *Client) failed(node string, err error) {
	c.mu.Lock()
	c.stale = true
	c.mu.Unlock()
	c.d.Log.Debug("client: control-plane node failed; trying the next", "node", node, "err", err)
}

// attempt sends r to one node within Config.Timeout and reads the whole
// answer. An error means the node did not answer.
func (c *Client) attempt(ctx context.Context, node string, r request) (*answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("client: %s %s%s: read answer: %w", r.method, node, r.path, err)
	}
	if len(b) > maxAnswer {
		return nil, fmt.Errorf("client: %s %s%s: answer larger than %d MiB", r.method, node, r.path, maxAnswer>>20)
	}
	return &answer{node: node, status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// maybeRefresh reads the members from node, which has just answered, when
// RefreshEvery has passed or a node failed since the last refresh. One
// refresh runs at a time; a failed one waits for the next occasion.
func (c *Client) maybeRefresh(ctx context.Context, node string) {
	now := c.d.Now()
	c.mu.Lock()
	due := !c.refreshing && (c.stale || now.Sub(c.refreshedAt) >= c.cfg.RefreshEvery)
	if due {
		c.refreshing, c.stale, c.refreshedAt = true, false, now
	}
	c.mu.Unlock()
	if !due {
		return
	}
	defer func() {
		c.mu.Lock()
		c.refreshing = false
		c.mu.Unlock()
	}()
	r := request{method: http.MethodGet, path: clusterPath}
	a, err := c.attempt(ctx, node, r)
	var st fillcast.ClusterStatus
	if err == nil {
		err = a.decode(r, &st)
	}
	if err != nil {
		c.d.Log.Debug("client: members not refreshed", "node", node, "err", err)
		return
	}
	c.learn(st)
}

// learn makes the known nodes the seeds and st's members. A status that
// names no member URL (a node that could not read its raft configuration)
// teaches nothing: the nodes known stay.
func (c *Client) learn(st fillcast.ClusterStatus) {
	nodes := slices.Clone(c.seed)
	for _, m := range st.Members {
		if u, err := normalize(m.HTTPURL); err == nil {
			nodes = append(nodes, u)
		}
	}
	if len(nodes) == len(c.seed) {
		return
	}
	nodes = dedupe(nodes)
	c.mu.Lock()
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
