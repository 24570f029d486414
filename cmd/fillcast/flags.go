package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"unicode"

	"github.com/dustin/go-humanize"
	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

// newFlagSet returns a flag set for a subcommand that prints its usage to
// stderr and carries the --config flag every subcommand accepts.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "", "read flags from `FILE` (lines of \"name value\"; # starts a comment)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: fillcast %s %s\n\nFlags (also FILLCAST_<FLAG> or --config FILE):\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs, then fills every flag not given on the
// command line from the environment (FILLCAST_<FLAG>) and then from the
// --config file, so the precedence is: command line, environment, file,
// default.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	fromFile := map[string]string{}
	if path := fs.Lookup("config").Value.String(); path != "" {
		var err error
		if fromFile, err = readConfigFile(path); err != nil {
			return err
		}
		for name := range fromFile {
			if fs.Lookup(name) == nil {
				return fmt.Errorf("%w: config %s: unknown flag %q", errUsage, path, name)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] || f.Name == "config" {
			return
		}
		env := "FILLCAST_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		src := env
		if !ok {
			v, ok = fromFile[f.Name]
			src = "config file"
		}
		if ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%w: %s: flag %s: %v", errUsage, src, f.Name, e)
			}
		}
	})
	return err
}

func readConfigFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return parseConfig(f, path)
}

// parseConfig reads a config file: a flag a line, "name value" or
// "name=value", the name with or without its dashes; blank lines and lines
// starting with '#' are skipped. path names the file in errors.
func parseConfig(r io.Reader, path string) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexFunc(line, func(c rune) bool { return c == '=' || unicode.IsSpace(c) })
		if end < 0 {
			end = len(line)
		}
		name, value := strings.TrimLeft(line[:end], "-"), strings.TrimSpace(line[end:])
		value = strings.TrimSpace(strings.TrimPrefix(value, "="))
		if name == "" || name[0] == '#' {
			return nil, fmt.Errorf("config: %s:%d: want \"name value\"", path, n)
		}
		out[name] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return out, nil
}

// byteSize is a flag.Value for sizes written as 1500000, 64MiB or 2GiB.
type byteSize int64

func (b *byteSize) String() string { return humanize.IBytes(uint64(*b)) }

func (b *byteSize) Set(s string) error {
	n, err := humanize.ParseBytes(s)
	if err != nil || n > math.MaxInt64 {
		return fmt.Errorf("bad size %q: want a number of bytes such as 1500000, 512MiB or 2GiB", s)
	}
	*b = byteSize(n)
	return nil
}

// logFlags are the logging flags every long-running subcommand accepts.
type logFlags struct {
	format string
	level  string
}

func addLogFlags(fs *flag.FlagSet) *logFlags {
	lf := &logFlags{}
	fs.StringVar(&lf.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&lf.level, "log-level", "info", "log level: debug, info, warn or error")
	return lf
}

func (lf *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(lf.level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, lf.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch lf.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, lf.format)
}

// loadKeys loads the --token-keys file a subcommand requires.
func loadKeys(path string) (*auth.Keys, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: --token-keys is required", errUsage)
	}
	return auth.LoadKeys(path)
}

// flagError returns err, a library's configuration error, as a usage
// error naming the flag that sets the field, when flags (field path →
// flag name) knows it.
func flagError(err error, flags map[string]string) error {
	var ce *fillcast.ConfigError
	if errors.As(err, &ce) {
		if name, ok := flags[ce.Field]; ok {
			return fmt.Errorf("%w: --%s: %s", errUsage, name, ce.Problem)
		}
	}
	return err
}
