// Package decimal parses the unsigned decimal integers of the appliance's
// hot-path parsers (byte ranges, CMCD) from bytes, without allocating.
package decimal

// MaxDigits bounds a number so that it fits an int64.
const MaxDigits = 18

// ParseUint parses 1 to MaxDigits decimal digits, and nothing else.
func ParseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > MaxDigits {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
