package appliance

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/steering/urlsign"
)

// TestControlPlaneKeysAndPlan: an appliance with a control plane takes its
// replicated signing keys (tokens signed with a key missing from its key
// file verify) and reports its fill plan in /v1/status.
func TestControlPlaneKeysAndPlan(t *testing.T) {
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
	k2, err := urlsign.New([]urlsign.Key{{ID: "k2", Secret: secret}})
	if err != nil {
		t.Fatal(err)
	}
	path := k2.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{}) + "/master.m3u8"
	waitFor(t, func() bool {
		resp, _ := get(t, a.url+path)
		return resp.StatusCode == 200
	})
	// The key file still verifies.
	if resp, _ := get(t, a.url+signed(t, "t1")+"/master.m3u8"); resp.StatusCode != 200 {
		t.Errorf("token from the key file: %d", resp.StatusCode)
	}
	waitFor(t, func() bool {
		st := a.Status().(Status)
		return st.Plan != nil && st.Plan.ManifestVersion == 3
	})
}
