package testprovider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/testprovider"
)

// TestProvidersShareDir has two providers of one process, as two nodes of
// the control plane, charge on one directory at the same time: with one
// key, which must make one charge, and with keys of their own. Each sees
// the other's payment methods and charges without reopening.
func TestProvidersShareDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ps := []*testprovider.Provider{open(t, dir), open(t, dir)}
	pm := attach(t, ps[0], "acct_1", "4242424242424242")
	r := request("renewal-1", "acct_1", pm.ID)

	const n = 40
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p := ps[i%2]
			c, err := p.Charge(ctx, r) // the key all share
			ids[i], errs[i] = c.ID, err
			if err == nil {
				_, err = p.Charge(ctx, request(fmt.Sprintf("own-%d", i), "acct_1", pm.ID))
			}
			if err != nil {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("goroutine %d: got %q, %v, want %q, nil", i, ids[i], errs[i], ids[0])
		}
	}
	if got, want := len(logLines(t, dir, "charge")), 1+n; got != want {
		t.Errorf("charge records in the log: got %d, want %d", got, want)
	}
	for i, p := range ps {
		if got, ok, err := p.LookupCharge(ctx, "renewal-1"); err != nil || !ok || got.ID != ids[0] {
			t.Errorf("provider %d: LookupCharge: got %+v, %v, %v, want %s", i, got, ok, err, ids[0])
		}
	}

	// The same key with another request is refused by the other provider.
	other := r
	other.Amount.Amount++
	if _, err := ps[1].Charge(ctx, other); !errors.Is(err, billing.ErrIdempotencyMismatch) {
		t.Errorf("other request on the other provider: got %v, want %v", err, billing.ErrIdempotencyMismatch)
	}
	// A card attached on one is charged on the other, and the charge,
	// declined, is found on the first.
	pm2 := attach(t, ps[1], "acct_2", "4000000000000341")
	c, err := ps[0].Charge(ctx, request("renewal-2", "acct_2", pm2.ID))
	if err != nil || c.Status != billing.ChargeDeclined {
		t.Fatalf("charge on the other provider's card: got %+v, %v, want declined", c, err)
	}
	if got, ok, err := ps[1].LookupCharge(ctx, "renewal-2"); err != nil || !ok || got != c {
		t.Errorf("LookupCharge on the other provider: got %+v, %v, %v, want %+v", got, ok, err, c)
	}

	// One closed leaves the other working.
	if err := ps[0].Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ps[1].Charge(ctx, request("renewal-3", "acct_1", pm.ID)); err != nil {
		t.Errorf("charge after the other provider closed: %v", err)
	}
}

// TestTornLineWhileShared appends a torn line, as a process killed
// mid-write leaves, while providers are open: a lookup ignores it, the next
// writer cuts it before appending, and the log replays.
func TestTornLineWhileShared(t *testing.T) {
	tests := []struct {
		name string
		torn string
	}{
		{"half a record", `{"kind":"charge","charge":{"id":"ch_00`},
		{"whole record without newline", `{"kind":"charge","charge":{"id":"ch_1","idempotency_key":"renewal-2","request_hash":"h"}}`},
		// Longer than the next record, which must not just overwrite it.
		{"long", `{"kind":"charge","charge":{"id":"ch_00` + strings.Repeat("0", 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			path := filepath.Join(dir, testprovider.LogName)
			reader, writer := open(t, dir), open(t, dir)
			pm := attach(t, writer, "acct_1", "4242424242424242")
			c1, err := writer.Charge(ctx, request("renewal-1", "acct_1", pm.ID))
			if err != nil {
				t.Fatal(err)
			}
			whole, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(tt.torn); err != nil {
				t.Fatal(err)
			}
			f.Close()

			if got, ok, err := reader.LookupCharge(ctx, "renewal-1"); err != nil || !ok || got != c1 {
				t.Errorf("LookupCharge(renewal-1): got %+v, %v, %v, want %+v", got, ok, err, c1)
			}
			if _, ok, err := reader.LookupCharge(ctx, "renewal-2"); ok || err != nil {
				t.Errorf("LookupCharge(renewal-2) with a torn line: got %v, %v, want false, nil", ok, err)
			}
			c2, err := reader.Charge(ctx, request("renewal-2", "acct_1", pm.ID))
			if err != nil {
				t.Fatal(err)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(after, whole) || bytes.Count(after[len(whole):], []byte("\n")) != 1 || !bytes.HasSuffix(after, []byte("\n")) {
				t.Errorf("log after the next charge: got %q, want %q and one new line", after, whole)
			}
			for _, p := range []*testprovider.Provider{writer, open(t, dir)} {
				if got, ok, err := p.LookupCharge(ctx, "renewal-2"); err != nil || !ok || got != c2 {
					t.Errorf("LookupCharge(renewal-2): got %+v, %v, %v, want %+v", got, ok, err, c2)
				}
			}
		})
	}
}

// TestCatchUpLongLog has a provider catch up with a log written behind its
// back that is longer than it reads at a time, with a line longer than that
// too, and a new provider replay it.
func TestCatchUpLongLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	early := open(t, dir)
	const n = 3000
	long := strings.Repeat("c", 600<<10)
	var log bytes.Buffer
	fmt.Fprintf(&log, `{"kind":"payment_method","payment_method":{"id":"pm_1","customer":"acct_1","brand":"visa","last4":"4242","behavior":"succeeds"}}`+"\n")
	for i := range n {
		if i == n/2 {
			fmt.Fprintf(&log, `{"kind":"payment_method","payment_method":{"id":"pm_long","customer":"%s","brand":"visa","last4":"4242","behavior":"succeeds"}}`+"\n", long)
		}
		fmt.Fprintf(&log, `{"kind":"charge","charge":{"id":"ch_%d","idempotency_key":"k%d","request_hash":"h","customer":"acct_1","payment_method":"pm_1","amount":799,"currency":"EUR","status":"succeeded","created":"2026-03-14T15:09:26Z"}}`+"\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, testprovider.LogName), log.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*testprovider.Provider{early, open(t, dir)} {
		for _, i := range []int{0, n / 2, n - 1} {
			key := fmt.Sprintf("k%d", i)
			if got, ok, err := p.LookupCharge(ctx, key); err != nil || !ok || got.ID != fmt.Sprintf("ch_%d", i) {
				t.Errorf("LookupCharge(%s): got %+v, %v, %v, want ch_%d", key, got, ok, err, i)
			}
		}
		if _, err := p.Charge(ctx, request(fmt.Sprintf("long-%p", p), long, "pm_long")); err != nil {
			t.Errorf("charge on the long line's payment method: %.200s", err)
		}
	}
}
