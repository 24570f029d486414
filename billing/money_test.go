package billing

import (
	"errors"
	"math"
	"testing"
	"time"
)

func eur(n int64) Money { return Money{Amount: n, Currency: "EUR"} }

func TestArithmetic(t *testing.T) {
	usd := Money{Amount: 1, Currency: "USD"}
	tests := []struct {
		name    string
		op      func(a, b Money) (Money, error)
		a, b    Money
		want    Money
		wantErr error
	}{
		{"add", Add, eur(799), eur(201), eur(1000), nil},
		{"add negative", Add, eur(-5), eur(3), eur(-2), nil},
		{"add currencies", Add, eur(1), usd, Money{}, ErrCurrency},
		{"add bad currency", Add, Money{Amount: 1, Currency: "eur"}, Money{Amount: 1, Currency: "eur"}, Money{}, ErrCurrency},
		{"add overflow", Add, eur(math.MaxInt64), eur(1), Money{}, ErrOverflow},
		{"add underflow", Add, eur(math.MinInt64), eur(-1), Money{}, ErrOverflow},
		{"sub", Sub, eur(1000), eur(201), eur(799), nil},
		{"sub min", Sub, eur(0), eur(math.MinInt64), Money{}, ErrOverflow},
		{"sub overflow", Sub, eur(math.MaxInt64), eur(-1), Money{}, ErrOverflow},
		{"sub currencies", Sub, usd, eur(1), Money{}, ErrCurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.op(tt.a, tt.b)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("got %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCompareSumNeg(t *testing.T) {
	for _, tt := range []struct {
		a, b Money
		want int
	}{{eur(1), eur(2), -1}, {eur(2), eur(2), 0}, {eur(3), eur(2), 1}} {
		if got, err := Compare(tt.a, tt.b); err != nil || got != tt.want {
			t.Errorf("Compare(%v, %v) = %d, %v; want %d", tt.a, tt.b, got, err, tt.want)
		}
	}
	if _, err := Compare(eur(1), Money{Amount: 1, Currency: "USD"}); !errors.Is(err, ErrCurrency) {
		t.Errorf("Compare across currencies: got %v, want ErrCurrency", err)
	}
	if got, err := Sum("EUR", eur(1), eur(2), eur(3)); err != nil || got != eur(6) {
		t.Errorf("Sum = %v, %v; want 6 EUR", got, err)
	}
	if got, err := Sum("EUR"); err != nil || got != eur(0) {
		t.Errorf("Sum() = %v, %v; want 0 EUR", got, err)
	}
	if _, err := Sum("EUR", eur(1), Money{Amount: 1, Currency: "GBP"}); !errors.Is(err, ErrCurrency) {
		t.Errorf("Sum mixed: got %v, want ErrCurrency", err)
	}
	if _, err := Neg(eur(math.MinInt64)); !errors.Is(err, ErrOverflow) {
		t.Errorf("Neg(MinInt64): got %v, want ErrOverflow", err)
	}
}

func TestCheckCurrency(t *testing.T) {
	for _, tt := range []struct {
		code string
		ok   bool
	}{{"EUR", true}, {"XYZ", true}, {"eur", false}, {"EU", false}, {"EURO", false}, {"", false}, {"E1R", false}, {"ÉUR", false}} {
		if err := CheckCurrency(tt.code); (err == nil) != tt.ok {
			t.Errorf("CheckCurrency(%q) = %v; want ok %v", tt.code, err, tt.ok)
		}
	}
	for code, want := range map[string]int{"EUR": 2, "JPY": 0, "KWD": 3, "SEK": 2, "ZZZ": 2} {
		if got := Exponent(code); got != want {
			t.Errorf("Exponent(%s) = %d; want %d", code, got, want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		m    Money
		want string
	}{
		{eur(799), "€7.99"},
		{eur(5), "€0.05"},
		{eur(-5), "-€0.05"},
		{eur(0), "€0.00"},
		{Money{Amount: 1250, Currency: "SEK"}, "12.50 SEK"},
		{Money{Amount: 500, Currency: "JPY"}, "¥500"},
		{Money{Amount: 7990, Currency: "KWD"}, "7.990 KWD"},
		{Money{Amount: 1999, Currency: "USD"}, "$19.99"},
		{eur(math.MinInt64), "-€92233720368547758.08"},
	} {
		if got := Format(tt.m); got != tt.want {
			t.Errorf("Format(%v) = %q; want %q", tt.m, got, tt.want)
		}
	}
}

func TestProrate(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name        string
		amount      Money
		used, total time.Duration
		want        int64
		wantErr     bool
	}{
		{"half of 799", eur(799), 15 * day, 30 * day, 400, false}, // 399.5 → 400 (even)
		{"half of 797", eur(797), 15 * day, 30 * day, 398, false}, // 398.5 → 398 (even)
		{"half of 1", eur(1), day, 2 * day, 0, false},             // 0.5 → 0
		{"half of 3", eur(3), day, 2 * day, 2, false},             // 1.5 → 2
		{"third", eur(1000), 10 * day, 30 * day, 333, false},
		{"two thirds", eur(1000), 20 * day, 30 * day, 667, false},
		{"negative half", eur(-3), day, 2 * day, -2, false},
		{"none", eur(999), 0, 30 * day, 0, false},
		{"all", eur(999), 30 * day, 30 * day, 999, false},
		{"max amount", eur(math.MaxInt64), time.Duration(math.MaxInt64), time.Duration(math.MaxInt64), math.MaxInt64, false},
		{"zero period", eur(1), 0, 0, 0, true},
		{"negative used", eur(1), -1, day, 0, true},
		{"used beyond", eur(1), 2 * day, day, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Prorate(tt.amount, tt.used, tt.total)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v; want error %v", err, tt.wantErr)
			}
			if err == nil && (got.Amount != tt.want || got.Currency != tt.amount.Currency) {
				t.Errorf("got %v; want %d %s", got, tt.want, tt.amount.Currency)
			}
		})
	}
}
