package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/internal/viewertest"
)

// TestEventsSurviveSIGKILL: three control-plane processes share one
// event stream. Events posted to n1 reach n3's history; n1 is killed
// with SIGKILL right after a batch is acknowledged, and every
// acknowledged event is on the survivors; events posted while it is
// down reach it once it is back.
func TestEventsSurviveSIGKILL(t *testing.T) {
	bin := fillcastBinary(t)
	e := newOpsEnv(t, 1000)
	n1 := startControlPlaneProc(t, bin, e, "n1", "")
	n2 := startControlPlaneProc(t, bin, e, "n2", n1.url)
	n3 := startControlPlaneProc(t, bin, e, "n3", n1.url)
	ctx := t.Context()
	ops, err := client.New(client.Config{URLs: []string{n2.url, n3.url, n1.url}, Timeout: 5 * time.Second}, client.Deps{Token: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "three members", func() bool {
		st, err := ops.Cluster(ctx)
		return err == nil && st.Leader != "" && len(st.Members) == 3
	})
	title := fillcast.Title{ID: "t1", Name: "One", Status: "ready",
		Renditions: []fillcast.Rendition{{ID: "360p", Kind: "video", Height: 360, Bandwidth: 1e6, Codecs: "avc1.64001e"}}}
	if err := ops.Do(ctx, "POST", "/v1/titles", title, nil); err != nil {
		t.Fatal(err)
	}
	v := viewertest.New(t, nil, n1.url, "adm")

	// post sends batch number i (ten progress events) to base until the
	// stream takes it.
	post := func(base string, i int) {
		t.Helper()
		var evs []map[string]any
		for j := range 10 {
			evs = append(evs, map[string]any{"id": fmt.Sprintf("b%d-%d", i, j), "title": "t1", "type": "progress",
				"position_s": float64(10*i + j + 1), "duration_s": 3600})
		}
		body, _ := json.Marshal(evs)
		poll.Until(t, 60*time.Second, fmt.Sprintf("batch %d taken by %s", i, base), func() bool {
			req, _ := http.NewRequest("POST", base+"/v1/events", bytes.NewReader(body))
			v.Authorize(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			switch resp.StatusCode {
			case http.StatusAccepted:
				if !strings.Contains(string(b), `"accepted":10`) {
					t.Fatalf("batch %d: %s", i, b)
				}
				return true
			case http.StatusServiceUnavailable, http.StatusTooManyRequests:
				// As a player does: wait as told (the stream's breaker
				// opens while the stream is down; polling fast meets the
				// viewer's rate limit).
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
					time.Sleep(min(time.Duration(s)*time.Second, 2*time.Second))
				}
				return false
			}
			t.Fatalf("batch %d: %d %s", i, resp.StatusCode, b)
			return false
		})
	}
	// has reports whether base's history and event index hold every
	// event of the first n batches.
	get := func(req *http.Request) (int, []byte) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil // a node starting again
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	has := func(base string, n int) func() bool {
		return func() bool {
			var h struct {
				ContinueWatching []struct {
					Title     string  `json:"title"`
					PositionS float64 `json:"position_s"`
				} `json:"continue_watching"`
			}
			req, _ := http.NewRequest("GET", base+"/v1/history", nil)
			v.Authorize(req)
			if code, b := get(req); code != 200 || json.Unmarshal(b, &h) != nil ||
				len(h.ContinueWatching) != 1 || h.ContinueWatching[0].PositionS != float64(10*n) {
				return false
			}
			var found struct {
				Total int `json:"total_matched"`
			}
			req, _ = http.NewRequest("GET", base+"/v1/ops/events?title=t1&limit=1", nil)
			req.Header.Set("Authorization", "Bearer adm")
			code, b := get(req)
			return code == 200 && json.Unmarshal(b, &found) == nil && found.Total == 10*n
		}
	}

	post(n1.url, 0)
	sent := time.Now()
	poll.Until(t, 10*time.Second, "the first batch in n3's history", has(n3.url, 1))
	t.Logf("a batch posted to n1 was in n3's history and event index after %v", time.Since(sent).Round(time.Millisecond))
	for i := 1; i < 5; i++ {
		post(n1.url, i)
	}
	// Killed the moment its last batch was acknowledged.
	if err := n1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-n1.exited
	for _, n := range []*controlPlaneProc{n2, n3} {
		poll.Until(t, 20*time.Second, "every acknowledged event on "+n.url, has(n.url, 5))
	}
	// The survivors take more while n1 is down.
	for i := 5; i < 8; i++ {
		post(n2.url, i)
	}
	poll.Until(t, 20*time.Second, "the new batches on n3", has(n3.url, 8))
	n1 = startControlPlaneProcAt(t, bin, e, "n1", "", n1.addrs)
	poll.Until(t, 60*time.Second, "n1 caught up after its restart", has(n1.url, 8))
}
