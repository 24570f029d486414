// Package stream is the control plane's replicated event stream: NATS
// JetStream, either embedded in every control-plane node (the default)
// or an external NATS cluster (Config.URL).
//
// Embedded, each node runs a NATS server in its own process with
// JetStream storing under Config.Dir. A node alone in its raft cluster
// runs it standalone; once the membership (Deps.Members) holds a second
// node with an events address, every node runs it clustered, its routes
// (Config.Listen) dialling the other members' addresses with a password
// all nodes derive from the cluster's secret (Deps.Secret), under mutual
// TLS when the nodes have certificates (Deps.RouteTLS), and the stream
// replicated min(Config.Replicas, members) times. A node that grows from alone to a
// cluster moves the events it stored alone onto the clustered stream
// (migrate.go). Clients inside the process connect without a socket;
// besides the route listener NATS opens a client port on a random
// loopback port (it starts routing only once one listens), closed to
// any client without the secret.
//
// Publish appends a message and returns once the stream has it (on a
// quorum of replicas), de-duplicating by message id within
// Config.Duplicates. Consume (consume.go) feeds a node's projections
// from a durable consumer, each projection remembering the sequence it
// has folded to, so a message delivered again after a restart is not
// counted twice.
package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fillcast/fillcast"
)

// Name is the JetStream stream's name; Subjects are the subjects it
// holds, each a kind of message under SubjectPrefix.
const (
	Name          = "FILLCAST_EVENTS"
	SubjectPrefix = "fillcast.events."
)

// Kinds of message: a viewer's batch of events (events.AppendRecord), and
// an appliance's usage summary (fillcast.Usage in JSON).
const (
	KindViewer = "viewer"
	KindUsage  = "usage"
)

// ErrUnavailable is what Publish returns while the stream cannot take
// messages: starting, electing a leader, or out of reach. The API answers
// 503 and the client sends the same batch again.
var ErrUnavailable = errors.New("stream: unavailable")

// Config configures a Stream. Zero values mean the defaults named.
type Config struct {
	// NodeID names this node's NATS server. Required.
	NodeID string
	// Dir is where the embedded server stores the stream. Required
	// unless URL is set.
	Dir string
	// Listen is the host:port of the embedded server's route listener,
	// which the other control-plane nodes' servers dial. Required
	// unless URL is set.
	Listen string
	// Advertise is how other nodes reach Listen. Zero means Listen.
	Advertise string
	// Joining says this node joins an existing cluster: it never runs
	// alone, waiting for the membership to name the others instead.
	Joining bool
	// URL, when set, is an external NATS cluster (nats://host:4222,
	// comma-separated for several) to use instead of embedding a server.
	URL string
	// Creds is a NATS credentials file (a user JWT and its nkey seed)
	// the node authenticates to the external cluster with; CA a PEM file
	// of the CAs a tls:// URL's servers are checked against (zero: the
	// system's); Cert and Key, when set, a client certificate presented
	// to them. Only with URL.
	Creds, CA, Cert, Key string
	// Replicas is the most replicas the stream keeps. Zero means 3.
	Replicas int
	// MaxAge and MaxBytes bound the stream: older messages, and the
	// oldest past the size, are removed. Zero means 7 days and 10 GiB.
	MaxAge   time.Duration
	MaxBytes int64
	// Duplicates is the window in which a message id is remembered.
	// Zero means 10 minutes.
	Duplicates time.Duration
}

// DefaultConfig returns the defaults for node id storing under dir.
func DefaultConfig(id, dir string) Config {
	return Config{NodeID: id, Dir: dir}.withDefaults()
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if c.NodeID == "" {
		return fillcast.ConfigErrorf("stream", "NodeID", "required: the node's id")
	}
	if c.URL != "" {
		for _, s := range strings.Split(c.URL, ",") {
			u, err := url.Parse(strings.TrimSpace(s))
			switch {
			case err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "":
				return fillcast.ConfigErrorf("stream", "URL", "want nats://host:port or tls://host:port, comma-separated for several servers")
			case u.User != nil:
				// A password in a URL ends up in logs and process lists.
				return fillcast.ConfigErrorf("stream", "URL", "%s: give credentials in a credentials file (--events-creds), not in the URL", u.Redacted())
			}
		}
		if (c.Cert == "") != (c.Key == "") {
			return fillcast.ConfigErrorf("stream", "Cert", "give a client certificate and its key, or neither")
		}
	} else {
		if c.Dir == "" {
			return fillcast.ConfigErrorf("stream", "Dir", "required: where the embedded server stores events")
		}
		for _, f := range []struct{ name, v string }{{"Listen", c.Listen}, {"Advertise", c.Advertise}} {
			if f.v == "" && f.name == "Advertise" {
				continue
			}
			if _, port, err := net.SplitHostPort(f.v); err != nil || port == "0" {
				return fillcast.ConfigErrorf("stream", f.name, "%q: want host:port with a fixed port, such as 127.0.0.1:7002", f.v)
			}
		}
	}
	switch {
	case c.Replicas < 0 || c.Replicas > 5:
		return fillcast.ConfigErrorf("stream", "Replicas", "%d: want 1 to 5", c.Replicas)
	case c.MaxAge < 0 || c.MaxBytes < 0 || c.Duplicates < 0:
		return fillcast.ConfigErrorf("stream", "MaxAge", "limits must not be negative")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Replicas == 0 {
		c.Replicas = 3
	}
	if c.MaxAge == 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 10 << 30
	}
	if c.Duplicates == 0 {
		c.Duplicates = 10 * time.Minute
	}
	if c.Advertise == "" {
		c.Advertise = c.Listen
	}
	return c
}

// Member is a control-plane node as the stream sees it.
type Member struct {
	// ID is the node's id; Events its events address (host:port of its
	// route listener), empty for a node that has none.
	ID, Events string
}

// Deps are what a Stream works with.
type Deps struct {
	// Members returns the cluster's nodes. Required when embedded.
	Members func() []Member
	// Secret is the routes' shared password (and the in-process
	// clients'): every node of a cluster must have the same. Required
	// when embedded.
	Secret string
	// RouteTLS, when set and answering a configuration, puts the
	// routes under mutual TLS with it: called when a clustered server
	// starts, after the node has read its certificates. The
	// configuration both accepts and dials, so it needs the node's
	// certificate, the CA as roots and client CAs, and a check that the
	// peer is a node.
	RouteTLS func() *tls.Config
	// Log receives the stream's log, NATS's own at debug; nil discards.
	Log *slog.Logger
}

// Stream is a node's handle on the event stream. New builds it; Run
// starts (or connects) the server and keeps it in step with the
// membership until its context ends.
type Stream struct {
	cfg Config
	d   Deps
	log *slog.Logger
	// kick tells Run the membership changed.
	kick chan struct{}

	mu sync.RWMutex
	js jetstream.JetStream // nil while unavailable
	// ready is closed, and replaced, whenever js changes.
	ready chan struct{}

	consumers []*consumer
	// replicasNow is the stream's replicas, for the object stores.
	replicasNow atomic.Int32
}

// New returns a Stream; it does no I/O.
func New(cfg Config, d Deps) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.URL == "" && (d.Members == nil || d.Secret == "") {
		return nil, errors.New("stream: Deps.Members and Deps.Secret are required for the embedded server")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Stream{cfg: cfg.withDefaults(), d: d, log: d.Log, kick: make(chan struct{}, 1), ready: make(chan struct{})}, nil
}

// Config returns the configuration in force, defaults filled in.
func (s *Stream) Config() Config { return s.cfg }

// MembersChanged tells Run that Deps.Members may answer differently.
func (s *Stream) MembersChanged() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// current returns the live JetStream context (nil while unavailable)
// and a channel closed when it changes.
func (s *Stream) current() (jetstream.JetStream, <-chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.js, s.ready
}

// setJS installs js (nil: unavailable) and wakes whoever waits on a
// change.
func (s *Stream) setJS(js jetstream.JetStream) {
	s.mu.Lock()
	s.js = js
	close(s.ready)
	s.ready = make(chan struct{})
	s.mu.Unlock()
}

// Available reports whether Publish can take messages now.
func (s *Stream) Available() bool { return s.JetStream() != nil }

// Publish appends data under subject (SubjectPrefix + kind) with the
// message id msgID, and returns the stream's sequence once the stream
// has stored it on a quorum of replicas; dup reports a message id seen
// within Config.Duplicates, stored before at seq. ErrUnavailable means
// it was not stored and may be sent again.
func (s *Stream) Publish(ctx context.Context, kind, msgID string, data []byte) (seq uint64, dup bool, err error) {
	js := s.JetStream()
	if js == nil {
		return 0, false, ErrUnavailable
	}
	ack, err := js.Publish(ctx, SubjectPrefix+kind, data, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(Name))
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return 0, false, fmt.Errorf("stream: publish: %w", ctx.Err())
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, jetstream.ErrStreamNotFound):
		// Worth sending again: no stream leader, or no stream for now.
		return 0, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		return 0, false, fmt.Errorf("stream: publish: %w", err)
	}
	return ack.Sequence, ack.Duplicate, nil
}

// JetStream returns the live JetStream context, or nil while
// unavailable (benchmarks publish through it directly).
func (s *Stream) JetStream() jetstream.JetStream {
	js, _ := s.current()
	return js
}

// streamConfig is the stream as this node wants it, with replicas.
func (s *Stream) streamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Name,
		Description: "Fillcast events: viewers' batches and appliances' usage summaries",
		Subjects:    []string{SubjectPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      s.cfg.MaxAge,
		MaxBytes:    s.cfg.MaxBytes,
		Duplicates:  s.cfg.Duplicates,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxMsgSize:  maxMsgSize,
	}
}

// maxMsgSize bounds one message: a batch of 1,000 events or an
// appliance's summary of 10,000 rows fit.
const maxMsgSize = 8 << 20

// ensure creates the stream, or updates its replicas and limits.
func (s *Stream) ensure(ctx context.Context, js jetstream.JetStream, replicas int) error {
	st, err := js.Stream(ctx, Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = js.CreateStream(ctx, s.streamConfig(replicas))
	case err == nil && !sameLimits(st.CachedInfo().Config, s.streamConfig(replicas)):
		_, err = js.UpdateStream(ctx, s.streamConfig(replicas))
	}
	if err != nil {
		return fmt.Errorf("stream: create %s with %d replicas: %w", Name, replicas, err)
	}
	return nil
}

// sameLimits reports whether the stream has the replicas and limits
// wanted.
func sameLimits(have, want jetstream.StreamConfig) bool {
	return have.Replicas == want.Replicas && have.MaxAge == want.MaxAge && have.MaxBytes == want.MaxBytes &&
		have.Duplicates == want.Duplicates && have.MaxMsgSize == want.MaxMsgSize
}

// routeUser is the user name of the routes between embedded servers.
const routeUser = "fillcast-node"

func portOf(hostport string) int {
	_, p, _ := net.SplitHostPort(hostport)
	n, _ := strconv.Atoi(p)
	return n
}
