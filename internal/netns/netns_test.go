package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// helperEnv makes the test binary a tiny TCP server or client instead of
// running the tests, so that the tests can run it inside a namespace.
const helperEnv = "NETNS_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

// helper serves "hi" on "serve ADDR", or on "dial ADDR" exits 0 if ADDR
// answered "hi" within a second.
func helper(mode string) int {
	verb, addr, _ := strings.Cut(mode, " ")
	switch verb {
	case "serve":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				return 2
			}
			fmt.Fprintln(c, "hi")
			c.Close()
		}
	case "dial":
		if err := sayHi(addr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	return 2
}

func sayHi(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hi\n" {
		return fmt.Errorf("read %q: %v", line, err)
	}
	return nil
}

// needNamespaces skips the test where namespaces cannot be created, and
// fails it where the probe failed for another reason.
func needNamespaces(t *testing.T) {
	t.Helper()
	if err := Available(""); errors.Is(err, ErrUnavailable) {
		t.Skipf("network namespaces cannot be created here: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Hosts: 3}, true},
		{"no hosts", Config{}, false},
		{"ten hosts", Config{Hosts: 10}, false},
		{"long prefix", Config{Hosts: 1, Prefix: "muchtoolong"}, false},
		{"dash in prefix", Config{Hosts: 1, Prefix: "a-b"}, false},
		{"cluster net not /24", Config{Hosts: 1, ClusterNet: mustPrefix("10.1.0.0/16")}, false},
		{"client net not /16", Config{Hosts: 1, ClientNet: mustPrefix("10.1.2.0/24")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestIsolate: a host reaches another over the cluster link and the
// creator reaches it over its client link; isolated, only the client
// link works; healed, both do again; closed, nothing is left.
func TestIsolate(t *testing.T) {
	needNamespaces(t)
	if err := Sweep("fcnstest", ""); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Prefix: "fcnstest", Hosts: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := n.Create(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	h := n.Hosts()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := n.Command(0, exe)
	srv.Env = append(os.Environ(), helperEnv+"=serve 0.0.0.0:7000")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	fromRoot := func() bool { return sayHi(h[0].ClientAddr.String()+":7000") == nil }
	fromPeer := func() bool {
		c := n.Command(1, exe)
		c.Env = append(os.Environ(), helperEnv+"=dial "+h[0].ClusterAddr.String()+":7000")
		return c.Run() == nil
	}
	poll.Until(t, 10*time.Second, "host 1 serving its client link", fromRoot)
	poll.Until(t, 10*time.Second, "host 2 reaching host 1", fromPeer)

	if err := n.Isolate(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if fromPeer() {
		t.Error("host 2 reached host 1 while host 1 was isolated")
	}
	if !fromRoot() {
		t.Error("the creator could not reach an isolated host over its client link")
	}
	if err := n.Heal(ctx, 0); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "host 2 reaching host 1 after healing", fromPeer)

	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, left := range leftovers(t, n.Name()) {
		t.Errorf("left after Close: %s", left)
	}
	if fromRoot() {
		t.Error("the creator still reaches host 1 after Close")
	}
}

// TestSweep removes the namespaces of a prefix whose creator is gone and
// keeps those of a live one and of other prefixes.
func TestSweep(t *testing.T) {
	needNamespaces(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{ // name: whether Sweep should remove it
		fmt.Sprintf("fcsweep-%d-aaaaaa-n1", dead.Process.Pid):  true,
		fmt.Sprintf("fcsweep-%d-aaaaaa-n1", os.Getpid()):       false,
		fmt.Sprintf("fcsweepx-%d-aaaaaa-n1", dead.Process.Pid): false,
	}
	for name := range names {
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", name, err, out)
		}
		t.Cleanup(func() { removeNS("ip", name) })
	}
	if err := Sweep("fcsweep", ""); err != nil {
		t.Fatal(err)
	}
	for name, gone := range names {
		_, err := os.Stat("/run/netns/" + name)
		if got := errors.Is(err, os.ErrNotExist); got != gone {
			t.Errorf("%s removed = %v, want %v", name, got, gone)
		}
	}
}

// leftovers lists the namespaces and links whose names start with the
// network's.
func leftovers(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name) {
			out = append(out, "namespace "+e.Name())
		}
	}
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	tag := name[strings.LastIndexByte(name, '-')+1:]
	for _, l := range strings.Split(string(links), "\n") {
		if strings.Contains(l, tag) {
			out = append(out, "link "+l)
		}
	}
	return out
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
