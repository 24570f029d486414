package controlplane

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/internal/viewertest"
)

// TestEventsAcrossNodes: a batch posted to one node is in every node's
// history, the operators' event search and popularity; the same batch
// posted again is stored once.
func TestEventsAcrossNodes(t *testing.T) {
	n1 := startNode(t, "n1", nil)
	n2 := startNode(t, "n2", []string{n1.url})
	n3 := startNode(t, "n3", []string{n1.url})
	nodes := []*testNode{n1, n2, n3}
	title := fillcast.Title{ID: "t1", Name: "One", Status: "ready",
		Renditions: []fillcast.Rendition{{ID: "360p", Kind: "video", Height: 360, Bandwidth: 1e6, Codecs: "avc1.64001e"}}}
	if code, b := call(t, "POST", n1.url+"/v1/titles", title, true); code != 201 {
		t.Fatalf("create title: %d %s", code, b)
	}
	for _, n := range nodes {
		poll.Until(t, 10*time.Second, "the title on "+n.url, func() bool {
			var ok bool
			n.fsm.Read(func(s *fsm.State) { ok = s.Titles["t1"] != nil })
			return ok
		})
	}
	v := viewertest.New(t, nil, n1.url, "adm")
	batch := `[{"id":"e1","title":"t1","type":"play","duration_s":600},
		{"id":"e2","title":"t1","type":"progress","position_s":120,"duration_s":600},
		{"id":"e3","title":"nope","type":"play"},
		{"id":"e4","title":"t1","type":"qoe","startup_ms":900,"played_s":120,"bitrate_kbps":2000}]`
	post := func(base string) eventsAnswer {
		t.Helper()
		var a eventsAnswer
		poll.Until(t, 60*time.Second, "the stream takes the batch at "+base, func() bool {
			code, b := callAs(t, "POST", base+"/v1/events", batch, v.Token)
			if code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests {
				time.Sleep(500 * time.Millisecond) // as a player waits
				return false
			}
			if code != http.StatusAccepted || json.Unmarshal(b, &a) != nil {
				t.Fatalf("post events: %d %s", code, b)
			}
			return true
		})
		return a
	}
	a := post(n1.url)
	if a.Accepted != 3 || len(a.Rejected) != 1 || a.Rejected[0].Index != 2 || a.Rejected[0].Field != "title" || !strings.Contains(a.Rejected[0].Reason, "nope") {
		t.Errorf("answer = %+v, want 3 accepted and the unknown title rejected", a)
	}
	for _, n := range nodes {
		poll.Until(t, 10*time.Second, "the history on "+n.url, func() bool {
			code, b := callAs(t, "GET", n.url+"/v1/history", nil, v.Token)
			return code == 200 && strings.Contains(string(b), `"title":"t1","position_s":120`)
		})
	}
	// The same batch again, through another node: stored once.
	post(n2.url)
	for _, n := range nodes {
		poll.Until(t, 10*time.Second, "the ops index on "+n.url, func() bool {
			code, b := call(t, "GET", n.url+"/v1/ops/events?title=t1", nil, true)
			var r struct {
				Total int `json:"total_matched"`
			}
			if code == 200 && json.Unmarshal(b, &r) == nil && r.Total == 3 {
				return true
			}
			return false
		})
	}
	poll.Until(t, 10*time.Second, "QoE of t1 on n3", func() bool {
		code, b := call(t, "GET", n3.url+"/v1/ops/qoe", nil, true)
		return code == 200 && strings.Contains(string(b), `"key":"t1"`)
	})
	// A malformed batch is refused whole; a viewer's events are refused
	// to an operator's search without the scope.
	if code, b := callAs(t, "POST", n3.url+"/v1/events", `[{"id":"x","type":"rewind","title":"t1"}]`, v.Token); code != 400 {
		t.Errorf("all-invalid batch: %d %s, want 400", code, b)
	}
	if code, _ := callAs(t, "GET", n3.url+"/v1/ops/events", nil, v.Token); code != http.StatusForbidden {
		t.Errorf("a viewer searched the operators' events: %d", code)
	}
}

// eventsAnswer is the body of a 202 to POST /v1/events.
type eventsAnswer struct {
	Accepted int `json:"accepted"`
	Rejected []struct {
		Index  int    `json:"index"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"rejected"`
}
