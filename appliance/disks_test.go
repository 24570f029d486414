package appliance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client/clienttest"
	"github.com/fillcast/fillcast/internal/poll"
)

// diskFixture is an appliance over the cache directories a test gives,
// heartbeating to a control plane, in front of an origin holding segs.
type diskFixture struct {
	a    *testAppliance
	node *clienttest.Node
	segs [][]byte
	tok  string
}

// startDiskFixture starts an appliance on dirs (64 MiB each unless they
// say) filling from an origin of n segments of about size bytes.
func startDiskFixture(t *testing.T, dirs []cache.DirConfig, n, size int) *diskFixture {
	t.Helper()
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
	f := &diskFixture{node: cl.Nodes()[0], segs: make([][]byte, n), tok: ks.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{})}
	for i := range f.segs {
		f.segs[i] = randBytes(size + i)
		o.put(t, fmt.Sprintf("t1/720p/seg-%05d.m4s", i), f.segs[i])
	}
	cfg := DefaultConfig()
	cfg.ID, cfg.Site = "a1", "s1"
	cfg.Cache.DiskBytes = 64 << 20
	cfg.Cache.Dirs = dirs
	cfg.Upstream.URLs = []string{o.srv.URL}
	cfg.ControlPlanes, cfg.HeartbeatInterval = cl.URLs(), 20*time.Millisecond
	f.a = startApplianceDeps(t, cfg, Deps{Keys: ks.Public(), Credential: cred, AdminToken: "adm", Log: quiet()})
	return f
}

// url is segment i's URL.
func (f *diskFixture) url(i int) string {
	return f.a.url + f.tok + fmt.Sprintf("/720p/seg-%05d.m4s", i)
}

// getAll gets every segment until it is served whole, and waits for the
// fills to commit (a client has its body before).
func (f *diskFixture) getAll(t *testing.T, when string) {
	t.Helper()
	for i, want := range f.segs {
		// Misses fill once the agent has its fill pass.
		poll.Until(t, 20*time.Second, "segment "+fmt.Sprint(i)+" "+when, func() bool {
			resp, body := get(t, f.url(i))
			return resp.StatusCode == 200 && bytes.Equal(body, want)
		})
	}
	poll.Until(t, 20*time.Second, "the fills to finish", func() bool { return f.a.cache.Stats().FillsInFlight == 0 })
}

// TestFailedDiskIsReported runs an appliance on two cache directories and
// takes one away under it: every segment is still served with its bytes,
// and /v1/status, /metrics and the heartbeats name the failed directory
// and count only the other's capacity.
func TestFailedDiskIsReported(t *testing.T) {
	t.Parallel()
	dirs := []string{t.TempDir(), t.TempDir()}
	f := startDiskFixture(t, []cache.DirConfig{{Path: dirs[0]}, {Path: dirs[1], Bytes: 32 << 20}}, 24, 20_000)
	f.getAll(t, "with both directories")
	if st := f.a.Status().(Status); st.DiskDirs[0].Objects == 0 || st.DiskDirs[1].Objects == 0 {
		t.Fatalf("objects per directory: %d and %d, want both used", st.DiskDirs[0].Objects, st.DiskDirs[1].Objects)
	}

	if err := os.RemoveAll(dirs[1]); err != nil {
		t.Fatal(err)
	}
	f.getAll(t, "after losing one")
	checkFailedReported(t, f.a, f.node, dirs, 1)
	if st := f.a.Status().(Status); st.Disk.CapacityBytes != 64<<20 || st.Disk.Objects != int64(len(f.segs)) {
		t.Errorf("/v1/status disk: %d bytes of capacity, %d objects; want the healthy directory's 64 MiB holding all %d",
			st.Disk.CapacityBytes, st.Disk.Objects, len(f.segs))
	}
}

// checkFailedReported checks that /v1/status, /metrics and the latest
// heartbeat name dirs[lost] as failed, the others as healthy, and that
// the heartbeat's capacity is the healthy directories' alone (what the
// control plane's fill planner plans with).
func checkFailedReported(t *testing.T, a *testAppliance, node *clienttest.Node, dirs []string, lost int) {
	t.Helper()
	resp, body := get(t, a.url+"/v1/status", "Authorization", "Bearer adm")
	var st Status
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/v1/status: %d %v", resp.StatusCode, err)
	}
	var healthy int64
	for i, d := range st.DiskDirs {
		if d.Failed != (i == lost) || d.Failed && d.Error == "" || d.Path != dirs[i] {
			t.Errorf("/v1/status disk_dirs[%d] = %+v, want %s failed (with its error) only when it is %s", i, d, dirs[i], dirs[lost])
		}
		if !d.Failed {
			healthy += d.CapacityBytes
		}
	}
	if len(st.DiskDirs) != len(dirs) || st.Disk.CapacityBytes != healthy {
		t.Errorf("/v1/status: %d directories, %d bytes of capacity; want %d and the healthy ones' %d", len(st.DiskDirs), st.Disk.CapacityBytes, len(dirs), healthy)
	}
	_, metrics := get(t, a.url+"/metrics")
	for i, d := range dirs {
		want := fmt.Sprintf(`fillcast_appliance_disk_failed{dir=%q} %d`, d, map[bool]int{true: 1}[i == lost])
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	poll.Until(t, 20*time.Second, "a heartbeat naming the failed directory, with the healthy ones' capacity", func() bool {
		beats := node.Heartbeats()
		if len(beats) == 0 {
			return false
		}
		b := beats[len(beats)-1]
		return slices.Equal(b.FailedDisks, []string{dirs[lost]}) && b.CapacityBytes == healthy
	})
}

// TestFlashFailsUnderLoad runs an appliance on a flash directory and two
// disk-class ones, with clients fetching segments all along, and takes
// the flash directory away under them: every response is whole and
// right (the flash objects become misses, filled again onto the disk
// class), and the failure is reported.
func TestFlashFailsUnderLoad(t *testing.T) {
	t.Parallel()
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	f := startDiskFixture(t, []cache.DirConfig{{Path: dirs[0], Class: cache.ClassFlash, Bytes: 400_000}, // a dozen segments
		{Path: dirs[1], Class: cache.ClassDisk}, {Path: dirs[2], Class: cache.ClassDisk}}, 32, 30_000)
	a, segs, url := f.a, f.segs, f.url
	f.getAll(t, "before the failure")
	if st := a.Status().(Status); st.DiskDirs[0].Objects == 0 || st.DiskDirs[1].Objects+st.DiskDirs[2].Objects == 0 {
		t.Fatalf("objects per directory: %+v, want flash and the disk class used", st.DiskDirs)
	}

	// Four clients fetch segments in turn until stopped.
	stop := make(chan struct{})
	errs := make(chan error, 4)
	var served atomic.Int64
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for i := c; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				resp, err := http.Get(url(i % len(segs)))
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, segs[i%len(segs)]) {
					errs <- fmt.Errorf("segment %d: %d, %d bytes, %v", i%len(segs), resp.StatusCode, len(body), err)
					return
				}
				served.Add(1)
			}
		})
	}
	poll.Until(t, 20*time.Second, "load", func() bool { return served.Load() > 50 })
	// A fill committing meanwhile may create a directory under it again.
	poll.UntilNil(t, 20*time.Second, "removing "+dirs[0], func() error { return os.RemoveAll(dirs[0]) })
	poll.Until(t, 20*time.Second, "the flash directory taken out", func() bool { return a.cache.Stats().Dirs[0].Failed })
	at := served.Load()
	poll.Until(t, 20*time.Second, "load after the failure", func() bool { return served.Load() > at+2*int64(len(segs)) })
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i, want := range segs {
		if resp, body := get(t, url(i)); resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Fatalf("segment %d after the failure: %d, %d bytes", i, resp.StatusCode, len(body))
		}
	}
	poll.Until(t, 20*time.Second, "the fills to finish", func() bool { return a.cache.Stats().FillsInFlight == 0 })
	if s := a.cache.Stats(); s.DiskObjects != int64(len(segs)) {
		t.Errorf("disk tier holds %d objects after the failure, want all %d on the disk class", s.DiskObjects, len(segs))
	}
	checkFailedReported(t, a, f.node, dirs, 0)
	t.Logf("moves between the classes: %+v", a.Status().(Status).Moves)
}
