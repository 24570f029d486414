package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fillcast/fillcast/bench/internal/ports"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/bench/internal/apicall"
)

const (
	site = "bench-isp"
	plan = "bench"
	// flashBytes and storageBytes are the appliances' capacities: a
	// flash appliance holds a small share of the catalog, a storage one
	// all of it, so the planner ranks titles and places both kinds.
	flashBytes   = int64(40) << 40
	storageBytes = int64(800) << 40
)

// world is what the bench sets up around the catalog: a site, appliances
// heartbeating in it, and viewers with a stream lease on a title each.
type world struct {
	beats   *apicall.Heartbeater
	viewers []viewer
}

type viewer struct {
	token, playbackURL string
}

// seed makes the site, its appliances and the viewers' plan on the
// system through node base. Nothing listens at the appliances' URLs: the
// bench measures the control plane.
func seed(ctx context.Context, c *http.Client, base string, appliances int) (*world, error) {
	admin := func(method, path string, body any, want int, out any) error {
		return apicall.Retry(ctx, time.Minute, func() (int, error) {
			return apicall.Call(ctx, c, method, base+path, body, adminToken, want, out)
		})
	}
	if err := admin("PUT", "/v1/sites/"+site, fillcast.Site{ID: site, Kind: fillcast.SiteISP, Region: "lab", Prefixes: []string{"127.0.0.0/8"}}, http.StatusOK, nil); err != nil {
		return nil, fmt.Errorf("site: %w", err)
	}
	free, err := ports.Free(appliances)
	if err != nil {
		return nil, err
	}
	var beats []apicall.Beat
	for i, p := range free {
		id, u := "a"+strconv.Itoa(i+1), "http://127.0.0.1:"+strconv.Itoa(p)
		profile, capacity := "flash", flashBytes
		if i%5 == 4 {
			profile, capacity = "storage", storageBytes
		}
		var reg struct {
			Credential string `json:"credential"`
		}
		if err := admin("PUT", "/v1/appliances/"+id, map[string]any{"site": site, "profile": profile, "urls": []string{u}}, http.StatusOK, &reg); err != nil {
			return nil, fmt.Errorf("appliance %s: %w", id, err)
		}
		b, _ := json.Marshal(map[string]any{"site": site, "profile": profile, "url": u, "capacity_bytes": capacity,
			"used_bytes": capacity / 2, "health": "ok", "rps": 100, "bps": 1e9})
		beats = append(beats, apicall.Beat{URL: base + "/v1/appliances/" + id + "/heartbeat", Credential: reg.Credential, Body: b})
	}
	w := &world{beats: apicall.StartHeartbeats(beats, 2*time.Second)}
	p := map[string]any{"name": "Bench", "max_height": 2160, "max_streams": 4, "downloads": true,
		"price": map[string]any{"amount": 0, "currency": "EUR"}, "period": "month"}
	if err := admin("PUT", "/v1/plans/"+plan, p, http.StatusOK, nil); err != nil {
		w.beats.Close()
		return nil, fmt.Errorf("plan: %w", err)
	}
	return w, nil
}

// addViewers signs up n viewers, each asking for one of the first titles
// of the catalog, and takes each one's stream lease.
func (w *world) addViewers(ctx context.Context, c *http.Client, base string, n, titles int) error {
	for i := range n {
		token, err := apicall.SignUp(ctx, c, base, fmt.Sprintf("viewer%03d@catalog.bench.example", i), "correct horse battery", plan)
		if err != nil {
			return fmt.Errorf("viewer %d: %w", i, err)
		}
		w.viewers = append(w.viewers, viewer{token: token, playbackURL: base + "/v1/playback/" + titleID(i*titles/n) + "?protocol=hls"})
	}
	return w.lease(ctx, c)
}

// lease asks for each viewer's title once and keeps the stream lease for
// every later playback call.
func (w *world) lease(ctx context.Context, c *http.Client) error {
	for i := range w.viewers {
		v := &w.viewers[i]
		var pb fillcast.Playback
		if err := apicall.Retry(ctx, time.Minute, func() (int, error) {
			return apicall.Call(ctx, c, "GET", v.playbackURL, nil, v.token, http.StatusOK, &pb)
		}); err != nil {
			return fmt.Errorf("playback: %w", err)
		}
		v.playbackURL += "&stream=" + url.QueryEscape(pb.StreamID)
	}
	return nil
}
