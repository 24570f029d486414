package targets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

const testKeys = "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

// fakeControlPlane serves GET /v1/titles and GET /v1/playback/{title} with
// the JSON shapes of docs/design.md §6.2, signing URLs with real keys.
func fakeControlPlane(t *testing.T, titles []fillcast.Title, keys *auth.Keys) *httptest.Server {
	t.Helper()
	return fakeControlPlaneWith(t, titles, keys, "")
}

// fakeControlPlaneWith is fakeControlPlane; with a session, its playback
// refuses other callers (401) and answers a stream lease, "st-1".
func fakeControlPlaneWith(t *testing.T, titles []fillcast.Title, keys *auth.Keys, session string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/titles", func(w http.ResponseWriter, r *http.Request) {
		out := []fillcast.Title{}
		for _, tt := range titles {
			if s := r.URL.Query().Get("status"); s == "" || s == tt.Status {
				out = append(out, tt)
			}
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /v1/playback/{title}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("title")
		entry := map[string]string{"hls": "master.m3u8", "dash": "manifest.mpd"}[r.URL.Query().Get("protocol")]
		exp := time.Now().Add(time.Hour)
		var stream string
		if session != "" {
			if r.Header.Get("Authorization") != "Bearer "+session {
				http.Error(w, `{"error":"sign in"}`, http.StatusUnauthorized)
				return
			}
			stream = "st-1"
		}
		json.NewEncoder(w).Encode(fillcast.Playback{StreamID: stream,
			Title: id, Protocol: r.URL.Query().Get("protocol"),
			URLs:        []string{"http://edge1:8080" + keys.SignPath(id, exp, netip.Prefix{}) + "/" + id + "/" + entry, "http://edge2:8080/x"},
			SteeringURL: "http://cp/v1/steering/" + id, ExpiresAt: exp.UTC().Format(time.RFC3339),
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// controlPlane returns a client of u, or nil when u is empty.
func controlPlane(t *testing.T, u string) ControlPlane {
	t.Helper()
	if u == "" {
		return nil
	}
	c, err := client.New(client.Config{URLs: []string{u}}, client.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func catalog(n int) []fillcast.Title {
	var out []fillcast.Title
	for i := range n {
		t := fillcast.Title{ID: fmt.Sprintf("t%02d", i), Status: fillcast.StatusReady}
		for _, r := range []string{"360p", "720p"} {
			t.Files = append(t.Files, fillcast.File{Path: r + "/init.mp4"}, fillcast.File{Path: r + "/playlist.m3u8"})
			for s := 1; s <= 40; s++ {
				t.Files = append(t.Files, fillcast.File{Path: fmt.Sprintf("%s/seg-%05d.m4s", r, s)})
			}
		}
		t.Files = append(t.Files, fillcast.File{Path: "master.m3u8"}, fillcast.File{Path: "download/720p.mp4"})
		out = append(out, t)
	}
	out = append(out, fillcast.Title{ID: "pending", Status: fillcast.StatusIngesting})
	return out
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	keys, err := auth.ParseKeys(strings.NewReader(testKeys))
	if err != nil {
		t.Fatal(err)
	}
	cp := fakeControlPlane(t, catalog(10), keys)
	tests := []struct {
		name      string
		cfg       Config
		wantDash  bool
		wantTitle int
	}{
		{"defaults", Config{ControlPlane: cp.URL, Sessions: 400}, true, 10},
		{"hls only, 3 titles", Config{ControlPlane: cp.URL, Titles: 3, Sessions: 100, DashShare: -1}, false, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, sum, err := Generate(context.Background(), tc.cfg, controlPlane(t, tc.cfg.ControlPlane))
			if err != nil {
				t.Fatal(err)
			}
			if sum.Titles != tc.wantTitle || sum.Kinds["playback"] != tc.cfg.Sessions {
				t.Fatalf("summary %+v: want %d titles and %d playback calls", sum, tc.wantTitle, tc.cfg.Sessions)
			}
			if sum.Kinds["segment"] <= sum.Kinds["playback"] || sum.Kinds["manifest"] != tc.cfg.Sessions {
				t.Fatalf("kinds %v: want a manifest per session and more segments than sessions", sum.Kinds)
			}
			sessionsPer := map[string]int{}
			dash := 0
			for _, tg := range ts {
				u, err := url.Parse(tg.URL)
				if err != nil {
					t.Fatal(err)
				}
				if tg.Kind == "playback" {
					id := strings.TrimPrefix(u.Path, "/v1/playback/")
					sessionsPer[id]++
					if u.Query().Get("protocol") == "dash" {
						dash++
					}
					continue
				}
				// /c/{token}/{title}/{object}: the token must verify for the title.
				parts := strings.SplitN(u.Path, "/", 5)
				if len(parts) != 5 || parts[1] != "c" {
					t.Fatalf("%s: not a content URL", tg.URL)
				}
				if _, err := keys.Verify(parts[2], parts[3], time.Now(), netip.Addr{}); err != nil {
					t.Fatalf("%s: token: %v", tg.URL, err)
				}
				if u.Host != "edge1:8080" {
					t.Fatalf("%s: want the primary (first) URL's host", tg.URL)
				}
				if strings.Contains(tg.URL, "download/") || strings.Contains(tg.URL, "pending") {
					t.Fatalf("%s: downloads and titles not ready are not played", tg.URL)
				}
			}
			if (dash > 0) != tc.wantDash {
				t.Fatalf("dash sessions: %d, want some: %v", dash, tc.wantDash)
			}
			// Popularity skew: the first title gets clearly more sessions
			// than the last.
			first, last := sessionsPer["t00"], sessionsPer[fmt.Sprintf("t%02d", tc.wantTitle-1)]
			if first < 2*last || first == 0 {
				t.Fatalf("sessions per title %v: want a Zipf skew (t00 %d vs last %d)", sessionsPer, first, last)
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	t.Parallel()
	keys, _ := auth.ParseKeys(strings.NewReader(testKeys))
	empty := fakeControlPlane(t, []fillcast.Title{{ID: "x", Status: fillcast.StatusIngesting}}, keys)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	tests := []struct {
		name, cp, want string
	}{
		{"no control plane", "", "config ControlPlane: required"},
		{"no ready titles", empty.URL, "no ready title"},
		{"unreachable", down.URL, "connect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Generate(context.Background(), Config{ControlPlane: tc.cp}, controlPlane(t, tc.cp))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestValidateControlPlane: the control-plane URL is checked as the
// client checks it, and a problem names the ControlPlane field.
func TestValidateControlPlane(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want string // in the error; "" for valid
	}{
		{"http://127.0.0.1:7000", ""},
		{"https://cp.example/", ""},
		{"", "required"},
		{"ftp://cp1", "want a URL"},
		{"cp1:7000", "want a URL"},
		{"http://", "want a URL"},
	}
	for _, tt := range tests {
		err := Config{ControlPlane: tt.url}.Validate()
		var ce *fillcast.ConfigError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v, want valid", tt.url, err)
		case tt.want != "" && (!errors.As(err, &ce) || ce.Field != "ControlPlane" || !strings.Contains(ce.Problem, tt.want)):
			t.Errorf("%q: %v, want a ControlPlane problem saying %q", tt.url, err, tt.want)
		}
	}
}

// TestSession: with a session, every playback call of the list carries it
// and reuses the stream lease Generate took, and Write's output reads
// back with vegeta's http targeter, headers and all.
func TestSession(t *testing.T) {
	t.Parallel()
	keys, err := auth.ParseKeys(strings.NewReader(testKeys))
	if err != nil {
		t.Fatal(err)
	}
	const session = "fcs.ABC.secret"
	cp := fakeControlPlaneWith(t, catalog(3), keys, session)
	c, err := client.New(client.Config{URLs: []string{cp.URL}}, client.Deps{Token: session})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ts, sum, err := Generate(context.Background(), Config{ControlPlane: cp.URL, Sessions: 20, Session: session}, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range ts {
		got := tg.Header.Get("Authorization")
		switch {
		case tg.Kind == "playback" && (got != "Bearer "+session || !strings.Contains(tg.URL, "&stream=st-1")):
			t.Fatalf("playback %s with Authorization %q: want the session and stream st-1", tg.URL, got)
		case tg.Kind != "playback" && got != "":
			t.Fatalf("%s %s carries Authorization %q: want none", tg.Kind, tg.URL, got)
		}
	}
	var b strings.Builder
	if err := Write(&b, ts); err != nil {
		t.Fatal(err)
	}
	read, err := vegeta.ReadAllTargets(vegeta.NewHTTPTargeter(strings.NewReader(b.String()), nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != len(ts) {
		t.Fatalf("read back %d targets, want %d", len(read), len(ts))
	}
	playback := 0
	for i, tg := range read {
		if tg.URL != ts[i].URL || tg.Header.Get("Authorization") != ts[i].Header.Get("Authorization") {
			t.Fatalf("target %d read back as %s %v, want %s %v", i, tg.URL, tg.Header, ts[i].URL, ts[i].Header)
		}
		if tg.Header.Get("Authorization") != "" {
			playback++
		}
	}
	if playback != sum.Kinds["playback"] {
		t.Fatalf("%d targets with a session, want the %d playback calls", playback, sum.Kinds["playback"])
	}

	// Without the session, the control plane refuses Generate's calls.
	anon, err := client.New(client.Config{URLs: []string{cp.URL}}, client.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, _, err := Generate(context.Background(), Config{ControlPlane: cp.URL}, anon); client.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("without a session: %v, want 401", err)
	}
	if err := (Config{ControlPlane: cp.URL, Session: "fcs.a b"}).Validate(); err == nil {
		t.Fatal("a session with a space: valid, want an error")
	}
}
