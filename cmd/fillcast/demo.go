package main

import (
	"context"
	"io"

	"github.com/fillcast/fillcast/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[--dir DIR] [--http ADDR]", stderr)
	var cfg demo.Config
	fs.StringVar(&cfg.Dir, "dir", "fillcast-demo", "directory for every part's data; a second run reuses it")
	fs.StringVar(&cfg.HTTP, "http", "127.0.0.1:8000", "control-plane address (API)")
	lf := addLogFlags(fs)
	lf.level, fs.Lookup("log-level").DefValue = "warn", "warn" // the demo prints its own summary
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	// Checked here, before the demo runs, so that only its own fields'
	// errors are taken for the flags'.
	if err := cfg.Validate(); err != nil {
		return flagError(err, demoFlags)
	}
	return demo.Run(ctx, cfg, demo.Deps{Out: stdout, Log: log})
}

// demoFlags names the flag that sets each demo.Config field, for errors.
var demoFlags = map[string]string{"Dir": "dir", "HTTP": "http"}
