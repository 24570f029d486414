// Package targets builds a realistic vegeta target list for Fillcast from
// a running control plane: the playback calls players make, then the
// manifests, rendition playlists, init segments and media segments they
// fetch from the appliances, with a Zipf popularity skew over titles and
// the drop-off of viewers through a title. Tokens are real: every URL
// comes from GET /v1/playback, read through the control-plane client
// (controlplane/client). A title's renditions, init segments and media
// segments are found as a player finds them: in the HLS master playlist
// and rendition playlists the appliance serves at the playback URL (DASH
// sessions fetch the same CMAF segments), not in the catalog's file
// lists, which viewers may not read. Playback needs a viewer's session: Generate's
// calls send the client's token, and the list's playback calls carry the
// same session (Config.Session) as their Authorization header, with the
// stream lease Generate's first call took (?stream=), so that the whole
// list plays on one of the viewer's screens. `fillcast targets` writes
// the list and bench/loadtest replays it with vegeta.
package targets

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/client"
)

// ControlPlane is what Generate reads the catalog and the playback URLs
// from.
type ControlPlane interface {
	// Do is a GET of the API's JSON.
	Do(ctx context.Context, method, path string, in, out any) error
	// Playback asks where to play a title, as a player does: as the
	// viewer of Config.Session.
	Playback(ctx context.Context, title, protocol, stream string) (fillcast.Playback, error)
}

var _ ControlPlane = (*client.Client)(nil)

// Config configures Generate.
type Config struct {
	// ControlPlane is the base URL of a control-plane node, which the
	// list's playback calls go to. Required.
	ControlPlane string
	// Titles caps how many ready titles the list covers, most popular
	// first. Zero means 20.
	Titles int
	// Sessions is the number of playback sessions in the list. Zero means
	// 500.
	Sessions int
	// MaxSegments caps the media segments one session fetches. Zero
	// means 30.
	MaxSegments int
	// DashShare is the share of sessions that play DASH rather than HLS.
	// Zero means 0.2; use a negative value for HLS only.
	DashShare float64
	// ZipfS is the exponent of title popularity (rank r has weight
	// 1/r^s). Zero means 1.1.
	ZipfS float64
	// Seed makes the list reproducible. Zero means 1.
	Seed uint64
	// Session is a viewer's session token (fcs.…, from POST
	// /v1/sessions), written as the Authorization header of the list's
	// playback calls; the ControlPlane given to Generate must call with
	// the same token. Empty writes none, for a control plane that does
	// not ask for one.
	Session string
	// FetchTimeout bounds each playlist read from an appliance. Zero
	// means 10 s.
	FetchTimeout time.Duration
}

// Deps are what Generate works with besides its Config.
type Deps struct {
	// ControlPlane is where the catalog and the playback URLs come from:
	// a client of Config.ControlPlane. Required.
	ControlPlane ControlPlane
	// HTTP reads the playlists from the appliances. Nil means a client
	// whose requests are bounded by Config.FetchTimeout.
	HTTP *http.Client
}

// DefaultConfig returns a Config with every default filled in but the
// control plane.
func DefaultConfig() Config {
	return Config{Titles: 20, Sessions: 500, MaxSegments: 30, DashShare: 0.2, ZipfS: 1.1, Seed: 1, FetchTimeout: 10 * time.Second}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if c.ControlPlane == "" {
		return fillcast.ConfigErrorf("targets", "ControlPlane", "required: the base URL of a control-plane node")
	}
	// The URL the client of ControlPlane is made with: checked as the
	// client checks it.
	if err := (client.Config{URLs: []string{c.ControlPlane}}).Validate(); err != nil {
		var ce *fillcast.ConfigError
		if errors.As(err, &ce) {
			return fillcast.ConfigErrorf("targets", "ControlPlane", "%s", ce.Problem)
		}
		return err
	}
	switch {
	case c.Titles < 0:
		return fillcast.ConfigErrorf("targets", "Titles", "%d is negative", c.Titles)
	case c.Sessions < 0:
		return fillcast.ConfigErrorf("targets", "Sessions", "%d is negative", c.Sessions)
	case c.MaxSegments < 0:
		return fillcast.ConfigErrorf("targets", "MaxSegments", "%d is negative", c.MaxSegments)
	case c.DashShare > 1:
		return fillcast.ConfigErrorf("targets", "DashShare", "%v: want a share of at most 1 (negative: HLS only)", c.DashShare)
	case c.ZipfS < 0:
		return fillcast.ConfigErrorf("targets", "ZipfS", "%v: want a positive exponent", c.ZipfS)
	case c.FetchTimeout < 0:
		return fillcast.ConfigErrorf("targets", "FetchTimeout", "%v is negative", c.FetchTimeout)
	case strings.ContainsFunc(c.Session, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fillcast.ConfigErrorf("targets", "Session", "a session token has no spaces or control characters: want the token answered by POST /v1/sessions")
	}
	return nil
}

// withDefaults fills the zero fields; c has passed Validate.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.ControlPlane = strings.TrimRight(c.ControlPlane, "/")
	c.Titles = cmp.Or(c.Titles, d.Titles)
	c.Sessions = cmp.Or(c.Sessions, d.Sessions)
	c.MaxSegments = cmp.Or(c.MaxSegments, d.MaxSegments)
	c.DashShare = max(cmp.Or(c.DashShare, d.DashShare), 0) // negative: HLS only
	c.ZipfS = cmp.Or(c.ZipfS, d.ZipfS)
	c.Seed = cmp.Or(c.Seed, d.Seed)
	c.FetchTimeout = cmp.Or(c.FetchTimeout, d.FetchTimeout)
	return c
}

// Target is one request of the list.
type Target struct {
	Method, URL string
	// Kind is "playback", "manifest", "playlist", "init" or "segment".
	Kind string
	// Header holds the request's headers: a playback call's
	// Authorization. Nil for the appliance requests, whose URLs carry
	// their tokens.
	Header http.Header
}

// Summary describes a generated list.
type Summary struct {
	Titles    int            `json:"titles"`
	Sessions  int            `json:"sessions"`
	Kinds     map[string]int `json:"kinds"`
	ExpiresAt time.Time      `json:"expires_at"` // the earliest token expiry
}

// title is what a session needs of a title.
type title struct {
	id         string
	renditions []rendition       // by playlist path; each with segments
	base       map[string]string // protocol → signed base URL ".../c/{token}/{title}/"
	// stream is the lease the list's playback calls reuse; empty when
	// the control plane answered none.
	stream string
}

// Generate reads the catalog and playback URLs from d.ControlPlane (a
// client of cfg.ControlPlane, say) and each title's playlists from the
// appliance it is steered to, and returns the targets, sessions
// interleaved the way concurrent players interleave them. It pages
// through the listing of ready titles only until it has cfg.Titles whose
// playlists list media segments, so a large catalog costs it a few
// pages; a title without a master playlist (404) or without segments is
// skipped, and a playlist that cannot be read or parsed is an error.
func Generate(ctx context.Context, cfg Config, d Deps) ([]Target, Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, Summary{}, err
	}
	cp := d.ControlPlane
	if cp == nil {
		return nil, Summary{}, errors.New("targets: a control-plane client is required")
	}
	cfg = cfg.withDefaults()
	pl := playlists{hc: d.HTTP, timeout: cfg.FetchTimeout}
	if pl.hc == nil {
		pl.hc = &http.Client{Timeout: cfg.FetchTimeout}
	}
	var auth http.Header
	if cfg.Session != "" {
		auth = http.Header{"Authorization": {"Bearer " + cfg.Session}}
	}
	sum := Summary{Kinds: map[string]int{}}
	var titles []*title
	var stream string
	skipped := 0
	err := readyTitles(ctx, cp, func(id string) (bool, error) {
		tt := &title{id: id, base: map[string]string{}}
		var expires time.Time
		for _, proto := range []string{"hls", "dash"} {
			pb, err := cp.Playback(ctx, id, proto, stream)
			stream = pb.StreamID // one screen for the whole walk
			if err != nil {
				return false, fmt.Errorf("targets: %w", err)
			}
			if len(pb.URLs) == 0 {
				return false, fmt.Errorf("targets: playback of %s (%s): no appliance URL: is an appliance of the client's site healthy?", id, proto)
			}
			i := strings.LastIndexByte(pb.URLs[0], '/')
			tt.base[proto] = pb.URLs[0][:i+1]
			if exp, err := time.Parse(time.RFC3339, pb.ExpiresAt); err == nil {
				expires = earliest(expires, exp)
			}
		}
		var err error
		if tt.renditions, err = pl.renditions(ctx, tt.base["hls"]); err != nil || len(tt.renditions) == 0 {
			skipped++
			return err == nil, err
		}
		sum.ExpiresAt = earliest(sum.ExpiresAt, expires)
		tt.stream = stream
		titles = append(titles, tt)
		return len(titles) < cfg.Titles, nil
	})
	if err != nil {
		return nil, Summary{}, err
	}
	if len(titles) == 0 {
		return nil, Summary{}, fmt.Errorf("targets: %s has no ready title with segments (%d read: without a master playlist at the appliance, or whose playlists list no segment): ingest one first", cfg.ControlPlane, skipped)
	}
	sum.Titles = len(titles)
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	pick := zipf(len(titles), cfg.ZipfS)
	sessions := make([][]Target, cfg.Sessions)
	for s := range sessions {
		sessions[s] = session(cfg, titles[pick(rng.Float64())], auth, rng)
	}
	sum.Sessions = len(sessions)
	// Interleave as concurrent players do: each step takes the next
	// request of a random session (weighted by what it has left), so every
	// part of the list mixes playback calls, manifests and segments while
	// each session keeps its own order.
	left := 0
	for _, ss := range sessions {
		left += len(ss)
	}
	out := make([]Target, 0, left)
	for ; left > 0; left-- {
		k := rng.IntN(left)
		for s := range sessions {
			if k < len(sessions[s]) {
				out = append(out, sessions[s][0])
				sum.Kinds[sessions[s][0].Kind]++
				sessions[s] = sessions[s][1:]
				break
			}
			k -= len(sessions[s])
		}
	}
	return out, sum, nil
}

// earliest answers the earlier of a and b, the zero time standing for
// none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// listPage is a page of GET /v1/titles: the fields Generate reads.
type listPage struct {
	Titles []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"titles"`
	NextCursor string `json:"next_cursor"`
}

// listLimit is how many titles Generate asks for per page of the
// listing: the control plane's most.
const listLimit = 200

// readyTitles pages through the ready titles of the catalog in id order,
// calling fn with each until fn answers false or an error.
func readyTitles(ctx context.Context, cp ControlPlane, fn func(id string) (bool, error)) error {
	cursor := ""
	for {
		q := url.Values{"status": {fillcast.StatusReady}, "limit": {strconv.Itoa(listLimit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page listPage
		if err := cp.Do(ctx, http.MethodGet, "/v1/titles?"+q.Encode(), nil, &page); err != nil {
			return fmt.Errorf("targets: read the catalog: %w", err)
		}
		for _, t := range page.Titles {
			if t.Status != fillcast.StatusReady {
				continue
			}
			if more, err := fn(t.ID); err != nil || !more {
				return err
			}
		}
		if page.NextCursor == "" || page.NextCursor == cursor {
			return nil
		}
		cursor = page.NextCursor
	}
}

// session is one player: the playback call (with auth, the viewer's
// session, and the stream lease every player of the list shares: a
// shortcut, where a deployment's players hold one lease each), the
// manifest, one rendition's playlist and init segment, then segments
// from the start until the viewer leaves (geometric drop-off, most stay
// for a few segments).
func session(cfg Config, t *title, auth http.Header, rng *rand.Rand) []Target {
	proto, manifest := "hls", "master.m3u8"
	if rng.Float64() < cfg.DashShare {
		proto, manifest = "dash", "manifest.mpd"
	}
	base := t.base[proto]
	play := cfg.ControlPlane + "/v1/playback/" + url.PathEscape(t.id) + "?protocol=" + proto
	if t.stream != "" {
		play += "&stream=" + url.QueryEscape(t.stream)
	}
	out := []Target{
		{Method: http.MethodGet, URL: play, Kind: "playback", Header: auth},
		{Method: http.MethodGet, URL: base + manifest, Kind: "manifest"},
	}
	r := t.renditions[rng.IntN(len(t.renditions))]
	if proto == "hls" {
		out = append(out, Target{Method: http.MethodGet, URL: base + r.playlist, Kind: "playlist"})
	}
	if r.init != "" {
		out = append(out, Target{Method: http.MethodGet, URL: base + r.init, Kind: "init"})
	}
	segs := r.segments
	n := 1
	for n < cfg.MaxSegments && n < len(segs) && rng.Float64() < 0.85 {
		n++
	}
	for _, s := range segs[:n] {
		out = append(out, Target{Method: http.MethodGet, URL: base + s, Kind: "segment"})
	}
	return out
}

// zipf returns a function mapping a uniform [0,1) draw to a rank in [0,n)
// with weight 1/(rank+1)^s.
func zipf(n int, s float64) func(float64) int {
	cum := make([]float64, n)
	total := 0.0
	for i := range n {
		total += 1 / math.Pow(float64(i+1), s)
		cum[i] = total
	}
	return func(u float64) int {
		return min(sort.SearchFloat64s(cum, u*total), n-1)
	}
}

// Write writes targets in vegeta's http format: a "GET url" line each,
// followed, for a target with headers, by "Key: value" lines and an
// empty line that ends them.
func Write(w io.Writer, ts []Target) error {
	bw := bufio.NewWriter(w)
	for _, t := range ts {
		fmt.Fprintf(bw, "%s %s\n", t.Method, t.URL)
		if len(t.Header) == 0 {
			continue
		}
		keys := slices.Sorted(maps.Keys(t.Header))
		for _, k := range keys {
			for _, v := range t.Header[k] {
				fmt.Fprintf(bw, "%s: %s\n", k, v)
			}
		}
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("targets: write: %w", err)
	}
	return nil
}
