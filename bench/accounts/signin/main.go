// Command signin measures the latency of signing in (POST /v1/sessions)
// on a running control plane at several concurrencies: it puts a plan
// (admin token), signs some accounts up, then for each concurrency runs
// that many clients, each signing in again and again (a closed loop) for
// the duration, and prints the count, the rate and the p50/p90/p99/max
// latency. Target: p99 < 250 ms.
//
// A sign-in costs one argon2id hash and one raft write (the session). The
// control plane hashes at most accounts.Config.MaxHashing passwords at
// once (2×GOMAXPROCS by default); more sign-ins at once wait for a slot,
// so past the machine's hashing rate the latency grows with the
// concurrency (Little's law: latency ≈ concurrency / rate).
// bench/accounts/signin.sh starts a control plane and runs this.
//
//	go run ./bench/accounts/signin -controlplane http://127.0.0.1:7000 -admin T [-concurrency 4,8,16] [-duration 10s]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/accounts/embedded"
)

func main() {
	cp := flag.String("controlplane", "", "control-plane base `URL`")
	admin := flag.String("admin", "", "admin `TOKEN`, to put the plan")
	n := flag.Int("accounts", 32, "accounts to sign in as, in turn")
	concs := flag.String("concurrency", "4,8,16", "comma-separated sign-ins at once, each run in turn")
	dur := flag.Duration("duration", 10*time.Second, "length of each concurrency's run")
	target := flag.Duration("target", 250*time.Millisecond, "p99 target")
	flag.Parse()
	if *cp == "" || *admin == "" || *n < 1 {
		fmt.Fprintln(os.Stderr, "usage: signin -controlplane URL -admin TOKEN [-accounts 32] [-concurrency 4,8,16] [-duration 10s]")
		os.Exit(2)
	}
	var levels []int
	for _, s := range strings.Split(*concs, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			fmt.Fprintf(os.Stderr, "signin: -concurrency %q: want positive integers\n", *concs)
			os.Exit(2)
		}
		levels = append(levels, c)
	}
	b := &bench{base: strings.TrimRight(*cp, "/"), client: &http.Client{Timeout: time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	if err := b.run(context.Background(), *admin, *n, levels, *dur, *target); err != nil {
		fmt.Fprintln(os.Stderr, "signin:", err)
		os.Exit(1)
	}
}

const (
	plan     = "bench-standard"
	password = "correct horse battery staple"
)

type bench struct {
	base   string
	client *http.Client
}

func (b *bench) run(ctx context.Context, admin string, n int, levels []int, dur, target time.Duration) error {
	// The parameters in force: the control plane is started without
	// changing accounts.Config, so its defaults, as a Service fills them.
	svc, err := accounts.NewService(accounts.Config{}, accounts.Deps{Store: embedded.NewLocal(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	cfg := svc.Config()
	var one []time.Duration
	for range 5 {
		t := time.Now()
		cfg.Argon2.HashPassword(password)
		one = append(one, time.Since(t))
	}
	slices.Sort(one)
	fmt.Printf("argon2id m=%d KiB, t=%d, p=%d (accounts.Argon2 defaults); one hash here, alone: median %v of 5\n",
		cfg.Argon2.MemoryKiB, cfg.Argon2.Time, cfg.Argon2.Threads, one[2].Round(100*time.Microsecond))
	fmt.Printf("the control plane hashes at most %d at once (MaxHashing = 2 x GOMAXPROCS, %d CPUs here)\n", cfg.MaxHashing, runtime.NumCPU())

	p := map[string]any{"name": "Bench standard", "max_height": 1080, "max_streams": 2, "downloads": true,
		"price": map[string]any{"amount": 1399, "currency": "EUR"}, "period": "month"}
	if err := b.call(ctx, http.MethodPut, "/v1/plans/"+plan, admin, p, http.StatusOK); err != nil {
		return fmt.Errorf("put plan: %w", err)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	emails := make([]string, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	t := time.Now()
	for i := range emails {
		emails[i] = fmt.Sprintf("signin%03d-%s@bench.fillcast.example", i, run)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = b.call(ctx, http.MethodPost, "/v1/accounts", "", map[string]string{"email": emails[i], "password": password, "plan": plan}, http.StatusCreated)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("sign up: %w", err)
		}
	}
	fmt.Printf("%d accounts signed up in %v\n\n", n, time.Since(t).Round(100*time.Millisecond))

	fmt.Printf("%11s %7s %8s %9s %9s %9s %9s %7s\n", "concurrency", "count", "rate/s", "p50", "p90", "p99", "max", "errors")
	type result struct {
		c   int
		p99 time.Duration
	}
	var results []result
	for _, c := range levels {
		lat := make([][]time.Duration, c)
		fails := make([]int, c)
		var firstErr error
		var mu sync.Mutex
		deadline := time.Now().Add(dur)
		start := time.Now()
		for w := range c {
			wg.Go(func() {
				for k := w; time.Now().Before(deadline); k += c {
					e := emails[k%len(emails)]
					t := time.Now()
					err := b.call(ctx, http.MethodPost, "/v1/sessions", "", map[string]string{"email": e, "password": password}, http.StatusCreated)
					d := time.Since(t)
					if err != nil {
						fails[w]++
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						continue
					}
					lat[w] = append(lat[w], d)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		all := slices.Concat(lat...)
		slices.Sort(all)
		nfail := 0
		for _, f := range fails {
			nfail += f
		}
		if len(all) == 0 {
			return fmt.Errorf("concurrency %d: no sign-in succeeded: %v", c, firstErr)
		}
		q := func(f float64) time.Duration {
			return all[min(len(all)-1, int(f*float64(len(all))))].Round(100 * time.Microsecond)
		}
		fmt.Printf("%11d %7d %8.1f %9v %9v %9v %9v %7d\n", c, len(all), float64(len(all))/elapsed.Seconds(), q(0.5), q(0.9), q(0.99), all[len(all)-1].Round(100*time.Microsecond), nfail)
		if firstErr != nil {
			fmt.Printf("%11s first error: %v\n", "", firstErr)
		}
		results = append(results, result{c, q(0.99)})
	}
	// What bounds the figures: every sign-in needs one hash of the CPU
	// time measured above, and the CPUs do at most NumCPU at a time;
	// up to MaxHashing sign-ins share them, the rest queue for a slot.
	capacity := float64(runtime.NumCPU()) / one[2].Seconds()
	fmt.Printf("\nlimit: %d CPUs / %v per hash = about %.0f sign-ins/s at most on this machine (less what else runs); at concurrency c a sign-in takes at least c / that rate: up to %d hash at once, sharing the CPUs, the rest wait for a hashing slot\n",
		runtime.NumCPU(), one[2].Round(100*time.Microsecond), capacity, cfg.MaxHashing)
	for _, r := range results {
		verdict := "PASS"
		if r.p99 >= target {
			verdict = "MISS"
		}
		floor := time.Duration(float64(r.c) / capacity * float64(time.Second)).Round(time.Millisecond)
		why := ""
		switch {
		case r.p99 < target:
		case r.c > cfg.MaxHashing:
			why = fmt.Sprintf(": %d sign-ins at once queue for %d hashing slots; the floor is %v", r.c, cfg.MaxHashing, floor)
		default:
			why = fmt.Sprintf(": %d hashes share %d CPUs; the floor is %v", r.c, runtime.NumCPU(), floor)
		}
		fmt.Printf("%s  sign-in p99 < %v at concurrency %d: %v%s\n", verdict, target, r.c, r.p99, why)
	}
	return nil
}

// call sends one JSON request and checks the status.
func (b *bench) call(ctx context.Context, method, path, token string, in any, want int) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(got))
	}
	return nil
}
