package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance"
	"github.com/fillcast/fillcast/appliance/h3/h3test"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/internal/poll"
)

// controlPlaneProc is a control-plane node running the real binary.
type controlPlaneProc struct {
	url    string
	addrs  cpAddrs
	cmd    *exec.Cmd
	stderr logFile
	exited chan struct{}
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	port, err := h3test.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// cpAddrs are a control-plane process's addresses, kept to start it
// again where it was.
type cpAddrs struct{ http, raft, events string }

func startControlPlaneProc(t *testing.T, bin string, e *opsEnv, id string, join string) *controlPlaneProc {
	t.Helper()
	return startControlPlaneProcAt(t, bin, e, id, join, cpAddrs{freeLoopback(t), freeLoopback(t), freeLoopback(t)})
}

// startControlPlaneProcAt starts node id at addrs, with its data in the
// test's directory (kept from an earlier run of the same id), and extra
// flags.
func startControlPlaneProcAt(t *testing.T, bin string, e *opsEnv, id string, join string, addrs cpAddrs, extra ...string) *controlPlaneProc {
	t.Helper()
	httpAddr := addrs.http
	lf, err := os.OpenFile(filepath.Join(e.dir, id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	args := []string{"controlplane", "--id", id, "--data", filepath.Join(e.dir, id), "--http", httpAddr, "--raft", addrs.raft,
		"--events-listen", addrs.events, "--token-keys", e.keysFile, "--admin-token", "adm", "--log-level", "debug"}
	if join == "" {
		args = append(args, "--bootstrap")
	} else {
		args = append(args, "--join", join)
	}
	args = append(args, extra...)
	p := &controlPlaneProc{url: "http://" + httpAddr, addrs: addrs, cmd: exec.Command(bin, args...), stderr: logFile{lf}, exited: make(chan struct{})}
	p.cmd.Stderr = lf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s stderr:\n%s", id, p.stderr.String())
		}
	})
	return p
}

// TestApplianceOutlivesItsControlPlaneNode: an appliance told of one
// control-plane node learns the others from it, and when that node is
// killed its heartbeats and fill manifests go on through the others.
func TestApplianceOutlivesItsControlPlaneNode(t *testing.T) {
	bin := fillcastBinary(t)
	e := newOpsEnv(t, 1000)
	n1 := startControlPlaneProc(t, bin, e, "n1", "")
	n2 := startControlPlaneProc(t, bin, e, "n2", n1.url)
	n3 := startControlPlaneProc(t, bin, e, "n3", n1.url)
	ctx := context.Background()
	// An operator's view of each node, and one of the whole cluster.
	nodeClient := func(url string) *client.Client {
		c, err := client.New(client.Config{URLs: []string{url}, Timeout: 2 * time.Second}, client.Deps{Token: "adm"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ops := nodeClient(n1.url)
	poll.Until(t, 30*time.Second, "three members with their URLs", func() bool {
		st, err := ops.Cluster(ctx)
		if err != nil || st.Leader == "" || len(st.Members) != 3 {
			return false
		}
		for _, m := range st.Members {
			if m.HTTPURL == "" {
				return false
			}
		}
		return true
	})
	if err := ops.Do(ctx, "PUT", "/v1/sites/s1", fillcast.Site{Kind: "isp", Region: "eu", Prefixes: []string{"10.0.0.0/8"}}, nil); err != nil {
		t.Fatal(err)
	}

	// The appliance knows n1 alone.
	// An operator registers it and hands it its credential.
	addr := freeLoopback(t)
	var reg api.Registration
	if err := ops.Do(ctx, "PUT", "/v1/appliances/a1", api.Registration{Site: "s1", Profile: "storage", URLs: []string{"http://" + addr}}, &reg); err != nil {
		t.Fatal(err)
	}
	credFile := filepath.Join(e.dir, "a1.credential")
	if err := os.WriteFile(credFile, []byte(reg.Credential+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startApplianceProcAt(t, bin, e, addr, "--controlplane", n1.url, "--credential-file", credFile, "--heartbeat", "250ms", "--fill-poll", "250ms")
	status := func() (st appliance.Status) {
		if code, b := statusGet(t, http.DefaultClient, "http://"+a.addr); code == 200 {
			json.Unmarshal(b, &st)
		}
		return st
	}
	// plan writes a manifest newer than the one in force (the leader's
	// planner writes them too) and returns its version.
	plan := func(c *client.Client) (version uint64) {
		t.Helper()
		poll.UntilNil(t, 20*time.Second, "a manifest written", func() error {
			version = 1
			m, _, err := c.Manifest(ctx, "a1", "")
			switch {
			case err == nil:
				version = m.Version + 1
			case client.StatusCode(err) != http.StatusNotFound:
				return err
			}
			return c.Do(ctx, "PUT", "/v1/appliances/a1/manifest", map[string]any{"version": version, "titles": []string{}}, nil)
		})
		return version
	}
	planOn := func(version uint64) func() bool {
		return func() bool {
			st := status()
			return st.Plan != nil && st.Plan.ManifestVersion >= version
		}
	}
	poll.Until(t, 10*time.Second, "the first manifest on the appliance", planOn(plan(ops)))

	killed := time.Now()
	if err := n1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-n1.exited
	for _, n := range []*controlPlaneProc{n2, n3} {
		c := nodeClient(n.url)
		poll.Until(t, 30*time.Second, fmt.Sprintf("a heartbeat at %s after n1 died", n.url), func() bool {
			var fleet []api.ApplianceView
			if err := c.Do(ctx, "GET", "/v1/fleet", nil, &fleet); err != nil {
				return false
			}
			for _, v := range fleet {
				if v.ID == "a1" {
					return v.Live && v.Steerable && v.Heartbeat.Health == fillcast.HealthOK && v.LastSeen.After(killed)
				}
			}
			return false
		})
	}
	// A new plan, written once n2 and n3 have a leader, reaches the
	// appliance.
	poll.Until(t, 30*time.Second, "the new manifest on the appliance", planOn(plan(nodeClient(n2.url))))
}
