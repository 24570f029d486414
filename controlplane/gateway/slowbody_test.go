package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// readAll is an endpoint that reads its whole body, as POST /v1/events
// decodes its batch, and answers 202 with the length.
func readAll(w http.ResponseWriter, r *http.Request) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return Errorf(http.StatusBadRequest, "body: %v", err)
	}
	return WriteJSON(w, http.StatusAccepted, map[string]int{"bytes": len(b)})
}

// trickler is a client that sends a request's header, declaring a body it
// then sends one byte a second: a slow-body (slowloris) attack.
type trickler struct {
	conn net.Conn
	stop chan struct{}
	done chan struct{}
}

func startTrickler(t *testing.T, addr, path string) *trickler {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tr := &trickler{conn: c, stop: make(chan struct{}), done: make(chan struct{})}
	hdr := "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
	if _, err := io.WriteString(c, hdr); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(tr.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tr.stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte(" ")); err != nil {
					return // the server gave up on us
				}
			}
		}
	}()
	return tr
}

func (tr *trickler) close() {
	close(tr.stop)
	tr.conn.Close()
	<-tr.done
}

// answer reads what the server did with the trickled request, within
// wait: its status (0 if it closed the connection without one), or an
// error if it did nothing. After a status, the server must also close
// the connection: the rest of the body must not be read as a request.
func (tr *trickler) answer(wait time.Duration) (int, error) {
	tr.conn.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(tr.conn)
	resp, err := http.ReadResponse(br, nil)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, errors.New("no answer and the connection is still open")
	}
	if err != nil {
		return 0, nil // closed (EOF or reset) without an answer
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
		return resp.StatusCode, errors.New("answered, but the connection is still open")
	}
	return resp.StatusCode, nil
}

// routeAt finds the route serving method and path, for white-box checks.
func (tg *testGateway) routeAt(method, path string) *route {
	h, _ := tg.mux.Handler(&http.Request{Method: method, URL: mustURL(path), Host: "x"})
	rt, _ := h.(*route)
	return rt
}

// TestSlowBodiesReleaseTheRoute reproduces the slow-body attack on POST
// /v1/events: more connections than the route's bulkhead send a header
// and trickle the body. Every slot is taken, so a well-behaved client gets
// 503; but once the route's timeout has passed the slow bodies' reads must
// fail, their slots come back and the well-behaved client is served. The
// slow connections are answered (408 or 504) or closed, never kept.
func TestSlowBodiesReleaseTheRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  RouteOptions
		conns int
		want  []int // statuses a slow connection may get; 0: closed
	}{
		// POST /v1/events's options (controlplane/api/discovery.go) but
		// a shorter timeout, to keep the test quick. A buffered call is
		// given up at the deadline, as its body read fails: 504 or 408.
		{"buffered like events", RouteOptions{Name: "events", Timeout: time.Second, MaxConcurrent: 64, MaxBodyBytes: 2 << 20}, 70, []int{503, 504, 408}},
		{"streaming", RouteOptions{Name: "upload", Timeout: time.Second, Streaming: true, MaxConcurrent: 4}, 6, []int{503, 408}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// No node-wide limit: it would shed the slow bodies before
			// they fill the bulkhead this test is about.
			tg := newTestGateway(t, Config{Concurrency: ConcurrencyConfig{Off: true}})
			path := "/" + tt.opts.Name
			tg.handle(t, "POST "+path, tt.opts, readAll)
			rt := tg.routeAt("POST", path)
			addr := strings.TrimPrefix(tg.srv.URL, "http://")
			var tricklers []*trickler
			t.Cleanup(func() {
				for _, tr := range tricklers {
					tr.close()
				}
			})
			for range tt.conns {
				tricklers = append(tricklers, startTrickler(t, addr, path))
			}
			poll.Until(t, 10*time.Second, "the slow bodies to fill the bulkhead", func() bool {
				return rt.active.Load() == int64(tt.opts.MaxConcurrent)
			})
			if got := tg.do(t, "POST", path, nil, `{"ok":1}`); got.status != http.StatusServiceUnavailable {
				t.Fatalf("well-behaved request while the slow bodies hold the route = %d, want 503", got.status)
			}
			// The slow bodies send for 1000 s; the route's timeout is 1 s.
			wait := tt.opts.Timeout + 10*time.Second
			poll.Until(t, wait, "a well-behaved request to be served after the route's timeout", func() bool {
				return tg.do(t, "POST", path, nil, `{"ok":1}`).status == http.StatusAccepted
			})
			var wg sync.WaitGroup
			errs := make([]error, len(tricklers))
			for i, tr := range tricklers {
				wg.Go(func() {
					status, err := tr.answer(wait)
					switch {
					case err != nil:
						errs[i] = err
					case status != 0 && !slices.Contains(tt.want, status):
						errs[i] = fmt.Errorf("status %d, want one of %v", status, tt.want)
					}
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("slow connection %d: %v", i, err)
				}
			}
			poll.Until(t, 10*time.Second, "the bulkhead to empty", func() bool { return rt.active.Load() == 0 })
		})
	}
}

// rawPost sends a POST of path declaring a body of length bytes and
// then parts, which may fall short of it; it returns the answer's
// status, 0 if the server closed the connection without one.
func rawPost(t *testing.T, addr, path string, length int, parts ...string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, length)
	for _, p := range parts {
		if _, err := io.WriteString(c, p); err != nil {
			break // answered early
		}
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("POST %s: no answer in 10 s", path)
	}
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestBodyDeadline: a route's timeout bounds the reading of its body and
// nothing else. A body that does not arrive in time gets 408 from a
// streaming route (a buffered one may give up first: 504); a body that
// arrives in time is served, and an endpoint that overruns after reading
// its body gets its own answer or 504, never an empty 200 as if the
// client had left.
func TestBodyDeadline(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	overrun := func(status int) HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			if _, err := io.ReadAll(r.Body); err != nil {
				return err
			}
			<-r.Context().Done()
			time.Sleep(timeout) // an endpoint that ignores its deadline
			return Errorf(status, "late answer")
		}
	}
	tests := []struct {
		name     string
		opts     RouteOptions
		h        HandlerFunc
		length   int
		parts    []string
		wantCode []int
	}{
		{"streaming, body never finished", RouteOptions{Streaming: true}, readAll, 100, []string{"{"}, []int{408}},
		{"buffered, body never finished", RouteOptions{}, readAll, 100, []string{"{"}, []int{408, 504}},
		{"streaming, body in time", RouteOptions{Streaming: true}, readAll, 2, []string{"{", "}"}, []int{202}},
		{"buffered, body in time", RouteOptions{}, readAll, 2, []string{"{", "}"}, []int{202}},
		{"streaming, endpoint overruns with a 400", RouteOptions{Streaming: true}, overrun(400), 2, []string{"{}"}, []int{400}},
		{"streaming, endpoint overruns with a 500", RouteOptions{Streaming: true}, overrun(500), 2, []string{"{}"}, []int{504}},
		{"buffered, endpoint overruns", RouteOptions{}, overrun(400), 2, []string{"{}"}, []int{504}},
	}
	tg := newTestGateway(t, Config{})
	addr := strings.TrimPrefix(tg.srv.URL, "http://")
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.Name, tt.opts.Timeout = fmt.Sprintf("body%d", i), timeout
			path := "/" + tt.opts.Name
			tg.handle(t, "POST "+path, tt.opts, tt.h)
			if got := rawPost(t, addr, path, tt.length, tt.parts...); !slices.Contains(tt.wantCode, got) {
				t.Errorf("status = %d, want one of %v", got, tt.wantCode)
			}
		})
	}
}

// TestKeptAliveAfterBodyDeadline: the read deadline of a request's body
// does not outlive the request, so a kept-alive connection serves its
// next request after that deadline has passed.
func TestKeptAliveAfterBodyDeadline(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{})
	const timeout = 100 * time.Millisecond
	tg.handle(t, "POST /buffered", RouteOptions{Name: "buffered", Timeout: timeout}, readAll)
	tg.handle(t, "POST /streaming", RouteOptions{Name: "streaming", Timeout: timeout, Streaming: true}, readAll)
	tg.handle(t, "GET /idle", RouteOptions{Name: "idle"}, func(w http.ResponseWriter, r *http.Request) error {
		// Longer than the previous request's deadline, with the
		// connection idle: the server reads it in the background.
		deadline := time.Now().Add(2 * timeout)
		poll.Wait(10*time.Second, func() bool { return time.Now().After(deadline) })
		_, err := io.WriteString(w, "ok")
		return err
	})
	for _, path := range []string{"/buffered", "/streaming"} {
		t.Run(path, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(tg.srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for i, req := range []string{
				"POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
				"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n",
				"POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
			} {
				if _, err := io.WriteString(c, req); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request %d on the kept-alive connection: %v", i, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					t.Fatalf("request %d: status %d", i, resp.StatusCode)
				}
			}
		})
	}
}
