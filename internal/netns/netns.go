// Package netns builds a small network of Linux network namespaces with
// iproute2, so that tests can run real processes as if on separate hosts
// and cut them off from each other: the chaos harness of the control
// plane (controlplane/chaos) runs each node in one.
//
// The shape is fixed: a hub namespace holds a bridge, and every host has
// its own namespace with two links. Its cluster link (a veth pair, one
// end in the host, the other on the hub's bridge) carries host-to-host
// traffic; its client link (a veth pair to the namespace that created the
// network, normally the root one) carries the test's own calls. Isolate
// takes a host's cluster link down, so the host can no longer reach the
// others (nor they it) while the test still talks to it: the situation of
// a partitioned leader that clients can still reach.
//
// Names start with Prefix, then the creating process's id and a random
// tag ("fcchaos-1234-9f3a0c-n1"), so that Sweep can remove what an earlier
// process of the same prefix left behind (after a crash or SIGKILL)
// without touching the network of one still running.
package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrUnavailable is returned by Available where namespaces cannot be
// created: not root, or no ip command.
var ErrUnavailable = errors.New("netns: network namespaces unavailable")

// Config describes a network. The zero value of each field means its
// default.
type Config struct {
	// Prefix starts every namespace name; Sweep removes leftovers by it.
	// Letters and digits only, at most 8 characters. Zero means "netns".
	Prefix string
	// Hosts is how many host namespaces there are, 1 to 9. Required.
	Hosts int
	// ClusterNet is the /24 the cluster links take their addresses from
	// (host i gets .10+i). It exists only inside the namespaces, so two
	// networks may use the same one. Zero means 10.218.0.0/24.
	ClusterNet netip.Prefix
	// ClientNet is the /16 from which a free /28 is picked at random for
	// the client links: host i's link is the /30 at offset 4i, the
	// creator's end .1, the host's end .2. These addresses are on the
	// creator's side, so each network needs its own. Zero means
	// 10.219.0.0/16.
	ClientNet netip.Prefix
	// IP is the iproute2 command. Zero means "ip" on the PATH.
	IP string
}

// Validate reports what is wrong with c, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case len(c.Prefix) > 8 || !alnum(c.Prefix):
		return fmt.Errorf("netns: prefix %q: want 1 to 8 letters or digits", c.Prefix)
	case c.Hosts < 1 || c.Hosts > 9:
		return fmt.Errorf("netns: hosts %d: want 1 to 9", c.Hosts)
	case !c.ClusterNet.Addr().Is4() || c.ClusterNet.Bits() != 24:
		return fmt.Errorf("netns: cluster net %s: want an IPv4 /24", c.ClusterNet)
	case !c.ClientNet.Addr().Is4() || c.ClientNet.Bits() != 16:
		return fmt.Errorf("netns: client net %s: want an IPv4 /16", c.ClientNet)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "netns"
	}
	if !c.ClusterNet.IsValid() {
		c.ClusterNet = netip.MustParsePrefix("10.218.0.0/24")
	}
	if !c.ClientNet.IsValid() {
		c.ClientNet = netip.MustParsePrefix("10.219.0.0/16")
	}
	if c.IP == "" {
		c.IP = "ip"
	}
	return c
}

func alnum(s string) bool {
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return s != ""
}

// Host is one host namespace of a Network.
type Host struct {
	// NS is the namespace's name (ip netns exec NS ...).
	NS string
	// ClusterAddr is the host's address on the bridge, which the other
	// hosts reach it at.
	ClusterAddr netip.Addr
	// ClientAddr is the host's end of its client link, which the creator
	// reaches it at.
	ClientAddr netip.Addr

	hubLink  string // the cluster link's end on the bridge
	rootLink string // the client link's end on the creator's side
}

// Network is a hub and its hosts. Create builds it, Close removes it.
type Network struct {
	cfg   Config
	name  string // Prefix-pid-tag: every namespace name starts with it
	hub   string
	hosts []*Host
}

// New describes a network after cfg; it creates nothing (Create does).
func New(cfg Config) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tag := make([]byte, 3)
	rand.Read(tag)
	name := fmt.Sprintf("%s-%d-%s", cfg.Prefix, os.Getpid(), hex.EncodeToString(tag))
	n := &Network{cfg: cfg, name: name, hub: name + "-hub"}
	base := cfg.ClusterNet.Addr().As4()
	for i := range cfg.Hosts {
		a := base
		a[3] = byte(11 + i)
		n.hosts = append(n.hosts, &Host{NS: fmt.Sprintf("%s-n%d", name, i+1), ClusterAddr: netip.AddrFrom4(a),
			hubLink: fmt.Sprintf("h%d", i+1)})
	}
	return n, nil
}

// Hosts returns the network's hosts, in order.
func (n *Network) Hosts() []*Host { return n.hosts }

// Name is the prefix of every namespace of the network.
func (n *Network) Name() string { return n.name }

// Create builds the namespaces, the bridge and the links. On error it
// removes what it built.
func (n *Network) Create(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	client, err := n.pickClientNet(ctx)
	if err != nil {
		return err
	}
	if err := n.ip(ctx, "netns", "add", n.hub); err != nil {
		return err
	}
	steps := [][]string{
		{"-n", n.hub, "link", "add", "br0", "type", "bridge"},
		{"-n", n.hub, "link", "set", "br0", "up"},
	}
	// Root-side names only need to be unique among this creator's links:
	// the tag keeps concurrent networks apart.
	rootTag := strings.TrimPrefix(n.name[strings.LastIndexByte(n.name, '-'):], "-")
	for i, h := range n.hosts {
		c := client.Addr().As4()
		c[3] = byte(4*i + 1)
		mine := netip.AddrFrom4(c)
		c[3]++
		h.ClientAddr = netip.AddrFrom4(c)
		rootLink := fmt.Sprintf("%s%s%d", n.cfg.Prefix[:min(len(n.cfg.Prefix), 4)], rootTag, i+1)
		h.rootLink = rootLink
		steps = append(steps,
			[]string{"netns", "add", h.NS},
			[]string{"-n", h.NS, "link", "set", "lo", "up"},
			// Both ends of each pair are created in their namespaces at
			// once: deleting either namespace deletes the pair.
			[]string{"link", "add", "c0", "netns", h.NS, "type", "veth", "peer", "name", h.hubLink, "netns", n.hub},
			[]string{"-n", h.NS, "addr", "add", netip.PrefixFrom(h.ClusterAddr, n.cfg.ClusterNet.Bits()).String(), "dev", "c0"},
			[]string{"-n", h.NS, "link", "set", "c0", "up"},
			[]string{"-n", n.hub, "link", "set", h.hubLink, "master", "br0"},
			[]string{"-n", n.hub, "link", "set", h.hubLink, "up"},
			[]string{"link", "add", rootLink, "type", "veth", "peer", "name", "e0", "netns", h.NS},
			[]string{"addr", "add", netip.PrefixFrom(mine, 30).String(), "dev", rootLink},
			[]string{"link", "set", rootLink, "up"},
			[]string{"-n", h.NS, "addr", "add", netip.PrefixFrom(h.ClientAddr, 30).String(), "dev", "e0"},
			[]string{"-n", h.NS, "link", "set", "e0", "up"},
		)
	}
	for _, s := range steps {
		if err := n.ip(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}

// pickClientNet picks a /28 of ClientNet that no address of the
// creator's namespace is in.
func (n *Network) pickClientNet(ctx context.Context) (netip.Prefix, error) {
	out, err := exec.CommandContext(ctx, n.cfg.IP, "-4", "-o", "addr", "show").CombinedOutput()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("netns: ip addr show: %v: %s", err, out)
	}
	var used []netip.Prefix
	for _, f := range strings.Fields(string(out)) {
		if p, err := netip.ParsePrefix(f); err == nil {
			used = append(used, p)
		}
	}
	base := n.cfg.ClientNet.Addr().As4()
	for range 64 {
		r := make([]byte, 2)
		rand.Read(r)
		a := base
		a[2], a[3] = r[0], r[1]&0xf0
		cand := netip.PrefixFrom(netip.AddrFrom4(a), 28)
		free := true
		for _, u := range used {
			if u.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return cand, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("netns: no free /28 in %s", n.cfg.ClientNet)
}

// Isolate takes host i's (from 0) cluster link down: it can reach
// neither the hub nor the other hosts, which cannot reach it; its client
// link stays up.
func (n *Network) Isolate(ctx context.Context, i int) error {
	return n.ip(ctx, "-n", n.hub, "link", "set", n.hosts[i].hubLink, "down")
}

// Heal brings host i's cluster link back up.
func (n *Network) Heal(ctx context.Context, i int) error {
	return n.ip(ctx, "-n", n.hub, "link", "set", n.hosts[i].hubLink, "up")
}

// Command returns a command that runs name with args in host i's
// namespace (ip netns exec, which execs the program: the command's
// process is the program's).
func (n *Network) Command(i int, name string, args ...string) *exec.Cmd {
	return exec.Command(n.cfg.IP, append([]string{"netns", "exec", n.hosts[i].NS, name}, args...)...)
}

// Close kills what still runs in the network's namespaces and deletes
// them, and with them every link. Safe to call twice.
func (n *Network) Close() error {
	names := []string{n.hub}
	for _, h := range n.hosts {
		names = append(names, h.NS)
	}
	var errs []error
	// Deleting a namespace deletes its links, but only once the kernel
	// has torn it down, later: delete the creator's ends now.
	for _, h := range n.hosts {
		if h.rootLink == "" {
			continue
		}
		if out, err := exec.Command(n.cfg.IP, "link", "del", h.rootLink).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
			errs = append(errs, fmt.Errorf("netns: ip link del %s: %v: %s", h.rootLink, err, strings.TrimSpace(string(out))))
		}
	}
	for _, ns := range names {
		errs = append(errs, removeNS(n.cfg.IP, ns))
	}
	return errors.Join(errs...)
}

// ip runs the ip command with args.
func (n *Network) ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, n.cfg.IP, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netns: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeNS kills the processes in namespace ns and deletes it; a
// namespace already gone is not an error.
func removeNS(ipCmd, ns string) error {
	if _, err := os.Stat("/run/netns/" + ns); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	// A namespace outlives its name while processes hold it: kill them
	// first, so its links (and the addresses on the creator's side) go.
	pids, _ := exec.Command(ipCmd, "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(pids)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var out []byte
	var err error
	// The kernel may still be tearing a killed process down.
	for range 50 {
		if out, err = exec.Command(ipCmd, "netns", "del", ns).CombinedOutput(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("netns: ip netns del %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
}

// Sweep removes the namespaces (and so the links) of networks with
// prefix whose creating process is gone, killing what still runs in
// them. Networks of running processes are left alone.
func Sweep(prefix, ipCmd string) error {
	if ipCmd == "" {
		ipCmd = "ip"
	}
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netns: sweep: %w", err)
	}
	var errs []error
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix+"-")
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		errs = append(errs, removeNS(ipCmd, e.Name()))
	}
	return errors.Join(errs...)
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Available reports nil where this process can create namespaces (root,
// with the ip command, allowed to add a namespace), else an error
// wrapping ErrUnavailable that says why not. Any other failure of the
// probe is returned as it is, not as ErrUnavailable: it is a fault to
// report, not a reason to skip.
func Available(ipCmd string) error {
	if ipCmd == "" {
		ipCmd = "ip"
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (euid is %d)", ErrUnavailable, os.Geteuid())
	}
	if _, err := exec.LookPath(ipCmd); err != nil {
		return fmt.Errorf("%w: %v (install iproute2)", ErrUnavailable, err)
	}
	tag := make([]byte, 4)
	rand.Read(tag)
	probe := fmt.Sprintf("netnsprobe-%d-%s", os.Getpid(), hex.EncodeToString(tag))
	out, err := exec.Command(ipCmd, "netns", "add", probe).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not permitted") || strings.Contains(string(out), "Permission denied") {
			return fmt.Errorf("%w: ip netns add: %s", ErrUnavailable, strings.TrimSpace(string(out)))
		}
		return fmt.Errorf("netns: probe: ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return removeNS(ipCmd, probe)
}
