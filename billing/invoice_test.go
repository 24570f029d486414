package billing

import (
	"errors"
	"testing"
)

func TestInvoiceLifecycle(t *testing.T) {
	at := date(2026, 12, 31)
	lines := []Line{PlanLine(basic, at, NextPeriodEnd(at, PeriodMonth))}
	var n Numberer
	inv := must(NewInvoice("i1", "a1", "s1", "k1", lines, at))
	if inv.Status != Draft || inv.Number != "" || inv.Total != eur(799) {
		t.Fatalf("draft: %+v", inv)
	}
	if _, err := Pay(inv, at); !errors.Is(err, ErrIllegal) {
		t.Errorf("pay draft: %v", err)
	}
	if got := n.Peek(at); got != "2026-000001" {
		t.Errorf("Peek = %q", got)
	}
	o := must(n.Finalize(inv, at))
	if o.Status != Open || o.Number != "2026-000001" {
		t.Fatalf("open: %+v", o)
	}
	if _, err := n.Finalize(o, at); !errors.Is(err, ErrIllegal) || n.Last[2026] != 1 {
		t.Errorf("refinalize: %v, last %d (a failed finalize must take no number)", err, n.Last[2026])
	}
	o2 := must(n.Finalize(inv, at))
	o3 := must(n.Finalize(inv, date(2027, 1, 1)))
	if o2.Number != "2026-000002" || o3.Number != "2027-000001" {
		t.Errorf("numbers %q, %q", o2.Number, o3.Number)
	}
	tests := []struct {
		name string
		to   func(Invoice) (Invoice, error)
		want InvoiceStatus
	}{
		{"pay", func(i Invoice) (Invoice, error) { return Pay(i, at) }, Paid},
		{"void", VoidInvoice, Void},
		{"uncollectible", MarkUncollectible, Uncollectible},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := must(tt.to(o))
			if got.Status != tt.want {
				t.Fatalf("got %s; want %s", got.Status, tt.want)
			}
			for _, again := range tests {
				if _, err := again.to(got); !errors.Is(err, ErrIllegal) {
					t.Errorf("%s after %s: got %v, want ErrIllegal", again.name, tt.name, err)
				}
			}
		})
	}
}

func TestNewInvoiceRefuses(t *testing.T) {
	for name, lines := range map[string][]Line{
		"none":      nil,
		"mixed":     {{Kind: LinePlan, Amount: eur(1)}, {Kind: LinePlan, Amount: Money{Amount: 1, Currency: "USD"}}},
		"negative":  {{Kind: LineProrationCredit, Amount: eur(-1)}},
		"bad kind":  {{Kind: "tip", Amount: eur(1)}},
		"bad money": {{Kind: LinePlan, Amount: Money{Amount: 1, Currency: "euro"}}},
	} {
		if _, err := NewInvoice("i", "a", "s", "k", lines, date(2026, 1, 1)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNumber(t *testing.T) {
	tests := []struct {
		year int
		seq  uint64
		want string
	}{{2026, 123, "2026-000123"}, {2026, 1, "2026-000001"}, {2026, 1234567, "2026-1234567"}}
	for _, tt := range tests {
		if got := Number(tt.year, tt.seq); got != tt.want {
			t.Errorf("Number(%d, %d) = %q; want %q", tt.year, tt.seq, got, tt.want)
		}
		if y, s, err := ParseNumber(tt.want); err != nil || y != tt.year || s != tt.seq {
			t.Errorf("ParseNumber(%q) = %d, %d, %v", tt.want, y, s, err)
		}
	}
	for _, bad := range []string{"", "2026", "2026-", "2026-00012", "2026-0000123", "26-000123", "2026-000000", "0000-000001", "2026-00012x", "2026+000123", "-2026-000123", "2026-99999999999999999999"} {
		if _, _, err := ParseNumber(bad); err == nil {
			t.Errorf("ParseNumber(%q) accepted", bad)
		}
	}
}
