package testprovider

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// luhnOK is an independent statement of the rule parseCard implements:
// 13 to 19 digits whose Luhn sum, doubling every second digit from the
// right, is a multiple of 10.
func luhnOK(s string) bool {
	if len(s) < 13 || len(s) > 19 {
		return false
	}
	doubled := [10]int{0, 2, 4, 6, 8, 1, 3, 5, 7, 9}
	sum := 0
	for i := range len(s) {
		c := s[len(s)-1-i]
		if !strings.ContainsRune("0123456789", rune(c)) {
			return false
		}
		if i%2 == 1 {
			sum += doubled[c-'0']
		} else {
			sum += int(c - '0')
		}
	}
	return sum%10 == 0
}

func FuzzCardNumber(f *testing.F) {
	for _, s := range []string{"4242424242424242", "4000000000000002", "4000000000000341", "378282246310005",
		"5555555555554444", "4242424242424241", "4242 4242 4242 4242", "", "0000000000000", "1234567890123456789",
		"٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", "42424242424242424242"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := parseCard(s)
		if want := luhnOK(s); (err == nil) != want {
			t.Fatalf("parseCard(%q): got error %v, want valid=%v", s, err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidCard) {
				t.Fatalf("parseCard(%q): got error %v, want it to wrap ErrInvalidCard", s, err)
			}
			if len(s) >= 4 && strings.Contains(err.Error(), s) {
				t.Fatalf("parseCard(%q): error %q repeats the input", s, err)
			}
			return
		}
		if info.last4 != s[len(s)-4:] || info.brand == "" {
			t.Fatalf("parseCard(%q): got %+v", s, info)
		}
	})
}

// FuzzReplay checks applyLines on any log, whole and in two pieces split
// anywhere, as a provider catching up with other providers' appends reads
// it.
func FuzzReplay(f *testing.F) {
	f.Add([]byte(`{"kind":"payment_method","payment_method":{"id":"pm_1","customer":"a","brand":"visa","last4":"4242","behavior":"succeeds"}}`+"\n"+
		`{"kind":"charge","charge":{"id":"ch_1","idempotency_key":"k","request_hash":"h","customer":"a","payment_method":"pm_1","amount":799,"currency":"EUR","status":"succeeded","created":"2026-03-14T15:09:26Z"}}`+"\n"), uint16(130))
	f.Add([]byte(`{"kind":"charge","charge":{"id":"ch_1","idem`), uint16(5))
	f.Add([]byte("\n\n"), uint16(1))
	f.Add([]byte(`{"kind":"charge","charge":null}`+"\n"), uint16(0))
	f.Add([]byte{0, 0, 0}, uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		st := newState()
		good, err := st.applyLines(data)
		if good < 0 || good > len(data) || (good > 0 && data[good-1] != '\n') {
			t.Fatalf("applyLines: good=%d of %d bytes does not end a line", good, len(data))
		}
		if err != nil {
			if bytes.IndexByte(data[good:], '\n') < 0 {
				t.Fatalf("applyLines: error %v, but no whole line is left after byte %d", err, good)
			}
			return
		}
		if good < len(data) && bytes.IndexByte(data[good:], '\n') >= 0 {
			t.Fatalf("applyLines: good=%d of %d bytes, and only an unterminated tail may be left out", good, len(data))
		}
		for k, c := range st.charges {
			if k != c.IdempotencyKey || c.ID == "" {
				t.Fatalf("applyLines: charge %+v under key %q", c, k)
			}
		}
		// Read in two pieces, the second starting where the first's whole
		// lines end, the log replays to the same state.
		cut := int(split) % (len(data) + 1)
		st2 := newState()
		n1, err1 := st2.applyLines(data[:cut])
		n2, err2 := st2.applyLines(data[n1:])
		if err1 != nil || err2 != nil || n1+n2 != good || st2.lines != st.lines ||
			len(st2.charges) != len(st.charges) || len(st2.methods) != len(st.methods) {
			t.Fatalf("applyLines in pieces cut at %d: got %d+%d bytes, %d lines, %v, %v; want %d bytes, %d lines",
				cut, n1, n2, st2.lines, err1, err2, good, st.lines)
		}
	})
}
