package main

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"unicode"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	got, err := parseConfig(strings.NewReader("# a comment\n\nhttp 127.0.0.1:8080\n--id=a1\n\tsite\ts1 \nmem-bytes = 1GiB\nh3\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"http": "127.0.0.1:8080", "id": "a1", "site": "s1", "mem-bytes": "1GiB", "h3": ""}
	if !maps.Equal(got, want) {
		t.Errorf("parseConfig = %v, want %v", got, want)
	}
	if _, err := parseConfig(strings.NewReader("ok 1\n-- 2\n"), "f"); err == nil || !strings.Contains(err.Error(), "f:2") {
		t.Errorf("a line without a name: %v, want an error naming f:2", err)
	}
}

// FuzzParseConfig: whatever the file, the parser returns names without
// spaces, '=' or leading dashes and values without surrounding space, and
// writing what it returned back as "name = value" lines reads the same.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"http 1.2.3.4:80\n", "--id=a1\n# x\n", "a\tb c\n\n", "= x\n", "x=\n", "\xff \xfe\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseConfig(strings.NewReader(in), "f")
		if err != nil {
			return
		}
		var b strings.Builder
		for name, value := range got {
			if name == "" || name[0] == '-' || name[0] == '#' || strings.ContainsFunc(name, func(c rune) bool { return c == '=' || unicode.IsSpace(c) }) {
				t.Fatalf("name %q", name)
			}
			if value != strings.TrimSpace(value) {
				t.Fatalf("value %q of %s keeps its spaces", value, name)
			}
			fmt.Fprintf(&b, "%s = %s\n", name, value)
		}
		again, err := parseConfig(strings.NewReader(b.String()), "f")
		if err != nil || !maps.Equal(again, got) {
			t.Fatalf("%q read back as %v (%v), want %v", b.String(), again, err, got)
		}
	})
}
