package appliance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/filelist"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestControlPlaneKeysAndPlan: an appliance with a control plane takes its
// replicated signing keys (tokens signed with a key missing from its key
// file verify) and reports its fill plan in /v1/status.
func TestControlPlaneKeysAndPlan(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("cd", 32)
	cp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/keys":
			io.WriteString(w, `{"keys":[{"id":"k2","secret":"`+secret+`"}]}`)
		case strings.HasSuffix(r.URL.Path, "/manifest"):
			io.WriteString(w, `{"appliance":"a1","version":3,"titles":[]}`)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer cp.Close()
	o := startOrigin(t)
	o.put(t, "t1/master.m3u8", []byte("#EXTM3U\n"))
	a := startApplianceWith(t, t.TempDir(), 16<<20, []string{o.srv.URL}, func(c *Config) {
		c.ControlPlanes = []string{cp.URL}
		c.HeartbeatInterval = 20 * time.Millisecond
	})
	k2, err := auth.NewKeys([]auth.Key{{ID: "k2", Secret: secret}})
	if err != nil {
		t.Fatal(err)
	}
	path := k2.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{}) + "/master.m3u8"
	poll.Until(t, 10*time.Second, "a token signed with the control plane's key to verify", func() bool {
		resp, _ := get(t, a.url+path)
		return resp.StatusCode == 200
	})
	// The replicated list is the whole truth: the key file's key, not
	// listed, is revoked.
	if resp, _ := get(t, a.url+signed(t, "t1")+"/master.m3u8"); resp.StatusCode != 403 {
		t.Errorf("token from the revoked key of the key file: %d, want 403", resp.StatusCode)
	}
	poll.Until(t, 10*time.Second, "the plan of manifest version 3 in /v1/status", func() bool {
		st := a.Status().(Status)
		return st.Plan != nil && st.Plan.ManifestVersion == 3
	})
}

// TestFillClock: the fill window is judged by Config.Now, not the wall
// clock, and the manifest is polled every FillPoll; the title's file list
// is fetched from the origin, in the window or not; the bytes filled
// outside the window are exported.
func TestFillClock(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("x"), 1000)
	sum := sha256.Sum256(body)
	list, ls, err := filelist.Encode([]fillcast.File{{Path: "720p/seg-00001.m4s", Size: 1000, SHA256: hex.EncodeToString(sum[:])}})
	if err != nil {
		t.Fatal(err)
	}
	manifest := fmt.Sprintf(`{"appliance":"a1","version":1,"fill_window":"02:00-14:00","timezone":"UTC","titles":[`+
		`{"id":"t1","files_digest":%q,"bytes":1000,"file_count":1}]}`, ls.Digest)
	cp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/manifest") {
			io.WriteString(w, manifest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(cp.Close) // after the parallel cases, which run once this function returns
	day := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		at     time.Duration // since midnight, simulated
		filled bool
	}{
		{"before the window", time.Hour, false},
		{"in the window", 3 * time.Hour, true},
		{"after the window", 15 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := startOrigin(t)
			o.put(t, "t1/720p/seg-00001.m4s", body)
			o.put(t, filelist.Path("t1", ls.Digest), list)
			a := startApplianceWith(t, t.TempDir(), 16<<20, []string{o.srv.URL}, func(c *Config) {
				c.ID, c.ControlPlanes, c.HeartbeatInterval = "a1", []string{cp.URL}, time.Hour
				c.FillPoll = 10 * time.Millisecond
				c.Now = func() time.Time { return day.Add(tt.at) }
			})
			var st Status
			poll.Until(t, 10*time.Second, "the manifest (and, in the window, its file)", func() bool {
				st = a.Status().(Status)
				return st.Plan != nil && st.Plan.ManifestVersion == 1 && st.Plan.MissingLists == 0 && (!tt.filled || st.Plan.PresentFiles == 1)
			})
			if st.Plan.PlannedFiles != 1 || st.Plan.WindowOpen != tt.filled || (st.Plan.PresentFiles == 1) != tt.filled {
				t.Errorf("plan status %+v, want window open and file filled = %v", *st.Plan, tt.filled)
			}
			if _, b := get(t, a.url+"/metrics"); !bytes.Contains(b, []byte("fillcast_appliance_plan_filled_outside_window_bytes_total 0")) {
				t.Errorf("metrics lack the outside-window counter at 0")
			}
		})
	}
}
