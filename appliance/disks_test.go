package appliance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client/clienttest"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestFailedDiskIsReported runs an appliance on two cache directories and
// takes one away under it: every segment is still served with its bytes,
// and /v1/status, /metrics and the heartbeats name the failed directory.
func TestFailedDiskIsReported(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	ks, err := auth.NewKeys(cl.Keys())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := ks.SignCredential("a1")
	if err != nil {
		t.Fatal(err)
	}
	o := startOriginKeys(t, ks)
	segs := make([][]byte, 24)
	for i := range segs {
		segs[i] = randBytes(20_000 + i)
		o.put(t, fmt.Sprintf("t1/720p/seg-%05d.m4s", i), segs[i])
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	cfg := DefaultConfig()
	cfg.ID, cfg.Site = "a1", "s1"
	cfg.Cache.DiskBytes = 64 << 20
	cfg.Cache.Dirs = []cache.DirConfig{{Path: dirs[0]}, {Path: dirs[1], Bytes: 32 << 20}}
	cfg.Upstream.URLs = []string{o.srv.URL}
	cfg.ControlPlanes, cfg.HeartbeatInterval = cl.URLs(), 20*time.Millisecond
	a := startApplianceDeps(t, cfg, Deps{Keys: ks.Public(), Credential: cred, AdminToken: "adm", Log: quiet()})
	tok := ks.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{})
	getAll := func(when string) {
		t.Helper()
		for i, want := range segs {
			url := a.url + tok + fmt.Sprintf("/720p/seg-%05d.m4s", i)
			// Misses fill once the agent has its fill pass.
			poll.Until(t, 20*time.Second, "segment "+fmt.Sprint(i)+" "+when, func() bool {
				resp, body := get(t, url)
				return resp.StatusCode == 200 && bytes.Equal(body, want)
			})
		}
		// A client has its body before the fill commits the object.
		poll.Until(t, 20*time.Second, "the fills to finish", func() bool { return a.cache.Stats().FillsInFlight == 0 })
	}
	getAll("with both directories")
	if st := a.Status().(Status); st.DiskDirs[0].Objects == 0 || st.DiskDirs[1].Objects == 0 {
		t.Fatalf("objects per directory: %d and %d, want both used", st.DiskDirs[0].Objects, st.DiskDirs[1].Objects)
	}

	if err := os.RemoveAll(dirs[1]); err != nil {
		t.Fatal(err)
	}
	getAll("after losing one")

	resp, body := get(t, a.url+"/v1/status", "Authorization", "Bearer adm")
	var st Status
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/v1/status: %d %v", resp.StatusCode, err)
	}
	if len(st.DiskDirs) != 2 || st.DiskDirs[0].Failed || !st.DiskDirs[1].Failed || st.DiskDirs[1].Error == "" {
		t.Errorf("/v1/status disk_dirs = %+v, want the second failed with its error", st.DiskDirs)
	}
	if st.Disk.CapacityBytes != 64<<20 || st.Disk.Objects != int64(len(segs)) {
		t.Errorf("/v1/status disk: %d bytes of capacity, %d objects; want the healthy directory's 64 MiB holding all %d",
			st.Disk.CapacityBytes, st.Disk.Objects, len(segs))
	}
	_, metrics := get(t, a.url+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`fillcast_appliance_disk_failed{dir=%q} 0`, dirs[0]),
		fmt.Sprintf(`fillcast_appliance_disk_failed{dir=%q} 1`, dirs[1]),
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	node := cl.Nodes()[0]
	poll.Until(t, 20*time.Second, "a heartbeat naming the failed directory", func() bool {
		beats := node.Heartbeats()
		return len(beats) > 0 && slices.Equal(beats[len(beats)-1].FailedDisks, []string{dirs[1]})
	})
}
