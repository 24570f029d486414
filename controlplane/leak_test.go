package controlplane

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/internal/leakcheck"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestStartStopLeavesNothing starts and stops a node 20 times in this
// process, on the same data directory, and checks that no goroutine is
// left behind.
func TestStartStopLeavesNothing(t *testing.T) {
	keys, err := auth.ParseKeys(strings.NewReader(keyFile))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	before := leakcheck.Baseline()
	for i := range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(Config{
			ID: "n1", DataDir: dir, HTTP: ln.Addr().String(), RaftAddr: freeAddr(t), Bootstrap: true, Origin: "http://127.0.0.1:9",
			HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
		}, Deps{AdminToken: "adm", Keys: keys, Listener: ln})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		select {
		case <-n.Ready():
		case err := <-done:
			t.Fatalf("round %d: Run stopped before it was ready: %v", i, err)
		}
		// Some real work: a leader, a write, a read through the API.
		if code, b := call(t, "PUT", "http://"+ln.Addr().String()+"/v1/sites/isp1", `{"kind":"isp","region":"eu","prefixes":["10.0.0.0/8"]}`, true); code != 200 {
			t.Fatalf("round %d: put site: %d %s", i, code, b)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("round %d: Run: %v", i, err)
		}
	}
	http.DefaultClient.CloseIdleConnections() // call's keep-alive connections
	leakcheck.VerifyNone(t, before)
}
