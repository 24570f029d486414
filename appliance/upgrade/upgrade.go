// Package upgrade gives the appliance zero-downtime upgrades with
// cloudflare/tableflip. The running process owns its listening sockets
// through an Upgrader; on SIGHUP it starts the binary again (the new build,
// once it has been installed over the old one) and hands it the TCP
// listener. The new process opens its cache (rebuilding the index),
// starts serving and calls Ready; only then does the old one stop
// accepting, finish its in-flight responses and exit. A new binary that
// fails or times out before Ready leaves the old process serving, and the
// PID file always names the process that is live.
//
// The UDP socket of HTTP/3 is not handed down: a socket shared by two
// processes gives each datagram to whichever reads first, and QUIC
// connections, unlike TCP ones, are not tied to a socket. Each process
// opens its own instead, and appliance/reuseport steers datagrams between
// the two.
package upgrade

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/fillcast/fillcast"
)

// Config configures an Upgrader. Zero values mean the defaults named.
type Config struct {
	// PIDFile, when set, is rewritten (atomically) with the PID of the
	// process that became ready.
	PIDFile string
	// ReadyTimeout is how long a new process may take to call Ready
	// (opening a large cache included). Zero means 2 min.
	ReadyTimeout time.Duration
}

// DefaultConfig returns a Config with the defaults filled in.
func DefaultConfig() Config { return Config{ReadyTimeout: 2 * time.Minute} }

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if c.ReadyTimeout < 0 {
		return fillcast.ConfigErrorf("upgrade", "ReadyTimeout", "%v is negative", c.ReadyTimeout)
	}
	return nil
}

// withDefaults fills the zero fields; c has passed Validate.
func (c Config) withDefaults() Config {
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = DefaultConfig().ReadyTimeout
	}
	return c
}

// Upgrader hands sockets to the next process. There is one per process
// (tableflip allows no more).
type Upgrader struct {
	cfg  Config
	log  *slog.Logger
	upg  *tableflip.Upgrader
	mu   sync.Mutex // serialises Upgrade calls
	once sync.Once

	// parentGone is closed when the parent has exited; nil when there is
	// none. The watch is cancelled and joined by Stop.
	parentGone  chan struct{}
	stopWatch   context.CancelFunc
	watchJoined sync.WaitGroup
}

// New returns the process's Upgrader, picking up the sockets a parent
// passed down, if any.
func New(cfg Config, log *slog.Logger) (*Upgrader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	upg, err := tableflip.New(tableflip.Options{PIDFile: cfg.PIDFile, UpgradeTimeout: cfg.ReadyTimeout})
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	u := &Upgrader{cfg: cfg, log: log, upg: upg}
	ctx, cancel := context.WithCancel(context.Background())
	u.stopWatch = cancel
	if !upg.HasParent() {
		return u, nil
	}
	u.parentGone = make(chan struct{})
	u.watchJoined.Add(1)
	go func() {
		defer u.watchJoined.Done()
		// An error means the parent misbehaved while exiting: it is gone
		// all the same, unless Stop ended the wait.
		u.upg.WaitForParent(ctx)
		if ctx.Err() == nil {
			close(u.parentGone)
		}
	}()
	return u, nil
}

// ParentPID is the process this one was upgraded from (tableflip starts
// the new process as a child of the old), or 0 when there is none.
func (u *Upgrader) ParentPID() int {
	if !u.upg.HasParent() {
		return 0
	}
	return os.Getppid()
}

// ParentExited is closed once the process upgraded from has exited: from
// then on its sockets are closed and it writes to the cache no more. It
// is nil when this process was not started by an upgrade.
func (u *Upgrader) ParentExited() <-chan struct{} { return u.parentGone }

// Listen returns the TCP listener for addr, inherited from the parent when
// there is one.
func (u *Upgrader) Listen(addr string) (net.Listener, error) {
	ln, err := u.upg.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("upgrade: listen tcp %s: %w", addr, err)
	}
	return ln, nil
}

// Ready tells the parent, if any, that this process serves: the parent
// then stops. It writes the PID file.
func (u *Upgrader) Ready() error {
	if err := u.upg.Ready(); err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	u.log.Info("upgrade: ready", "pid", os.Getpid(), "upgraded_from_parent", u.upg.HasParent())
	return nil
}

// Upgrade starts the binary again and waits until it is ready (then Exit
// is closed and this process should stop) or has failed (this process
// keeps serving and the error says why).
func (u *Upgrader) Upgrade() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.log.Info("upgrade: starting the new process")
	if err := u.upg.Upgrade(); err != nil {
		u.log.Error("upgrade: the new process did not become ready; this process keeps serving", "err", err)
		return fmt.Errorf("upgrade: %w", err)
	}
	u.log.Info("upgrade: the new process is ready; this one stops accepting and drains")
	return nil
}

// Exit is closed when this process should stop: after a successful
// upgrade, or after Stop.
func (u *Upgrader) Exit() <-chan struct{} { return u.upg.Exit() }

// Stop prevents further upgrades, closes Exit and ends the watch on the
// parent. Safe to call twice.
func (u *Upgrader) Stop() {
	u.once.Do(func() {
		u.upg.Stop()
		u.stopWatch()
		u.watchJoined.Wait()
	})
}
