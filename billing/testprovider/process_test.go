package testprovider_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/testprovider"
)

// Tests that re-execute the test binary as a child process: the crash of a
// provider's process, and providers of two processes on one directory.

// TestCrash SIGKILLs a process right after its Charge returned, without
// Close, and checks that a provider opened before the child ran, and a new
// one, both find the charge and the payment method.
func TestCrash(t *testing.T) {
	if dir := os.Getenv("TESTPROVIDER_CRASH_DIR"); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	early := open(t, dir)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
	cmd.Env = append(os.Environ(), "TESTPROVIDER_CRASH_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pmID, chargeID string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "charged %s %s", &pmID, &chargeID); err == nil {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()
	if chargeID == "" {
		t.Fatal("the child never reported its charge")
	}

	for _, p := range []*testprovider.Provider{early, open(t, dir)} {
		got, ok, err := p.LookupCharge(context.Background(), "renewal-1")
		if err != nil || !ok || got.ID != chargeID || got.Status != billing.ChargeSucceeded {
			t.Fatalf("LookupCharge after SIGKILL: got %+v, %v, %v, want %s succeeded", got, ok, err, chargeID)
		}
		if again, err := p.Charge(context.Background(), request("renewal-1", "acct_1", pmID)); err != nil || again.ID != chargeID {
			t.Errorf("retry after SIGKILL: got %+v, %v, want %s", again, err, chargeID)
		}
	}
}

func crashChild(dir string) {
	p, err := testprovider.New(testprovider.Config{Dir: dir})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	pm, err := p.AttachCard(ctx, "acct_1", billing.Card{Number: "4242424242424242"})
	if err != nil {
		panic(err)
	}
	c, err := p.Charge(ctx, request("renewal-1", "acct_1", pm.ID))
	if err != nil {
		panic(err)
	}
	fmt.Printf("charged %s %s\n", pm.ID, c.ID)
	select {} // wait for the SIGKILL
}

// Keys charged by each process of TestProcessesShareDir: ownKeys of its
// own, and sharedKeys that both charge with the same request.
const (
	ownKeys    = 50
	sharedKeys = 20
)

// TestProcessesShareDir has this process and a child charge on one
// directory at the same time: 50 keys each of their own, which must make
// 100 charges, and 20 keys both charge, which must make 20. Each sees the
// other's payment methods and charges, and the idempotency of keys holds
// across the two.
func TestProcessesShareDir(t *testing.T) {
	if dir := os.Getenv("TESTPROVIDER_SHARED_DIR"); dir != "" {
		sharedChild(t, dir, os.Getenv("TESTPROVIDER_SHARED_PM"))
		return
	}
	ctx := context.Background()
	dir := t.TempDir()
	p := open(t, dir)
	pm := attach(t, p, "acct_1", "4242424242424242")

	cmd := exec.Command(os.Args[0], "-test.run=^TestProcessesShareDir$")
	cmd.Env = append(os.Environ(), "TESTPROVIDER_SHARED_DIR="+dir, "TESTPROVIDER_SHARED_PM="+pm.ID)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var childPM string
	for childPM == "" && sc.Scan() {
		fmt.Sscanf(sc.Text(), "ready %s", &childPM)
	}
	if childPM == "" {
		cmd.Wait()
		t.Fatal("the child never reported it was ready")
	}
	// Both processes charge from here.
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	mine := chargeKeys(ctx, p, "parent", pm.ID)
	childs := map[string]string{}
	for sc.Scan() {
		var key, id string
		if _, err := fmt.Sscanf(sc.Text(), "charged %s %s", &key, &id); err == nil {
			childs[key] = id
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	for key, got := range mine {
		if strings.HasPrefix(got, "error") {
			t.Errorf("parent's charge %s: %s", key, got)
		}
	}

	if got, want := len(childs), ownKeys+sharedKeys; got != want {
		t.Fatalf("charges the child reported: got %d, want %d", got, want)
	}
	for i := range sharedKeys {
		key := fmt.Sprintf("shared-%d", i)
		if mine[key] != childs[key] {
			t.Errorf("charge %s: parent got %s, child got %s, want one charge", key, mine[key], childs[key])
		}
	}
	// The parent's provider, open all along, sees the child's charges.
	for key, id := range childs {
		if got, ok, err := p.LookupCharge(ctx, key); err != nil || !ok || got.ID != id {
			t.Errorf("LookupCharge(%s): got %+v, %v, %v, want %s", key, got, ok, err, id)
		}
	}
	if got, want := len(logLines(t, dir, "charge")), 2*ownKeys+sharedKeys; got != want {
		t.Errorf("charge records in the log: got %d, want %d", got, want)
	}
	// A retry of the child's charge answers the child's; another request
	// with its key is refused.
	r := request("child-0", "acct_1", pm.ID)
	if got, err := p.Charge(ctx, r); err != nil || got.ID != childs["child-0"] {
		t.Errorf("retry of the child's charge: got %+v, %v, want %s", got, err, childs["child-0"])
	}
	r.Amount.Amount++
	if _, err := p.Charge(ctx, r); !errors.Is(err, billing.ErrIdempotencyMismatch) {
		t.Errorf("the child's key with another amount: got %v, want %v", err, billing.ErrIdempotencyMismatch)
	}
	// The child's payment method is known here.
	if _, err := p.Charge(ctx, request("parent-extra", "acct_2", childPM)); err != nil {
		t.Errorf("charge on the child's payment method: %v", err)
	}
	// And a new provider replays it all.
	if got, ok, err := open(t, dir).LookupCharge(ctx, "child-1"); err != nil || !ok || got.ID != childs["child-1"] {
		t.Errorf("LookupCharge(child-1) after reopen: got %+v, %v, %v, want %s", got, ok, err, childs["child-1"])
	}
}

// sharedChild is the child of TestProcessesShareDir. It attaches a card of
// its own and reports it, waits for the parent's go, charges and reports
// each charge's key and id.
func sharedChild(t *testing.T, dir, pmID string) {
	ctx := context.Background()
	p := open(t, dir)
	mine := attach(t, p, "acct_2", "4242424242424242")
	fmt.Printf("ready %s\n", mine.ID)
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	for key, id := range chargeKeys(ctx, p, "child", pmID) {
		if strings.HasPrefix(id, "error") {
			t.Errorf("child's charge %s: %s", key, id)
			continue
		}
		fmt.Printf("charged %s %s\n", key, id)
	}
}

// chargeKeys charges ownKeys keys prefix-0… and, at the same time from
// another goroutine, sharedKeys keys shared-0…, all with the same request
// but for the key, and returns each key's charge id, or "error: " and the
// error.
func chargeKeys(ctx context.Context, p *testprovider.Provider, prefix, pmID string) map[string]string {
	var mu sync.Mutex
	ids := map[string]string{}
	charge := func(key string) {
		c, err := p.Charge(ctx, request(key, "acct_1", pmID))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			ids[key] = "error: " + err.Error()
			return
		}
		ids[key] = c.ID
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range ownKeys {
			charge(fmt.Sprintf("%s-%d", prefix, i))
		}
	})
	wg.Go(func() {
		for i := range sharedKeys {
			charge(fmt.Sprintf("shared-%d", i))
		}
	})
	wg.Wait()
	return ids
}
