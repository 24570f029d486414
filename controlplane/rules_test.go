package controlplane

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestRulesOnEveryNode: a static rule put through one node answers on
// every node within a second, and a squeeze started through another
// stops at the step where its (injected) slow appliance crosses the
// bound, then restores steering.
func TestRulesOnEveryNode(t *testing.T) {
	n1 := startNode(t, "n1", nil)
	n2 := startNode(t, "n2", []string{n1.url})
	n3 := startNode(t, "n3", []string{n1.url})
	nodes := []*testNode{n1, n2, n3}
	for _, n := range nodes {
		poll.Until(t, 20*time.Second, "three members on "+n.url, func() bool {
			var k int
			n.fsm.Read(func(s *fsm.State) { k = len(s.Members) })
			return k == 3
		})
	}

	rule := `{"kind":"static","route":"GET /v1/titles","status":503,"body":{"error":"catalog is down for maintenance"},"retry_after":120}`
	if code, b := call(t, "PUT", n2.url+"/v1/rules/maint", rule, true); code != 200 {
		t.Fatalf("put rule: %d %s", code, b)
	}
	set := time.Now()
	for _, n := range nodes {
		for {
			code, b := call(t, "GET", n.url+"/v1/titles", nil, true)
			if code == 503 && strings.Contains(string(b), "catalog is down for maintenance") {
				break
			}
			if time.Since(set) > time.Second {
				t.Fatalf("%s still answers %d %s a second after the rule was set", n.url, code, b)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if code, b := call(t, "DELETE", n3.url+"/v1/rules/maint", nil, true); code != 204 {
		t.Fatalf("delete rule: %d %s", code, b)
	}
	for _, n := range nodes {
		poll.Until(t, time.Second, "the catalog back on "+n.url, func() bool {
			code, _ := call(t, "GET", n.url+"/v1/titles", nil, true)
			return code == 200
		})
	}

	// The squeezed appliance gets slower with its share of playbacks,
	// which it learns as an appliance would, from the canary rule.
	if code, b := call(t, "PUT", n1.url+"/v1/sites/isp1", fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"127.0.0.0/8"}}, true); code != 200 {
		t.Fatalf("put site: %d %s", code, b)
	}
	creds := register(t, n1.url, "a1")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	wg.Go(func() {
		for {
			share := 0.0
			n1.fsm.Read(func(s *fsm.State) {
				for id, r := range s.Rules {
					if strings.HasPrefix(id, "squeeze-") {
						share = r.Percent
					}
				}
			})
			hb := fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://a1.example:8080", Health: "ok",
				RPS: 10 * share, Requests: uint64(100 * share), P99Millis: 10 + 2*share}
			b, _ := json.Marshal(hb)
			req, _ := http.NewRequest("POST", n1.url+"/v1/appliances/a1/heartbeat", bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer "+creds["a1"])
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	poll.Until(t, 10*time.Second, "a1 known to n2", func() bool {
		var ok bool
		n2.fsm.Read(func(s *fsm.State) { ok = s.Registrations["a1"] != nil })
		return ok
	})
	var q fsm.Squeeze
	code, b := call(t, "POST", n2.url+"/v1/squeeze", `{"appliance":"a1","step_percent":10,"step":"1s","max_p99_ms":50,"max_error_ratio":0.01}`, true)
	if code != 201 || json.Unmarshal(b, &q) != nil {
		t.Fatalf("start squeeze: %d %s", code, b)
	}
	poll.Until(t, 30*time.Second, "the squeeze to stop", func() bool {
		code, b := call(t, "GET", n3.url+"/v1/squeeze/"+q.ID, nil, true)
		return code == 200 && json.Unmarshal(b, &q) == nil && q.Status != fsm.SqueezeRunning
	})
	last := q.Steps[len(q.Steps)-1]
	if q.Status != fsm.SqueezeStopped || q.HeldPercent != 20 || last.Percent != 30 || !last.Crossed || !strings.Contains(q.Reason, "p99") {
		t.Fatalf("squeeze %+v: want stopped at 30 %% (p99 70 ms > 50 ms), holding 20 %%", q)
	}
	poll.Until(t, 5*time.Second, "the canary rule gone", func() bool {
		var left bool
		n3.fsm.Read(func(s *fsm.State) { left = s.Rules["squeeze-"+q.ID] != nil })
		return !left
	})
}
