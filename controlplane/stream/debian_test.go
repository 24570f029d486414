package stream

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// OptionalEnv set to 1 lets TestDebianNATSCluster skip where Debian's
// nats-server is not installed; make test installs it and runs the test.
const OptionalEnv = "FILLCAST_NATS_OPTIONAL"

// TestDebianNATSCluster: with --events-url naming an external cluster of
// three Debian nats-server processes, the stream keeps three replicas;
// what was acknowledged survives SIGKILL of one server, and the stream
// goes on taking and delivering messages.
func TestDebianNATSCluster(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		// Debian installs it in /usr/sbin, which a user's PATH may lack.
		bin, err = exec.LookPath("/usr/sbin/nats-server")
	}
	if err != nil {
		msg := "Debian's nats-server is not installed (apt-get install nats-server; make test installs it)"
		if os.Getenv(OptionalEnv) == "1" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	var client, cluster [3]string
	for i := range 3 {
		client[i], cluster[i] = freeAddr(t), freeAddr(t)
	}
	var procs [3]*exec.Cmd
	for i := range 3 {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, "nats://"+cluster[j])
			}
		}
		host, port, _ := strings.Cut(client[i], ":")
		dir := t.TempDir()
		cmd := exec.Command(bin, "-js", "-sd", dir, "-a", host, "-p", port, "-n", fmt.Sprint("nats", i),
			"--cluster_name", "fc", "--cluster", "nats://"+cluster[i], "--routes", strings.Join(routes, ","))
		logf, err := os.Create(filepath.Join(dir, "log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = cmd
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			logf.Close()
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("nats%d:\n%s", i, b)
			}
		})
	}
	var urls []string
	for _, c := range client {
		urls = append(urls, "nats://"+c)
	}
	n := run(t, Config{NodeID: "n1", URL: strings.Join(urls, ",")}, Deps{}, nil)
	s, f := n.s, n.f

	publish(t, s, 0, 20)
	poll.Until(t, 30*time.Second, "three replicas", func() bool { return s.replicasNow.Load() == 3 })
	poll.Until(t, 30*time.Second, "20 messages folded once each", func() bool { n, once := f.count(); return n == 20 && once })
	if err := procs[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	publish(t, s, 20, 20)
	poll.Until(t, 60*time.Second, "40 messages folded once each after a server died", func() bool { n, once := f.count(); return n == 40 && once })
}
