package appliance

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/auth/pki/pkitest"
	"github.com/fillcast/fillcast/controlplane"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestMutualTLSFleet: three control-plane nodes speaking mutual TLS to
// each other, and two appliances holding appliance certificates of the
// cluster CA and their registered credentials: both heartbeat over https
// to the cluster, which steers to them and serves their fill manifests;
// an appliance that trusts another CA reaches no node.
func TestMutualTLSFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-node cluster")
	}
	lab := pkitest.New(t)
	var urls []string
	for i, id := range []string{"n1", "n2", "n3"} {
		cfg := controlplane.Config{ID: id, DataDir: t.TempDir(), Bootstrap: i == 0, TLS: lab.Issue(t, pki.RoleNode, id, "127.0.0.1")}
		if i > 0 {
			cfg.Join = urls[:1]
		}
		u, stop := startControlPlaneWith(t, cfg)
		t.Cleanup(stop)
		urls = append(urls, u)
	}
	opsTLS, err := pki.ClientTLS("", "", lab.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	ops, err := client.New(client.Config{URLs: urls}, client.Deps{Token: "adm", TLS: opsTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer ops.Close()
	ctx := context.Background()
	poll.Until(t, 20*time.Second, "three members and a leader", func() bool {
		st, err := ops.Cluster(ctx)
		return err == nil && st.Leader != "" && len(st.Members) == 3
	})
	poll.UntilNil(t, 10*time.Second, "the site", func() error {
		return ops.Do(ctx, "PUT", "/v1/sites/s1", fillcast.Site{Kind: "isp", Region: "eu", Prefixes: []string{"127.0.0.0/8"}}, nil)
	})

	origin := startOrigin(t)
	origin.put(t, "t1/master.m3u8", []byte("#EXTM3U\n"))
	start := func(id string, caFile string) *testAppliance {
		advertise := "https://" + id + ".test:8443"
		var reg api.Registration
		if err := ops.Do(ctx, "PUT", "/v1/appliances/"+id, api.Registration{Site: "s1", Profile: "storage", URLs: []string{advertise}}, &reg); err != nil {
			t.Fatal(err)
		}
		cert := lab.Issue(t, pki.RoleAppliance, id, "127.0.0.1")
		cfg := DefaultConfig()
		cfg.ID, cfg.Site, cfg.AdvertiseURL = id, "s1", advertise
		cfg.Cache.Dir, cfg.Cache.DiskBytes = t.TempDir(), 64<<20
		cfg.Upstream.URLs = []string{origin.srv.URL}
		cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = cert.Cert, cert.Key, caFile
		cfg.ControlPlanes = urls[2:] // it learns the others
		cfg.HeartbeatInterval, cfg.FillPoll = 50*time.Millisecond, 50*time.Millisecond
		return startApplianceDeps(t, cfg, Deps{Keys: keys(t).Public(), Credential: reg.Credential, Log: quiet()})
	}
	a1 := start("a1", lab.CAFile())
	start("a2", lab.CAFile())
	start("a3", pkitest.New(t).CAFile()) // trusts another CA: the nodes' certificates fail
	poll.Until(t, 20*time.Second, "a1 and a2 steerable on every node", func() bool {
		for _, u := range urls {
			c, err := client.New(client.Config{URLs: []string{u}}, client.Deps{Token: "adm", TLS: opsTLS})
			if err != nil {
				t.Fatal(err)
			}
			var fleet []api.ApplianceView
			err = c.Do(ctx, "GET", "/v1/fleet", nil, &fleet)
			c.Close()
			steerable := map[string]bool{}
			for _, v := range fleet {
				steerable[v.ID] = v.Steerable
			}
			if err != nil || !steerable["a1"] || !steerable["a2"] {
				return false
			}
		}
		return true
	})
	// a1 verifies with the public keys alone and fills from the origin,
	// which has keys, with the fill pass the control plane signed it.
	players := &http.Client{Transport: &http.Transport{TLSClientConfig: opsTLS}}
	path := keys(t).SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{}) + "/master.m3u8"
	poll.UntilNil(t, 10*time.Second, "a miss filled from the origin with a fill pass", func() error {
		resp, err := players.Get("https://" + strings.TrimPrefix(a1.url, "http://") + path)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET: %s", resp.Status)
		}
		return nil
	})
	var fleet []api.ApplianceView
	if err := ops.Do(ctx, "GET", "/v1/fleet", nil, &fleet); err != nil {
		t.Fatal(err)
	}
	for _, v := range fleet {
		if v.ID == "a3" && v.LastSeen != nil {
			t.Errorf("a3, which trusts another CA, heartbeat through: %+v", v)
		}
	}
}
