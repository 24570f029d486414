package client

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/fillcast/fillcast"
)

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
