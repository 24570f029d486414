// Package process runs one appliance process through its life: the
// sockets taken from the upgrader (appliance/upgrade) or opened in the
// HTTP/3 port's reuseport group (appliance/reuseport), profiling, the
// appliance itself, and the hand-overs of a zero-downtime upgrade: the
// new process takes HTTP/3 over just before it reports ready, the old one
// drains, and the new one steers the group alone once the old one has
// exited. A second upgrade waits until then: the group's order is only
// known with two sockets in it. cmd/fillcast parses the flags and calls
// Run.
package process

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance"
	"github.com/fillcast/fillcast/appliance/reuseport"
	"github.com/fillcast/fillcast/appliance/upgrade"
	"github.com/fillcast/fillcast/internal/profiling"
)

// Options are the process's settings around appliance.Config. Zero
// values mean the defaults named.
type Options struct {
	// PIDFile, if set, always names the live process, across upgrades.
	PIDFile string
	// ReadyTimeout bounds how long an upgraded process may take to
	// become ready. Zero means upgrade.DefaultConfig's.
	ReadyTimeout time.Duration
	// AdminHTTP, if set, is the admin-only listener of /debug/pprof.
	AdminHTTP string
	// Profiling configures continuous profiling (off by default).
	Profiling profiling.Config
}

// Validate reports the first problem of o as a *fillcast.ConfigError
// naming the field by its path in Options.
func (o Options) Validate() error {
	// upgrade.Config's fields have the names of the Options they are.
	if err := o.upgradeConfig().Validate(); err != nil {
		return err
	}
	if err := o.Profiling.Validate(); err != nil {
		return fillcast.InField("Profiling", err)
	}
	return nil
}

func (o Options) upgradeConfig() upgrade.Config {
	return upgrade.Config{PIDFile: o.PIDFile, ReadyTimeout: o.ReadyTimeout}
}

// Run runs one appliance process: it takes its TCP listener from the
// upgrader (inherited on an upgrade) and opens its own HTTP/3 socket in
// the port's reuseport group, opens the cache, steers new HTTP/3
// connections to itself and signals ready, and then serves until a value
// on hup (SIGHUP) hands over to a new process, or ctx (SIGTERM) drains it.
// d.AdminToken also guards the pprof listener. A configuration error is a
// *fillcast.ConfigError naming a field of cfg or of ops.
func Run(ctx context.Context, cfg appliance.Config, ops Options, d appliance.Deps, hup <-chan os.Signal) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := ops.Validate(); err != nil {
		return err
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	log := d.Log
	// The sockets are taken before appliance.New opens the cache, so the
	// address is read with its default here.
	cfg = cfg.WithDefaults()
	upg, err := upgrade.New(ops.upgradeConfig(), log)
	if err != nil {
		return err
	}
	defer upg.Stop()
	l := appliance.Listeners{ParentExited: upg.ParentExited()}
	if l.TCP, err = upg.Listen(cfg.HTTP); err != nil {
		return err
	}
	var udp *reuseport.Socket
	if cfg.H3 {
		rc := reuseport.DefaultConfig()
		rc.Addr = cfg.HTTP
		rc.ParentPID = upg.ParentPID()
		if udp, err = reuseport.Listen(rc, log); err != nil {
			l.TCP.Close()
			return err
		}
		// Closed before the process exits, so the socket has left the
		// group when the next process sees this one gone.
		defer udp.Close()
		l.UDP, l.ConnectionIDs = udp.Conn(), udp.ConnectionIDGenerator()
	}
	prof, err := profiling.Start(ops.Profiling, profiling.Deps{AdminToken: d.AdminToken, Log: log})
	if err != nil {
		l.TCP.Close()
		return err
	}
	defer prof.Close()
	if ops.AdminHTTP != "" {
		aln, err := upg.Listen(ops.AdminHTTP)
		if err != nil {
			l.TCP.Close()
			return err
		}
		prof.ServeAdmin(aln)
	}
	// Opening the cache rebuilds the disk index: the parent, if any, keeps
	// serving meanwhile.
	a, err := appliance.New(cfg, d)
	if err != nil {
		l.TCP.Close()
		return err
	}
	serveCtx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- a.ServeListeners(serveCtx, l) }()
	if udp != nil {
		if err := udp.TakeOver(); err != nil {
			stop()
			return errors.Join(err, <-done)
		}
	}
	if err := upg.Ready(); err != nil {
		stop()
		return errors.Join(err, <-done)
	}
	// upgrade starts the next process; when it fails after the new
	// process took HTTP/3 over, steering goes back to this socket alone.
	upgrade := func() {
		if err := upg.Upgrade(); err != nil && udp != nil {
			if aerr := udp.Alone(); aerr != nil {
				log.Error("appliance: HTTP/3 steering not reset after a failed upgrade", "err", aerr)
			}
		}
	}
	parentGone := upg.ParentExited()
	pending := false // a SIGHUP came while the previous process still drained
	for {
		select {
		case <-parentGone:
			// The old process has exited: its socket has left the group
			// (the appliance adopts its cache files itself).
			parentGone = nil
			if udp != nil {
				if err := udp.Alone(); err != nil {
					log.Warn("appliance: HTTP/3 steering not reset after the upgrade", "err", err)
				}
			}
			if pending {
				pending = false
				upgrade()
			}
		case <-hup:
			if parentGone != nil {
				// Two generations at most: the reuseport group's order
				// is only known with two sockets in it.
				log.Info("appliance: upgrade deferred until the previous process has exited")
				pending = true
				continue
			}
			upgrade()
		case <-upg.Exit():
			log.Info("appliance: handing over to the upgraded process; finishing in-flight responses", "timeout", cfg.ShutdownTimeout)
			stop()
			return <-done
		case <-ctx.Done():
			a.Drain(context.Background())
			upg.Stop()
			stop()
			return <-done
		case err := <-done:
			return err
		}
	}
}
