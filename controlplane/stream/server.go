package stream

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// mode is how the embedded server runs.
type mode int

const (
	modeWait       mode = iota // this node is not a member yet
	modeStandalone             // alone: JetStream without routes
	modeClustered              // routes to the other members
)

func (m mode) String() string {
	return [...]string{"waiting for membership", "standalone", "clustered"}[m]
}

// Run starts the embedded server, or connects to Config.URL, keeps the
// stream created with the replicas the membership allows, runs the
// consumers, and follows the membership (restarting the server clustered
// when a second node arrives), until ctx ends.
func (s *Stream) Run(ctx context.Context) error {
	if s.cfg.URL != "" {
		return s.runExternal(ctx)
	}
	for ctx.Err() == nil {
		m, members := s.mode()
		if m == modeWait {
			if !s.wait(ctx, time.Second) {
				break
			}
			continue
		}
		if err := s.runServer(ctx, m, members); err != nil && ctx.Err() == nil {
			s.log.Error("stream: embedded server", "mode", m.String(), "err", err)
			s.wait(ctx, time.Second)
		}
	}
	return nil
}

// wait waits for a membership change or d; false when ctx ended.
func (s *Stream) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-s.kick:
	case <-t.C:
	}
	return true
}

// mode decides how to run from the membership: clustered once two
// members have events addresses (or this node ever ran clustered),
// standalone when it is the only member and joins no one, and not at
// all before then.
func (s *Stream) mode() (mode, []Member) {
	var self bool
	var withEvents []Member
	all := s.d.Members()
	for _, m := range all {
		self = self || m.ID == s.cfg.NodeID
		if m.Events != "" {
			withEvents = append(withEvents, m)
		}
	}
	switch {
	case hasFiles(s.dir(modeClustered)) || len(withEvents) >= 2:
		return modeClustered, withEvents
	case self && len(all) == 1 && !s.cfg.Joining:
		return modeStandalone, withEvents
	}
	return modeWait, nil
}

func (s *Stream) dir(m mode) string {
	if m == modeClustered {
		return filepath.Join(s.cfg.Dir, "cluster")
	}
	return filepath.Join(s.cfg.Dir, "standalone")
}

func hasFiles(dir string) bool {
	ents, err := os.ReadDir(dir)
	return err == nil && len(ents) > 0
}

// options returns the embedded server's options for m.
func (s *Stream) options(m mode, members []Member) *server.Options {
	o := &server.Options{
		ServerName: s.cfg.NodeID,
		// Clients are in-process, but NATS starts routing only once its
		// client listener is up: a random loopback port, closed to any
		// client without the node's secret.
		Host: "127.0.0.1", Port: server.RANDOM_PORT,
		Username: routeUser, Password: s.d.Secret,
		JetStream:  true,
		StoreDir:   s.dir(m),
		MaxPayload: maxMsgSize,
		NoSigs:     true,
		// An acknowledged message is on every replica's disk within a
		// second even if the machine (not only the process) dies.
		SyncInterval: time.Second,
	}
	if m == modeClustered {
		host, _, _ := net.SplitHostPort(s.cfg.Listen)
		o.Cluster = server.ClusterOpts{
			Name: "fillcast", Host: host, Port: portOf(s.cfg.Listen), Advertise: s.cfg.Advertise,
			Username: routeUser, Password: s.d.Secret,
			ConnectRetries: -1,
		}
		o.Routes = s.routeURLs(members)
		if s.d.RouteTLS != nil {
			if c := s.d.RouteTLS(); c != nil {
				o.Cluster.TLSConfig, o.Cluster.TLSTimeout = c, 5
			}
		}
	}
	return o
}

// routeURLs lists every member's route, this node's own included: NATS
// ignores the route to itself, and counts it towards the size of the
// cluster JetStream waits for.
func (s *Stream) routeURLs(members []Member) []*url.URL {
	var out []*url.URL
	self := false
	for _, m := range members {
		self = self || m.ID == s.cfg.NodeID
		out = append(out, &url.URL{Scheme: "nats-route", User: url.UserPassword(routeUser, s.d.Secret), Host: m.Events})
	}
	if !self {
		out = append(out, &url.URL{Scheme: "nats-route", User: url.UserPassword(routeUser, s.d.Secret), Host: s.cfg.Advertise})
	}
	slices.SortFunc(out, func(a, b *url.URL) int { return cmp.Compare(a.Host, b.Host) })
	return out
}

// runServer runs one embedded server in mode m until ctx ends or the
// membership calls for another mode.
func (s *Stream) runServer(ctx context.Context, m mode, members []Member) error {
	opts := s.options(m, members)
	e, err := s.startServer(opts)
	if err != nil {
		return err
	}
	defer e.stop()
	srv, js := e.srv, e.js
	s.log.Info("stream: embedded server started", "mode", m.String(), "store", opts.StoreDir, "routes", len(opts.Routes))

	gctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		s.setJS(nil)
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { s.serve(gctx, js, func() int { return s.replicas(m) }, m == modeClustered) })
	routes := opts.Routes
	for s.wait(ctx, 2*time.Second) {
		next, members := s.mode()
		if next != m {
			s.log.Info("stream: restarting the embedded server", "from", m.String(), "to", next.String())
			return nil
		}
		if m != modeClustered {
			continue
		}
		if want := s.routeURLs(members); !sameRoutes(want, routes) {
			o := s.options(m, members)
			if err := srv.ReloadOptions(o); err != nil {
				s.log.Warn("stream: new routes not applied", "err", err)
				continue
			}
			routes = want
			s.log.Info("stream: routes changed", "routes", len(want))
		}
	}
	return nil
}

// embedded is a running server and this process's connection to it.
type embedded struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

// startServer starts a server of opts and connects to it in process,
// with the options' user if it has one.
func (s *Stream) startServer(opts *server.Options) (*embedded, error) {
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	srv.SetLoggerV2(natsLog{s.log}, false, false, false)
	srv.Start()
	e := &embedded{srv: srv}
	if !srv.ReadyForConnections(30 * time.Second) {
		e.stop()
		return nil, fmt.Errorf("stream: server %s not ready after 30 s", opts.ServerName)
	}
	if e.nc, err = nats.Connect("", nats.InProcessServer(srv), nats.UserInfo(opts.Username, opts.Password),
		nats.Name("fillcast-"+s.cfg.NodeID), nats.MaxReconnects(-1)); err != nil {
		e.stop()
		return nil, fmt.Errorf("stream: connect in process: %w", err)
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		e.stop()
		return nil, fmt.Errorf("stream: %w", err)
	}
	return e, nil
}

// stop closes the connection and shuts the server down.
func (e *embedded) stop() {
	if e.nc != nil {
		e.nc.Close()
	}
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

func sameRoutes(a, b []*url.URL) bool {
	return slices.EqualFunc(a, b, func(x, y *url.URL) bool { return x.Host == y.Host })
}

// replicas is how many copies the stream keeps: one alone, else as
// many as there are members with events, up to Config.Replicas.
func (s *Stream) replicas(m mode) int {
	if m != modeClustered {
		return 1
	}
	n := 0
	for _, mb := range s.d.Members() {
		if mb.Events != "" {
			n++
		}
	}
	return max(1, min(n, s.cfg.Replicas))
}

// serve makes the stream exist with the replicas wanted, moves events
// stored alone onto a clustered stream, publishes the connection, and
// runs the consumers, until ctx ends.
func (s *Stream) serve(ctx context.Context, js jetstream.JetStream, replicas func() int, migrate bool) {
	want := 0
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		want = replicas()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := s.ensure(cctx, js, want)
		cancel()
		if err == nil {
			break
		}
		s.log.Debug("stream: not ready yet", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
	if migrate {
		if err := s.migrate(ctx, js); err != nil && ctx.Err() == nil {
			s.log.Error("stream: events stored alone not moved to the cluster; kept for the next start", "err", err)
		}
	}
	s.replicasNow.Store(int32(want))
	s.setJS(js)
	s.log.Info("stream: available", "stream", Name, "replicas", want)
	var wg sync.WaitGroup
	for _, c := range s.consumers {
		wg.Go(func() { c.run(ctx, s, js) })
	}
	// Follow the membership's replicas.
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
		// Every tick: a stream deleted by hand is made again, and
		// changed replicas or limits are applied.
		r := replicas()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.ensure(cctx, js, r); err != nil {
			s.log.Warn("stream: not as configured", "replicas", r, "err", err)
		} else if r != want {
			s.log.Info("stream: replicas changed", "from", want, "to", r)
			want = r
			s.replicasNow.Store(int32(r))
		}
		cancel()
	}
}

// runExternal connects to Config.URL and serves until ctx ends.
func (s *Stream) runExternal(ctx context.Context) error {
	for ctx.Err() == nil {
		nc, err := nats.Connect(s.cfg.URL, s.externalOptions()...)
		if err != nil {
			s.log.Warn("stream: external NATS not reachable", "url", s.cfg.URL, "err", err)
			s.wait(ctx, 2*time.Second)
			continue
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return fmt.Errorf("stream: %w", err)
		}
		// The servers the connection knows, configured and discovered,
		// bound the replicas an external cluster can give.
		s.serve(ctx, js, func() int { return max(1, min(len(nc.Servers()), s.cfg.Replicas)) }, false)
		s.setJS(nil)
		nc.Close()
	}
	return nil
}

// externalOptions are the connection's options to an external cluster:
// its credentials and TLS.
func (s *Stream) externalOptions() []nats.Option {
	o := []nats.Option{nats.Name("fillcast-" + s.cfg.NodeID), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
	if s.cfg.Creds != "" {
		o = append(o, nats.UserCredentials(s.cfg.Creds))
	}
	if s.cfg.CA != "" {
		o = append(o, nats.RootCAs(s.cfg.CA))
	}
	if s.cfg.Cert != "" {
		o = append(o, nats.ClientCert(s.cfg.Cert, s.cfg.Key))
	}
	return o
}

// natsLog passes the NATS server's log to slog: its notices at debug
// (it is chatty), warnings and errors as they are.
type natsLog struct{ l *slog.Logger }

func (n natsLog) Noticef(f string, a ...any) { n.l.Debug("nats: " + fmt.Sprintf(f, a...)) }
func (n natsLog) Warnf(f string, a ...any)   { n.l.Warn("nats: " + fmt.Sprintf(f, a...)) }
func (n natsLog) Fatalf(f string, a ...any)  { n.l.Error("nats: " + fmt.Sprintf(f, a...)) }
func (n natsLog) Errorf(f string, a ...any)  { n.l.Error("nats: " + fmt.Sprintf(f, a...)) }
func (n natsLog) Debugf(f string, a ...any)  { n.l.Debug("nats: " + fmt.Sprintf(f, a...)) }
func (n natsLog) Tracef(string, ...any)      {}
