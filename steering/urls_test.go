package steering_test

import (
	"encoding/json"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/steering/contentsteering"
	"github.com/fillcast/fillcast/steering/steeringtest"
)

// A playback answer end to end: steer, sign once with the real key file
// format, build every URL, and check an appliance would accept each.
func TestSignedURLs(t *testing.T) {
	t.Parallel()
	keys, err := auth.ParseKeys(strings.NewReader("k1 " + strings.Repeat("ab", 32) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	clock := steeringtest.NewClock(t0)
	s := newSteerer(t, steering.Config{Origin: "http://origin.example:9000/"}, clock)
	f := build(t, s, []steering.Appliance{oca("a1", "isp1-ams"), oca("a2", "isp1-ams"), oca("x1", "ix-ams")})
	targets := f.Steer(nil, steering.Request{Client: netip.MustParseAddr("203.0.113.5"), Title: "t1"})

	expiry := t0.Add(time.Hour)
	path := keys.SignPath("t1", expiry, netip.Prefix{}) + "/master.m3u8"
	urls := steering.AppendURLs(nil, targets, path)
	if len(urls) != len(targets) || len(urls) != steering.MaxTargets {
		t.Fatalf("AppendURLs gave %d URLs for %d targets; want %d", len(urls), len(targets), steering.MaxTargets)
	}
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("URL %d %q: %v", i, raw, err)
		}
		if want := targets[i].URL; !strings.HasPrefix(raw, want+"/c/") {
			t.Errorf("URL %d = %q; want it under %s/c/", i, raw, want)
		}
		parts := strings.SplitN(strings.TrimPrefix(u.Path, "/c/"), "/", 3)
		if len(parts) != 3 || parts[1] != "t1" || parts[2] != "master.m3u8" {
			t.Fatalf("URL %d path %q; want /c/{token}/t1/master.m3u8", i, u.Path)
		}
		if _, err := keys.Verify(parts[0], "t1", t0, netip.Addr{}); err != nil {
			t.Errorf("URL %d token does not verify: %v", i, err)
		}
	}
	if got := urls[len(urls)-1]; !strings.HasPrefix(got, "http://origin.example:9000/c/") {
		t.Errorf("origin URL = %q; want the configured origin without a doubled slash", got)
	}
}

func TestSteeringManifestFromAnswer(t *testing.T) {
	t.Parallel()
	clock := steeringtest.NewClock(t0)
	s := newSteerer(t, steering.Config{Origin: "https://origin.example"}, clock)
	f := build(t, s, []steering.Appliance{oca("a1", "isp1-ams"), oca("a2", "isp1-ams"), oca("x1", "ix-ams")})
	targets := f.Steer(nil, steering.Request{Client: netip.MustParseAddr("203.0.113.5"), Title: "t1", DryRun: true})
	pws := steering.AppendPathways(nil, targets)
	pws = append(pws, contentsteering.Pathway{ID: contentsteering.DefaultBaseID})
	m := contentsteering.Manifest{TTL: 10 * time.Second, ReloadURI: "/v1/steering/t1", Pathways: pws}
	body, err := m.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Priority []string `json:"PATHWAY-PRIORITY"`
		Clones   []struct {
			ID   string `json:"ID"`
			Repl struct {
				Host string `json:"HOST"`
			} `json:"URI-REPLACEMENT"`
		} `json:"PATHWAY-CLONES"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("manifest %s: %v", body, err)
	}
	want := []string{targets[0].Appliance, targets[1].Appliance, "x1", steering.OriginPathway, "."}
	if strings.Join(got.Priority, " ") != strings.Join(want, " ") {
		t.Errorf("PATHWAY-PRIORITY = %v; want %v", got.Priority, want)
	}
	hosts := map[string]string{}
	for _, c := range got.Clones {
		hosts[c.ID] = c.Repl.Host
	}
	for id, host := range map[string]string{"a1": "a1.example:8080", "x1": "x1.example:8080", "origin": "origin.example"} {
		if hosts[id] != host {
			t.Errorf("clone %s host = %q; want %q", id, hosts[id], host)
		}
	}
}
