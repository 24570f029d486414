package billing

import (
	"testing"
	"time"
)

func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"2026-000123", "2026-1234567", "0000-000000", "2026-0000001", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		y, seq, err := ParseNumber(s)
		if err != nil {
			return
		}
		if got := Number(y, seq); got != s {
			t.Errorf("ParseNumber(%q) = %d, %d; Number gives %q", s, y, seq, got)
		}
	})
}

func FuzzProrate(f *testing.F) {
	f.Add(int64(799), int64(15), int64(30))
	f.Add(int64(1<<62), int64(1<<62), int64(1<<62+1))
	f.Fuzz(func(t *testing.T, amount, used, total int64) {
		if amount < 0 {
			amount = -(amount + 1)
		}
		if total <= 0 || used < 0 || used > total {
			if _, err := Prorate(eur(amount), time.Duration(used), time.Duration(total)); err == nil {
				t.Fatalf("Prorate(%d, %d, %d) accepted", amount, used, total)
			}
			return
		}
		got, err := Prorate(eur(amount), time.Duration(used), time.Duration(total))
		if err != nil {
			t.Fatal(err)
		}
		if got.Amount < 0 || got.Amount > amount {
			t.Fatalf("Prorate(%d, %d, %d) = %d; outside [0, amount]", amount, used, total, got.Amount)
		}
		if neg, _ := Prorate(eur(-amount), time.Duration(used), time.Duration(total)); neg.Amount != -got.Amount {
			t.Fatalf("Prorate is not symmetric: %d vs %d", neg.Amount, got.Amount)
		}
	})
}

func FuzzNextPeriodEnd(f *testing.F) {
	f.Add(int64(1769855400), int64(1769855400), false) // 2026-01-31
	f.Add(int64(1835346600), int64(1835346600), true)  // 2028-02-29
	f.Fuzz(func(t *testing.T, start, anchor int64, yearly bool) {
		const span = 1 << 36 // about ±2,000 years around 1970
		start, anchor = start%span, anchor%span
		s, a := time.Unix(start, 0).UTC(), time.Unix(anchor, 0).UTC()
		period := PeriodMonth
		if yearly {
			period = PeriodYear
		}
		end := NextPeriodEnd(s, period)
		if !end.After(s) || end.Sub(s) > 366*24*time.Hour || end.Location() != time.UTC {
			t.Fatalf("NextPeriodEnd(%v, %s) = %v", s, period, end)
		}
		if !yearly && end.Sub(s) > 31*24*time.Hour {
			t.Fatalf("NextPeriodEnd(%v, month) = %v: more than a month", s, end)
		}
		// A renewal chain keeps the anchor's day when the month has it.
		next := AnchoredPeriodEnd(end, a, period)
		if !next.After(end) {
			t.Fatalf("AnchoredPeriodEnd(%v, %v, %s) = %v, not after", end, a, period, next)
		}
		if d := next.Day(); d != a.Day() && d != daysIn(next.Year(), next.Month()) {
			t.Fatalf("AnchoredPeriodEnd(%v, %v) = %v: lost the anchor day", end, a, next)
		}
	})
}
