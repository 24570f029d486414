package api

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/rules"
	"github.com/fillcast/fillcast/internal/jsonappend"
	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/steering/contentsteering"
)

// manifestFor returns the entry file of a protocol.
func manifestFor(protocol string) (string, bool) {
	switch protocol {
	case "", "hls":
		return "master.m3u8", true
	case "dash":
		return "manifest.mpd", true
	}
	return "", false
}

// readyTitle checks that title exists and is ready: 404, 409 otherwise.
// inspect, if given, sees the ready title within the same read.
func (a *API) readyTitle(id string, inspect func(t *fillcast.Title)) error {
	var status string
	var ok bool
	a.read(func(s *fsm.State) {
		if t := s.Titles[id]; t != nil {
			ok, status = true, t.Status
			if status == fillcast.StatusReady && inspect != nil {
				inspect(t)
			}
		}
	})
	if !ok {
		return gateway.Errorf(http.StatusNotFound, "title %q not found", id)
	}
	if status != fillcast.StatusReady {
		return gateway.Errorf(http.StatusConflict, "title %q is %s, not ready for playback", id, status)
	}
	return nil
}

// playback checks the viewer's entitlement to the title, takes a stream
// lease, steers the client and answers the ranked URLs, signed with the
// plan's limits for the appliances to enforce.
func (a *API) playback(w http.ResponseWriter, r *http.Request) error {
	title := r.PathValue("title")
	protocol := queryValue(r.URL.RawQuery, "protocol")
	entry, ok := manifestFor(protocol)
	if !ok {
		return gateway.Errorf(http.StatusBadRequest, "protocol %q: want hls or dash", protocol)
	}
	if protocol == "" {
		protocol = "hls"
	}
	v, err := viewer(r.Context())
	if err != nil {
		return err
	}
	if v, err = a.entitled(r.Context(), v); err != nil {
		return err
	}
	var maturity string
	lowest := 0
	if err := a.readyTitle(title, func(t *fillcast.Title) {
		maturity = t.Maturity
		for _, rd := range t.Renditions {
			if rd.Kind == "video" && rd.Height > 0 && (lowest == 0 || rd.Height < lowest) {
				lowest = rd.Height
			}
		}
	}); err != nil {
		return err
	}
	if v.Profile.Kids && !fillcast.KidsMayWatch(maturity) {
		return gateway.Errorf(http.StatusForbidden, "title %q is rated %s: not available on a kids profile", title, maturity)
	}
	if lowest > v.Plan.MaxHeight {
		return gateway.Errorf(http.StatusForbidden, "your plan plays up to %dp and title %q has nothing below %dp: change plans to watch it", v.Plan.MaxHeight, title, lowest)
	}
	stream, err := a.d.Accounts.StartStream(r.Context(), v, title, queryValue(r.URL.RawQuery, "stream"))
	if errors.Is(err, accounts.ErrLimit) {
		return gateway.Errorf(http.StatusTooManyRequests, "%s", accounts.StreamLimit(v.Plan.MaxStreams))
	}
	if err != nil {
		return applyError(err)
	}
	rc := gateway.FromContext(r.Context())
	var targets [steering.MaxTargets]steering.Target
	got := a.steer(targets[:0], r, title, stream.ID, false)
	signed, expires, err := a.signedPathLimited(title, rc.Client(), planLimits(v.Plan))
	if err != nil {
		return gateway.Errorf(http.StatusServiceUnavailable, "cannot sign playback URLs: %v", err)
	}
	// The first request of the playback carries the trace on to the
	// appliance's access log; appliances ignore the query otherwise.
	path := signed + "/" + entry + "?traceparent=" + rc.Traceparent()
	resp := fillcast.Playback{
		Title:       title,
		Protocol:    protocol,
		URLs:        steering.AppendURLs(make([]string, 0, len(got)), got, path),
		SteeringURL: contentsteering.ServerURI(a.selfURL(r), title, protocol),
		ExpiresAt:   expires.UTC().Format("2006-01-02T15:04:05Z07:00"),
		StreamID:    stream.ID,
	}
	if len(resp.URLs) == 0 {
		return gateway.Errorf(http.StatusServiceUnavailable, "no appliance and no origin can serve %q", title)
	}
	// The busiest route: encoded by hand into a pooled buffer rather
	// than through reflection.
	bp := bufPool.Get().(*[]byte)
	b := appendPlayback((*bp)[:0], &resp)
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	h["Cache-Control"] = noStore
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	*bp = b
	bufPool.Put(bp)
	return err
}

// steer appends the ranked targets for a request of title to dst:
// steering's answer with the runtime rules applied (route rules, then
// canaries, which pick by a stable hash of session, or of the client's
// address without one). A new playback (not dryRun) that steering sends
// to a parent site or the origin, because the client's own site has no
// healthy appliance for the title, counts as that fallback.
func (a *API) steer(dst []steering.Target, r *http.Request, title, session string, dryRun bool) []steering.Target {
	client := gateway.FromContext(r.Context()).Client()
	fl := a.d.Fleet.Current()
	got := fl.Steer(dst, steering.Request{Client: client, Title: title, DryRun: dryRun})
	if !dryRun && len(got) > 0 {
		switch site, ok := fl.Site(client); {
		case !ok: // outside every site: the origin is its place
		case got[0].Role == steering.RoleOrigin:
			a.fallbacks.inc(fallbackPlaybackOrigin)
		case got[0].Site != site:
			a.fallbacks.inc(fallbackPlaybackParent)
		}
	}
	got = a.rules.Load().Steer(fl, rules.SteerRequest{Title: title, Session: session, Client: client, Header: r.Header.Get, DryRun: dryRun}, got)
	return got
}

// planLimits are what a plan lets the token's holder fetch.
func planLimits(p *accounts.Plan) auth.Limits {
	return auth.Limits{MaxHeight: p.MaxHeight, NoDownloads: !p.Downloads}
}

var (
	jsonType = []string{"application/json"}
	noStore  = []string{"no-store"}
	bufPool  = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}
)

// appendPlayback appends p as JSON that decodes to the same value as
// encoding/json's encoding of it, fields named and ordered as
// fillcast.Playback's struct tags say. The bytes may differ: <, >, & and
// U+2028/U+2029 are written as they are, where encoding/json escapes them.
func appendPlayback(b []byte, p *fillcast.Playback) []byte {
	b = append(b, `{"title":`...)
	b = jsonappend.String(b, p.Title)
	b = append(b, `,"protocol":`...)
	b = jsonappend.String(b, p.Protocol)
	b = append(b, `,"urls":[`...)
	for i, u := range p.URLs {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonappend.String(b, u)
	}
	b = append(b, `],"steering_url":`...)
	b = jsonappend.String(b, p.SteeringURL)
	b = append(b, `,"expires_at":`...)
	b = jsonappend.String(b, p.ExpiresAt)
	if p.StreamID != "" {
		b = append(b, `,"stream_id":`...)
		b = jsonappend.String(b, p.StreamID)
	}
	return append(b, "}\n"...)
}

// queryValue returns the first value of key in a raw query string without
// building a url.Values map; values with escapes are unescaped.
func queryValue(raw, key string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
		}
		return v
	}
	return ""
}

// selfURL is how the client reached this node.
func (a *API) selfURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// titleFile redirects (302) to a steered, signed URL of one file of a
// ready title: for viewers, its poster (for catalog pages) or one of its
// MP4 downloads, both known from the catalog; for those who may read
// file lists (mayReadLists), any file of its list as well, which may be
// fetched. Images and downloads thus come from the appliances, as the
// segments do, without counting as a player start.
func (a *API) titleFile(w http.ResponseWriter, r *http.Request) error {
	title, path := r.PathValue("id"), r.PathValue("path")
	if err := a.mayView(r.Context(), title); err != nil {
		return err
	}
	limits, err := a.fileLimits(r.Context(), path)
	if err != nil {
		return err
	}
	if limits.NoDownloads && strings.HasPrefix(path, auth.DownloadDir+"/") {
		return gateway.Errorf(http.StatusForbidden, "downloads are not part of your plan")
	}
	if fillcast.ValidateObjectPath(path) != nil {
		return gateway.Errorf(http.StatusNotFound, "title %q has no file %q", title, path)
	}
	// The poster and the downloads are in the catalog; any other path is
	// looked up in the title's file list, but not for viewers: the list
	// may have to come from the origin.
	var known bool
	var digest string
	if err := a.readyTitle(title, func(t *fillcast.Title) {
		known = path == t.Poster || slices.Contains(t.Downloads, path)
		digest = t.FilesDigest
	}); err != nil {
		return err
	}
	if !known && digest != "" && mayReadLists(r.Context()) {
		if known, err = a.listHas(r.Context(), title, digest, path); err != nil {
			return err
		}
	}
	if !known {
		return gateway.Errorf(http.StatusNotFound, "title %q has no file %q", title, path)
	}
	rc := gateway.FromContext(r.Context())
	var targets [steering.MaxTargets]steering.Target
	got := a.steer(targets[:0], r, title, "", true)
	if len(got) == 0 {
		return gateway.Errorf(http.StatusServiceUnavailable, "no appliance and no origin can serve %q", title)
	}
	signed, _, err := a.signedPathLimited(title, rc.Client(), limits)
	if err != nil {
		return gateway.Errorf(http.StatusServiceUnavailable, "cannot sign playback URLs: %v", err)
	}
	w.Header().Set("Cache-Control", "private, max-age=300")
	http.Redirect(w, r, got[0].URL+signed+"/"+path, http.StatusFound)
	return nil
}

// steering answers an HLS/DASH Content Steering manifest: the same ranking
// as playback, as pathways, reloaded every SteeringTTL. Reloads do not
// count as new players.
func (a *API) steering(w http.ResponseWriter, r *http.Request) error {
	title := r.PathValue("title")
	if err := a.readyTitle(title, nil); err != nil {
		return err
	}
	var targets [steering.MaxTargets]steering.Target
	got := a.steer(targets[:0], r, title, "", true)
	m := contentsteering.Manifest{
		TTL:       a.cfg.SteeringTTL,
		ReloadURI: a.selfURL(r) + "/v1/steering/" + url.PathEscape(title) + "?" + r.URL.RawQuery,
		Pathways:  append(steering.AppendPathways(nil, got), contentsteering.Pathway{ID: contentsteering.DefaultBaseID}),
	}
	b, err := m.AppendJSON(nil)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	// Players on any site's pages read it (the manifests advertise it).
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, err = w.Write(b)
	return err
}
