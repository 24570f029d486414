package jsonappend

import (
	"encoding/json"
	"testing"
)

func TestString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"plain", "http://a:1/c/tok/t1/master.m3u8", `"http://a:1/c/tok/t1/master.m3u8"`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"short escapes", "a\nb\rc\td", `"a\nb\rc\td"`},
		{"other controls", "\x00\x1f", `"\u0000\u001f"`},
		{"utf-8 as is", "é\u2028", "\"é\u2028\""},
		{"html as is", "<a&b>", `"<a&b>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(String([]byte("x"), tt.in)); got != "x"+tt.want {
				t.Errorf("String(%q) = %s, want %s", tt.in, got[1:], tt.want)
			}
		})
	}
}

// FuzzString: whatever the input, the output is one JSON string that
// decodes to what encoding/json's encoding of the input decodes to.
func FuzzString(f *testing.F) {
	f.Add("plain")
	f.Add("q\"\\\n\r\t\x00\x7f\u2028é<>&")
	f.Add("\xff\xfe invalid utf-8 \xc3")
	f.Fuzz(func(t *testing.T, s string) {
		var got string
		if err := json.Unmarshal(String(nil, s), &got); err != nil {
			t.Fatalf("%q: %s is not a JSON string: %v", s, String(nil, s), err)
		}
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var want string
		if err := json.Unmarshal(enc, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%q decodes to %q, encoding/json's to %q", s, got, want)
		}
	})
}
