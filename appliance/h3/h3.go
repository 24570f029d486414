// Package h3 serves the appliance over HTTP/3 with quic-go. It does not
// hold request logic of its own: an Adapter runs the fasthttp handler of
// appliance/server for each HTTP/3 request, so both protocols share one
// implementation. The Server serves on a UDP socket handed to it (which
// appliance/reuseport opens), raises the socket's buffer sizes as quic-go
// recommends and says clearly when the operating system caps them.
//
// The Server runs its own quic.Transport on the socket, so that it can
// issue connection IDs from a ConnectionIDGenerator: appliance/reuseport
// tags them with the process's generation and steers each datagram to
// the process that owns its connection during an upgrade. Shutdown is the
// old process's part of an upgrade: stop accepting, GOAWAY, finish.
package h3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// Config configures a Server. Zero values mean the defaults named.
type Config struct {
	// UDPBufferBytes is the receive and send buffer size asked for on the
	// socket. Zero means 8 MiB (quic-go wants at least 7 MiB).
	UDPBufferBytes int
	// MaxIdleTimeout closes QUIC connections idle this long. Zero means 60 s.
	MaxIdleTimeout time.Duration
	// MaxStreams caps concurrent requests per connection. Zero means 256.
	MaxStreams int64
}

// DefaultConfig returns a Config with the defaults filled in.
func DefaultConfig() Config {
	return Config{UDPBufferBytes: 8 << 20, MaxIdleTimeout: 60 * time.Second, MaxStreams: 256}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.UDPBufferBytes < 0:
		return fillcast.ConfigErrorf("h3", "UDPBufferBytes", "%d is negative", c.UDPBufferBytes)
	case c.MaxIdleTimeout < 0:
		return fillcast.ConfigErrorf("h3", "MaxIdleTimeout", "%v is negative", c.MaxIdleTimeout)
	case c.MaxStreams < 0:
		return fillcast.ConfigErrorf("h3", "MaxStreams", "%d is negative", c.MaxStreams)
	}
	return nil
}

// withDefaults fills the zero fields; c has passed Validate.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.UDPBufferBytes == 0 {
		c.UDPBufferBytes = d.UDPBufferBytes
	}
	if c.MaxIdleTimeout == 0 {
		c.MaxIdleTimeout = d.MaxIdleTimeout
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = d.MaxStreams
	}
	return c
}

// Deps are what a Server works with besides its Config.
type Deps struct {
	// TLS holds the certificate and its private key. Required: QUIC is
	// always encrypted. The h3 ALPN is added to a copy.
	TLS *tls.Config
	// Handler serves requests, normally an Adapter. Required.
	Handler http.Handler
	// ConnectionIDs issues the server's connection IDs. Nil means
	// quic-go's random ones.
	ConnectionIDs quic.ConnectionIDGenerator
	// Log receives the server's messages; nil discards them.
	Log *slog.Logger
}

// Server is an HTTP/3 server on one UDP socket.
type Server struct {
	cfg  Config
	d    Deps
	log  *slog.Logger
	srv  *http3.Server // its TLS and QUIC configs serve the listener too
	once sync.Once
	err  error

	mu     sync.Mutex
	closed bool
	tr     *quic.Transport     // set by Serve
	ln     *quic.EarlyListener // set by Serve
}

// New returns a Server; Serve starts it.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.TLS == nil || (len(d.TLS.Certificates) == 0 && d.TLS.GetCertificate == nil) {
		return nil, errors.New("h3: Deps.TLS is required and must hold a certificate: QUIC is always encrypted")
	}
	if d.Handler == nil {
		return nil, errors.New("h3: Deps.Handler is required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	return &Server{cfg: cfg, d: d, log: d.Log, srv: &http3.Server{
		TLSConfig: http3.ConfigureTLSConfig(d.TLS.Clone()),
		Handler:   d.Handler,
		QUICConfig: &quic.Config{
			MaxIdleTimeout:     cfg.MaxIdleTimeout,
			MaxIncomingStreams: cfg.MaxStreams,
			Allow0RTT:          false, // segment GETs are idempotent, but tokens should not be replayable
		},
		IdleTimeout: cfg.MaxIdleTimeout,
		Logger:      d.Log,
	}}, nil
}

// Serve raises pc's buffers and serves HTTP/3 on it until Shutdown or
// Close. It does not close pc: the socket belongs to whoever opened it
// (the upgrader hands it to the next process). It returns nil after a
// Shutdown or Close.
func (s *Server) Serve(pc net.PacketConn) error {
	SetBuffers(pc, s.cfg.UDPBufferBytes, s.log)
	s.mu.Lock()
	if s.closed || s.tr != nil {
		s.mu.Unlock()
		return nil
	}
	// The Transport does not own pc: closing it stops reading, and the
	// socket is the caller's.
	s.tr = &quic.Transport{Conn: pc, ConnectionIDGenerator: s.d.ConnectionIDs}
	ln, err := s.tr.ListenEarly(s.srv.TLSConfig, s.srv.QUICConfig)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("h3: listen: %w", err)
	}
	s.ln = ln
	s.mu.Unlock()
	s.log.Info("h3: serving HTTP/3", "udp", pc.LocalAddr().String())
	err = s.srv.ServeListener(ln)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, quic.ErrServerClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("h3: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections (handshakes in progress are
// refused), sends GOAWAY on the others and waits for their running
// requests until ctx is done, then closes what is left and stops reading
// the socket. Safe to call twice and together with Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		ln, tr := s.ln, s.tr
		s.mu.Unlock()
		if ln != nil {
			ln.Close()
		}
		err := s.srv.Shutdown(ctx)
		if tr != nil {
			tr.Close()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			s.err = fmt.Errorf("h3: shutdown: %w", err)
		} else if err != nil {
			s.err = fmt.Errorf("h3: shutdown: requests still running: %w", err)
		}
	})
	return s.err
}

// Close aborts every connection at once. Safe to call twice.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Shutdown(ctx)
	return s.srv.Close()
}
