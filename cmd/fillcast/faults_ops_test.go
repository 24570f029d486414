package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// stallingOrigin serves one object at /f/{key}. While stall is set, a
// response stops after stallAt bytes and hangs until the client goes
// away: a slow upstream caught mid-fill.
type stallingOrigin struct {
	body    []byte
	stallAt int
	stall   atomic.Bool
	fetches atomic.Int64
	quit    chan struct{} // closed to end a stalled response
}

func (o *stallingOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.fetches.Add(1)
	w.Header().Set("Content-Length", strconv.Itoa(len(o.body)))
	w.Header().Set("Content-Type", "video/iso.segment")
	if !o.stall.Load() {
		w.Write(o.body)
		return
	}
	w.Write(o.body[:o.stallAt])
	w.(http.Flusher).Flush()
	select {
	case <-r.Context().Done():
	case <-o.quit:
	}
}

// getSum GETs url and returns the status and the SHA-256 and length of
// the body, hashed as it streams in.
func getSum(t *testing.T, url string) (int, [32]byte, int64) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return resp.StatusCode, sum, n
}

// filesUnder lists the regular files under dir with their sizes.
func filesUnder(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				out[path] = fi.Size()
			}
		}
		return nil
	})
	return out
}

// TestCrashMidFill SIGKILLs an appliance while it fills a 100 MB object
// from an upstream that has stalled part way, and starts it again on the
// same cache directory: the temporary file the dead process left is gone
// as soon as the new one is up, and the object is fetched again whole and
// served with the upstream's bytes, then as a hit.
func TestCrashMidFill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := fillcastBinary(t)
	e := newOpsEnv(t, 1)
	o := &stallingOrigin{body: make([]byte, 100<<20), stallAt: 30 << 20, quit: make(chan struct{})}
	rand.Read(o.body)
	want := sha256.Sum256(o.body)
	o.stall.Store(true)
	srv := httptest.NewServer(o)
	t.Cleanup(func() { close(o.quit); srv.Close() })
	e.origin = srv.URL
	tmp := filepath.Join(e.dir, "cache", "tmp")

	p := startApplianceProc(t, bin, e)
	url := "http://" + p.addr + e.path("720p/seg-00001.m4s")
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatalf("the first MiB of the stalled fill: %v", err)
	}
	poll.Until(t, 30*time.Second, "the fill's temporary file to reach the stall", func() bool {
		for _, size := range filesUnder(t, tmp) {
			if size == int64(o.stallAt) {
				return true
			}
		}
		return false
	})
	pid := p.livePID()
	syscall.Kill(pid, syscall.SIGKILL)
	<-p.exited
	if len(filesUnder(t, tmp)) == 0 {
		t.Fatal("no temporary file left behind by the killed process: the test proves nothing")
	}

	o.stall.Store(false)
	p = startApplianceProcAt(t, bin, e, p.addr)
	if left := filesUnder(t, tmp); len(left) != 0 {
		t.Errorf("temporary files left after the restart: %v", left)
	}
	for i, tier := range []string{"a fill", "a hit"} {
		code, sum, n := getSum(t, url)
		if code != http.StatusOK || sum != want {
			t.Fatalf("GET #%d (%s): status %d, %d bytes, sha256 equal to the upstream's: %v", i+1, tier, code, n, sum == want)
		}
	}
	if got := o.fetches.Load(); got != 2 {
		t.Errorf("upstream fetches: got %d, want 2 (once per process)", got)
	}
}

// TestScrubDropsBitRot flips bytes in a cached object's file under a
// running appliance: the scrub finds it (/v1/status counts it), and the
// next request gets the upstream's bytes from a new fill, never the
// corrupt ones.
func TestScrubDropsBitRot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	e := newOpsEnv(t, 3<<20)
	p := startApplianceProc(t, fillcastBinary(t), e, "--scrub-rate", "256MiB", "--scrub-every", "100ms")
	base := "http://" + p.addr
	url := base + e.path("720p/seg-00001.m4s")
	if code, body := httpGet(t, url); code != http.StatusOK || !bytes.Equal(body, e.seg) {
		t.Fatalf("first GET: status %d, %d bytes", code, len(body))
	}
	var obj string
	poll.Until(t, 30*time.Second, "the object's file", func() bool {
		for path, size := range filesUnder(t, filepath.Join(e.dir, "cache", "objects")) {
			if size > int64(len(e.seg)) {
				obj = path
			}
		}
		return obj != ""
	})
	f, err := os.OpenFile(obj, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0x5a}, 64), 1<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()

	var st struct {
		Scrub struct{ Corrupt int64 }
		Fills struct {
			CorruptDropped int64 `json:"corrupt_dropped"`
		}
	}
	poll.Until(t, 30*time.Second, "the scrub to find the corrupt object", func() bool {
		code, b := statusGet(t, http.DefaultClient, base)
		return code == http.StatusOK && json.Unmarshal(b, &st) == nil && st.Scrub.Corrupt == 1
	})
	if code, body := httpGet(t, url); code != http.StatusOK || !bytes.Equal(body, e.seg) {
		t.Fatalf("GET after the scrub: status %d, %d bytes, equal to the upstream's: %v", code, len(body), bytes.Equal(body, e.seg))
	}
	if st.Fills.CorruptDropped != 1 {
		t.Errorf("corrupt objects dropped: got %d, want 1", st.Fills.CorruptDropped)
	}
}
