package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fillcast/fillcast/controlplane/protect"
)

// send encodes in as r's body, calls, and decodes the answer into out.
func (c *Client) send(ctx context.Context, r request, in, out any) error {
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: %s %s: encode body: %w", r.method, r.path, err)
		}
		r.body = b
	}
	a, err := c.retrying(ctx, r)
	if err != nil {
		return err
	}
	return a.decode(r, out)
}

// clusterPath is the route the member list is read from.
const clusterPath = "/v1/cluster"

// Bounds of an answer's body: a manifest or a file list, any other 2xx
// answer, and the part of a non-2xx answer read for its message.
const (
	maxLarge     = 64 << 20
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
	// idempotent says the call may be made again, a round of every node,
	// when every node failed: a read, or a write that applies once
	// however often it is sent.
	idempotent bool
}

// request returns a call of method to path with the defaults: Timeout,
// maxAnswer, and resent after any failure and retried if it is a read.
// A write gets one X-Request-Id for all its attempts, so that the
// control plane applies it once even when two nodes both took it
// (docs/api.md).
func (c *Client) request(method, path string) request {
	read := method == http.MethodGet || method == http.MethodHead
	r := request{method: method, path: path, timeout: c.cfg.Timeout, limit: maxAnswer, resend: read, idempotent: read}
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
	var after time.Duration // the longest Retry-After of the nodes
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
			after = max(after, retryAfter(a.header, c.d.Now()))
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
	err := fmt.Errorf("%w: %s %s: %w", ErrUnavailable, r.method, r.path, nodeErrors(errs))
	if after > 0 {
		err = protect.WithRetryAfter(err, after)
	}
	return nil, err
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
