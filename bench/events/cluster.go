package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/appliance/h3/h3test"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/bench/internal/apicall"
	"github.com/fillcast/fillcast/controlplane"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/stream"
)

// adminToken is the cluster's bootstrap admin key.
const adminToken = "bench-admin"

// title is the one title every event is about.
const title = "t1"

// node is one running control-plane node.
type node struct {
	*controlplane.Node
	id   string
	url  string
	stop func() error
}

// cluster is three nodes started in this process.
type cluster struct {
	nodes []*node
}

// nodeConfig is the part of every node's Config the bench sets, printed
// with the figures.
func nodeConfig(eventsPerSecond float64, eventBurst int) controlplane.Config {
	return controlplane.Config{
		API:      api.Config{EventsPerSecond: eventsPerSecond, EventBurst: eventBurst},
		Accounts: accounts.Config{SignUpsPerHour: -1},
	}
}

// startCluster starts a bootstrap node and two that join it, each with
// its data under dir, and returns once every one is ready. log nil
// discards the nodes' logs.
func startCluster(ctx context.Context, dir string, base controlplane.Config, log *slog.Logger) (*cluster, error) {
	keys, err := signingKeys()
	if err != nil {
		return nil, err
	}
	c := &cluster{}
	for i := range 3 {
		id := "n" + strconv.Itoa(i+1)
		cfg := base
		cfg.ID, cfg.DataDir = id, filepath.Join(dir, id)
		var join []string
		if i > 0 {
			join = []string{c.nodes[0].url}
		}
		n, err := startNode(ctx, cfg, join, controlplane.Deps{AdminToken: adminToken, Keys: keys, Log: log})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("node %s: %w", id, err)
		}
		c.nodes = append(c.nodes, n)
	}
	return c, nil
}

// Close stops the nodes, the last started first.
func (c *cluster) Close() error {
	var errs []error
	for i := len(c.nodes) - 1; i >= 0; i-- {
		errs = append(errs, c.nodes[i].stop())
	}
	c.nodes = nil
	return errors.Join(errs...)
}

func signingKeys() (*auth.Keys, error) {
	k := make([]byte, 32)
	rand.Read(k)
	return auth.ParseKeys(strings.NewReader("k1 " + hex.EncodeToString(k) + "\n"))
}

// startNode runs a node of cfg on loopback ports of its own until stop.
func startNode(ctx context.Context, cfg controlplane.Config, join []string, d controlplane.Deps) (*node, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	raftAddr, err := freeAddr()
	if err != nil {
		ln.Close()
		return nil, err
	}
	port, err := h3test.FreePort()
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg.HTTP, cfg.RaftAddr, d.Listener = ln.Addr().String(), raftAddr, ln
	cfg.Bootstrap, cfg.Join = len(join) == 0, join
	cfg.Events.Listen = "127.0.0.1:" + strconv.Itoa(port)
	n, err := controlplane.New(cfg, d)
	if err != nil {
		ln.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(rctx) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	select {
	case <-n.Ready():
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("stopped before it was ready: %w", err)
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	case <-time.After(time.Minute):
		stop()
		return nil, errors.New("not ready after a minute")
	}
	return &node{Node: n, id: cfg.ID, url: "http://" + cfg.HTTP, stop: stop}, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitStream waits until every node's stream is available and the
// stream has 3 replicas, all current, and returns its cluster's leader.
func (c *cluster) waitStream(ctx context.Context, within time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last string
	for {
		leader, why := c.streamState(ctx)
		if why == "" {
			return leader, nil
		}
		last = why
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("stream not replicated 3 times after %v: %s", within, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// streamState returns the stream's leader, or why it is not ready yet.
func (c *cluster) streamState(ctx context.Context) (leader, why string) {
	for _, n := range c.nodes {
		if n.Stream().JetStream() == nil {
			return "", n.id + "'s stream unavailable"
		}
	}
	js := c.nodes[0].Stream().JetStream()
	s, err := js.Stream(ctx, stream.Name)
	if err != nil {
		return "", err.Error()
	}
	info := s.CachedInfo()
	if info.Config.Replicas != 3 {
		return "", fmt.Sprintf("%d replicas", info.Config.Replicas)
	}
	if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		return "", "no leader with 2 followers yet"
	}
	for _, p := range info.Cluster.Replicas {
		if !p.Current || p.Offline {
			return "", "replica " + p.Name + " not current"
		}
	}
	return info.Cluster.Leader, ""
}

// settle waits, at most within, until every consumer of the stream has
// been delivered and has acknowledged every message: what one phase left
// to fold must not load the next. It returns the time taken and the
// messages still to fold when it gave up.
func settle(ctx context.Context, js jetstream.JetStream, within time.Duration) (time.Duration, uint64, error) {
	start := time.Now()
	for {
		// A busy cluster may not answer in time: ask again.
		pending, err := backlog(ctx, js)
		switch {
		case err == nil && pending == 0:
			return time.Since(start), 0, nil
		case time.Since(start) > within:
			return time.Since(start), pending, err
		}
		select {
		case <-ctx.Done():
			return time.Since(start), pending, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// backlog sums, over the stream's consumers (each node's projections),
// the messages not yet delivered or not yet acknowledged.
func backlog(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream.Name)
	if err != nil {
		return 0, err
	}
	l := s.ListConsumers(ctx)
	var sum uint64
	n := 0
	for ci := range l.Info() {
		sum += ci.NumPending + uint64(ci.NumAckPending)
		n++
	}
	if err := l.Err(); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, errors.New("the stream has no consumers")
	}
	return sum, nil
}

// viewer is a signed-up viewer's session.
type viewer struct{ token string }

// setup creates the title and a plan, and signs up n viewers through
// node 1's API, 8 at once.
func (c *cluster) setup(ctx context.Context, client *http.Client, n int) ([]viewer, error) {
	base := c.nodes[0].url
	t := fillcast.Title{ID: title, Name: "One", Status: "ready",
		Renditions: []fillcast.Rendition{{ID: "360p", Kind: "video", Height: 360, Bandwidth: 1e6, Codecs: "avc1.64001e"}}}
	if _, err := apicall.Call(ctx, client, "POST", base+"/v1/titles", t, adminToken, http.StatusCreated, nil); err != nil {
		return nil, err
	}
	plan := map[string]any{"name": "Bench", "max_height": 4320, "max_streams": 16, "downloads": true,
		"price": map[string]any{"amount": 0, "currency": "EUR"}, "period": "month"}
	if _, err := apicall.Call(ctx, client, "PUT", base+"/v1/plans/bench", plan, adminToken, http.StatusOK, nil); err != nil {
		return nil, err
	}
	vs := make([]viewer, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				vs[i], errs[i] = signUp(ctx, client, base, i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return vs, errors.Join(errs...)
}

func signUp(ctx context.Context, client *http.Client, base string, i int) (viewer, error) {
	email := fmt.Sprintf("viewer%05d-%s@bench.fillcast.example", i, strings.ToLower(rand.Text()[:8]))
	token, err := apicall.SignUp(ctx, client, base, email, "correct horse battery", "bench")
	return viewer{token: token}, err
}
