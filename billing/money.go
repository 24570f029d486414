package billing

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/fillcast/fillcast/accounts"
)

// Money is the accounts package's amount: integer minor units with an
// ISO 4217 currency. Billing reuses it so a plan's price is an invoice's
// line without conversion.
type Money = accounts.Money

// Errors of the money helpers, wrapped with the amounts involved.
var (
	// ErrCurrency is a currency code that is not ISO 4217 alpha-3 upper
	// case, or two amounts in different currencies.
	ErrCurrency = errors.New("billing: currency")
	// ErrOverflow is a result that does not fit in int64 minor units.
	ErrOverflow = errors.New("billing: amount overflows")
)

// exponents holds the minor-unit exponents that differ from 2 among the
// currencies in common use (ISO 4217's table).
var exponents = map[string]int{
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0,
	"KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0,
	"XOF": 0, "XPF": 0,
}

// symbols are the currencies formatted with a leading symbol; any other
// is formatted with its code after the amount.
var symbols = map[string]string{"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}

// CheckCurrency returns an error unless code looks like an ISO 4217
// alpha-3 code: three upper-case ASCII letters. It does not insist on a
// code being in the current table, so a new currency needs no release.
func CheckCurrency(code string) error {
	if !accounts.ValidCurrency(code) {
		return fmt.Errorf("%w: %q is not an ISO 4217 code (three upper-case letters, like EUR)", ErrCurrency, code)
	}
	return nil
}

// Exponent returns how many decimal digits the currency's minor unit has:
// 0 for JPY, 3 for KWD, 2 for the rest (including codes it does not know).
func Exponent(currency string) int {
	if e, ok := exponents[currency]; ok {
		return e
	}
	return 2
}

// same returns an error unless a and b are in one valid currency.
func same(op string, a, b Money) error {
	if err := CheckCurrency(a.Currency); err != nil {
		return err
	}
	if a.Currency != b.Currency {
		return fmt.Errorf("%w: cannot %s %s and %s", ErrCurrency, op, a.Currency, b.Currency)
	}
	return nil
}

// Add returns a+b: an error for different currencies or on overflow.
func Add(a, b Money) (Money, error) {
	if err := same("add", a, b); err != nil {
		return Money{}, err
	}
	s, ok := addInt64(a.Amount, b.Amount)
	if !ok {
		return Money{}, fmt.Errorf("%w: %d + %d %s", ErrOverflow, a.Amount, b.Amount, a.Currency)
	}
	return Money{Amount: s, Currency: a.Currency}, nil
}

// Sub returns a-b: an error for different currencies or on overflow.
func Sub(a, b Money) (Money, error) {
	if err := same("subtract", a, b); err != nil {
		return Money{}, err
	}
	if b.Amount == math.MinInt64 {
		return Money{}, fmt.Errorf("%w: %d - %d %s", ErrOverflow, a.Amount, b.Amount, a.Currency)
	}
	s, ok := addInt64(a.Amount, -b.Amount)
	if !ok {
		return Money{}, fmt.Errorf("%w: %d - %d %s", ErrOverflow, a.Amount, b.Amount, a.Currency)
	}
	return Money{Amount: s, Currency: a.Currency}, nil
}

// Neg returns -a; an error for the one int64 that has no negation.
func Neg(a Money) (Money, error) {
	if a.Amount == math.MinInt64 {
		return Money{}, fmt.Errorf("%w: -(%d)", ErrOverflow, a.Amount)
	}
	return Money{Amount: -a.Amount, Currency: a.Currency}, nil
}

// Compare returns -1, 0 or +1 as a is less than, equal to or more than
// b; an error for different currencies.
func Compare(a, b Money) (int, error) {
	if err := same("compare", a, b); err != nil {
		return 0, err
	}
	switch {
	case a.Amount < b.Amount:
		return -1, nil
	case a.Amount > b.Amount:
		return 1, nil
	}
	return 0, nil
}

// Sum returns the total of ms in currency (zero of that currency for
// none): an error if any is in another currency or on overflow.
func Sum(currency string, ms ...Money) (Money, error) {
	if err := CheckCurrency(currency); err != nil {
		return Money{}, err
	}
	t := Money{Currency: currency}
	for _, m := range ms {
		var err error
		if t, err = Add(t, m); err != nil {
			return Money{}, err
		}
	}
	return t, nil
}

// addInt64 returns a+b and whether it did not overflow.
func addInt64(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// Format renders m for people: "€7.99", "-$0.05", "¥500", "7.990 KWD",
// "12.50 SEK" — a symbol before the amount for the few currencies with
// an unambiguous one, the code after it for the rest.
func Format(m Money) string {
	exp := Exponent(m.Currency)
	neg := m.Amount < 0
	// Work on the unsigned magnitude so MinInt64 formats too.
	mag := uint64(m.Amount)
	if neg {
		mag = -mag
	}
	digits := strconv.FormatUint(mag, 10)
	if exp > 0 {
		for len(digits) <= exp {
			digits = "0" + digits
		}
		digits = digits[:len(digits)-exp] + "." + digits[len(digits)-exp:]
	}
	sign := ""
	if neg {
		sign = "-"
	}
	if sym, ok := symbols[m.Currency]; ok {
		return sign + sym + digits
	}
	return sign + digits + " " + m.Currency
}

// Prorate returns the share of amount that used is of total:
// amount × used / total, computed exactly on nanoseconds (big.Int, no
// floats) and rounded to the minor unit half to even.
//
// Half to even (banker's rounding) because proration runs on every plan
// change of every account: rounding halves always up would bias the sum
// of all prorations upwards by half a minor unit per tie, half to even is
// unbiased, and it is symmetric for negative amounts. Proration credits
// the unused part of one plan and debits the same part of another; both
// use the same rule, so the same share of the same price gives the same
// number either way.
//
// used must be within [0, total] and total positive. For a non-negative
// amount the result is within [0, amount].
func Prorate(amount Money, used, total time.Duration) (Money, error) {
	if total <= 0 {
		return Money{}, fmt.Errorf("billing: prorate: period of %v is not positive", total)
	}
	if used < 0 || used > total {
		return Money{}, fmt.Errorf("billing: prorate: %v used is outside the period of %v", used, total)
	}
	n := new(big.Int).Mul(big.NewInt(amount.Amount), big.NewInt(int64(used)))
	d := big.NewInt(int64(total))
	neg := n.Sign() < 0
	n.Abs(n)
	q, r := new(big.Int).QuoRem(n, d, new(big.Int))
	switch c := r.Lsh(r, 1).Cmp(d); {
	case c > 0, c == 0 && q.Bit(0) == 1:
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	// |result| ≤ |amount|, so it fits in int64.
	return Money{Amount: q.Int64(), Currency: amount.Currency}, nil
}
