package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/internal/scrape"
	"github.com/fillcast/fillcast/origin"
)

// TestMetricsMove: on a real node, each metric family of raft, the
// fleet, ingest, the event stream, accounts and billing is on /metrics
// with its labels, and moves when its event happens: writes through
// raft, a real appliance heartbeating and serving from a real origin, an
// upload ffmpeg refuses, a batch of viewer events, sign-ups, a paid
// subscription and a wrong password. Then every metric deploy/'s alert
// rules and dashboards name is on the page of the process they are
// about (deploy_test.go).
func TestMetricsMove(t *testing.T) {
	ln := listen(t)
	cfg := Config{ID: "n1", DataDir: t.TempDir(), HTTP: ln.Addr().String(), Origin: "http://127.0.0.1:9"}
	cfg.Billing.TrialDays = -1 // a subscription is charged, and active, at once
	n := runNode(t, cfg, Deps{AdminToken: "adm", Keys: testKeys(), Listener: ln})
	get := func(url, bearer string) *scrape.Page {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p, err := scrape.Get(ctx, http.DefaultClient, url, bearer)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// A paying viewer first: the billing report the first scrape makes
	// is kept for a minute.
	if code, b := call(t, "PUT", n.url+"/v1/plans/basic", billingPlan, true); code != 200 {
		t.Fatalf("put plan: %d %s", code, b)
	}
	token := viewerOf(t, n.url, "viewer@example.com", "basic")
	if code, b := withKey(t, "POST", n.url+"/v1/subscriptions", `{"plan":"basic","payment_method":{"card":"4242424242424242"}}`, token, "sub-1"); code != 201 {
		t.Fatalf("subscribe: %d %s", code, b)
	}
	before := get(n.url+"/metrics", "adm")

	// Raft writes, and an appliance serving a configured site.
	site := fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"127.0.0.0/8"}}
	if code, b := call(t, "PUT", n.url+"/v1/sites/isp1", site, true); code != 200 {
		t.Fatalf("put site: %d %s", code, b)
	}
	for _, title := range []fillcast.Title{
		{ID: "t1", Name: "One", Status: "ready", Renditions: []fillcast.Rendition{{ID: "360p", Kind: "video", Height: 360, Bandwidth: 1e6, Codecs: "avc1.64001e"}}},
		{ID: "t2", Name: "Two", Status: "new"},
	} {
		if code, b := call(t, "POST", n.url+"/v1/titles", title, true); code != 201 {
			t.Fatalf("create %s: %d %s", title.ID, code, b)
		}
	}
	apURL := startAppliance(t, n.url)
	apBefore := get(apURL+"/metrics", "")
	seg := apURL + testKeys().SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{}) + "/360p/seg-00001.m4s"
	for range 2 { // a fill, then a hit
		resp, err := http.Get(seg)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", seg, resp.Status)
		}
	}
	// A wrong password, and a call without a token.
	if code, b := call(t, "POST", n.url+"/v1/sessions", `{"email":"nobody@example.com","password":"not the password"}`, false); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d %s, want 401", code, b)
	}
	if code, b := call(t, "GET", n.url+"/v1/fleet", nil, false); code != http.StatusUnauthorized {
		t.Fatalf("GET /v1/fleet without a token: %d %s, want 401", code, b)
	}
	// An upload ffmpeg refuses.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "noise.mp4")
	fw.Write(bytes.Repeat([]byte("not a video "), 100))
	mw.Close()
	req, _ := http.NewRequest("POST", n.url+"/v1/titles/t2/ingest", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer adm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("ingest: %s", resp.Status)
	}
	// A batch of viewer events, once the stream takes it.
	poll.Until(t, time.Minute, "the stream takes a batch", func() bool {
		code, b := callAs(t, "POST", n.url+"/v1/events", `[{"id":"e1","title":"t1","type":"play","duration_s":600}]`, token)
		switch code {
		case http.StatusAccepted:
			return true
		case http.StatusServiceUnavailable, http.StatusTooManyRequests:
			time.Sleep(200 * time.Millisecond)
			return false
		}
		t.Fatalf("post events: %d %s", code, b)
		return false
	})

	type labels = map[string]string
	moved := func(d float64) func(b, a float64) bool { return func(b, a float64) bool { return a-b >= d } }
	is := func(want float64) func(b, a float64) bool { return func(_, a float64) bool { return a == want } }
	positive := func(_, a float64) bool { return a > 0 }
	type check struct {
		name   string
		labels labels
		ok     func(before, after float64) bool
		want   string
	}
	node := []check{
		{"fillcast_raft_is_leader", nil, is(1), "1"},
		{"fillcast_raft_leader_known", nil, is(1), "1"},
		{"fillcast_raft_voters", nil, is(1), "1"},
		{"fillcast_raft_term", nil, positive, "> 0"},
		{"fillcast_raft_leader_changes_total", nil, positive, "> 0"},
		{"fillcast_raft_last_contact_seconds", nil, is(0), "0 on the leader"},
		{"fillcast_raft_commit_seconds_count", nil, moved(4), "+4 writes"},
		{"fillcast_raft_apply_seconds_count", nil, moved(4), "+4 writes"},
		{"fillcast_raft_apply_seconds_bucket", labels{"le": "+Inf"}, moved(4), "+4 writes"},
		{"fillcast_raft_applied_index", nil, moved(4), "+4 writes"},
		{"fillcast_raft_commit_index", nil, moved(4), "+4 writes"},
		{"fillcast_raft_last_index", nil, moved(4), "+4 writes"},
		{"fillcast_raft_log_entries", nil, moved(4), "+4 writes"},
		{"fillcast_raft_log_bytes", nil, positive, "> 0"},
		{"fillcast_raft_snapshot_index", nil, is(0), "0: no snapshot yet"},
		{"fillcast_raft_fsm_pending", nil, is(0), "0"},
		{"fillcast_fleet_appliances", labels{"state": "serving"}, moved(1), "+1"},
		{"fillcast_fleet_appliances", labels{"state": "stale"}, is(0), "0"},
		{"fillcast_fleet_heartbeat_age_seconds", labels{"appliance": "a1", "site": "isp1"}, func(_, a float64) bool { return a >= 0 && a < 10 }, "under 10 s"},
		{"fillcast_ingest_failures_total", labels{"reason": "bad_input"}, moved(1), "+1"},
		{"fillcast_ingest_job_seconds_count", labels{"outcome": "failed"}, moved(1), "+1"},
		{"fillcast_ingest_stage_seconds_count", labels{"stage": "transcode", "outcome": "failed"}, moved(1), "+1"},
		{"fillcast_ingest_queue_length", nil, is(0), "0"},
		{"fillcast_ingest_file_lists_pending", nil, is(0), "0"},
		{"fillcast_planner_pass_seconds_count", nil, positive, "> 0"},
		{"fillcast_events_stream_available", nil, is(1), "1"},
		{"fillcast_events_stream_last_sequence", nil, moved(1), "+1"},
		{"fillcast_events_stream_messages", nil, moved(1), "+1"},
		{"fillcast_events_consumer_lag", labels{"consumer": "history-n1"}, is(0), "0 once folded"},
		{"fillcast_events_consumer_lag", labels{"consumer": "ops-n1"}, is(0), "0 once folded"},
		{"fillcast_accounts_signups_total", labels{"outcome": "ok"}, is(1), "1"},
		{"fillcast_accounts_signins_total", labels{"outcome": "ok"}, is(1), "1"},
		{"fillcast_accounts_signins_total", labels{"outcome": "bad_credentials"}, moved(1), "+1"},
		{"fillcast_api_denied_total", labels{"reason": "no_credential"}, moved(1), "+1"},
		{"fillcast_billing_charges_total", labels{"outcome": "succeeded"}, is(1), "1"},
		{"fillcast_billing_charges_total", labels{"outcome": "declined"}, is(0), "0"},
		{"fillcast_billing_subscriptions", labels{"status": "active"}, is(1), "1"},
		{"fillcast_billing_subscriptions", labels{"status": "past_due"}, is(0), "0"},
		{"fillcast_billing_mrr_minor_units", labels{"currency": "EUR"}, is(799), "799"},
		{"fillcast_billing_failed_payments_30d", nil, is(0), "0"},
		{"fillcast_billing_report_age_seconds", nil, func(_, a float64) bool { return a >= 0 && a < 120 }, "under 2 minutes"},
	}
	app := []check{
		{"fillcast_appliance_response_seconds_count", nil, moved(2), "+2"},
		{"fillcast_appliance_response_seconds_bucket", labels{"le": "10"}, moved(2), "+2"},
		{"fillcast_appliance_misses_total", nil, moved(1), "+1"},
	}
	// Everything above has happened; some of it (the fleet's rebuild,
	// the job, the folds) settles within seconds.
	var after, apAfter *scrape.Page
	failing := func() []string {
		var out []string
		for _, p := range []struct {
			before, after *scrape.Page
			checks        []check
		}{{before, after, node}, {apBefore, apAfter, app}} {
			for _, c := range p.checks {
				b, _ := p.before.Value(c.name, c.labels)
				a, ok := p.after.Value(c.name, c.labels)
				if !ok || !c.ok(b, a) {
					out = append(out, fmt.Sprintf("%s%v = %v (present %v, before %v), want %s", c.name, c.labels, a, ok, b, c.want))
				}
			}
		}
		return out
	}
	if !poll.Wait(time.Minute, func() bool {
		after, apAfter = get(n.url+"/metrics", "adm"), get(apURL+"/metrics", "")
		return len(failing()) == 0
	}) {
		t.Fatalf("after a minute:\n%s", strings.Join(failing(), "\n"))
	}
	checkDeployNames(t, map[string]map[string]bool{"controlplane": after.Names(), "appliance": apAfter.Names()})
}

// startAppliance runs a real origin holding t1's segment and a real
// appliance of isp1 filling from it, registered with and heartbeating
// to the node at cp, until the test ends; it returns the appliance's
// URL.
func startAppliance(t *testing.T, cp string) string {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	oc := origin.DefaultConfig()
	oc.Root = t.TempDir()
	o, err := origin.New(oc, origin.Deps{AdminToken: "adm", Keys: testKeys(), Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	osrv := httptest.NewServer(o)
	t.Cleanup(func() { osrv.Close(); o.Close() })
	if err := os.MkdirAll(filepath.Join(oc.Root, "t1", "360p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(oc.Root, "t1", "360p", "seg-00001.m4s"), bytes.Repeat([]byte("x"), 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	reg := map[string]any{"site": "isp1", "profile": "storage", "urls": []string{url}}
	code, b := call(t, "PUT", cp+"/v1/appliances/a1", reg, true)
	var out struct{ Credential string }
	if code != 200 || json.Unmarshal(b, &out) != nil {
		t.Fatalf("register a1: %d %s", code, b)
	}
	cfg := appliance.DefaultConfig()
	cfg.ID, cfg.Site, cfg.AdvertiseURL = "a1", "isp1", url
	cfg.Cache.Dir, cfg.Cache.DiskBytes, cfg.Cache.MemBytes = t.TempDir(), 64<<20, 8<<20
	cfg.Upstream.URLs = []string{osrv.URL}
	cfg.ControlPlanes = []string{cp}
	cfg.HeartbeatInterval = 200 * time.Millisecond
	a, err := appliance.New(cfg, appliance.Deps{Keys: testKeys(), Credential: out.Credential, AdminToken: "adm", Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return url
}
