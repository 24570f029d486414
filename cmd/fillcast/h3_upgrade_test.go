package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/h3/h3test"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Client is an HTTP/3 client with its own QUIC connection. Its receive
// windows are small, so a body read slowly keeps the server waiting for
// the client's flow-control updates: every one of them must reach the
// process that serves the connection.
func h3Client(cert *h3test.Cert) (*http.Client, func()) {
	tr := &http3.Transport{TLSClientConfig: cert.ClientTLS(), QUICConfig: &quic.Config{
		InitialStreamReceiveWindow:     64 << 10,
		MaxStreamReceiveWindow:         256 << 10,
		InitialConnectionReceiveWindow: 128 << 10,
		MaxConnectionReceiveWindow:     512 << 10,
	}}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, func() { tr.Close() }
}

// statusPID asks /v1/status which process serves c's connection.
func statusPID(t *testing.T, c *http.Client, base string) int {
	t.Helper()
	code, b := statusGet(t, c, base)
	var st struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(b, &st); code != 200 || err != nil || st.PID == 0 {
		t.Fatalf("GET /v1/status: %d %v %.200q", code, err, b)
	}
	return st.PID
}

// newConnPIDs opens n new HTTP/3 connections (each from its own UDP port)
// and fails unless every one is served by want.
func newConnPIDs(t *testing.T, cert *h3test.Cert, base string, n, want int, when string) {
	t.Helper()
	for i := range n {
		c, done := h3Client(cert)
		got := statusPID(t, c, base)
		done()
		if got != want {
			t.Fatalf("%s: new HTTP/3 connection %d served by PID %d, want %d", when, i, got, want)
		}
	}
}

// TestH3UpgradeKeepsConnections reads a 12 MiB segment over HTTP/3,
// slowly, across an upgrade: the old process must finish it on the same
// QUIC connection with the right bytes, while every new HTTP/3 connection
// lands on the new process. A second upgrade, once the first old process
// has exited, must steer just as well (the reuseport group's order has
// changed by then).
func TestH3UpgradeKeepsConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	e, cert, p := startH3ApplianceProc(t, 12<<20, "--shutdown-timeout", "60s")
	base := "https://" + p.addr
	segURL := base + e.path("720p/seg-00001.m4s")
	oldPID := p.cmd.Process.Pid

	slow, closeSlow := h3Client(cert)
	defer closeSlow()
	// Warm the cache, and check the connection's process.
	if code, b := clientGet(t, slow, segURL); code != 200 || !bytes.Equal(b, e.seg) {
		t.Fatalf("warm-up GET: %d, %d bytes", code, len(b))
	}
	if got := statusPID(t, slow, base); got != oldPID {
		t.Fatalf("before the upgrade: served by PID %d, want %d", got, oldPID)
	}

	resp, err := slow.Get(segURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make([]byte, 0, len(e.seg))
	readSome := func(n int) {
		t.Helper()
		buf := make([]byte, 32<<10)
		for n > 0 {
			k, err := resp.Body.Read(buf[:min(n, len(buf))])
			got = append(got, buf[:k]...)
			n -= k
			if err == io.EOF && len(got) == len(e.seg) {
				return
			}
			if err != nil {
				t.Fatalf("in-flight HTTP/3 response cut after %d bytes: %v", len(got), err)
			}
			time.Sleep(2 * time.Millisecond) // a player reading at about 16 MB/s at most
		}
	}
	readSome(1 << 20)

	p.cmd.Process.Signal(syscall.SIGHUP)
	poll.Until(t, 30*time.Second, "the new process to become ready", func() bool {
		pid := p.livePID()
		return pid != 0 && pid != oldPID
	})
	newPID := p.livePID()
	newConnPIDs(t, cert, base, 6, newPID, "while the old process drains")
	if !alive(oldPID) {
		t.Fatal("the old process exited with an HTTP/3 response in flight")
	}

	// The rest, still slowly: the client's flow-control updates and ACKs
	// must keep reaching the old process.
	for len(got) < len(e.seg) {
		readSome(min(1<<20, len(e.seg)-len(got)))
		newConnPIDs(t, cert, base, 1, newPID, "while the old process drains")
	}
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) > 0 {
		t.Fatalf("after the body: %d more bytes, %v", len(rest), err)
	}
	if !bytes.Equal(got, e.seg) {
		t.Fatalf("in-flight HTTP/3 response: %d bytes that differ from the %d-byte segment", len(got), len(e.seg))
	}
	resp.Body.Close()
	closeSlow()
	p.waitFirstExit(t, 60*time.Second, "after its last HTTP/3 response")
	newConnPIDs(t, cert, base, 3, newPID, "after the old process exited")

	// A second upgrade: the survivor is now first in the group.
	syscall.Kill(newPID, syscall.SIGHUP)
	poll.Until(t, 30*time.Second, "the third process to become ready", func() bool {
		pid := p.livePID()
		return pid != 0 && pid != newPID
	})
	thirdPID := p.livePID()
	newConnPIDs(t, cert, base, 6, thirdPID, "after the second upgrade")
	poll.Until(t, 60*time.Second, "the second process to exit", func() bool { return !alive(newPID) })
	c, done := h3Client(cert)
	defer done()
	if code, b := clientGet(t, c, segURL); code != 200 || !bytes.Equal(b, e.seg) {
		t.Fatalf("GET after the second upgrade: %d, %d bytes", code, len(b))
	}
}
