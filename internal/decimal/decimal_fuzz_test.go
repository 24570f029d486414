package decimal

import (
	"strconv"
	"testing"
)

// FuzzParseUint: ParseUint takes exactly the strings of 1 to MaxDigits
// ASCII digits, and reads them as strconv does; never a negative number.
func FuzzParseUint(f *testing.F) {
	for _, s := range []string{"0", "007", "123456789012345678", "999999999999999999", "1234567890123456789", "", "-1", "+1", " 1", "1_000", "١٢", "0x1f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := ParseUint(b)
		digits := len(b) >= 1 && len(b) <= MaxDigits
		for _, c := range b {
			digits = digits && c >= '0' && c <= '9'
		}
		if ok != digits {
			t.Fatalf("ParseUint(%q) ok = %v, want %v", b, ok, digits)
		}
		if !ok {
			if n != 0 {
				t.Fatalf("ParseUint(%q) = %d with ok false", b, n)
			}
			return
		}
		if want, err := strconv.ParseInt(string(b), 10, 64); err != nil || n != want || n < 0 {
			t.Fatalf("ParseUint(%q) = %d, strconv reads %d, %v", b, n, want, err)
		}
	})
}
