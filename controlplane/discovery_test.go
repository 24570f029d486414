package controlplane

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/viewertest"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/internal/poll"
)

func TestDiscoveryRoutes(t *testing.T) {
	n := startNode(t, "n1", nil)
	poll.Until(t, 10*time.Second, "leader", func() bool { return n.Raft().IsLeader() })
	for _, title := range []fillcast.Title{
		{ID: "m1", Name: "The Midnight Harbor", Description: "A detective story on the docks", Genres: []string{"crime"}, Year: 2024, Status: "ready",
			Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Bandwidth: 3e6, Codecs: "avc1.64001f"}}},
		{ID: "m2", Name: "Solar Gardens", Description: "Growing food on Mars", Genres: []string{"documentary"}, Year: 2023, Status: "ready",
			Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Bandwidth: 3e6, Codecs: "avc1.64001f"}}},
	} {
		if code, b := call(t, "POST", n.url+"/v1/titles", title, true); code != 201 {
			t.Fatalf("create %s: %d %s", title.ID, code, b)
		}
	}
	v := viewertest.New(t, nil, n.url, "adm")
	// The index follows the replicated catalog: a misspelt word finds it.
	poll.Until(t, 10*time.Second, "indexed", func() bool {
		code, b := callAs(t, "GET", n.url+"/v1/search?q=midnigt", nil, v.Token)
		return code == 200 && strings.Contains(string(b), `"m1"`)
	})
	poll.Until(t, 10*time.Second, "suggest", func() bool {
		code, b := callAs(t, "GET", n.url+"/v1/search/suggest?q=sol", nil, v.Token)
		return code == 200 && strings.Contains(string(b), `"m2"`)
	})
	if code, b := callAs(t, "GET", n.url+"/v1/search?q=", nil, v.Token); code != 400 {
		t.Errorf("empty query: %d %s, want 400", code, b)
	}

	// Events: a bad event is refused naming its index and field, the
	// good ones of its batch kept; they build the history.
	var code int
	var b []byte
	poll.Until(t, 30*time.Second, "the stream takes a batch", func() bool {
		code, b = callAs(t, "POST", n.url+"/v1/events", `[{"id":"a","user":"u1","title":"m1","type":"play","position_s":0,"duration_s":3600},{"id":"b","user":"u1","title":"m1","type":"pause"}]`, v.Token)
		return code != 503
	})
	if code != 202 || !strings.Contains(string(b), `"accepted":1`) || !strings.Contains(string(b), `"index":1,"field":"type"`) {
		t.Errorf("half-bad batch: %d %s", code, b)
	}
	if code, b := callAs(t, "POST", n.url+"/v1/events", `[{"id":"c","user":"u1","title":"m1","type":"progress","position_s":600,"duration_s":3600}]`, v.Token); code != 202 {
		t.Fatalf("good batch: %d %s", code, b)
	}
	if code, b := callAs(t, "POST", n.url+"/v1/events", `[`+strings.Repeat(`{"user":"u","title":"m1","type":"play"},`, 30000)+`{}]`, v.Token); code != 413 {
		t.Errorf("oversized batch: %d %s", code, b[:min(len(b), 200)])
	}
	poll.Until(t, 10*time.Second, "the history", func() bool {
		code, b = callAs(t, "GET", n.url+"/v1/history", nil, v.Token)
		var h struct {
			ContinueWatching []struct {
				Title string `json:"title"`
			} `json:"continue_watching"`
		}
		json.Unmarshal(b, &h)
		return code == 200 && len(h.ContinueWatching) == 1 && h.ContinueWatching[0].Title == "m1"
	})
	// Recommendations answer even before any model (trending fallback).
	if code, b := callAs(t, "GET", n.url+"/v1/recommendations", nil, v.Token); code != 200 || !strings.Contains(string(b), `"m`) {
		t.Errorf("recommendations: %d %s", code, b)
	}
	if code, b := callAs(t, "GET", n.url+"/v1/recommendations?limit=0", nil, v.Token); code != 400 {
		t.Errorf("bad limit: %d %s", code, b)
	}
}
