// Command benchtool holds the small pieces of bench/edge-vs-nginx/run.sh
// that a shell does badly: picking free loopback ports, a bandwidth-limited
// TCP proxy that slows an origin down, and a herd of clients released at
// the same instant on one URL, each checking the bytes it got.
//
// It uses only the standard library so that the benchmark does not depend
// on the code it measures.
//
//	benchtool ports N
//	benchtool throttle --listen ADDR --to ADDR --rate BYTES_PER_SEC
//	benchtool herd --url URL --clients N --size BYTES --sha256 HEX
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "ports":
		err = runPorts(os.Args[2:])
	case "throttle":
		err = runThrottle(os.Args[2:])
	case "herd":
		err = runHerd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool ports N | throttle --listen ADDR --to ADDR --rate B/s | herd --url URL --clients N --size B --sha256 HEX")
	os.Exit(2)
}

// runPorts prints N distinct free loopback TCP ports, one a line. The
// listeners are held until all N are chosen so that no port repeats.
func runPorts(args []string) error {
	if len(args) != 1 {
		return errors.New("ports: want a count")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n <= 0 {
		return fmt.Errorf("ports: bad count %q", args[0])
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("ports: %w", err)
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// runThrottle proxies TCP from --listen to --to, pacing the bytes that
// flow back from --to at --rate bytes per second per connection. Requests
// flow unpaced. It runs until SIGTERM or SIGINT.
func runThrottle(args []string) error {
	fs := flag.NewFlagSet("throttle", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	to := fs.String("to", "", "address to forward to")
	rate := fs.Int64("rate", 64<<20, "bytes per second, per connection, from --to back to the client")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" || *rate <= 0 {
		return errors.New("throttle: --to and a positive --rate are required")
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("throttle: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var wg sync.WaitGroup
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("throttle: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			proxy(ctx, c, *to, *rate)
		}()
	}
	wg.Wait()
	return nil
}

func proxy(ctx context.Context, client net.Conn, to string, rate int64) {
	defer client.Close()
	up, err := net.DialTimeout("tcp", to, 2*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { client.Close(); up.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer func() { client.Close(); up.Close(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(up, client)
		up.(*net.TCPConn).CloseWrite()
	}()
	buf := make([]byte, 32<<10)
	start, sent := time.Now(), int64(0)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
			sent += int64(n)
			due := start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		if err != nil {
			client.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

// herdResult is what one client of the herd saw.
type herdResult struct {
	status   int
	xcache   string
	n        int64
	sum      string
	err      error
	ttfb     time.Duration
	duration time.Duration
}

// runHerd releases --clients GETs of --url at the same instant, each on its
// own connection, and checks that every one got 200 with exactly --size
// bytes hashing to --sha256. It prints a summary and fails if any client
// did not.
func runHerd(args []string) error {
	fs := flag.NewFlagSet("herd", flag.ContinueOnError)
	url := fs.String("url", "", "URL to fetch")
	clients := fs.Int("clients", 64, "concurrent clients")
	size := fs.Int64("size", -1, "expected body length")
	want := fs.String("sha256", "", "expected body sha256 (hex)")
	timeout := fs.Duration("timeout", 2*time.Minute, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *want == "" || *size < 0 || *clients <= 0 {
		return errors.New("herd: --url, --size, --sha256 and a positive --clients are required")
	}

	// Connect every client first so that the release sends all requests
	// at once rather than after 64 handshakes.
	conns := make([]net.Conn, *clients)
	host := strings.TrimPrefix(*url, "http://")
	host, _, _ = strings.Cut(host, "/")
	for i := range conns {
		c, err := net.DialTimeout("tcp", host, 2*time.Second)
		if err != nil {
			return fmt.Errorf("herd: dial: %w", err)
		}
		conns[i] = c
	}
	results := make([]herdResult, *clients)
	release := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range conns {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			c := conns[i]
			tr := &http.Transport{
				DialContext: func(context.Context, string, string) (net.Conn, error) {
					if c == nil {
						return nil, errors.New("herd: connection already used")
					}
					cc := c
					c = nil
					return cc, nil
				},
				DisableCompression: true,
			}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: *timeout}
			req, err := http.NewRequest(http.MethodGet, *url, nil)
			if err != nil {
				results[i].err = err
				ready.Done()
				return
			}
			ready.Done()
			<-release
			results[i] = fetch(cl, req)
		}()
	}
	ready.Wait()
	start := time.Now()
	close(release)
	done.Wait()
	wall := time.Since(start)

	bad := 0
	xc := map[string]int{}
	var ttfbs []time.Duration
	for i, r := range results {
		ok := r.err == nil && r.status == http.StatusOK && r.n == *size && r.sum == *want
		if !ok {
			bad++
			fmt.Printf("  client %d: status %d, %d bytes, sha256 %.16s..., err %v\n", i, r.status, r.n, r.sum, r.err)
		}
		xc[r.xcache]++
		ttfbs = append(ttfbs, r.ttfb)
	}
	sort.Slice(ttfbs, func(i, j int) bool { return ttfbs[i] < ttfbs[j] })
	var kinds []string
	for k, v := range xc {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(kinds)
	fmt.Printf("herd: %d clients, %d correct (%d bytes, sha256 %.16s...), X-Cache %s, first byte %v..%v, all done in %v\n",
		*clients, *clients-bad, *size, *want, strings.Join(kinds, " "),
		ttfbs[0].Round(time.Millisecond), ttfbs[len(ttfbs)-1].Round(time.Millisecond), wall.Round(time.Millisecond))
	if bad > 0 {
		return fmt.Errorf("herd: %d of %d clients did not get the full correct object", bad, *clients)
	}
	return nil
}

func fetch(cl *http.Client, req *http.Request) herdResult {
	t0 := time.Now()
	resp, err := cl.Do(req)
	if err != nil {
		return herdResult{err: err}
	}
	defer resp.Body.Close()
	r := herdResult{status: resp.StatusCode, xcache: resp.Header.Get("X-Cache"), ttfb: time.Since(t0)}
	h := sha256.New()
	r.n, r.err = io.Copy(h, resp.Body)
	r.sum = hex.EncodeToString(h.Sum(nil))
	r.duration = time.Since(t0)
	return r
}
