package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/fsm"
)

func TestPlaybackJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	tests := []fillcast.Playback{
		{Title: "t1", Protocol: "hls", URLs: []string{"http://a:1/c/tok/t1/master.m3u8", "http://o/x"}, SteeringURL: "http://cp/v1/steering/t1?protocol=hls", ExpiresAt: "2026-11-26T00:00:00Z"},
		{Title: "q\"uote\\back\nline\x01ctl\u00e9", URLs: []string{}},
	}
	for _, p := range tests {
		got := appendPlayback(nil, &p)
		var back fillcast.Playback
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("appendPlayback(%+v) = %s: not JSON: %v", p, got, err)
		}
		want, _ := json.Marshal(p)
		var wantBack fillcast.Playback
		json.Unmarshal(want, &wantBack)
		if !reflect.DeepEqual(back, wantBack) {
			t.Errorf("round trip: got %+v, want %+v", back, wantBack)
		}
	}
}

func TestPlaybackAndFileRoutes(t *testing.T) {
	a := newTestAPI(t)
	token := signIn(t, a, "routes@example.com", "wall")
	playback := func(t *testing.T, w *httptest.ResponseRecorder) {
		var p fillcast.Playback
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || len(p.URLs) != 3 || p.ExpiresAt == "" {
			t.Errorf("%v %s", err, w.Body)
		}
	}
	poster := func(t *testing.T, w *httptest.ResponseRecorder) {
		if loc := w.Header().Get("Location"); !strings.Contains(loc, "/c/") || !strings.HasSuffix(loc, "/t1/poster.jpg") {
			t.Errorf("Location %q, want a signed URL of t1/poster.jpg", loc)
		}
	}
	tests := []struct {
		path  string
		code  int
		check func(*testing.T, *httptest.ResponseRecorder)
	}{
		{"/v1/playback/t1?protocol=hls", 200, playback},
		{"/v1/playback/t1?protocol=dash", 200, playback},
		{"/v1/playback/t1", 200, playback},
		{"/v1/playback/t1?protocol=rtmp", 400, nil},
		{"/v1/playback/nope", 404, nil},
		{"/v1/titles/t1/files/poster.jpg", 302, poster},
		{"/v1/titles/t1/files/secret.key", 404, nil},
		{"/v1/titles/nope/files/poster.jpg", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			req.RemoteAddr = "192.0.2.7:5555"
			req.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder()
			a.ServeHTTP(w, req)
			if w.Code != tt.code {
				t.Fatalf("GET %s = %d, want %d: %s", tt.path, w.Code, tt.code, w.Body)
			}
			if tt.check != nil {
				tt.check(t, w)
			}
		})
	}
}

// playbackToken asks for t1's playback from addr with session and
// returns the token of its first URL.
func playbackToken(t *testing.T, a *API, session, addr string) string {
	t.Helper()
	req := httptest.NewRequest("GET", "/v1/playback/t1", nil)
	req.RemoteAddr = addr + ":5555"
	req.Header.Set("Authorization", "Bearer "+session)
	w := httptest.NewRecorder()
	a.ServeHTTP(w, req)
	var p fillcast.Playback
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || len(p.URLs) == 0 {
		t.Fatalf("playback from %s: %d %s", addr, w.Code, w.Body)
	}
	_, rest, _ := strings.Cut(p.URLs[0], "/c/")
	tok, _, _ := strings.Cut(rest, "/")
	return tok
}

// TestPlaybackTokensBound: tokens are bound to the client's /24 (or /48)
// by default, one signed token serves a network for a bucket, and
// UnboundTokens turns binding off.
func TestPlaybackTokensBound(t *testing.T) {
	a := newTestAPI(t)
	session := signIn(t, a, "tokens@example.com", "wall")
	pub := a.d.Keys.Public()
	now := a.d.Now()
	tok := playbackToken(t, a, session, "192.0.2.7")
	if again := playbackToken(t, a, session, "192.0.2.200"); again != tok {
		t.Errorf("same /24, same minute: tokens %q and %q, want one", tok, again)
	}
	if other := playbackToken(t, a, session, "198.51.100.7"); other == tok {
		t.Errorf("another /24 got the same token %q", tok)
	}
	for addr, want := range map[string]error{"192.0.2.99": nil, "198.51.100.1": auth.ErrClient} {
		if _, err := pub.Verify(tok, "t1", now, netip.MustParseAddr(addr)); !errors.Is(err, want) {
			t.Errorf("token for 192.0.2.7 used from %s: %v, want %v", addr, err, want)
		}
	}
	v6 := playbackToken(t, a, session, "[2001:db8:1:2::7]")
	for addr, want := range map[string]error{"2001:db8:1:ffff::1": nil, "2001:db8:2::1": auth.ErrClient} {
		if _, err := pub.Verify(v6, "t1", now, netip.MustParseAddr(addr)); !errors.Is(err, want) {
			t.Errorf("token for 2001:db8:1:2::7 used from %s: %v, want %v", addr, err, want)
		}
	}
	a.cfg.UnboundTokens = true
	unbound := playbackToken(t, a, session, "192.0.2.7")
	if _, err := pub.Verify(unbound, "t1", now, netip.MustParseAddr("198.51.100.1")); err != nil {
		t.Errorf("unbound token from another network: %v", err)
	}
}

// TestKeysRevocation: once PUT /v1/keys has replicated a list, it alone
// counts: the key file's key, absent from it, no longer signs nor
// verifies credentials; GET /v1/keys answers public keys only.
func TestKeysRevocation(t *testing.T) {
	a := newTestAPI(t)
	session := signIn(t, a, "keys@example.com", "premium")
	fileCred, err := a.d.Keys.SignCredential("aa")
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer adm")
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		return w
	}
	if w := call("GET", "/v1/keys", ""); w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"keys":[]}` {
		t.Errorf("GET /v1/keys before any PUT: %d %s", w.Code, w.Body)
	}
	newSeed := strings.Repeat("ab", 32)
	pubOnly := `{"keys":[{"id":"k9","public":"` + a.d.Keys.PublicList()[0].Public + `"}]}`
	if w := call("PUT", "/v1/keys", pubOnly); w.Code != 400 {
		t.Errorf("PUT of public keys only: %d %s, want 400", w.Code, w.Body)
	}
	if w := call("PUT", "/v1/keys", `{"keys":[{"id":"k2","secret":"`+newSeed+`"}]}`); w.Code != 204 {
		t.Fatalf("PUT /v1/keys: %d %s", w.Code, w.Body)
	}
	w := call("GET", "/v1/keys", "")
	var kl auth.KeyList
	if err := json.Unmarshal(w.Body.Bytes(), &kl); err != nil || len(kl.Keys) != 1 || kl.Keys[0].ID != "k2" || kl.Keys[0].Public == "" {
		t.Fatalf("GET /v1/keys: %d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), newSeed) || strings.Contains(w.Body.String(), "secret") {
		t.Errorf("GET /v1/keys gives away a seed: %s", w.Body)
	}
	if id := a.signingKeys().SigningKeyID(); id != "k2" {
		t.Errorf("signs with %q, want k2", id)
	}
	if _, err := a.signingKeys().VerifyCredential(fileCred); err == nil {
		t.Error("a credential of the key file's key, left out of the replicated list, still verifies")
	}
	tok := playbackToken(t, a, session, "192.0.2.7")
	if !strings.HasPrefix(tok, "k2.") {
		t.Errorf("token %q after the PUT, want one of k2", tok)
	}
	pub, err := auth.NewKeys(kl.Keys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Verify(tok, "t1", a.d.Now(), netip.MustParseAddr("192.0.2.7")); err != nil {
		t.Errorf("the public keys of GET /v1/keys do not verify the token: %v", err)
	}
}

// TestNewNeedsPrivateKeys: a control plane given the public key file
// refuses to start, it could sign nothing.
func TestNewNeedsPrivateKeys(t *testing.T) {
	keys, _ := auth.ParseKeys(strings.NewReader("k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	_, err := New(Config{}, Deps{Node: &localNode{f: fsm.New(nil)}, Fleet: &fleet.Fleet{}, Keys: keys.Public(), Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "public keys only") {
		t.Errorf("New with public keys: %v, want a refusal", err)
	}
}

// BenchmarkSignedPath is the signing of a playback answer: one token per
// client network and bucket, signed once and then found in the cache.
func BenchmarkSignedPath(b *testing.B) {
	a := newTestAPI(b)
	for _, tt := range []struct {
		name     string
		networks int
	}{{"one network", 1}, {"new network every call", 0}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				n := i
				if tt.networks > 0 {
					n %= tt.networks
				}
				addr := netip.AddrFrom4([4]byte{10, byte(n >> 8), byte(n), 1}) // /24s: 10.x.y.0
				if _, _, err := a.signedPath("t1", addr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
