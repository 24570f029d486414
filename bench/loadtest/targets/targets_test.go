package targets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/client"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestTargetsGenerate(t *testing.T) {
	t.Parallel()
	keys := testKeySet(t)
	tests := []struct {
		name      string
		cfg       Config
		wantDash  bool
		wantTitle int
		// wantPages and wantMasters are the listing pages and the master
		// playlists Generate should ask for: the whole listing (12 ready
		// titles, 3 pages) for more titles than there are, else only as
		// far as the last title it uses, and the master playlists of
		// those titles alone (t00-bare's and t00-empty's too, found to
		// have no segments).
		wantPages, wantMasters int64
	}{
		{"defaults", Config{Sessions: 400}, true, 10, 3, 12},
		{"hls only, 3 titles", Config{Titles: 3, Sessions: 100, DashShare: -1}, false, 3, 2, 5},
		{"5 titles", Config{Titles: 5, Sessions: 100}, true, 5, 2, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cp, app, n := serve(t, catalog(10), keys, "")
			tc.cfg.ControlPlane = cp.URL
			ts, sum, err := Generate(context.Background(), tc.cfg, deps(t, cp.URL))
			if err != nil {
				t.Fatal(err)
			}
			if sum.Titles != tc.wantTitle || sum.Kinds["playback"] != tc.cfg.Sessions {
				t.Fatalf("summary %+v: want %d titles and %d playback calls", sum, tc.wantTitle, tc.cfg.Sessions)
			}
			if got, want := [3]int64{n.pages.Load(), n.masters.Load(), n.files.Load()}, [3]int64{tc.wantPages, tc.wantMasters, 0}; got != want {
				t.Fatalf("listing pages, master playlists and ?files=1 reads %v, want %v", got, want)
			}
			if sum.Kinds["segment"] <= sum.Kinds["playback"] || sum.Kinds["manifest"] != tc.cfg.Sessions || sum.Kinds["init"] != tc.cfg.Sessions {
				t.Fatalf("kinds %v: want a manifest and an init segment per session and more segments than sessions", sum.Kinds)
			}
			if d := time.Until(sum.ExpiresAt); d < 50*time.Minute || d > time.Hour {
				t.Fatalf("expires at %v: want the tokens' expiry, an hour from now", sum.ExpiresAt)
			}
			sessionsPer := map[string]int{}
			dash := 0
			renditions := map[string]bool{} // of t00, by the paths of its playlists and segments
			fetched := map[string]bool{}
			verified := map[string]bool{} // token/title
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
				if !verified[parts[2]+"/"+parts[3]] {
					if _, err := keys.Verify(parts[2], parts[3], time.Now(), netip.Addr{}); err != nil {
						t.Fatalf("%s: token: %v", tg.URL, err)
					}
					verified[parts[2]+"/"+parts[3]] = true
				}
				if "http://"+u.Host != app.URL {
					t.Fatalf("%s: want the primary (first) URL's host, the appliance %s", tg.URL, app.URL)
				}
				if strings.Contains(tg.URL, "download/") || strings.Contains(tg.URL, "iframes") || strings.HasPrefix(parts[3], "t00-") || parts[3] == "pending" {
					t.Fatalf("%s: downloads, I-frame playlists, titles without segments and titles not ready are not played", tg.URL)
				}
				if parts[3] == "t00" && (tg.Kind == "playlist" || tg.Kind == "segment") {
					renditions[tg.Kind+" "+strings.Split(parts[4], "/")[0]] = true
				}
				// Every appliance request of the list is one the appliance answers.
				if !fetched[tg.URL] {
					fetched[tg.URL] = true
					if code := get(t, tg.URL); code != http.StatusOK {
						t.Fatalf("%s %s: the appliance answers %d", tg.Kind, tg.URL, code)
					}
				}
			}
			if (dash > 0) != tc.wantDash {
				t.Fatalf("dash sessions: %d, want some: %v", dash, tc.wantDash)
			}
			for _, r := range []string{"360p", "720p", "audio-en"} {
				if !renditions["playlist "+r] || !renditions["segment "+r] {
					t.Errorf("t00's sessions fetched %v: want the playlist and segments of %s among them", renditions, r)
				}
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

// get answers the status of GET u.
func get(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body) // and the connection serves the next
	return resp.StatusCode
}

func TestTargetsGenerateErrors(t *testing.T) {
	t.Parallel()
	keys := testKeySet(t)
	empty, _, _ := serve(t, world{titles: []fillcast.Title{{ID: "x", Status: fillcast.StatusIngesting}}}, keys, "")
	w := catalog(0)
	bare, _, _ := serve(t, w, keys, "")
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	tests := []struct {
		name, cp, want string
	}{
		{"no control plane", "", "config ControlPlane: required"},
		{"no ready titles", empty.URL, "no ready title with segments (0 read"},
		{"no title with segments", bare.URL, "no ready title with segments (2 read"},
		{"unreachable", down.URL, "connect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Generate(context.Background(), Config{ControlPlane: tc.cp}, deps(t, tc.cp))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	if _, _, err := Generate(context.Background(), Config{ControlPlane: bare.URL}, Deps{}); err == nil || !strings.Contains(err.Error(), "control-plane client is required") {
		t.Fatalf("without a control-plane client: %v, want an error saying it is required", err)
	}
}

// TestTargetsValidateControlPlane: the control-plane URL is checked as the
// client checks it, and a problem names the ControlPlane field.
func TestTargetsValidateControlPlane(t *testing.T) {
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

// TestTargetsSession: with a session, every playback call of the list carries it
// and reuses the stream lease Generate took, and Write's output reads
// back with vegeta's http targeter, headers and all.
func TestTargetsSession(t *testing.T) {
	t.Parallel()
	keys := testKeySet(t)
	const session = "fcs.ABC.secret"
	cp, _, _ := serve(t, catalog(3), keys, session)
	c, err := client.New(client.Config{URLs: []string{cp.URL}}, client.Deps{Token: session})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ts, sum, err := Generate(context.Background(), Config{ControlPlane: cp.URL, Sessions: 20, Session: session}, Deps{ControlPlane: c})
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
	if _, _, err := Generate(context.Background(), Config{ControlPlane: cp.URL}, Deps{ControlPlane: anon}); client.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("without a session: %v, want 401", err)
	}
	if err := (Config{ControlPlane: cp.URL, Session: "fcs.a b"}).Validate(); err == nil {
		t.Fatal("a session with a space: valid, want an error")
	}
}
