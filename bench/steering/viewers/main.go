// Command viewers makes the signed-in viewers of bench/steering/http.sh
// through a running control plane's API, as the sign-up page and players
// would: it puts a plan (admin token), signs N accounts up
// (POST /v1/accounts) and in (POST /v1/sessions), several at once, then
// asks each viewer's first playback of a title (GET /v1/playback) to take
// its stream lease, and writes one line per viewer, "TOKEN STREAM_ID",
// for the wrk script (viewers.lua) to replay the steady state of players
// asking again.
//
//	go run ./bench/steering/viewers -controlplane http://127.0.0.1:7000 -admin T -n 10000 -out viewers.txt
//
// Sign-up and sign-in each cost an argon2id hash (about 30 ms of one
// core at the default cost) and the control plane hashes at most
// 2×GOMAXPROCS at once: 10,000 viewers are 20,000 hashes, minutes on two
// cores. The phases' times and rates are printed.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
)

func main() {
	cp := flag.String("controlplane", "", "control-plane base `URL`")
	admin := flag.String("admin", "", "admin `TOKEN`, to put the plan")
	n := flag.Int("n", 10000, "viewers to make")
	conc := flag.Int("concurrency", 16, "requests at once")
	title := flag.String("title", "t1", "title of the first playbacks")
	expect := flag.String("expect", "", "fail unless the first playback answers a URL containing this")
	out := flag.String("out", "", "write \"TOKEN STREAM_ID\" lines to `FILE`")
	flag.Parse()
	if *cp == "" || *admin == "" || *out == "" || *n < 1 || *conc < 1 {
		fmt.Fprintln(os.Stderr, "usage: viewers -controlplane URL -admin TOKEN -out FILE [-n 10000] [-concurrency 16] [-title t1]")
		os.Exit(2)
	}
	b := &bench{base: strings.TrimRight(*cp, "/"), client: &http.Client{Timeout: time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc}}}
	if err := b.run(context.Background(), *admin, *n, *conc, *title, *expect, *out); err != nil {
		fmt.Fprintln(os.Stderr, "viewers:", err)
		os.Exit(1)
	}
}

// plan lets a viewer play everything the bench title has on a few
// screens.
const plan = "bench-premium"

const password = "correct horse battery staple"

type bench struct {
	base   string
	client *http.Client
}

type viewer struct {
	email, token, stream string
}

func (b *bench) run(ctx context.Context, admin string, n, conc int, title, expect, out string) error {
	p := map[string]any{"name": "Bench premium", "max_height": 2160, "max_streams": 4, "downloads": true,
		"price": map[string]any{"amount": 1999, "currency": "EUR"}, "period": "month"}
	if err := b.call(ctx, http.MethodPut, "/v1/plans/"+plan, admin, p, http.StatusOK, nil); err != nil {
		return fmt.Errorf("put plan: %w", err)
	}
	run := strings.ToLower(fmt.Sprintf("%x", time.Now().UnixNano()))
	vs := make([]viewer, n)
	for i := range vs {
		vs[i].email = fmt.Sprintf("viewer%05d-%s@bench.fillcast.example", i, run)
	}
	err := b.phase("sign-ups (POST /v1/accounts)", vs, conc, func(v *viewer) error {
		return b.call(ctx, http.MethodPost, "/v1/accounts", "", map[string]string{"email": v.email, "password": password, "plan": plan}, http.StatusCreated, nil)
	})
	if err == nil {
		err = b.phase("sign-ins (POST /v1/sessions)", vs, conc, func(v *viewer) error {
			var s struct {
				Token string `json:"token"`
			}
			if err := b.call(ctx, http.MethodPost, "/v1/sessions", "", map[string]string{"email": v.email, "password": password}, http.StatusCreated, &s); err != nil {
				return err
			}
			v.token = s.Token
			return nil
		})
	}
	if err == nil {
		err = b.phase("first playbacks (GET /v1/playback, a stream lease each)", vs, conc, func(v *viewer) error {
			var pb fillcast.Playback
			if err := b.call(ctx, http.MethodGet, "/v1/playback/"+title+"?protocol=hls", v.token, nil, http.StatusOK, &pb); err != nil {
				return err
			}
			if pb.StreamID == "" {
				return errors.New("playback answered no stream_id")
			}
			if expect != "" && !strings.Contains(strings.Join(pb.URLs, " "), expect) {
				return fmt.Errorf("playback is not steering to the appliances (%q): %v", expect, pb.URLs)
			}
			v.stream = pb.StreamID
			return nil
		})
	}
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, v := range vs {
		fmt.Fprintf(w, "%s %s\n", v.token, v.stream)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// phase runs do for every viewer, conc at once, and prints how long it
// took.
func (b *bench) phase(name string, vs []viewer, conc int, do func(*viewer) error) error {
	start := time.Now()
	var next, done atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(vs) {
					return
				}
				if err := do(&vs[i]); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("%s: %s: %w", name, vs[i].email, err)
						next.Store(int64(len(vs))) // stop the others
					}
					mu.Unlock()
					return
				}
				if d := done.Add(1); d%1000 == 0 && len(vs) > 2000 {
					fmt.Fprintf(os.Stderr, "  %s: %d of %d (%v)\n", name, d, len(vs), time.Since(start).Round(time.Second))
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	d := time.Since(start)
	fmt.Printf("%d %s in %v: %.0f/s, %d at once\n", len(vs), name, d.Round(100*time.Millisecond), float64(len(vs))/d.Seconds(), conc)
	return nil
}

// call sends one JSON request, retrying while the node sheds load
// (503), and decodes the answer.
func (b *bench) call(ctx context.Context, method, path, token string, in any, want int, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, b.base+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := b.client.Do(req)
		if err != nil {
			return err
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		switch {
		case resp.StatusCode == want:
			if out != nil {
				return json.Unmarshal(got, out)
			}
			return nil
		case resp.StatusCode == http.StatusServiceUnavailable && attempt < 10:
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
			continue
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(got))
	}
}
