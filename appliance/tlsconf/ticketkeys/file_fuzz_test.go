package ticketkeys

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, what it accepts holds at least one key
// and reads back the same after Format, and an error never quotes the
// input (a key file's lines are secrets).
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodKey))
	f.Add([]byte("# c\n\n" + goodKey + "2026-12-07T09:00:00+01:00 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"))
	f.Add([]byte("2026-12-07T08:00:00Z 0011\n"))
	f.Add([]byte("2026-12-07T08:00:00Z  " + strings.Repeat("ab", 32) + " x\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := Parse(b)
		if err != nil {
			if len(b) >= 16 && strings.Contains(err.Error(), string(b)) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no error and no key")
		}
		again, err := Parse(Format(keys))
		if err != nil {
			t.Fatalf("Parse(Format(keys)): %v", err)
		}
		if len(again) != len(keys) {
			t.Fatalf("%d keys read back, want %d", len(again), len(keys))
		}
		for i := range keys {
			if !again[i].Created.Equal(keys[i].Created.Truncate(1e9)) || !bytes.Equal(again[i].Secret[:], keys[i].Secret[:]) {
				t.Fatalf("key %d differs after Format", i)
			}
		}
	})
}
