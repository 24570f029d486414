package appliance

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/filelist"
	"github.com/fillcast/fillcast/internal/poll"
)

// cachedFiles returns the regular files under the cache directory dir
// but the agent's takedown state: the disk tier's object files.
func cachedFiles(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.Contains(d.Name(), takedownFile) {
			out[p] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTakedown: deleting a title through a real control plane purges it
// from a running appliance with the first heartbeat sent after the
// deletion (memory, disk and its old tokens, refused with 403), deletes
// its files from the real origin, which refuses its old tokens too; a
// title created again gets working tokens; and an appliance that was
// down during a deletion applies it when it comes back.
func TestTakedown(t *testing.T) {
	t.Parallel()
	o := startOrigin(t)
	seg := []byte(strings.Repeat("s", 4096))
	publish := func(title string) {
		o.put(t, title+"/720p/seg-00001.m4s", seg)
	}
	cfg := controlplane.Config{ID: "n1", DataDir: t.TempDir(), Bootstrap: true, Origin: o.srv.URL}
	cfg.Ingest.PurgeEvery = 50 * time.Millisecond
	cpURL, stopCP := startControlPlaneWith(t, cfg)
	t.Cleanup(stopCP)
	ops, err := client.New(client.Config{URLs: []string{cpURL}}, client.Deps{Token: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ops.Close() })
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	title := func(id string) fillcast.Title {
		return fillcast.Title{ID: id, Name: id, Status: fillcast.StatusReady,
			Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Height: 720, Bandwidth: 3e6}},
			Files:      []fillcast.File{{Path: "720p/seg-00001.m4s", Size: int64(len(seg))}}}
	}
	must(ops.Do(ctx, "PUT", "/v1/sites/s1", fillcast.Site{Kind: "isp", Region: "eu", Prefixes: []string{"10.0.0.0/8"}}, nil))
	for _, id := range []string{"t1", "t2"} {
		must(ops.Do(ctx, "PUT", "/v1/titles/"+id, title(id), nil))
		publish(id)
	}
	must(ops.Do(ctx, "PUT", "/v1/appliances/a1", api.Registration{Site: "s1", Profile: "storage", URLs: []string{"http://a1.test:8080"}}, nil))

	cacheDir := t.TempDir()
	start := func() *testAppliance {
		a := startApplianceWith(t, cacheDir, 1<<20, []string{o.srv.URL}, func(c *Config) {
			c.ControlPlanes = []string{cpURL}
			c.HeartbeatInterval = 100 * time.Millisecond
			c.AdvertiseURL = "http://a1.test:8080"
			c.FillPoll = 100 * time.Millisecond // the file lists on disk soon
		})
		poll.Until(t, 20*time.Second, "heartbeats accepted", func() bool { return a.agent.Acked() > 0 })
		return a
	}
	a := start()
	// Tokens signed before the takedowns, valid for an hour.
	old := map[string]string{"t1": signed(t, "t1"), "t2": signed(t, "t2")}
	segment := func(base, id string) string { return base + old[id] + "/720p/seg-00001.m4s" }
	for _, id := range []string{"t1", "t2", "t1", "t2"} {
		resp, body := get(t, segment(a.url, id))
		if resp.StatusCode != 200 || string(body) != string(seg) {
			t.Fatalf("%s before the takedown: %s, %d bytes", id, resp.Status, len(body))
		}
	}
	// Both segments on disk, and the file lists of the titles planned
	// (when the manifest names them by digest): nothing more arrives.
	poll.Until(t, 20*time.Second, "both segments and the planned titles' file lists on disk", func() bool {
		p := a.Status().(Status).Plan
		return a.cache.Has("t1/720p/seg-00001.m4s") && a.cache.Has("t2/720p/seg-00001.m4s") &&
			p != nil && p.PlannedFiles == 2 && p.MissingLists == 0
	})
	before := cachedFiles(t, cacheDir)
	t1Objects := 1 // the segment, and its list when the manifest named it
	var t1 fillcast.Title
	must(ops.Do(ctx, "GET", "/v1/titles/t1", nil, &t1))
	if t1.FilesDigest != "" && a.cache.Has(filelist.Path("t1", t1.FilesDigest)) {
		t1Objects++
	}
	t.Logf("t1's objects on disk before the takedown: %d (files digest %q)", t1Objects, t1.FilesDigest)
	if len(before) < 2 {
		t.Fatalf("cached files: %v, want the segments of t1 and t2", before)
	}

	// Delete t1: the first heartbeat sent after the deletion purges it.
	acked := a.agent.Acked()
	deleted := time.Now()
	must(ops.Do(ctx, "DELETE", "/v1/titles/t1", nil, nil))
	if err := ops.Do(ctx, "DELETE", "/v1/titles/t1", nil, nil); client.StatusCode(err) != 404 {
		t.Errorf("deleting t1 again: %v, want 404", err)
	}
	poll.Until(t, 20*time.Second, "two more heartbeats", func() bool { return a.agent.Acked() >= acked+2 })
	after := cachedFiles(t, cacheDir)
	if len(after) != len(before)-t1Objects || a.cache.Has("t1/720p/seg-00001.m4s") {
		t.Errorf("cached files after the takedown: %d, want %d (t1's %d objects gone)", len(after), len(before)-t1Objects, t1Objects)
	}
	t2Files := after // t1's is gone
	t.Logf("takedown applied within %v of the deletion (heartbeat every 100ms)", time.Since(deleted).Round(time.Millisecond))
	resp, body := get(t, segment(a.url, "t1"))
	if resp.StatusCode != 403 || !strings.Contains(string(body), "taken down") {
		t.Errorf("t1's old token at the appliance: %s %q, want 403 taken down", resp.Status, body)
	}
	if resp, _ := get(t, segment(a.url, "t2")); resp.StatusCode != 200 || resp.Header.Get("X-Cache") == "MISS" {
		t.Errorf("t2 at the appliance: %s %s, want 200 from the cache", resp.Status, resp.Header.Get("X-Cache"))
	}

	// The origin: files gone, old token refused.
	poll.Until(t, 20*time.Second, "t1 deleted from the origin", func() bool {
		_, err := os.Stat(filepath.Join(o.root, "t1"))
		return errors.Is(err, fs.ErrNotExist)
	})
	publish("t1") // as if published again, behind the control plane's back
	resp, body = get(t, segment(o.srv.URL, "t1"))
	if resp.StatusCode != 403 || !strings.Contains(string(body), "taken down") {
		t.Errorf("t1's old token at the origin: %s %q, want 403 taken down", resp.Status, body)
	}

	// Created again (once the origin purge is recorded), with tokens
	// issued after the takedown: served.
	poll.UntilNil(t, 20*time.Second, "t1 created again", func() error {
		return ops.Do(ctx, "PUT", "/v1/titles/t1", title("t1"), nil)
	})
	fresh := keys(t).SignPath("t1", time.Now().Add(7*time.Hour), netip.Prefix{})
	for _, base := range []string{a.url, o.srv.URL} {
		if resp, body := get(t, base+fresh+"/720p/seg-00001.m4s"); resp.StatusCode != 200 {
			t.Errorf("a new token for t1 created again at %s: %s %q, want 200", base, resp.Status, body)
		}
	}

	// Down during a deletion: purged when it comes back.
	a.stop()
	must(ops.Do(ctx, "DELETE", "/v1/titles/t2", nil, nil))
	a = start()
	poll.Until(t, 20*time.Second, "t2 refused after the restart", func() bool {
		resp, _ := get(t, segment(a.url, "t2"))
		return resp.StatusCode == 403
	})
	for f := range t2Files {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("t2's %s is still on disk after its takedown", f)
		}
	}
	if resp, _ := get(t, segment(a.url, "t1")); resp.StatusCode != 403 {
		t.Errorf("t1's old token after the restart: %s, want 403", resp.Status)
	}
}
