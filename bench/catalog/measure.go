package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast/bench/internal/apicall"
)

// latencies are the durations of one kind of request, with the bytes
// of the largest answer.
type latencies struct {
	d       []time.Duration
	maxBody int64
	errors  int
	mu      sync.Mutex
}

func (l *latencies) add(d time.Duration, body int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errors++
		return
	}
	l.d = append(l.d, d)
	l.maxBody = max(l.maxBody, body)
}

// quantile is the q-quantile (0..1) of the durations, 0 without any.
func (l *latencies) quantile(q float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// timedGet GETs u with token, reads the whole answer, and records it.
func timedGet(ctx context.Context, c *http.Client, u, token string, l *latencies) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		l.add(0, 0, err)
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d %.200s", u, resp.StatusCode, b)
	}
	l.add(time.Since(start), int64(len(b)), err)
	return b, err
}

// playback measures n playback requests from the viewers, workers at a
// time.
func playback(ctx context.Context, c *http.Client, w *world, n, workers int) *latencies {
	l := &latencies{}
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() {
			for i := k; i < n; i += workers {
				v := w.viewers[i%len(w.viewers)]
				timedGet(ctx, c, v.playbackURL, v.token, l)
			}
		})
	}
	wg.Wait()
	return l
}

// plannerPass is the leader's mean full planner pass
// (fillcast_planner_pass_seconds) over up to three passes, each started
// by a catalog change (a title's description edited, which kicks the
// planner), with how many there were; ok is false when the node has no
// such metric.
func plannerPass(ctx context.Context, c *http.Client, s *system, sh shape) (mean time.Duration, passes int, ok bool) {
	leader := leaderOf(ctx, c, s)
	sum0, n0, ok := histogram(ctx, c, leader, "fillcast_planner_pass_seconds")
	if !ok {
		return 0, 0, false
	}
	sum, n := sum0, n0
	for k := range 3 {
		t := sh.title(k)
		t.Description += fmt.Sprintf(" Edited %d.", k)
		if _, err := apicall.Call(ctx, c, "PUT", leader.url+"/v1/titles/"+t.ID, t, adminToken, http.StatusOK, nil); err != nil {
			break
		}
		before := n
		until(ctx, time.Minute, "a planner pass", func() bool {
			sum, n, _ = histogram(ctx, c, leader, "fillcast_planner_pass_seconds")
			return n > before
		})
	}
	if n == n0 {
		return 0, 0, true
	}
	return time.Duration((sum - sum0) / (n - n0) * float64(time.Second)), int(n - n0), true
}

// leaderOf is the node that leads (the first, if none answers).
func leaderOf(ctx context.Context, c *http.Client, s *system) *proc {
	var st struct {
		LeaderURL string `json:"leader_url"`
	}
	if _, err := apicall.Call(ctx, c, "GET", s.nodes[0].url+"/v1/cluster", nil, adminToken, http.StatusOK, &st); err == nil {
		for _, n := range s.nodes {
			if n.url == st.LeaderURL {
				return n
			}
		}
	}
	return s.nodes[0]
}

// histogram reads a histogram's _sum and _count from n's /metrics.
func histogram(ctx context.Context, c *http.Client, n *proc, name string) (sum, count float64, ok bool) {
	req, _ := http.NewRequestWithContext(ctx, "GET", n.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		field, value, _ := strings.Cut(line, " ")
		v, _ := strconv.ParseFloat(value, 64)
		switch field {
		case name + "_sum":
			sum, ok = v, true
		case name + "_count":
			count = v
		}
	}
	return sum, count, ok
}

// restart stops node n and starts it again, and returns how long it
// took from the start to answering ready (GET /readyz 200) and the
// catalog (probe 200).
func restart(ctx context.Context, c *http.Client, s *system, n *proc, probe string) (time.Duration, error) {
	n.stop()
	start := time.Now()
	if err := n.start(s.dir); err != nil {
		return 0, err
	}
	err := until(ctx, 5*time.Minute, n.name+" serving again", func() bool {
		_, err := apicall.Call(ctx, c, "GET", n.url+"/readyz", nil, "", http.StatusOK, nil)
		if err != nil {
			return false
		}
		_, err = timedGet(ctx, c, n.url+probe, adminToken, &latencies{})
		return err == nil
	}, n)
	return time.Since(start), err
}
