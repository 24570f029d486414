// Command h3 is the HTTP/3 benchmark of issue 5: 1.5 MB segments over
// HTTP/3, 16 concurrent requests on one connection of a quic-go client,
// against the appliance serving from its memory tier, Caddy's HTTP/3 file
// server (Debian package caddy, tls internal) and a plain quic-go
// http3.Server over http.FileServer, all on the same files with the same
// client; then the appliance's own HTTP/1.1 (over TLS, 16 connections).
// It prints MB/s per server (median of the rounds) and the ratios, and
// per run the CPU cores the server process and the client used.
//
//	go build -o /tmp/fillcast ./cmd/fillcast && go run ./bench/h3 -fillcast /tmp/fillcast
//
// As root it raises net.core.rmem_max/wmem_max to 8 MiB for the run (all
// servers and the client benefit alike) and restores them after.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	mrand "math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast/appliance/h3/h3test"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/bench/internal/procstat"
	"github.com/quic-go/quic-go/http3"
)

const keyLine = "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

func main() {
	// Failures panic with fatal so that deferred clean-ups (servers,
	// sysctls, the temporary directory) still run.
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			fmt.Fprintln(os.Stderr, "h3:", string(f))
			os.Exit(1)
		}
	}()
	if len(os.Args) > 1 && os.Args[1] == "plain" {
		servePlain(os.Args[2:])
		return
	}
	bin := flag.String("fillcast", "", "path to the fillcast binary (go build -o /tmp/fillcast ./cmd/fillcast)")
	segments := flag.Int("segments", 64, "number of segments")
	size := flag.Int("bytes", 1_500_000, "segment size")
	conc := flag.Int("conc", 16, "concurrent requests")
	dur := flag.Duration("duration", 5*time.Second, "length of one run")
	rounds := flag.Int("rounds", 3, "rounds (the median is reported)")
	profile := flag.String("cpuprofile", "", "save a CPU profile of the appliance during its first HTTP/3 run to this file")
	keep := flag.Bool("keep", false, "keep the temporary directory")
	flag.Parse()
	if *bin == "" {
		fail("-fillcast BIN is required")
	}
	if _, err := exec.LookPath("caddy"); err != nil {
		fail("caddy is not installed: apt-get install caddy (bench/h3/run.sh does it)")
	}
	dir, err := os.MkdirTemp("", "fillcast-h3-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Println("keeping", dir)
	}
	b := &bench{dir: dir}
	defer b.stopAll() // before the directory goes
	restore := raiseUDPBuffers(8 << 20)
	defer restore()

	cert, err := h3test.WriteCert(dir)
	check(err)
	keysFile := filepath.Join(dir, "keys")
	check(os.WriteFile(keysFile, []byte(keyLine), 0o600))
	keys, err := auth.LoadKeys(keysFile)
	check(err)
	// The appliance verifies with the public keys alone.
	pubFile := filepath.Join(dir, "keys.pub")
	check(os.WriteFile(pubFile, auth.MarshalKeyFile(keys.PublicList()), 0o644))
	root := filepath.Join(dir, "root")
	var paths []string
	for i := range *segments {
		p := fmt.Sprintf("t1/720p/seg-%05d.m4s", i+1)
		buf := make([]byte, *size)
		rand.Read(buf)
		check(os.MkdirAll(filepath.Join(root, "t1/720p"), 0o755))
		check(os.WriteFile(filepath.Join(root, p), buf, 0o644))
		paths = append(paths, p)
	}
	fmt.Printf("h3 bench: %d segments of %d bytes, %d concurrent requests, %d rounds of %s\n", *segments, *size, *conc, *rounds, *dur)

	originAddr := freeAddr()
	b.start("origin", *bin, "origin", "--root", root, "--http", originAddr)
	appAddr, adminAddr := freeAddr(), freeAddr()
	appPID := b.start("appliance", *bin, "appliance", "--id", "bench", "--site", "s1", "--http", appAddr,
		"--h3", "--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile,
		"--cache-dir", filepath.Join(dir, "cache"), "--mem-bytes", "1GiB", "--disk-bytes", "4GiB",
		"--upstream", "http://"+originAddr, "--token-keys", pubFile, "--admin-http", adminAddr)
	caddyAddr := freeAddr()
	caddyfile := filepath.Join(dir, "Caddyfile")
	check(os.WriteFile(caddyfile, []byte(fmt.Sprintf(`{
	admin off
	skip_install_trust
	auto_https disable_redirects
	default_sni 127.0.0.1
}
https://%s {
	tls internal
	root * %s
	file_server
}
`, caddyAddr, root)), 0o644))
	caddyPID := b.startEnv("caddy", []string{"XDG_DATA_HOME=" + dir + "/caddy-data", "XDG_CONFIG_HOME=" + dir + "/caddy-config"},
		"caddy", "run", "--config", caddyfile, "--adapter", "caddyfile")
	self, err := os.Executable()
	check(err)
	plainAddr := freeAddr()
	plainPID := b.start("plain", self, "plain", "-root", root, "-addr", plainAddr, "-cert", cert.CertFile, "-key", cert.KeyFile)

	prefix := keys.SignPath("t1", time.Now().Add(12*time.Hour), netip.Prefix{})
	appURLs := urls("https://"+appAddr+prefix[:strings.LastIndexByte(prefix, '/')+1], paths, "")
	servers := []server{
		{name: "appliance h3", urls: appURLs, h3: true, pid: appPID},
		{name: "caddy h3", urls: urls("https://"+caddyAddr+"/", paths, ""), h3: true, pid: caddyPID},
		{name: "quic-go FileServer h3", urls: urls("https://"+plainAddr+"/", paths, ""), h3: true, pid: plainPID},
		{name: "appliance h1 (TLS)", urls: appURLs, pid: appPID},
	}
	// Warm the appliance (fills the memory tier) and wait for everyone.
	for _, s := range servers {
		waitServing(s)
	}
	for _, u := range appURLs {
		if _, xc, err := fetchOnce(servers[3], u); err != nil {
			fail("warm %s: %v", u, err)
		} else if xc == "MISS" {
			fetchOnce(servers[3], u)
		}
	}
	if _, xc, _ := fetchOnce(servers[0], appURLs[0]); xc != "HIT-memory" {
		fail("the appliance answers %q, want HIT-memory", xc)
	}

	results := map[string][]float64{}
	for r := range *rounds {
		for i, s := range servers {
			var stopProf func()
			if r == 0 && i == 0 && *profile != "" {
				stopProf = cpuProfile("http://"+adminAddr, *dur, *profile)
			}
			srv0, cli0, t0 := procstat.CPUSeconds(s.pid), procstat.CPUSeconds(0), time.Now()
			mbps, errs := run(s, *conc, *dur)
			el := time.Since(t0).Seconds()
			srv, cli := (procstat.CPUSeconds(s.pid)-srv0)/el, (procstat.CPUSeconds(0)-cli0)/el
			if stopProf != nil {
				stopProf()
			}
			results[s.name] = append(results[s.name], mbps)
			fmt.Printf("  round %d  %-24s %8.1f MB/s  errors %d  CPU cores: server %.2f client %.2f\n", r+1, s.name, mbps, errs, srv, cli)
		}
	}
	med := map[string]float64{}
	fmt.Printf("\n%-24s %10s   (median of %d)\n", "server", "MB/s", *rounds)
	for _, s := range servers {
		med[s.name] = median(results[s.name])
		fmt.Printf("%-24s %10.1f\n", s.name, med[s.name])
	}
	app, caddy, plain, h1 := med["appliance h3"], med["caddy h3"], med["quic-go FileServer h3"], med["appliance h1 (TLS)"]
	fmt.Printf("\nappliance h3 / caddy h3            %5.2fx  (target >= 2.5x)\n", app/caddy)
	fmt.Printf("quic-go FileServer h3 / caddy h3   %5.2fx\n", plain/caddy)
	fmt.Printf("appliance h3 / quic-go FileServer  %5.2fx  (target > 1x)\n", app/plain)
	fmt.Printf("appliance h3 / appliance h1 (TLS)  %5.2fx\n", app/h1)
}

type server struct {
	name string
	urls []string
	h3   bool
	pid  int // the server process, for its CPU use
}

func urls(base string, paths []string, trim string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = base + strings.TrimPrefix(p, trim)
	}
	return out
}

// client returns the benchmark client: quic-go's http3.Transport, or
// net/http over TLS for HTTP/1.1. Certificates are not checked (Caddy's
// internal CA is not installed).
func client(s server, conc int) (*http.Client, func()) {
	tlsConf := &tls.Config{InsecureSkipVerify: true}
	if s.h3 {
		tr := &http3.Transport{TLSClientConfig: tlsConf}
		return &http.Client{Transport: tr}, func() { tr.Close() }
	}
	tr := &http.Transport{TLSClientConfig: tlsConf, MaxIdleConnsPerHost: conc,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	return &http.Client{Transport: tr}, tr.CloseIdleConnections
}

// run drives s with conc concurrent GETs of random segments for d and
// returns the body throughput in MB/s (10^6 bytes).
func run(s server, conc int, d time.Duration) (float64, int64) {
	c, closeFn := client(s, conc)
	defer closeFn()
	fetchWith(c, s.urls[0]) // connect outside the timed window
	var bytes, errs atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.urls[rng.IntN(len(s.urls))], nil)
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				bytes.Add(n)
				if (err != nil || resp.StatusCode != 200) && ctx.Err() == nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(bytes.Load()) / 1e6 / time.Since(start).Seconds(), errs.Load()
}

func fetchWith(c *http.Client, u string) (int, string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return int(n), resp.Header.Get("X-Cache"), err
}

func fetchOnce(s server, u string) (int, string, error) {
	c, closeFn := client(s, 1)
	defer closeFn()
	return fetchWith(c, u)
}

func waitServing(s server) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, err := fetchOnce(s, s.urls[0])
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			fail("%s does not answer: %v", s.name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// cpuProfile starts fetching a CPU profile of d from the appliance's admin
// listener; the returned function waits for it and saves it.
func cpuProfile(admin string, d time.Duration, file string) func() {
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(admin + "/debug/pprof/profile?seconds=" + strconv.Itoa(int(d.Seconds())))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(file)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		done <- errors.Join(err, f.Close())
	}()
	return func() {
		if err := <-done; err != nil {
			log.Printf("h3: cpu profile: %v", err)
		} else {
			fmt.Printf("  (CPU profile of the appliance saved to %s: go tool pprof -top %s)\n", file, file)
		}
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func freeAddr() string {
	p, err := h3test.FreePort()
	check(err)
	return "127.0.0.1:" + strconv.Itoa(p)
}

// fatal is a failure that main reports after the clean-ups ran.
type fatal string

func fail(format string, a ...any) { panic(fatal(fmt.Sprintf(format, a...))) }

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}
