package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/storetest"
	"github.com/fillcast/fillcast/billing/subscriptions"
	"github.com/fillcast/fillcast/billing/testprovider"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/failpoint"
	"github.com/fillcast/fillcast/internal/pgtest"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestBillingOnRaft runs the billing contract suite on the embedded
// store through a real raft node.
func TestBillingOnRaft(t *testing.T) {
	storetest.Run(t, func(t *testing.T) billing.Store {
		n := startNode(t, "n1", nil)
		poll.Until(t, 10*time.Second, "leader", func() bool { return n.Raft().IsLeader() })
		return fsm.BillingStore(n.fsm, n.raft.Apply, n.raft.CatchUp)
	})
}

// untilLeader calls fn again while the cluster has no leader (503, or
// no answer), as a client that honours Retry-After does, for up to 20 s:
// the tests' short raft timeouts elect again on a loaded machine.
func untilLeader(t *testing.T, fn func() (int, []byte)) (int, []byte) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, b := fn()
		if code != 0 && code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return code, b
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// viewerOf signs up email on plan through node and returns a session
// token.
func viewerOf(t *testing.T, node, email, plan string) string {
	t.Helper()
	code, b := untilLeader(t, func() (int, []byte) {
		return call(t, "POST", node+"/v1/accounts", `{"email":"`+email+`","password":"correct horse battery","plan":"`+plan+`"}`, false)
	})
	if code != 201 && code != 409 { // 409: a retry of a sign-up that went through
		t.Fatalf("sign up: %d %s", code, b)
	}
	code, b = untilLeader(t, func() (int, []byte) {
		return call(t, "POST", node+"/v1/sessions", `{"email":"`+email+`","password":"correct horse battery"}`, false)
	})
	var s struct{ Token string }
	if code != 201 || json.Unmarshal(b, &s) != nil {
		t.Fatalf("sign in: %d %s", code, b)
	}
	return s.Token
}

// withKey is callAs with an Idempotency-Key, sent again with the same
// key while there is no leader.
func withKey(t *testing.T, method, url, body, bearer, key string) (int, []byte) {
	t.Helper()
	return untilLeader(t, func() (int, []byte) {
		return callWith(method, url, body, bearer, http.Header{"Idempotency-Key": {key}})
	})
}

// succeededCharges counts the charges in the test provider's records in
// dir that moved money.
func succeededCharges(t *testing.T, dir string) int {
	t.Helper()
	p, err := testprovider.New(testprovider.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	n, err := p.Succeeded(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// verifyBilling fails the test unless GET /v1/billing/verify through
// node finds the ledger and the invoices in agreement.
func verifyBilling(t *testing.T, node string) subscriptions.Verification {
	t.Helper()
	code, b := call(t, "GET", node+"/v1/billing/verify", nil, true)
	var v subscriptions.Verification
	if code != 200 || json.Unmarshal(b, &v) != nil {
		t.Fatalf("verify: %d %s", code, b)
	}
	for _, p := range v.Problems {
		t.Errorf("verify: %s", p)
	}
	return v
}

var billingPlan = accounts.Plan{Name: "Basic", MaxHeight: 480, MaxStreams: 1, Price: accounts.Money{Amount: 799, Currency: "EUR"}, Period: "month"}

// TestBillingAcrossNodes: with either store, three nodes sharing one
// payment provider: a subscription made through one node is replayed
// through another for its Idempotency-Key, charging once; renewal passes
// run through two nodes at once charge each renewal once; the ledger
// verifies.
func TestBillingAcrossNodes(t *testing.T) {
	for _, store := range []string{"replicated", "postgres"} {
		t.Run(store, func(t *testing.T) {
			var dsn string
			if store == "postgres" {
				dsn = pgtest.Start(t)
			}
			payments := t.TempDir()
			start := func(id string, join []string) *testNode {
				keys, ln := testKeys(), listen(t)
				cfg := Config{ID: id, DataDir: t.TempDir(), HTTP: ln.Addr().String(), Join: join, Origin: "http://127.0.0.1:9",
					AccountsDB: dsn, PaymentProvider: "test:" + payments}
				return runNode(t, cfg, Deps{AdminToken: "adm", Keys: keys, Listener: ln})
			}
			n1 := start("n1", nil)
			n2 := start("n2", []string{n1.url})
			n3 := start("n3", []string{n1.url})
			if code, b := untilLeader(t, func() (int, []byte) { return call(t, "PUT", n1.url+"/v1/plans/basic", billingPlan, true) }); code != 200 {
				t.Fatalf("put plan: %d %s", code, b)
			}
			const viewers = 5
			tokens := make([]string, viewers)
			for i := range tokens {
				tokens[i] = viewerOf(t, n2.url, fmt.Sprintf("v%d@example.com", i), "basic")
				body := `{"plan":"basic","payment_method":{"card":"4242424242424242"}}`
				code, first := withKey(t, "POST", n1.url+"/v1/subscriptions", body, tokens[i], "sub-1")
				if code != 201 {
					t.Fatalf("subscribe through n1: %d %s", code, first)
				}
				code, again := withKey(t, "POST", n3.url+"/v1/subscriptions", body, tokens[i], "sub-1")
				if code != 201 || string(again) != string(first) {
					t.Fatalf("the retry through n3: %d %s, want the first answer %s", code, again, first)
				}
			}
			var sub subscriptions.View
			code, b := callAs(t, "GET", n2.url+"/v1/subscriptions/current", nil, tokens[0])
			if code != 200 || json.Unmarshal(b, &sub) != nil || sub.Status != billing.Active {
				t.Fatalf("subscription through n2: %d %s", code, b)
			}
			// Two passes at once, through two nodes.
			asOf := `{"as_of":"` + sub.CurrentPeriodEnd.Add(time.Minute).Format(time.RFC3339Nano) + `"}`
			var wg sync.WaitGroup
			results := make([]subscriptions.PassResult, 2)
			for i, n := range []*testNode{n1, n3} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, b := untilLeader(t, func() (int, []byte) { return call(t, "POST", n.url+"/v1/billing/renewals", asOf, true) })
					if code != 200 || json.Unmarshal(b, &results[i]) != nil {
						t.Errorf("pass through %s: %d %s", n.url, code, b)
					}
				}()
			}
			wg.Wait()
			// A pass cut short by an election and run again may have
			// renewed some before: the charges and the ledger tell.
			if got := results[0].Renewed + results[1].Renewed; got > viewers {
				t.Fatalf("renewed %d times, want at most %d: %+v", got, viewers, results)
			}
			if got := succeededCharges(t, payments); got != 2*viewers {
				t.Fatalf("%d charges, want %d", got, 2*viewers)
			}
			v := verifyBilling(t, n2.url)
			if v.Invoices != 2*viewers {
				t.Errorf("%d invoices, want %d", v.Invoices, 2*viewers)
			}
		})
	}
}

// Environment of the renewal crash test's child node.
const (
	crashChildEnv = "FILLCAST_BILLING_CRASH_CHILD" // the node's data dir, http and raft addresses, events listener, provider dir
)

// TestRenewalCrash kills a node with SIGKILL at each step of a renewal
// (before the charge, between the charge and its commit, after the
// commit), restarts it on its data, and runs the pass again: the payment
// is never taken twice and never lost, and the ledger verifies.
func TestRenewalCrash(t *testing.T) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		runCrashChild(t, spec)
		return
	}
	for _, step := range []string{subscriptions.FailBeforeCharge, subscriptions.FailAfterCharge, subscriptions.FailAfterCommit} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			c := newCrashNode(t)
			c.start(t, "")
			token := viewerOf(t, c.url, "crash@example.com", "basic")
			if code, b := withKey(t, "POST", c.url+"/v1/subscriptions", `{"plan":"basic","payment_method":{"card":"4242424242424242"}}`, token, "k"); code != 201 {
				t.Fatalf("subscribe: %d %s", code, b)
			}
			var sub subscriptions.View
			_, b := callAs(t, "GET", c.url+"/v1/subscriptions/current", nil, token)
			json.Unmarshal(b, &sub)
			c.stop(t)

			asOf := `{"as_of":"` + sub.CurrentPeriodEnd.Format(time.RFC3339Nano) + `"}`
			c.start(t, step+"=kill")
			if code, b := call(t, "POST", c.url+"/v1/billing/renewals", asOf, true); code != 0 {
				t.Fatalf("the pass answered %d %s; want the node killed", code, b)
			}
			c.waitKilled(t)

			c.start(t, "")
			code, b := call(t, "POST", c.url+"/v1/billing/renewals", asOf, true)
			var res subscriptions.PassResult
			if code != 200 || json.Unmarshal(b, &res) != nil {
				t.Fatalf("the pass after the restart: %d %s", code, b)
			}
			wantDue, wantReconciled := 1, 0
			switch step {
			case subscriptions.FailAfterCharge:
				wantReconciled = 1
			case subscriptions.FailAfterCommit:
				wantDue = 0
			}
			if res.Due != wantDue || res.Reconciled != wantReconciled || res.Failed != 0 {
				t.Errorf("the pass after the restart: %+v, want %d due, %d reconciled", res, wantDue, wantReconciled)
			}
			if got := succeededCharges(t, c.payments); got != 2 {
				t.Errorf("%d charges, want 2: the subscription and its renewal", got)
			}
			_, b = callAs(t, "GET", c.url+"/v1/subscriptions/current", nil, token)
			var after subscriptions.View
			if json.Unmarshal(b, &after) != nil || after.Status != billing.Active || !after.CurrentPeriodStart.Equal(sub.CurrentPeriodEnd) {
				t.Errorf("after the pass: %s, want active from %v", b, sub.CurrentPeriodEnd)
			}
			if v := verifyBilling(t, c.url); v.Invoices != 2 {
				t.Errorf("%d invoices, want 2", v.Invoices)
			}
			c.stop(t)
		})
	}
}

// crashNode is a control-plane node run as a child process (this test
// binary) on one data directory across restarts.
type crashNode struct {
	dir, payments, url, spec string
	cmd                      *exec.Cmd
}

func newCrashNode(t *testing.T) *crashNode {
	c := &crashNode{dir: t.TempDir(), payments: t.TempDir()}
	http, raft, events := freeAddr(t), freeAddr(t), freeAddr(t)
	c.url = "http://" + http
	c.spec = strings.Join([]string{c.dir, http, raft, events, c.payments}, ",")
	t.Cleanup(func() {
		if c.cmd != nil && c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	return c
}

// start runs the node with the failpoints given, and waits for it to
// lead.
func (c *crashNode) start(t *testing.T, failpoints string) {
	t.Helper()
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestRenewalCrash$")
	c.cmd.Env = append(os.Environ(), crashChildEnv+"="+c.spec, failpoint.Env+"="+failpoints)
	c.cmd.Stderr = os.Stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, "the child node leading", func() bool {
		code, b := call(t, "GET", c.url+"/v1/cluster", nil, true)
		var st fillcast.ClusterStatus
		return code == 200 && json.Unmarshal(b, &st) == nil && st.Leader == "n1" && st.State == "Leader"
	})
	if code, b := call(t, "PUT", c.url+"/v1/plans/basic", billingPlan, true); code != 200 {
		t.Fatalf("put plan: %d %s", code, b)
	}
}

// stop ends the node with SIGTERM.
func (c *crashNode) stop(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child node: %v", err)
	}
}

// waitKilled waits for the node to die of SIGKILL.
func (c *crashNode) waitKilled(t *testing.T) {
	t.Helper()
	err := c.cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if ws, _ := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child node ended with %v, want SIGKILL", err)
	}
}

// runCrashChild is the child: a node of spec until SIGTERM.
func runCrashChild(t *testing.T, spec string) {
	f := strings.Split(spec, ",")
	cfg := Config{ID: "n1", DataDir: filepath.Join(f[0], "data"), HTTP: f[1], RaftAddr: f[2], Bootstrap: true,
		Origin: "http://127.0.0.1:9", PaymentProvider: "test:" + f[4],
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond}
	cfg.Events.Listen = f[3]
	n, err := New(cfg, Deps{AdminToken: "adm", Keys: testKeys()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := n.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRenewalTask: the leader charges a due renewal on its own, every
// RenewEvery, through the provider it shares with this test.
func TestRenewalTask(t *testing.T) {
	payments := t.TempDir()
	keys, ln := testKeys(), listen(t)
	n := runNode(t, Config{ID: "n1", DataDir: t.TempDir(), HTTP: ln.Addr().String(), Origin: "http://127.0.0.1:9",
		PaymentProvider: "test:" + payments, RenewEvery: 100 * time.Millisecond}, Deps{AdminToken: "adm", Keys: keys, Listener: ln})
	poll.Until(t, 10*time.Second, "leader", func() bool { return n.Raft().IsLeader() })
	if code, b := call(t, "PUT", n.url+"/v1/plans/basic", billingPlan, true); code != 200 {
		t.Fatalf("put plan: %d %s", code, b)
	}
	p, err := testprovider.New(testprovider.Config{Dir: payments})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	pm, err := p.AttachCard(ctx, "acct-1", billing.Card{Number: "4242424242424242"})
	if err != nil {
		t.Fatal(err)
	}
	due := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	sub := billing.Subscription{ID: "sub-1", Account: "acct-1", Plan: "basic", Period: "month", Status: billing.Active,
		CurrentPeriodStart: due.AddDate(0, -1, 0), CurrentPeriodEnd: due, Anchor: due.AddDate(0, -1, 0),
		PaymentMethod: pm, Created: due.AddDate(0, -1, 0), Version: 1}
	store := n.Billing().Store()
	if _, err := store.Commit(ctx, billing.Change{At: due, Subscriptions: []billing.Subscription{sub}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the renewal charged by the leader's task", func() bool {
		s, err := store.Subscription(ctx, "sub-1")
		return err == nil && s.CurrentPeriodStart.Equal(due)
	})
	if got := succeededCharges(t, payments); got != 1 {
		t.Fatalf("%d charges, want 1", got)
	}
	verifyBilling(t, n.url)
}
