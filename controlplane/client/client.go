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
// A call that every known node failed is tried again, a whole round of
// the nodes at a time, when it is idempotent: reads (GET, HEAD),
// ReportUsage (the control plane counts a summary once by its ID) and
// FillPass (which changes nothing). A heartbeat is not (the next beat is
// its retry, and a beat taken twice counts its bytes twice), nor is any
// other write. Before each round it waits a jittered backoff, or the
// longest Retry-After the nodes sent, capped by Config.Retry.Max (see
// protect.Retry), and it retries only while the Client's retry budget
// (Config.Budget: 10 % of its calls over 10 s, plus 3 a second) has
// some left, so that a cluster in trouble gets about 10 % more calls
// from retries, not three times as many. A caller's ctx that ends during
// the wait ends the call with an error wrapping ctx's and the last
// round's.
//
// Bodies are bounded: 64 MiB for Manifest (a storage appliance's
// manifest names the whole catalog) and FileList, 1 MiB for every other
// answer, and at most 4 KiB of an answer that is not 2xx, for its
// message. An answer over its bound is an error that no other node is
// asked about: the cluster's answer is too large, not the node at
// fault.
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
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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
	"github.com/fillcast/fillcast/controlplane/protect"
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
	// Retry is how an idempotent call that every known node failed is
	// tried again (see the package doc): Attempts rounds of the nodes in
	// all, each after a full-jitter backoff from Base up to Max, or after
	// the nodes' Retry-After capped by Max. Zero fields take protect's
	// defaults (3, 50 ms, 1 s); Attempts 1 turns retries off.
	Retry protect.RetryConfig
	// Budget caps those retries at a share of the Client's calls over a
	// rolling window, plus a floor for a quiet client. Zero fields take
	// protect's defaults (10 %, 3 a second, 10 s).
	Budget protect.BudgetConfig
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
	if err := c.Retry.Validate(); err != nil {
		return fillcast.InField("Retry", err)
	}
	if err := c.Budget.Validate(); err != nil {
		return fillcast.InField("Budget", err)
	}
	return nil
}

// withDefaults fills the zero fields and writes the URLs one way; c has
// passed Validate. Retry and Budget keep their zeros, which package
// protect reads as its defaults.
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
	// Now is the clock refreshes are timed by, and a Retry-After date
	// read by. Nil means time.Now.
	Now func() time.Time
	// Metrics counts the retries made and refused, as budget
	// "controlplane". Nil counts nothing.
	Metrics *protect.Metrics
}

// Client calls the control plane; see the package doc.
type Client struct {
	cfg    Config
	d      Deps
	seed   []string
	owned  *http.Transport // the transport of the HTTP client made in New; nil with Deps.HTTP
	budget *protect.Budget // of the retries of idempotent calls

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
	budget, err := protect.NewBudget(cfg.Budget, protect.WithBudgetMetrics("controlplane", d.Metrics))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
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
	return &Client{cfg: cfg, d: d, seed: seed, owned: owned, budget: budget, nodes: slices.Clone(seed), last: seed[0]}, nil
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
	_, err := c.Beat(ctx, applianceID, hb)
	return err
}

// Beat is Heartbeat returning the answer: the takedowns the appliance
// has to apply. An answer without a body (204: nothing to apply) is the
// reply that carries hb.TakedownSeq back.
func (c *Client) Beat(ctx context.Context, applianceID string, hb fillcast.Heartbeat) (fillcast.HeartbeatReply, error) {
	r := c.request(http.MethodPost, "/v1/appliances/"+url.PathEscape(applianceID)+"/heartbeat")
	r.timeout, r.resend = c.cfg.HeartbeatTimeout, true
	reply := fillcast.HeartbeatReply{TakedownSeq: hb.TakedownSeq}
	err := c.send(ctx, r, hb, &reply)
	return reply, err
}

// Manifest fetches an appliance's fill manifest
// (GET /v1/appliances/{id}/manifest), of up to 64 MiB. A non-empty etag
// is sent as If-None-Match: while the manifest is unchanged the answer is
// a 304 and Manifest returns nil, etag, nil. Otherwise it returns the
// manifest and its new ETag. No manifest planned yet is an *Error with
// status 404.
func (c *Client) Manifest(ctx context.Context, applianceID, etag string) (*fillcast.Manifest, string, error) {
	r := c.request(http.MethodGet, "/v1/appliances/"+url.PathEscape(applianceID)+"/manifest")
	r.limit = maxLarge
	if etag != "" {
		r.header = http.Header{"If-None-Match": {etag}}
	}
	a, err := c.retrying(ctx, r)
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
// another node after any failure, and is retried, as a read is.
func (c *Client) FillPass(ctx context.Context, id string) (fillcast.FillPass, error) {
	var p fillcast.FillPass
	r := c.request(http.MethodPost, "/v1/appliances/"+url.PathEscape(id)+"/fillpass")
	r.resend, r.idempotent = true, true
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

// DoIdempotent is Do for a request that can move money, sent with
// Idempotency-Key key: since the control plane answers it once however
// often it is sent, it is sent again, to any node, after any failure.
func (c *Client) DoIdempotent(ctx context.Context, method, path, key string, in, out any) error {
	r := c.request(method, path)
	if r.header == nil {
		r.header = http.Header{}
	}
	r.header.Set("Idempotency-Key", key)
	r.resend, r.idempotent = true, true
	return c.send(ctx, r, in, out)
}
