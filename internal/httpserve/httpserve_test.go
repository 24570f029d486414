package httpserve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestStopWaitsForRequestsInFlight: a request under way when the stop
// comes finishes within the grace period, and Serve returns nil.
func TestStopWaitsForRequestsInFlight(t *testing.T) {
	t.Parallel()
	ln := listen(t)
	started, release := make(chan struct{}), make(chan struct{})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, hs, ln, 10*time.Second) }()
	body := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			body <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body <- string(b)
	}()
	<-started
	cancel()
	close(release)
	if got := <-body; got != "done" {
		t.Errorf("request in flight got %q, want done", got)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

// TestGraceOverCutsOff: a request still running after the grace period
// is cut off and Serve returns; the handler's context is done.
func TestGraceOverCutsOff(t *testing.T) {
	t.Parallel()
	ln := listen(t)
	started, handlerDone := make(chan struct{}), make(chan struct{})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done() // closing the connection cancels it
		close(handlerDone)
	})}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, hs, ln, 50*time.Millisecond) }()
	go http.Get("http://" + ln.Addr().String())
	<-started
	cancel()
	if err := <-served; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Serve = %v, want the shutdown's deadline", err)
	}
	poll.Until(t, 5*time.Second, "the handler cut off", func() bool {
		select {
		case <-handlerDone:
			return true
		default:
			return false
		}
	})
}

// TestServeFails: a listener that fails ends Serve with its error.
func TestServeFails(t *testing.T) {
	t.Parallel()
	ln := listen(t)
	ln.Close()
	if err := Serve(context.Background(), &http.Server{}, ln, time.Second); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve on a closed listener = %v, want its error", err)
	}
}
