// Package tlsconf is the appliance's server TLS: the *tls.Config that
// both HTTP/1.1 (crypto/tls under fasthttp) and HTTP/3 (quic-go) serve
// clones of, kept current while the appliance runs. Its certificate comes
// through GetCertificate, so that a renewed certificate file, or a fresh
// OCSP staple (appliance/tlsconf/ocspstaple), replaces the one served
// without a race; its session tickets are encrypted with the keys of a
// shared file (appliance/tlsconf/ticketkeys), so that a session begun
// with one process of an upgrade, or one appliance of a site, resumes on
// the next. New does no I/O; Load reads the files; Run watches them,
// rotates the keys and refreshes the staple.
package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/tlsconf/ocspstaple"
	"github.com/fillcast/fillcast/appliance/tlsconf/ticketkeys"
	"golang.org/x/crypto/ocsp"
)

// Server keeps the served TLS configuration current.
type Server struct {
	cfg  Config
	d    Deps
	log  *slog.Logger
	keys *ticketkeys.Store // nil: this process's own keys
	tls  *tls.Config

	mu  sync.Mutex // serialises the writers of cur
	cur atomic.Pointer[served]
	// certChanged wakes the OCSP loop when the leaf changed.
	certChanged chan struct{}
	ocspErr     atomic.Pointer[string] // the last fetch's problem; "" after a success
	files       stamps                 // the watch's view of the files, owned by Run's watch
	resumed     atomic.Int64
	full        atomic.Int64
}

// served is what GetCertificate serves, and what it came from.
type served struct {
	cert      *tls.Certificate // OCSPStaple set while stapled
	leaf      *x509.Certificate
	issuer    *x509.Certificate // nil when the chain does not hold it
	responder string            // "" when the leaf names none
	staple    *ocsp.Response    // nil when none is stapled
}

// New returns a Server; Load reads its files.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.HTTP == nil {
		d.HTTP = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, IdleConnTimeout: time.Minute}}
	}
	s := &Server{cfg: cfg.withDefaults(), d: d, log: d.Log, certChanged: make(chan struct{}, 1)}
	s.tls = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.getCertificate, VerifyConnection: s.count}
	return s, nil
}

func (c Config) ticketConfig() ticketkeys.Config {
	return ticketkeys.Config{File: c.TicketKeys, Rotate: c.TicketRotate, Lifetime: c.TicketLifetime, Lead: 5 * c.Poll}
}

// Load reads the certificate, its key and the ticket keys. A problem is
// a *fillcast.ConfigError naming the field (and the file) at fault.
func (s *Server) Load() error {
	cur, err := s.readCert()
	if err != nil {
		return err
	}
	s.cur.Store(cur)
	s.logStapling(cur)
	if s.cfg.TicketKeys != "" {
		if err := s.loadKeys(); err != nil {
			return err
		}
	}
	s.files = s.stat()
	return nil
}

func (s *Server) loadKeys() error {
	keys, err := ticketkeys.New(s.cfg.ticketConfig(), ticketkeys.Deps{Now: s.d.Now, Log: s.log})
	if err == nil {
		err = keys.Load()
	}
	var bad *ticketkeys.BadFileError
	isBad := errors.As(err, &bad)
	switch {
	case err == nil:
		keys.Install(s.tls)
		s.keys = keys
		st := keys.Status()
		s.log.Info("tlsconf: session tickets resume across processes sharing the key file",
			"file", st.File, "keys", st.Keys, "rotating", st.Owner)
	case s.cfg.TicketKeysOptional && !isBad:
		s.log.Warn("tlsconf: session ticket key file unusable: tickets will not survive an upgrade", "file", s.cfg.TicketKeys, "err", err)
	case isBad && s.cfg.TicketRotate > 0:
		return fillcast.ConfigErrorf("tlsconf", "TicketKeys", "%v: correct it, or remove it and a new one is written (tickets of its keys then take full handshakes)", err)
	default:
		return fillcast.ConfigErrorf("tlsconf", "TicketKeys", "%v", err)
	}
	return nil
}

// TLS returns the configuration to serve (a clone per listener is fine:
// the certificate and the tickets are reached through its callbacks).
func (s *Server) TLS() *tls.Config { return s.tls }

func (s *Server) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load().cert, nil
}

// count counts handshakes, resumed or not (tls.Config.VerifyConnection:
// it is called for both).
func (s *Server) count(cs tls.ConnectionState) error {
	if cs.DidResume {
		s.resumed.Add(1)
	} else {
		s.full.Add(1)
	}
	return nil
}

// readCert reads the key pair and finds the leaf's issuer and responder.
func (s *Server) readCert() (*served, error) {
	certPEM, err := os.ReadFile(s.cfg.CertFile)
	if err != nil {
		return nil, fillcast.ConfigErrorf("tlsconf", "CertFile", "read the certificate: %v", err)
	}
	keyPEM, err := os.ReadFile(s.cfg.KeyFile)
	if err != nil {
		return nil, fillcast.ConfigErrorf("tlsconf", "KeyFile", "read the private key: %v", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fillcast.ConfigErrorf("tlsconf", "CertFile", "certificate %s with private key %s: %v", s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	cur := &served{cert: &cert, leaf: cert.Leaf, responder: ocspstaple.Responder(cert.Leaf)}
	if len(cert.Certificate) > 1 {
		issuer, err := x509.ParseCertificate(cert.Certificate[1])
		if err == nil && cert.Leaf.CheckSignatureFrom(issuer) == nil {
			cur.issuer = issuer
		}
	}
	return cur, nil
}

func (s *Server) logStapling(cur *served) {
	switch {
	case cur.responder == "":
		s.log.Debug("tlsconf: the certificate names no OCSP responder: no stapling", "file", s.cfg.CertFile)
	case cur.issuer == nil:
		s.log.Warn("tlsconf: the certificate names an OCSP responder but its file does not hold the issuer next (the chain): no stapling",
			"file", s.cfg.CertFile, "responder", cur.responder)
	}
}

// Run watches the files and refreshes the OCSP staple until ctx is done.
// Call it after a Load that succeeded.
func (s *Server) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.watch(ctx) })
	wg.Go(func() { s.staple(ctx) })
	wg.Wait()
	s.d.HTTP.CloseIdleConnections() // the responder's: no goroutine outlives Run
}

// watch polls the files: a renewed certificate is served from then on, a
// key file another process changed is read again, and an owner rotates.
// A file that does not load keeps what is in use, with a warning.
func (s *Server) watch(ctx context.Context) {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.stat()
		if now.cert != s.files.cert || now.key != s.files.key {
			if err := s.reloadCert(); err != nil {
				s.log.Warn("tlsconf: the certificate files changed but do not load: serving the previous certificate", "err", err)
			}
		}
		if s.keys == nil {
			s.files = now
			continue
		}
		if now.tickets != s.files.tickets {
			if err := s.keys.Reload(); err != nil {
				s.log.Warn("tlsconf: the session ticket key file changed but does not load: keeping the keys in use", "err", err)
			}
		}
		s.files = now
		err := s.keys.Tick()
		if msg := fmt.Sprint(err); err != nil && msg != lastErr {
			s.log.Warn("tlsconf: session ticket key rotation", "err", err)
		}
		lastErr = fmt.Sprint(err)
	}
}

// reloadCert serves the certificate files as they are now. The staple
// stays if the leaf is the same; otherwise the OCSP loop fetches anew.
func (s *Server) reloadCert() error {
	next, err := s.readCert()
	if err != nil {
		return err
	}
	s.mu.Lock()
	prev := s.cur.Load()
	same := bytes.Equal(prev.leaf.Raw, next.leaf.Raw)
	// Without the issuer the OCSP loop no longer refreshes, nor wakes to
	// unstaple at NextUpdate: a staple kept would be served expired.
	if same && prev.staple != nil && next.issuer != nil {
		next.staple = prev.staple
		next.cert.OCSPStaple = prev.staple.Raw
	}
	s.cur.Store(next)
	s.mu.Unlock()
	s.log.Info("tlsconf: certificate reloaded", "file", s.cfg.CertFile, "not_after", next.leaf.NotAfter, "same_leaf", same)
	if !same {
		s.logStapling(next)
		select {
		case s.certChanged <- struct{}{}:
		default:
		}
	}
	return nil
}

// stamp tells a file's versions apart: an atomic replacement changes the
// inode, an edit in place the size or the modification time.
type stamp struct {
	ino, size int64
	mtime     time.Time
	err       bool
}

type stamps struct{ cert, key, tickets stamp }

func (s *Server) stat() stamps {
	one := func(path string) stamp {
		if path == "" {
			return stamp{}
		}
		fi, err := os.Stat(path)
		if err != nil {
			return stamp{err: true}
		}
		st := stamp{size: fi.Size(), mtime: fi.ModTime()}
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			st.ino = int64(sys.Ino)
		}
		return st
	}
	return stamps{cert: one(s.cfg.CertFile), key: one(s.cfg.KeyFile), tickets: one(s.cfg.TicketKeys)}
}
