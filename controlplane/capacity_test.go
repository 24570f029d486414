package controlplane

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestPlanFollowsLostDiskCapacity: an appliance that loses a disk
// heartbeats a smaller capacity (and the failed disk); the control plane
// records it in the replicated registry, and the planner's next plan for
// the appliance fits what is left.
func TestPlanFollowsLostDiskCapacity(t *testing.T) {
	t.Parallel()
	n := startNode(t, "n1", nil)
	site := fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"10.0.0.0/8"}}
	if code, b := call(t, "PUT", n.url+"/v1/sites/isp1", site, true); code != 200 {
		t.Fatalf("put site: %d %s", code, b)
	}
	const titles, size = 10, 100 << 20
	for i := range titles {
		title := fillcast.Title{ID: fmt.Sprintf("t%02d", i), Name: "x", Status: "ready",
			Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Width: 1280, Height: 720, Bandwidth: 3e6, Codecs: "avc1.64001f"}},
			Files:      []fillcast.File{{Path: "720p/seg-00001.m4s", Size: size}}}
		if code, b := call(t, "POST", n.url+"/v1/titles", title, true); code != 201 {
			t.Fatalf("create %s: %d %s", title.ID, code, b)
		}
	}
	cred := register(t, n.url, "a1")["a1"]
	// plan heartbeats with capacity (and the failed disks) until the
	// manifest is a new version whose bytes satisfy ok, and returns them.
	version := uint64(0)
	plan := func(capacity int64, failed []string, ok func(bytes int64) bool) int64 {
		t.Helper()
		hb := fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://a1.example:8080", CapacityBytes: capacity, Health: "ok", FailedDisks: failed}
		var planned int64
		poll.Until(t, 30*time.Second, fmt.Sprintf("a plan for %d bytes of capacity", capacity), func() bool {
			b, _ := json.Marshal(hb)
			req, _ := http.NewRequest("POST", n.url+"/v1/appliances/a1/heartbeat", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+cred)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			code, body := callAs(t, "GET", n.url+"/v1/appliances/a1/manifest", nil, cred)
			var m fillcast.Manifest
			if code != 200 || json.Unmarshal(body, &m) != nil || m.Version <= version {
				return false
			}
			planned = 0
			for _, mt := range m.Titles {
				planned += mt.Bytes
			}
			version = m.Version
			return ok(planned)
		})
		return planned
	}
	full := plan(2*titles*size, nil, func(b int64) bool { return b == titles*size })
	// Half its disks fail: 4 titles' worth is left.
	left := int64(4 * size)
	got := plan(left, []string{"/hdd1", "/hdd2"}, func(b int64) bool { return b <= left })
	if got == 0 || got >= full {
		t.Errorf("after the disk failure: %d bytes planned, want some, less than the %d planned before, within %d", got, full, left)
	}
	if code, body := call(t, "GET", n.url+"/v1/fleet", nil, true); code != 200 || !bytes.Contains(body, []byte(fmt.Sprintf(`"capacity_bytes":%d`, left))) {
		t.Errorf("/v1/fleet: %d %s, want the appliance with %d bytes of capacity", code, body, left)
	}
}
