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
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/testprovider"
)

var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func open(t *testing.T, dir string) *testprovider.Provider {
	t.Helper()
	p, err := testprovider.New(testprovider.Config{Dir: dir, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func attach(t *testing.T, p *testprovider.Provider, customer, number string) billing.PaymentMethod {
	t.Helper()
	pm, err := p.AttachCard(context.Background(), customer, billing.Card{Number: number})
	if err != nil {
		t.Fatalf("AttachCard(%s): %v", number, err)
	}
	return pm
}

func request(key, customer, pm string) billing.ChargeRequest {
	return billing.ChargeRequest{
		IdempotencyKey: key, Customer: customer, PaymentMethod: pm,
		Description: "Premium, March 2026", Amount: accounts.Money{Amount: 799, Currency: "EUR"},
	}
}

// logLines returns the log's lines of the given kind.
func logLines(t *testing.T, dir, kind string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, testprovider.LogName))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, `"kind":"`+kind+`"`) {
			out = append(out, l)
		}
	}
	return out
}

func TestNewValidates(t *testing.T) {
	if _, err := testprovider.New(testprovider.Config{}); err == nil {
		t.Fatal("New with no Dir: got nil error, want one")
	}
}

func TestAttachCard(t *testing.T) {
	tests := []struct {
		name      string
		number    string
		wantErr   error
		wantText  string
		wantBrand string
		wantLast4 string
	}{
		{name: "succeeds", number: "4242424242424242", wantBrand: "visa", wantLast4: "4242"},
		{name: "charges declined later", number: "4000000000000341", wantBrand: "visa", wantLast4: "0341"},
		{name: "declined", number: "4000000000000002", wantErr: billing.ErrDeclined, wantText: "your card was declined"},
		{name: "other visa", number: "4111111111111111", wantErr: billing.ErrDeclined, wantText: "card not supported in test mode"},
		{name: "mastercard", number: "5555555555554444", wantErr: billing.ErrDeclined, wantText: "card not supported in test mode"},
		{name: "amex", number: "378282246310005", wantErr: billing.ErrDeclined, wantText: "card not supported in test mode"},
		{name: "failed luhn", number: "4242424242424241", wantErr: testprovider.ErrInvalidCard, wantText: "check digit"},
		{name: "spaces", number: "4242 4242 4242 4242", wantErr: testprovider.ErrInvalidCard, wantText: "only digits"},
		{name: "letters", number: "424242424242424x", wantErr: testprovider.ErrInvalidCard, wantText: "only digits"},
		{name: "empty", number: "", wantErr: testprovider.ErrInvalidCard, wantText: "13 to 19 digits"},
		{name: "too short", number: "424242424242", wantErr: testprovider.ErrInvalidCard, wantText: "13 to 19 digits"},
		{name: "too long", number: "42424242424242424242", wantErr: testprovider.ErrInvalidCard, wantText: "13 to 19 digits"},
	}
	dir := t.TempDir()
	p := open(t, dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pm, err := p.AttachCard(context.Background(), "acct_1", billing.Card{Number: tt.number})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("AttachCard: got error %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("AttachCard: got error %q, want it to say %q", err, tt.wantText)
				}
				if tt.number != "" && strings.Contains(err.Error(), tt.number) {
					t.Errorf("AttachCard: error %q contains the card number", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("AttachCard: %v", err)
			}
			if !strings.HasPrefix(pm.ID, "pm_") || pm.Customer != "acct_1" || pm.Brand != tt.wantBrand || pm.Last4 != tt.wantLast4 {
				t.Errorf("AttachCard: got %+v, want pm_… for acct_1, %s, %s", pm, tt.wantBrand, tt.wantLast4)
			}
		})
	}
	data, err := os.ReadFile(filepath.Join(dir, testprovider.LogName))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if len(tt.number) >= 13 && bytes.Contains(data, []byte(tt.number)) {
			t.Errorf("log contains card number %s", tt.number)
		}
	}
}

func TestChargeByCard(t *testing.T) {
	tests := []struct {
		name       string
		number     string
		wantStatus billing.ChargeStatus
		wantReason string
	}{
		{name: "succeeds", number: "4242424242424242", wantStatus: billing.ChargeSucceeded},
		// A decline is an answer, not an error (billing.PaymentProvider).
		{name: "declines charges", number: "4000000000000341", wantStatus: billing.ChargeDeclined, wantReason: "your card was declined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := open(t, t.TempDir())
			pm := attach(t, p, "acct_1", tt.number)
			r := request("renewal-1", "acct_1", pm.ID)
			got, err := p.Charge(context.Background(), r)
			if err != nil {
				t.Fatalf("Charge: %v", err)
			}
			want := billing.Charge{ID: got.ID, IdempotencyKey: "renewal-1", Customer: "acct_1", PaymentMethod: pm.ID,
				Amount: r.Amount, Status: tt.wantStatus, DeclineReason: tt.wantReason, Created: testNow}
			if got != want || !strings.HasPrefix(got.ID, "ch_") || len(got.ID) != len("ch_")+24 {
				t.Errorf("Charge: got %+v, want %+v", got, want)
			}
			// A retry gives the same answer, decline included, and records nothing.
			again, err2 := p.Charge(context.Background(), r)
			if again != got || err2 != nil {
				t.Errorf("retry: got %+v, %v, want %+v, nil", again, err2, got)
			}
			looked, ok, err := p.LookupCharge(context.Background(), "renewal-1")
			if err != nil || !ok || looked != got {
				t.Errorf("LookupCharge: got %+v, %v, %v, want %+v, true, nil", looked, ok, err, got)
			}
		})
	}
}

func TestChargeRefused(t *testing.T) {
	p := open(t, t.TempDir())
	pm := attach(t, p, "acct_1", "4242424242424242")
	other := attach(t, p, "acct_2", "4242424242424242")
	tests := []struct {
		name    string
		edit    func(*billing.ChargeRequest)
		wantErr error
		want    string
	}{
		{name: "zero amount", edit: func(r *billing.ChargeRequest) { r.Amount.Amount = 0 }, want: "more than 0"},
		{name: "negative amount", edit: func(r *billing.ChargeRequest) { r.Amount.Amount = -5 }, want: "more than 0"},
		{name: "bad currency", edit: func(r *billing.ChargeRequest) { r.Amount.Currency = "eur" }, want: "ISO 4217"},
		{name: "no key", edit: func(r *billing.ChargeRequest) { r.IdempotencyKey = "" }, want: "idempotency key is empty"},
		{name: "long key", edit: func(r *billing.ChargeRequest) { r.IdempotencyKey = strings.Repeat("k", 256) }, want: "more than 255"},
		{name: "unknown method", edit: func(r *billing.ChargeRequest) { r.PaymentMethod = "pm_nope" }, wantErr: testprovider.ErrUnknownPaymentMethod},
		{name: "another customer's method", edit: func(r *billing.ChargeRequest) { r.PaymentMethod = other.ID }, wantErr: testprovider.ErrUnknownPaymentMethod},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(fmt.Sprintf("key-%d", i), "acct_1", pm.ID)
			tt.edit(&r)
			_, err := p.Charge(context.Background(), r)
			if err == nil || errors.Is(err, billing.ErrDeclined) {
				t.Fatalf("Charge: got error %v, want a refusal", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Charge: got error %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Charge: got error %q, want it to say %q", err, tt.want)
			}
			if _, ok, _ := p.LookupCharge(context.Background(), r.IdempotencyKey); ok {
				t.Errorf("LookupCharge found a refused charge")
			}
		})
	}
}

func TestChargeConcurrentRetries(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir)
	pm := attach(t, p, "acct_1", "4242424242424242")
	r := request("renewal-1", "acct_1", pm.ID)
	const n = 100
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.Charge(context.Background(), r)
			ids[i], errs[i] = c.ID, err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("charge %d: got %q, %v, want %q, nil", i, ids[i], errs[i], ids[0])
		}
	}
	if got := len(logLines(t, dir, "charge")); got != 1 {
		t.Errorf("charge records in the log: got %d, want 1", got)
	}
}

func TestChargeIdempotencyMismatch(t *testing.T) {
	p := open(t, t.TempDir())
	pm := attach(t, p, "acct_1", "4242424242424242")
	pm2 := attach(t, p, "acct_1", "4242424242424242")
	attach(t, p, "acct_2", "4242424242424242")
	first := request("renewal-1", "acct_1", pm.ID)
	if _, err := p.Charge(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*billing.ChargeRequest)
	}{
		{"customer", func(r *billing.ChargeRequest) { r.Customer = "acct_2" }},
		{"payment method", func(r *billing.ChargeRequest) { r.PaymentMethod = pm2.ID }},
		{"amount", func(r *billing.ChargeRequest) { r.Amount.Amount++ }},
		{"currency", func(r *billing.ChargeRequest) { r.Amount.Currency = "USD" }},
		{"description", func(r *billing.ChargeRequest) { r.Description += "!" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := first
			tt.edit(&r)
			if _, err := p.Charge(context.Background(), r); !errors.Is(err, billing.ErrIdempotencyMismatch) {
				t.Errorf("Charge: got error %v, want %v", err, billing.ErrIdempotencyMismatch)
			}
		})
	}
}

func TestLookupChargeAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir)
	pm := attach(t, p, "acct_1", "4242424242424242")
	r := request("renewal-1", "acct_1", pm.ID)
	if _, ok, err := p.LookupCharge(context.Background(), "renewal-1"); ok || err != nil {
		t.Fatalf("LookupCharge before charging: got %v, %v, want false, nil", ok, err)
	}
	c, err := p.Charge(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := p.LookupCharge(context.Background(), "renewal-1"); !errors.Is(err, testprovider.ErrClosed) {
		t.Errorf("LookupCharge after Close: got %v, want %v", err, testprovider.ErrClosed)
	}

	p2 := open(t, dir)
	got, ok, err := p2.LookupCharge(context.Background(), "renewal-1")
	if err != nil || !ok || got != c {
		t.Fatalf("LookupCharge after reopen: got %+v, %v, %v, want %+v, true, nil", got, ok, err, c)
	}
	// The reopened provider knows the payment method and the key.
	if again, err := p2.Charge(context.Background(), r); err != nil || again != c {
		t.Errorf("retry after reopen: got %+v, %v, want %+v, nil", again, err, c)
	}
	other := r
	other.Amount.Amount = 1
	if _, err := p2.Charge(context.Background(), other); !errors.Is(err, billing.ErrIdempotencyMismatch) {
		t.Errorf("other request after reopen: got %v, want %v", err, billing.ErrIdempotencyMismatch)
	}
	if _, err := p2.Charge(context.Background(), request("renewal-2", "acct_1", pm.ID)); err != nil {
		t.Errorf("new charge after reopen: %v", err)
	}
	if got := len(logLines(t, dir, "charge")); got != 2 {
		t.Errorf("charge records: got %d, want 2", got)
	}
}

func TestLazyOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	p, err := testprovider.New(testprovider.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New touched the disk: Stat(%s) = %v", dir, err)
	}
	if _, err := p.AttachCard(context.Background(), "acct_1", billing.Card{Number: "4242424242424242"}); err != nil {
		t.Fatalf("AttachCard without Open: %v", err)
	}
}

func TestTornLastLine(t *testing.T) {
	tests := []struct {
		name string
		torn string
	}{
		{"half a record", `{"kind":"charge","charge":{"id":"ch_00`},
		{"whole record without newline", `{"kind":"charge","charge":{"id":"ch_1","idempotency_key":"renewal-2"}}`},
		{"zeros", "\x00\x00\x00\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, testprovider.LogName)
			p := open(t, dir)
			pm := attach(t, p, "acct_1", "4242424242424242")
			c, err := p.Charge(context.Background(), request("renewal-1", "acct_1", pm.ID))
			if err != nil {
				t.Fatal(err)
			}
			p.Close()
			whole, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, append(whole, tt.torn...), 0o600); err != nil {
				t.Fatal(err)
			}

			p2 := open(t, dir)
			if got, ok, err := p2.LookupCharge(context.Background(), "renewal-1"); err != nil || !ok || got != c {
				t.Errorf("LookupCharge: got %+v, %v, %v, want %+v, true, nil", got, ok, err, c)
			}
			if _, ok, _ := p2.LookupCharge(context.Background(), "renewal-2"); ok {
				t.Errorf("LookupCharge found the torn record")
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, whole) {
				t.Errorf("log after reopen: got %q, want the torn line truncated: %q", after, whole)
			}
			// Appending after the truncation leaves a log that replays.
			c2, err := p2.Charge(context.Background(), request("renewal-2", "acct_1", pm.ID))
			if err != nil {
				t.Fatal(err)
			}
			p2.Close()
			p3 := open(t, dir)
			if got, ok, err := p3.LookupCharge(context.Background(), "renewal-2"); err != nil || !ok || got != c2 {
				t.Errorf("LookupCharge renewal-2: got %+v, %v, %v, want %+v, true, nil", got, ok, err, c2)
			}
		})
	}
}

func TestCorruptLogRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, testprovider.LogName), []byte("not json\n{\"kind\":\"charge\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := testprovider.New(testprovider.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("Open of a corrupt log: got %v, want an error naming line 1", err)
	}
}
