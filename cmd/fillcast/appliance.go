package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/fillcast/fillcast/appliance"
	"github.com/fillcast/fillcast/steering/urlsign"
)

func runAppliance(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("appliance", "--id ID --site SITE --profile flash|storage --http ADDR --cache-dir DIR --mem-bytes N --disk-bytes N --upstream URL[,URL] --token-keys FILE", stderr)
	cfg := appliance.DefaultConfig()
	fs.StringVar(&cfg.ID, "id", "", "appliance id")
	fs.StringVar(&cfg.Site, "site", "", "site id the appliance is installed in")
	fs.StringVar(&cfg.Profile, "profile", cfg.Profile, "flash (popular titles only) or storage (whole catalog)")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "listen address")
	fs.StringVar(&cfg.Cache.Dir, "cache-dir", "", "directory of the disk tier")
	mem := byteSize(1 << 30)
	fs.Var(&mem, "mem-bytes", "memory tier budget (0 disables it)")
	disk := byteSize(10 << 30)
	fs.Var(&disk, "disk-bytes", "disk tier budget")
	fs.BoolVar(&cfg.Cache.Fsync, "fsync", false, "fsync every cached object before indexing it (torn files are dropped either way)")
	upstreams := fs.String("upstream", "", "upstream base URLs, comma-separated: site peers first, the origin last")
	keysPath := fs.String("token-keys", "", "key `FILE`: one \"<id> <hex secret>\" a line; the first signs, all verify")
	fs.StringVar(&cfg.Server.AdminToken, "admin-token", "", "token for /admin/ calls (Authorization: Bearer)")
	fs.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "maximum concurrent connections")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, "time allowed to read a request")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "keep-alive idle timeout")
	fs.DurationVar(&cfg.Server.WriteTimeout, "write-timeout", 10e9, "base time to write a response (plus size at 32 KiB/s)")
	fs.DurationVar(&cfg.Upstream.ConnectTimeout, "upstream-connect-timeout", 2e9, "upstream connect timeout")
	fs.DurationVar(&cfg.Upstream.IdleTimeout, "upstream-read-timeout", 10e9, "abort an upstream body idle this long")
	controlplanes := fs.String("controlplane", "", "control-plane URLs, comma-separated: enables heartbeats")
	fs.StringVar(&cfg.AdvertiseURL, "advertise-url", "", "URL players and peers reach this appliance at (default http://{--http})")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat", 2e9, "time between heartbeats")
	lf := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Cache.MemBytes, cfg.Cache.DiskBytes = int64(mem), int64(disk)
	cfg.Upstream.URLs = splitList(*upstreams)
	cfg.ControlPlanes = splitList(*controlplanes)
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if *keysPath == "" {
		return fmt.Errorf("%w: --token-keys is required", errUsage)
	}
	if cfg.Keys, err = urlsign.LoadKeys(*keysPath); err != nil {
		return err
	}
	a, err := appliance.New(cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		a.Close()
		return fmt.Errorf("appliance: %w", err)
	}
	return a.Serve(ctx, ln)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}
