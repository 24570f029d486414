package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast/bench/internal/ports"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/bench/internal/apicall"
)

// world is what seeding made on a node: the viewers the load plays as,
// the queries it searches for, and the appliances heartbeating.
type world struct {
	viewers    []viewer
	queries    []string
	appliances []string // base URLs, as registered
	beats      *apicall.Heartbeater
	// recsSource is what GET /v1/recommendations answered from once
	// seeded: "als" (a trained model) or "popular".
	recsSource string
}

// viewer is a signed-up viewer who plays one title on one stream lease,
// reused by every playback call (?stream=), as a player does.
type viewer struct {
	token, title, stream string
	header               http.Header // Authorization
	jsonHeader           http.Header // Authorization and Content-Type
	playbackURL          string
}

// Seeding's names and sizes.
const (
	site          = "local"
	plan          = "bench"
	planScreens   = 4
	password      = "correct horse battery staple"
	heartbeatGap  = time.Second
	seedWorkers   = 4
	titlesPerSeed = 3 // titles each viewer has watched before the load: the recommender's pairs
)

// Words the titles' names are made of; the search queries are these.
var (
	adjectives = []string{"Silent", "Crimson", "Hidden", "Frozen", "Golden", "Distant", "Broken", "Electric", "Wild", "Quiet", "Burning", "Lost"}
	nouns      = []string{"Harbor", "Empire", "Garden", "Signal", "Horizon", "Machine", "River", "Kingdom", "Voyage", "Archive", "Orchard", "Frontier"}
	genres     = []string{"drama", "thriller", "comedy", "documentary", "sci-fi", "animation"}
)

// catalog returns n ready titles, each with a 360p and a 720p rendition,
// registered as packaged elsewhere (no ffmpeg: POST /v1/titles with
// status ready, as DESIGN.md allows), and the queries that find them.
func catalog(n int) ([]fillcast.Title, []string) {
	var ts []fillcast.Title
	var qs []string
	for i := range n {
		adj, noun := adjectives[i%len(adjectives)], nouns[(i*5+i/len(nouns))%len(nouns)]
		g := genres[i%len(genres)]
		ts = append(ts, fillcast.Title{
			ID: titleID(i), Name: "The " + adj + " " + noun, Status: fillcast.StatusReady,
			Description: fmt.Sprintf("A %s about a %s %s, number %d of the bench catalog.", g, strings.ToLower(adj), strings.ToLower(noun), i+1),
			Genres:      []string{g}, Year: 1990 + i%35, Cast: []string{"Ada " + noun, "Ben " + adj},
			Renditions: []fillcast.Rendition{
				{ID: "360p", Kind: "video", Width: 640, Height: 360, Bandwidth: 800_000, Codecs: "avc1.64001e"},
				{ID: "720p", Kind: "video", Width: 1280, Height: 720, Bandwidth: 3_000_000, Codecs: "avc1.64001f"},
			},
		})
		// A word, a phrase, and a word with a typo, as viewers type.
		qs = append(qs, strings.ToLower(noun), strings.ToLower(adj+" "+noun), strings.ToLower(noun[:len(noun)-1]))
	}
	return ts, qs
}

func titleID(i int) string { return fmt.Sprintf("t%02d", i+1) }

// seed makes the world on node base through its API: a site for
// loopback, appliances heartbeating in it, titles, a plan, viewers with
// a session and a stream lease each, some viewing history so that the
// recommender trains its model, and a search index that finds the
// titles. Nothing is timed. log, when set, receives progress.
func seed(ctx context.Context, base string, o options, log func(string, ...any)) (*world, error) {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * seedWorkers}}
	admin := func(method, path string, body any, want int, out any) error {
		return apicall.Retry(ctx, 30*time.Second, func() (int, error) { return apicall.Call(ctx, c, method, base+path, body, adminToken, want, out) })
	}
	w := &world{}
	if err := admin("PUT", "/v1/sites/"+site, map[string]any{"id": site, "kind": "isp", "region": "lab", "prefixes": []string{"127.0.0.0/8"}}, http.StatusOK, nil); err != nil {
		return nil, fmt.Errorf("site: %w", err)
	}
	// Registered first: each appliance heartbeats with the credential
	// answered. Nothing listens at their URLs: the bench measures the
	// control plane, and players never reach the appliances.
	free, err := ports.Free(o.appliances)
	if err != nil {
		return nil, err
	}
	var beats []apicall.Beat
	for i, p := range free {
		id, u := "a"+strconv.Itoa(i+1), "http://127.0.0.1:"+strconv.Itoa(p)
		var reg struct {
			Credential string `json:"credential"`
		}
		if err := admin("PUT", "/v1/appliances/"+id, map[string]any{"site": site, "profile": "storage", "urls": []string{u}}, http.StatusOK, &reg); err != nil {
			return nil, fmt.Errorf("appliance %s: %w", id, err)
		}
		// DESIGN.md's heartbeat fields only: the bench may run a binary
		// older or newer than this tree's fillcast.Heartbeat.
		b, _ := json.Marshal(map[string]any{"site": site, "profile": "storage", "url": u, "capacity_bytes": int64(8 << 40),
			"used_bytes": int64(2 << 40), "health": "ok", "rps": 100, "bps": 1e9})
		beats = append(beats, apicall.Beat{URL: base + "/v1/appliances/" + id + "/heartbeat", Credential: reg.Credential, Body: b})
		w.appliances = append(w.appliances, u)
	}
	w.beats = apicall.StartHeartbeats(beats, heartbeatGap)
	ok := false
	defer func() {
		if !ok {
			w.beats.Close()
		}
	}()
	titles, queries := catalog(o.titles)
	w.queries = queries
	for _, t := range titles {
		if err := admin("POST", "/v1/titles", t, http.StatusCreated, nil); err != nil {
			return nil, fmt.Errorf("title %s: %w", t.ID, err)
		}
	}
	p := map[string]any{"name": "Bench", "max_height": 2160, "max_streams": planScreens, "downloads": true,
		"price": map[string]any{"amount": 0, "currency": "EUR"}, "period": "month"}
	if err := admin("PUT", "/v1/plans/"+plan, p, http.StatusOK, nil); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	t := time.Now()
	w.viewers = make([]viewer, o.viewers)
	if err := parallel(o.viewers, func(i int) error { return signUp(ctx, c, base, i, o.titles, &w.viewers[i]) }); err != nil {
		return nil, err
	}
	log("  %d viewers signed up and in (%v)", o.viewers, time.Since(t).Round(100*time.Millisecond))

	// Steering needs a heartbeat and a snapshot that has it: until then
	// playback answers the origin alone.
	t = time.Now()
	if err := waitSteered(ctx, c, base, w, 30*time.Second); err != nil {
		return nil, err
	}
	if err := parallel(o.viewers, func(i int) error { return takeLease(ctx, c, &w.viewers[i]) }); err != nil {
		return nil, err
	}
	log("  steering sends players to the appliances; %d stream leases taken (%v)", o.viewers, time.Since(t).Round(100*time.Millisecond))

	// Viewing history: each viewer watched its title and two others, so
	// the recommender has more than its 100 viewer-title pairs and
	// trains before the load rather than during it.
	t = time.Now()
	if err := parallel(o.viewers, func(i int) error { return seedHistory(ctx, c, base, i, o.titles, &w.viewers[i]) }); err != nil {
		return nil, err
	}
	if err := waitSearch(ctx, c, base, w, 30*time.Second); err != nil {
		return nil, err
	}
	w.recsSource = waitModel(ctx, c, base, &w.viewers[0], o.modelWait)
	log("  viewing history posted, search finds the titles, recommendations from %q (%v)", w.recsSource, time.Since(t).Round(100*time.Millisecond))
	ok = true
	return w, nil
}

// parallel runs f for 0..n-1 on seedWorkers goroutines and joins the
// errors.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range seedWorkers {
		wg.Go(func() {
			for i := range next {
				errs[i] = f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// signUp creates viewer i's account on the bench plan and signs in. The
// emails are the same on every node, so every node gets the same world.
func signUp(ctx context.Context, c *http.Client, base string, i, titles int, v *viewer) error {
	email := fmt.Sprintf("viewer%05d@overload.bench.example", i)
	acct := map[string]string{"email": email, "password": password, "plan": plan}
	if err := apicall.Retry(ctx, 30*time.Second, func() (int, error) {
		return apicall.Call(ctx, c, "POST", base+"/v1/accounts", acct, "", http.StatusCreated, nil)
	}); err != nil {
		return fmt.Errorf("sign up %s: %w", email, err)
	}
	var s struct {
		Token string `json:"token"`
	}
	if err := apicall.Retry(ctx, 30*time.Second, func() (int, error) {
		return apicall.Call(ctx, c, "POST", base+"/v1/sessions", map[string]string{"email": email, "password": password}, "", http.StatusCreated, &s)
	}); err != nil {
		return fmt.Errorf("sign in %s: %w", email, err)
	}
	v.token, v.title = s.Token, titleID(i%titles)
	v.header = http.Header{"Authorization": {"Bearer " + s.Token}}
	v.jsonHeader = http.Header{"Authorization": {"Bearer " + s.Token}, "Content-Type": {"application/json"}}
	v.playbackURL = base + "/v1/playback/" + v.title + "?protocol=hls"
	return nil
}

// waitSteered waits until the first viewer's playback is steered to an
// appliance rather than the origin alone. It takes no lease: the answer's
// lease is ended at once.
func waitSteered(ctx context.Context, c *http.Client, base string, w *world, within time.Duration) error {
	v := &w.viewers[0]
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		var pb fillcast.Playback
		_, err := apicall.Call(ctx, c, "GET", v.playbackURL, nil, v.token, http.StatusOK, &pb)
		if err == nil {
			apicall.Call(ctx, c, "DELETE", base+"/v1/streams/"+url.PathEscape(pb.StreamID), nil, v.token, http.StatusNoContent, nil)
			if len(pb.URLs) > 0 && w.isAppliance(pb.URLs[0]) {
				return nil
			}
			last = fmt.Sprintf("playback answered %v", pb.URLs)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	sent, failed := w.beats.Counts()
	return fmt.Errorf("steering: no appliance in the playback answer after %v: %s; heartbeats failed %d of %d, the last because %q", within, last, failed, sent, w.beats.LastError())
}

// isAppliance reports whether a playback URL is on a seeded appliance.
func (w *world) isAppliance(u string) bool {
	for _, a := range w.appliances {
		if strings.HasPrefix(u, a+"/") {
			return true
		}
	}
	return false
}

// takeLease asks for the viewer's title once and keeps the stream lease
// answered for every later playback call of the load.
func takeLease(ctx context.Context, c *http.Client, v *viewer) error {
	var pb fillcast.Playback
	if err := apicall.Retry(ctx, 30*time.Second, func() (int, error) {
		return apicall.Call(ctx, c, "GET", v.playbackURL, nil, v.token, http.StatusOK, &pb)
	}); err != nil {
		return fmt.Errorf("playback: %w", err)
	}
	if pb.StreamID == "" {
		return errors.New("playback: no stream_id in the answer")
	}
	v.stream = pb.StreamID
	v.playbackURL += "&stream=" + url.QueryEscape(pb.StreamID)
	return nil
}

// seedHistory posts viewer i's viewing of its own title and the next
// ones: halfway through each.
func seedHistory(ctx context.Context, c *http.Client, base string, i, titles int, v *viewer) error {
	var b []byte
	b = append(b, '[')
	for k := range min(titlesPerSeed, titles) {
		if k > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"id":"seed-%d-%d","title":%q,"type":"progress","position_s":%d,"duration_s":3600}`, i, k, titleID((i+k)%titles), 600+k*300)
	}
	b = append(b, ']')
	// The stream may still be electing its leader: 503 until it is.
	if err := apicall.Retry(ctx, time.Minute, func() (int, error) {
		return apicall.Call(ctx, c, "POST", base+"/v1/events", b, v.token, http.StatusAccepted, nil)
	}); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return nil
}

// waitSearch waits until every query of the first title finds it.
func waitSearch(ctx context.Context, c *http.Client, base string, w *world, within time.Duration) error {
	v := &w.viewers[0]
	deadline := time.Now().Add(within)
	for {
		var res struct {
			Total int `json:"total"`
		}
		_, err := apicall.Call(ctx, c, "GET", base+"/v1/search?q="+url.QueryEscape(w.queries[0]), nil, v.token, http.StatusOK, &res)
		if err == nil && res.Total > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("search: %q finds nothing after %v (%v)", w.queries[0], within, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitModel waits, at most within, until recommendations come from a
// trained model, and returns the source of the last answer.
func waitModel(ctx context.Context, c *http.Client, base string, v *viewer, within time.Duration) string {
	deadline := time.Now().Add(within)
	var source string
	for {
		var res struct {
			Source string `json:"source"`
		}
		if _, err := apicall.Call(ctx, c, "GET", base+"/v1/recommendations", nil, v.token, http.StatusOK, &res); err == nil {
			source = res.Source
		}
		if source == "als" || time.Now().After(deadline) || ctx.Err() != nil {
			return source
		}
		time.Sleep(500 * time.Millisecond)
	}
}
