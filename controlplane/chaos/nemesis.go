package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/fillcast/fillcast/internal/netns"
)

// NemesisConfig paces the faults. The zero value of each field means its
// default.
type NemesisConfig struct {
	// Calm is the most time between recovering from one fault and the
	// next (at least half of it, at random). Zero means 4 s.
	Calm time.Duration
	// Hold is the most time a fault lasts (at least half of it). Zero
	// means 8 s.
	Hold time.Duration
	// Double is the chance that a second fault, on the leader elected
	// after the first, follows before recovery: with both, a majority
	// is gone for a while. Zero means 0.3; negative means never.
	Double float64
	// Seed seeds the choices; zero means from the clock.
	Seed uint64
}

func (c NemesisConfig) withDefaults() NemesisConfig {
	if c.Calm == 0 {
		c.Calm = 4 * time.Second
	}
	if c.Hold == 0 {
		c.Hold = 8 * time.Second
	}
	if c.Double == 0 {
		c.Double = 0.3
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	return c
}

// Nemesis injects faults into a cluster: it finds the leader and either
// kills it (SIGKILL) or partitions it from the other nodes (clients
// still reach it), holds the fault, then heals partitions and restarts
// killed nodes with their data, and does it again.
type Nemesis struct {
	cfg     NemesisConfig
	cluster *Cluster
	net     *netns.Network
	hist    *History
	log     *slog.Logger

	killed      map[int]bool
	partitioned map[int]bool
}

// NewNemesis describes faults on cluster, whose nodes run on net's
// hosts; it starts nothing.
func NewNemesis(cfg NemesisConfig, cluster *Cluster, net *netns.Network, hist *History, log *slog.Logger) *Nemesis {
	return &Nemesis{cfg: cfg.withDefaults(), cluster: cluster, net: net, hist: hist, log: log,
		killed: map[int]bool{}, partitioned: map[int]bool{}}
}

// Run injects faults until ctx is done, then heals and restarts every
// node (with a context of its own) and returns. An error is a fault
// the harness could not inject or undo.
func (n *Nemesis) Run(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(n.cfg.Seed, 0x6e656d))
	between := func(max time.Duration) time.Duration {
		return max/2 + time.Duration(rng.Int64N(int64(max/2)+1))
	}
	var err error
	for err == nil && sleep(ctx, between(n.cfg.Calm)) {
		if err = n.fault(ctx, rng); err == nil && rng.Float64() < n.cfg.Double && sleep(ctx, between(n.cfg.Hold)/2) {
			err = n.fault(ctx, rng)
		}
		if err == nil {
			sleep(ctx, between(n.cfg.Hold))
			err = n.recover(context.WithoutCancel(ctx))
		}
	}
	return errors.Join(err, n.recover(context.WithoutCancel(ctx)))
}

// fault kills or partitions the leader among the nodes still healthy;
// none found in a while, it does nothing.
func (n *Nemesis) fault(ctx context.Context, rng *rand.Rand) error {
	// A node that crashed (on restart, say) ends the run: the rest would
	// test a smaller cluster than meant.
	if err := n.cluster.Crashed(); err != nil {
		return err
	}
	skip := map[int]bool{}
	for i := range n.cluster.Size() {
		skip[i] = n.killed[i] || n.partitioned[i]
	}
	leader := -1
	for deadline := time.Now().Add(10 * time.Second); leader < 0 && time.Now().Before(deadline); {
		if leader = n.cluster.Leader(ctx, skip); leader < 0 && !sleep(ctx, 200*time.Millisecond) {
			return nil
		}
	}
	if leader < 0 {
		n.log.Info("chaos: no leader to fault")
		return nil
	}
	if rng.IntN(2) == 0 {
		n.log.Info("chaos: kill", "node", leader+1)
		n.hist.Fault(leader, "kill")
		n.killed[leader] = true
		return n.cluster.Kill(leader)
	}
	n.log.Info("chaos: partition", "node", leader+1)
	n.hist.Fault(leader, "partition")
	n.partitioned[leader] = true
	return n.net.Isolate(ctx, leader)
}

// recover heals every partitioned node and restarts every killed one.
func (n *Nemesis) recover(ctx context.Context) error {
	for i := range n.cluster.Size() {
		if n.partitioned[i] {
			n.log.Info("chaos: heal", "node", i+1)
			if err := n.net.Heal(ctx, i); err != nil {
				return err
			}
			n.hist.Fault(i, "heal")
			delete(n.partitioned, i)
		}
		if n.killed[i] {
			n.log.Info("chaos: restart", "node", i+1)
			if err := n.cluster.Start(i); err != nil {
				return fmt.Errorf("chaos: restart n%d: %w", i+1, err)
			}
			n.hist.Fault(i, "restart")
			delete(n.killed, i)
		}
	}
	return nil
}

// sleep waits d or until ctx is done, and reports whether ctx is still
// live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
