package api

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
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
