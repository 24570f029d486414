package controlplane

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/accounts/storetest"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/pgtest"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestAccountsOnRaft runs the accounts contract suite on the embedded
// store through a real raft node: every write a replicated command,
// every read the state it applied.
func TestAccountsOnRaft(t *testing.T) {
	storetest.Run(t, func(t *testing.T) accounts.Store {
		n := startNode(t, "n1", nil)
		poll.Until(t, 10*time.Second, "leader", func() bool { return n.Raft().IsLeader() })
		return fsm.AccountsStore(n.fsm, n.raft.Apply, n.raft.CatchUp)
	})
}

// TestViewersAcrossNodes: with either store, an account made through
// one node signs in through another; stream leases taken through two
// nodes count against one limit; a session signed out through one node
// stops working on the others within the session cache's 5 s.
func TestViewersAcrossNodes(t *testing.T) {
	for _, store := range []string{"replicated", "postgres"} {
		t.Run(store, func(t *testing.T) {
			var dsn string
			if store == "postgres" {
				dsn = pgtest.Start(t)
			}
			start := func(id string, join []string) *testNode {
				keys, ln := testKeys(), listen(t)
				cfg := Config{ID: id, DataDir: t.TempDir(), HTTP: ln.Addr().String(), Join: join, Origin: "http://127.0.0.1:9", AccountsDB: dsn}
				return runNode(t, cfg, Deps{AdminToken: "adm", Keys: keys, Listener: ln})
			}
			n1 := start("n1", nil)
			n2 := start("n2", []string{n1.url})
			n3 := start("n3", []string{n1.url})
			plan := accounts.Plan{Name: "Basic", MaxHeight: 480, MaxStreams: 1, Price: accounts.Money{Amount: 799, Currency: "EUR"}, Period: "month"}
			if code, b := call(t, "PUT", n1.url+"/v1/plans/basic", plan, true); code != 200 {
				t.Fatalf("put plan: %d %s", code, b)
			}
			title := fillcast.Title{ID: "t1", Name: "One", Status: "ready",
				Renditions: []fillcast.Rendition{{ID: "360p", Kind: "video", Height: 360, Bandwidth: 1e6, Codecs: "avc1.64001e"}}}
			if code, b := call(t, "POST", n1.url+"/v1/titles", title, true); code != 201 {
				t.Fatalf("create title: %d %s", code, b)
			}
			for _, n := range []*testNode{n1, n2, n3} { // the catalog may lag; accounts may not
				poll.Until(t, 10*time.Second, "the title on "+n.url, func() bool {
					var ok bool
					n.fsm.Read(func(s *fsm.State) { ok = s.Titles["t1"] != nil })
					return ok
				})
			}
			// Each step through another node at once: a lookup that misses
			// catches up with the leader first.
			if code, b := call(t, "POST", n2.url+"/v1/accounts", `{"email":"ann@example.com","password":"correct horse battery","plan":"basic"}`, false); code != 201 {
				t.Fatalf("sign up: %d %s", code, b)
			}
			code, b := call(t, "POST", n3.url+"/v1/sessions", `{"email":"ann@example.com","password":"correct horse battery"}`, false)
			var s struct{ Token string }
			if code != 201 || json.Unmarshal(b, &s) != nil || s.Token == "" {
				t.Fatalf("sign in through another node: %d %s", code, b)
			}
			code, b = callAs(t, "GET", n1.url+"/v1/playback/t1", nil, s.Token)
			var p fillcast.Playback
			if code != 200 || json.Unmarshal(b, &p) != nil || p.StreamID == "" {
				t.Fatalf("playback through n1: %d %s", code, b)
			}
			if code, b := callAs(t, "GET", n2.url+"/v1/playback/t1", nil, s.Token); code != 429 || !strings.Contains(string(b), "stream limit reached") {
				t.Errorf("a second stream through n2: %d %s, want 429", code, b)
			}
			if code, b := callAs(t, "DELETE", n3.url+"/v1/streams/"+p.StreamID, nil, s.Token); code != 204 {
				t.Errorf("end the stream through n3: %d %s", code, b)
			}
			if code, b := callAs(t, "GET", n2.url+"/v1/playback/t1", nil, s.Token); code != 200 {
				t.Errorf("playback through n2 once the first stream ended: %d %s", code, b)
			}
			// n2 has the session cached; sign out through n1.
			if code, b := callAs(t, "DELETE", n1.url+"/v1/sessions/current", nil, s.Token); code != 204 {
				t.Fatalf("sign out: %d %s", code, b)
			}
			out := time.Now()
			poll.Until(t, 10*time.Second, "the signed-out session refused on n2", func() bool {
				code, _ := callAs(t, "GET", n2.url+"/v1/account", nil, s.Token)
				return code == http.StatusUnauthorized
			})
			if took := time.Since(out); took > 5*time.Second+500*time.Millisecond {
				t.Errorf("n2 honoured a signed-out session for %v, want at most 5 s", took)
			}
		})
	}
}
