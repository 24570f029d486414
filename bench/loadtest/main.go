// Command loadtest replays a Fillcast target list (written by `fillcast
// targets`) with vegeta at fixed rates and prints, for each rate, the
// latency percentiles and success ratio of the control-plane calls and of
// the appliance requests separately, then of all together.
//
//	fillcast targets --controlplane http://cp:7000 --out targets.txt
//	go run ./bench/loadtest -targets targets.txt -rates 50,100,200 -duration 30s
//
// Or let it call the control plane itself: -controlplane http://cp:7000
// -session fcs.… (a viewer's session, which playback needs; default
// $FILLCAST_SESSION).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fillcast/fillcast/bench/loadtest/targets"
	"github.com/fillcast/fillcast/controlplane/client"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func main() {
	file := flag.String("targets", "", "vegeta targets FILE (http format) from `fillcast targets`")
	cp := flag.String("controlplane", "", "control-plane URL to build the targets from (instead of -targets)")
	titles := flag.Int("titles", 20, "with -controlplane: titles to cover")
	sessions := flag.Int("sessions", 500, "with -controlplane: sessions in the list")
	session := flag.String("session", os.Getenv("FILLCAST_SESSION"), "with -controlplane: a viewer's session `TOKEN` for the playback calls (default $FILLCAST_SESSION)")
	rates := flag.String("rates", "50,100,200", "comma-separated request rates (per second), each run in turn")
	dur := flag.Duration("duration", 10*time.Second, "length of each rate's run")
	timeout := flag.Duration("timeout", 10*time.Second, "per-request timeout")
	flag.Parse()
	if err := run(*file, *cp, *session, *titles, *sessions, *rates, *dur, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(file, cp, session string, titles, sessions int, rateList string, dur, timeout time.Duration) error {
	var tgts []vegeta.Target
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if tgts, err = vegeta.ReadAllTargets(vegeta.NewHTTPTargeter(bytes.NewReader(b), nil, nil)); err != nil {
			return fmt.Errorf("read %s: %w", file, err)
		}
	case cp != "":
		cfg := targets.DefaultConfig()
		cfg.ControlPlane, cfg.Titles, cfg.Sessions, cfg.Session = cp, titles, sessions, session
		c, err := client.New(client.Config{URLs: []string{cp}}, client.Deps{Token: session})
		if err != nil {
			return err
		}
		ts, sum, err := targets.Generate(context.Background(), cfg, targets.Deps{ControlPlane: c})
		if err != nil {
			return err
		}
		fmt.Printf("targets: %d requests, %d sessions over %d titles %v\n", len(ts), sum.Sessions, sum.Titles, sum.Kinds)
		for _, t := range ts {
			tgts = append(tgts, vegeta.Target{Method: t.Method, URL: t.URL, Header: t.Header})
		}
	default:
		return errors.New("give -targets FILE or -controlplane URL")
	}
	if len(tgts) == 0 {
		return errors.New("no targets")
	}
	var rates []int
	for _, s := range strings.Split(rateList, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r <= 0 {
			return fmt.Errorf("-rates %q: want positive integers", rateList)
		}
		rates = append(rates, r)
	}
	fmt.Printf("%d targets, %s per rate, keep-alive\n\n", len(tgts), dur)
	fmt.Printf("%6s %-14s %8s %8s %9s %9s %9s %9s %10s\n", "rate", "part", "requests", "success", "p50", "p90", "p99", "max", "MB/s")
	for _, rate := range rates {
		atk := vegeta.NewAttacker(vegeta.Timeout(timeout), vegeta.KeepAlive(true))
		parts := map[string]*vegeta.Metrics{}
		bytesIn := map[string]uint64{}
		var order []string
		start := time.Now()
		for res := range atk.Attack(vegeta.NewStaticTargeter(tgts...), vegeta.ConstantPacer{Freq: rate, Per: time.Second}, dur, strconv.Itoa(rate)) {
			for _, p := range []string{part(res.URL), "all"} {
				m := parts[p]
				if m == nil {
					m = &vegeta.Metrics{}
					parts[p] = m
					order = append(order, p)
				}
				m.Add(res)
			}
		}
		elapsed := time.Since(start).Seconds()
		sort.Strings(order)
		for _, p := range order {
			m := parts[p]
			m.Close()
			bytesIn[p] = m.BytesIn.Total
			fmt.Printf("%6d %-14s %8d %7.2f%% %9s %9s %9s %9s %10.2f\n", rate, p, m.Requests, 100*m.Success,
				r(m.Latencies.P50), r(m.Latencies.P90), r(m.Latencies.P99), r(m.Latencies.Max), float64(bytesIn[p])/1e6/elapsed)
			if p == "all" {
				for code, n := range m.StatusCodes {
					if code != "200" {
						fmt.Printf("%6s %-14s   status %s: %d\n", "", "", code, n)
					}
				}
			}
		}
	}
	return nil
}

// part names a request by what it is: a playback call to the control
// plane, or a request to an appliance.
func part(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "other"
	}
	if strings.HasPrefix(pu.Path, "/v1/") {
		return "controlplane"
	}
	return "appliance"
}

func r(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
