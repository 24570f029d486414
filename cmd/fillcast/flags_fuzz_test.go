package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzByteSize: a size flag takes what it accepts as a byte count of 0 or
// more (never wrapped negative), the plain number of those bytes reads
// back the same, and its printed form (the flag's default in --help)
// reads back within the one-digit rounding it prints with.
func FuzzByteSize(f *testing.F) {
	for _, s := range []string{"1500000", "64MiB", "2GiB", "1.5 GiB", "10 GB", "0", "1e3", "8EiB", "9EiB", "16EiB", "18446744073709551615",
		"18446744073709551616", "-1", "-1GiB", "NaN", "Inf GiB", "1..5k", "", " ", "5 bananas", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b byteSize
		if err := b.Set(s); err != nil {
			if !strings.Contains(err.Error(), "bad size") {
				t.Fatalf("Set(%q) error %q does not say what is wrong", s, err)
			}
			return
		}
		if b < 0 {
			t.Fatalf("Set(%q) = %d: negative", s, int64(b))
		}
		var plain byteSize
		if err := plain.Set(strconv.FormatInt(int64(b), 10)); err != nil || plain != b {
			t.Fatalf("Set(%q) = %d; the plain number reads back as %d, %v", s, int64(b), int64(plain), err)
		}
		if b >= 1<<60 {
			return // printed as "x EiB", rounded past the largest size
		}
		var printed byteSize
		if err := printed.Set(b.String()); err != nil || printed-b > b/20+1 || b-printed > b/20+1 {
			t.Fatalf("Set(%q) = %d prints as %q, which reads back as %d, %v", s, int64(b), b.String(), int64(printed), err)
		}
	})
}

// fuzzFlags returns a flag set with one flag of every kind the
// subcommands take, as they declare them.
func fuzzFlags() *flag.FlagSet {
	fs := newFlagSet("fuzz", "", io.Discard)
	fs.String("http", ":8080", "")
	fs.String("id", "", "")
	mem := byteSize(1 << 30)
	fs.Var(&mem, "mem-bytes", "")
	fs.Bool("h3", false, "")
	fs.Duration("heartbeat", 5*time.Second, "")
	fs.Int("workers", 2, "")
	addLogFlags(fs)
	return fs
}

// FuzzConfigFile: a --config file sets every flag it names to the value
// that flag takes from the command line, and leaves the others at their
// defaults; a file naming an unknown flag or giving one a value it
// refuses is a usage error. (FuzzParseConfig fuzzes the line syntax.)
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"http 127.0.0.1:8080\nid a1\nmem-bytes 64MiB\nh3 true\nheartbeat 2s\nworkers 4\nlog-level debug\n",
		"# comment\n--id=a1\n\tmem-bytes = 1.5 GiB\n", "h3\n", "h3 false\nh3 1\n", "workers -3\n", "workers 1e3\n",
		"heartbeat forever\n", "mem-bytes 9EiB\n", "bogus 1\n", "config other.conf\n", "log-format xml\n", "id\n",
	} {
		f.Add(s)
	}
	path := filepath.Join(f.TempDir(), "fillcast.conf") // rewritten by each input
	f.Fuzz(func(t *testing.T, text string) {
		file, err := parseConfig(strings.NewReader(text), "f")
		if err != nil {
			return
		}
		fs := fuzzFlags()
		wantErr := false
		fs.VisitAll(func(fl *flag.Flag) {
			if _, ok := os.LookupEnv("FILLCAST_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))); ok {
				t.Skipf("the environment sets --%s", fl.Name)
			}
		})
		for name, v := range file {
			fl := fs.Lookup(name)
			wantErr = wantErr || fl == nil || name != "config" && fuzzFlags().Lookup(name).Value.Set(v) != nil
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		err = parseFlags(fs, []string{"--config", path})
		if (err != nil) != wantErr {
			t.Fatalf("config %q: parseFlags = %v, want an error: %v", text, err, wantErr)
		}
		if err != nil {
			if !errors.Is(err, errUsage) {
				t.Fatalf("config %q: error %v is not a usage error", text, err)
			}
			return
		}
		fs.VisitAll(func(fl *flag.Flag) {
			want := fl.DefValue
			if v, ok := file[fl.Name]; ok && fl.Name != "config" {
				ref := fuzzFlags().Lookup(fl.Name).Value
				ref.Set(v)
				want = ref.String()
			}
			if fl.Name == "config" {
				want = path
			}
			if got := fl.Value.String(); got != want {
				t.Fatalf("config %q: --%s = %q, want %q", text, fl.Name, got, want)
			}
		})
	})
}

// FuzzConcurrencyLimit: --concurrency-limit is adaptive (also when
// empty), off, or a positive count that prints back as given; anything
// else is a usage error.
func FuzzConcurrencyLimit(f *testing.F) {
	for _, s := range []string{"adaptive", "", "off", "64", "0", "-1", "+5", "007", "1e3", "99999999999999999999", "Off", " 64"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseConcurrencyLimit(s)
		if err != nil {
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--concurrency-limit") {
				t.Fatalf("parseConcurrencyLimit(%q) error %v does not name the flag", s, err)
			}
			return
		}
		switch {
		case s == "adaptive" || s == "":
			if c.Off || c.Fixed != 0 {
				t.Fatalf("parseConcurrencyLimit(%q) = %+v, want adaptive", s, c)
			}
		case s == "off":
			if !c.Off || c.Fixed != 0 {
				t.Fatalf("parseConcurrencyLimit(%q) = %+v, want off", s, c)
			}
		default:
			n, err := strconv.Atoi(s)
			if c.Off || c.Fixed < 1 || err != nil || n != c.Fixed {
				t.Fatalf("parseConcurrencyLimit(%q) = %+v, want a fixed positive limit", s, c)
			}
		}
	})
}
