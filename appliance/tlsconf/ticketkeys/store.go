// Package ticketkeys keeps the keys that encrypt TLS session tickets in a
// file that every process serving the same names reads: both processes
// of a zero-downtime upgrade (appliance/upgrade), and the appliances of a
// site given the same file by configuration management. A ticket one of
// them issued then resumes on any other, so a player's reconnection after
// an upgrade costs a PSK handshake instead of a full one.
//
// One process may own the file (Config.Rotate): it creates it, adds a key
// every Rotate, dated Lead ahead so that every reader has it before it
// encrypts, and drops the keys whose tickets are all older than Lifetime.
// Writes are atomic and serialised across processes by a lock file, and
// every reader re-reads the file when it changes (the caller polls, see
// appliance/tlsconf). A Store hands its keys to crypto/tls through
// WrapSession and UnwrapSession, which survive tls.Config.Clone (the
// HTTP/1.1 listener and quic-go each serve a clone).
package ticketkeys

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/atomicfile"
	"golang.org/x/sys/unix"
)

// Config configures a Store. Zero values mean the defaults named.
type Config struct {
	// File is the key file. Required. It must not be readable by group
	// or others.
	File string
	// Rotate, when positive, makes this process an owner of File: it
	// creates File when missing and adds a key every Rotate. Zero: File
	// is only read, and whoever provides it rotates it.
	Rotate time.Duration
	// Lifetime is how long a ticket resumes at least: an owner drops a
	// key Lifetime after its successor began to encrypt. Zero means 24 h.
	Lifetime time.Duration
	// Lead is how far ahead of now an owner dates a new key: longer than
	// it takes every reader to see the change. Zero means 10 s.
	Lead time.Duration
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.File == "":
		return fillcast.ConfigErrorf("ticketkeys", "File", "required: the session ticket key file")
	case c.Rotate < 0:
		return fillcast.ConfigErrorf("ticketkeys", "Rotate", "%v is negative", c.Rotate)
	case c.Lifetime < 0:
		return fillcast.ConfigErrorf("ticketkeys", "Lifetime", "%v is negative", c.Lifetime)
	case c.Lead < 0:
		return fillcast.ConfigErrorf("ticketkeys", "Lead", "%v is negative", c.Lead)
	case c.Rotate > 0 && c.Rotate <= c.withDefaults().Lead:
		return fillcast.ConfigErrorf("ticketkeys", "Rotate", "%v: want more than the lead of a new key, %v", c.Rotate, c.withDefaults().Lead)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Lifetime == 0 {
		c.Lifetime = 24 * time.Hour
	}
	if c.Lead == 0 {
		c.Lead = 10 * time.Second
	}
	return c
}

// Deps are what a Store works with besides its Config.
type Deps struct {
	// Now is the clock keys are dated by; nil means time.Now.
	Now func() time.Time
	// Rand generates keys; nil means crypto/rand.
	Rand io.Reader
	// Log receives reloads and rotations (never a key); nil discards.
	Log *slog.Logger
}

// Store holds the keys read from the file.
type Store struct {
	cfg Config
	d   Deps
	// keys holds the keys through SetSessionTicketKeys; its EncryptTicket
	// and DecryptTicket are WrapSession and UnwrapSession.
	keys *tls.Config

	mu     sync.Mutex // serialises Load, Reload, Tick and Status
	cur    []Key      // newest first; nil before Load
	active time.Time  // Created of the key installed to encrypt
}

// New returns a Store; Load reads the file.
func New(cfg Config, d Deps) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Store{cfg: cfg.withDefaults(), d: d, keys: &tls.Config{}}, nil
}

// WrapSession is a tls.Config.WrapSession: it encrypts the ticket with
// the active key.
func (s *Store) WrapSession(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	return s.keys.EncryptTicket(cs, ss)
}

// UnwrapSession is a tls.Config.UnwrapSession: a ticket no key opens
// (dropped, or another site's) means a full handshake, not an error.
func (s *Store) UnwrapSession(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	return s.keys.DecryptTicket(identity, cs)
}

// Install sets w's WrapSession and UnwrapSession to the Store's.
func (s *Store) Install(w *tls.Config) {
	w.WrapSession, w.UnwrapSession = s.WrapSession, s.UnwrapSession
}

// Load reads the file (an owner creates it, or rotates it when due) and
// starts using its keys. A missing, unreadable or malformed file, or one
// readable by group or others, is an error that says which.
func (s *Store) Load() error {
	if s.cfg.Rotate == 0 {
		return s.Reload()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotate(true)
}

// Reload reads the file again after it changed. On an error the keys in
// use stay, and the error says why.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, err := readFile(s.cfg.File)
	if err != nil {
		return err
	}
	s.setKeys(keys)
	return nil
}

// Tick promotes a key whose date has come and, for an owner, rotates
// when due. Call it every few seconds.
func (s *Store) Tick() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil
	}
	now := s.d.Now()
	if s.cfg.Rotate > 0 {
		if _, changed, _ := plan(s.cur, now, s.cfg.Rotate, s.cfg.Lifetime, s.cfg.Lead, zeroKey); changed {
			return s.rotate(false)
		}
	}
	if s.cur[active(s.cur, now)].Created != s.active {
		s.setKeys(s.cur)
	}
	return nil
}

func zeroKey() ([KeySize]byte, error) { return [KeySize]byte{}, nil }

// rotate, under the file's lock, reads the file as another owner may have
// left it, adds and drops keys as due, writes it back and uses it. At
// start a malformed file is an error; later, the keys in memory are
// written back instead, with the new one.
func (s *Store) rotate(starting bool) error {
	unlock, err := lockFile(s.cfg.File + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	keys, err := readFile(s.cfg.File)
	var bad *BadFileError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		keys = s.cur
	case err != nil && starting:
		return err // an operator's mistake to correct, not ours to hide
	case errors.As(err, &bad):
		s.d.Log.Warn("ticketkeys: the key file is unusable; rewriting it, 0600, from the keys in use", "file", s.cfg.File, "err", err)
		keys = s.cur
	case err != nil:
		return err
	}
	out, changed, err := plan(keys, s.d.Now(), s.cfg.Rotate, s.cfg.Lifetime, s.cfg.Lead, s.fresh)
	if err != nil {
		return err
	}
	if changed {
		if err := atomicfile.WriteFileMode(s.cfg.File, Format(out), 0o600); err != nil {
			return fmt.Errorf("ticketkeys: %w", err)
		}
		s.d.Log.Info("ticketkeys: rotated", "file", s.cfg.File, "keys", len(out), "newest_from", out[0].Created)
	}
	s.setKeys(out)
	return nil
}

func (s *Store) fresh() ([KeySize]byte, error) {
	var k [KeySize]byte
	if _, err := io.ReadFull(s.d.Rand, k[:]); err != nil {
		return k, fmt.Errorf("ticketkeys: new key: %w", err)
	}
	return k, nil
}

// setKeys hands keys to crypto/tls, the active one first.
func (s *Store) setKeys(keys []Key) {
	i := active(keys, s.d.Now())
	list := make([][KeySize]byte, 0, len(keys))
	list = append(list, keys[i].Secret)
	for j, k := range keys {
		if j != i {
			list = append(list, k.Secret)
		}
	}
	s.keys.SetSessionTicketKeys(list)
	s.cur, s.active = keys, keys[i].Created
}

// Status describes the keys in use (never the keys themselves).
type Status struct {
	// File is the key file.
	File string `json:"file"`
	// Keys is how many keys decrypt tickets.
	Keys int `json:"keys"`
	// ActiveSince is the date of the key that encrypts.
	ActiveSince time.Time `json:"active_since"`
	// Owner is whether this process rotates the file.
	Owner bool `json:"owner"`
}

// Status reports the keys in use.
func (s *Store) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{File: s.cfg.File, Keys: len(s.cur), ActiveSince: s.active, Owner: s.cfg.Rotate > 0}
}

// BadFileError is a key file that exists but cannot be used as it is:
// others may read it, or it does not parse.
type BadFileError struct {
	// Path is the file.
	Path string
	// Problem says what is wrong, never quoting a key.
	Problem string
}

func (e *BadFileError) Error() string { return "ticketkeys: " + e.Path + ": " + e.Problem }

// readFile reads and parses a key file, refusing one that others can read.
func readFile(path string) ([]Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ticketkeys: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ticketkeys: %w", err)
	}
	if m := fi.Mode(); !m.IsRegular() || m.Perm()&0o077 != 0 {
		return nil, &BadFileError{Path: path, Problem: fmt.Sprintf("mode %v: readable by group or others, but session ticket keys are secrets (chmod 600 %s)", m, path)}
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("ticketkeys: read %s: %w", path, err)
	}
	keys, err := parse(b)
	if err != nil {
		return nil, &BadFileError{Path: path, Problem: err.Error()}
	}
	return keys, nil
}

// lockFile takes an exclusive flock on path (created 0600) and returns
// its release.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ticketkeys: lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ticketkeys: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}
