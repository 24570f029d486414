package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestBackupRestore: a live control-plane process is backed up with
// fillcast controlplane backup, killed and its data directory destroyed;
// fillcast controlplane restore seeds a new one from the file, and the
// node started on it steers the same titles to the same appliances, whose
// old credentials still work. A damaged or truncated file, and a data
// directory already in use, are refused.
func TestBackupRestore(t *testing.T) {
	bin := fillcastBinary(t)
	e := newOpsEnv(t, 1000)
	addrs := cpAddrs{freeLoopback(t), freeLoopback(t), freeLoopback(t)}
	n1 := startControlPlaneProcAt(t, bin, e, "n1", "", addrs)
	ops, err := client.New(client.Config{URLs: []string{n1.url}, Timeout: 5 * time.Second}, client.Deps{Token: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	poll.Until(t, time.Minute, "a leader", func() bool {
		st, err := ops.Cluster(ctx)
		return err == nil && st.Leader != ""
	})
	if err := ops.Do(ctx, "PUT", "/v1/sites/isp1", fillcast.Site{Kind: "isp", Region: "eu", Prefixes: []string{"127.0.0.0/8"}}, nil); err != nil {
		t.Fatal(err)
	}
	titles := []string{"t1", "t2", "t3"}
	for _, id := range titles {
		ti := fillcast.Title{ID: id, Name: "Title " + id, Status: "ready",
			Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Width: 1280, Height: 720, Bandwidth: 3e6, Codecs: "avc1.64001f"}}}
		if err := ops.Do(ctx, "POST", "/v1/titles", ti, nil); err != nil {
			t.Fatal(err)
		}
	}
	creds := map[string]string{}
	for _, id := range []string{"a1", "a2", "a3"} {
		var reg api.Registration
		if err := ops.Do(ctx, "PUT", "/v1/appliances/"+id, api.Registration{Site: "isp1", Profile: "storage", URLs: []string{"http://" + id + ".example:8080"}}, &reg); err != nil {
			t.Fatal(err)
		}
		creds[id] = reg.Credential
	}
	// steer beats as every appliance and returns each title's steering
	// manifest, taken once the node's steering fleet (rebuilt from the
	// beats every RebuildEvery, 200 ms) has had time to hold all three.
	steer := func(base string) map[string]string {
		t.Helper()
		out := map[string]string{}
		var last string
		var beaten time.Time // when every appliance's beat was first taken
		defer func() {
			if t.Failed() {
				t.Logf("last steering answer: %s", last)
			}
		}()
		poll.Until(t, time.Minute, "steering over the appliances", func() bool {
			for id, cred := range creds {
				hb := fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://" + id + ".example:8080", CapacityBytes: 1 << 40, Health: "ok"}
				b, _ := json.Marshal(hb)
				req, _ := http.NewRequest("POST", base+"/v1/appliances/"+id+"/heartbeat", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+cred)
				req.Header.Set("Content-Type", "application/json")
				if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode/100 != 2 {
					if err == nil {
						resp.Body.Close()
					}
					return false
				}
			}
			if beaten.IsZero() {
				beaten = time.Now()
			}
			if time.Since(beaten) < 2*time.Second {
				return false
			}
			for _, title := range titles {
				code, b := httpGet(t, base+"/v1/steering/"+title)
				last = string(b)
				if code != 200 || !strings.Contains(last, ".example:8080") {
					return false
				}
				out[title] = string(b)
			}
			return true
		})
		return out
	}
	before := steer(n1.url)

	cli := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, args, &out, &errb)
		return out.String() + errb.String(), err
	}
	file := filepath.Join(e.dir, "cluster.backup")
	if out, err := cli("controlplane", "backup", "--to", file, "--controlplane", n1.url, "--token", "adm"); err != nil || !strings.Contains(out, "sha256") {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v, want mode 0600", st, err)
	}
	if out, err := cli("controlplane", "backup", "--to", file+"2", "--controlplane", n1.url, "--token", "nope"); err == nil {
		t.Fatalf("backup with a wrong token: no error\n%s", out)
	}

	// Destroy the node and its data.
	n1.cmd.Process.Kill()
	<-n1.exited
	data := filepath.Join(e.dir, "n1")
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}

	// A damaged and a truncated copy are refused, as is a directory
	// with a node's state.
	good, _ := os.ReadFile(file)
	damaged := bytes.Clone(good)
	damaged[len(damaged)-10] ^= 0x20
	cut := good[:len(good)-len(good)/3]
	for name, b := range map[string][]byte{"damaged": damaged, "truncated": cut, "empty": nil} {
		bad := filepath.Join(e.dir, name+".backup")
		os.WriteFile(bad, b, 0o600)
		if out, err := cli("controlplane", "restore", "--from", bad, "--data", filepath.Join(e.dir, name), "--id", "n1", "--raft", addrs.raft); err == nil {
			t.Errorf("restore of a %s backup: no error\n%s", name, out)
		}
	}
	if out, err := cli("controlplane", "restore", "--from", file, "--data", data, "--id", "n1", "--raft", addrs.raft); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if out, err := cli("controlplane", "restore", "--from", file, "--data", data, "--id", "n1", "--raft", addrs.raft); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("restore over a node's state: %v\n%s", err, out)
	}

	// The restored node steers the same titles to the same appliances.
	n1 = startControlPlaneProcAt(t, bin, e, "n1", "", addrs)
	poll.Until(t, time.Minute, "the restored node leading", func() bool {
		st, err := ops.Cluster(ctx)
		return err == nil && st.Leader == "n1" && len(st.Members) == 1
	})
	after := steer(n1.url)
	for _, title := range titles {
		if before[title] != after[title] {
			t.Errorf("steering of %s after restore:\n%s\nwant\n%s", title, after[title], before[title])
		}
	}
	// Writes go on from the restored state.
	if err := ops.Do(ctx, "POST", "/v1/titles", fillcast.Title{ID: "t1", Name: "again", Status: "new"}, nil); err == nil {
		t.Error("creating t1 again after restore: no conflict")
	}
	if err := ops.Do(ctx, "POST", "/v1/titles", fillcast.Title{ID: "t4", Name: "Four", Status: "new"}, nil); err != nil {
		t.Errorf("a write after restore: %v", err)
	}
}
