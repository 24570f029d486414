package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/dustin/go-humanize"
	"github.com/fillcast/fillcast/appliance"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/appliance/process"
	"github.com/fillcast/fillcast/appliance/upgrade"
	"github.com/fillcast/fillcast/internal/profiling"
)

func runAppliance(ctx context.Context, args []string, _, stderr io.Writer) error {
	// SIGHUP is the upgrade: catch it before anything else, or an early
	// one would kill the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	fs := newFlagSet("appliance", "--id ID --site SITE --profile flash|storage --http ADDR [--h3 --tls-cert FILE --tls-key FILE] --cache-dir DIR[:CLASS][:SIZE] [--cache-dir ...] --mem-bytes N --disk-bytes N --upstream URL[,URL] --token-keys FILE", stderr)
	cfg := appliance.DefaultConfig()
	var d appliance.Deps
	ops := process.Options{Profiling: profiling.DefaultConfig(), ReadyTimeout: upgrade.DefaultConfig().ReadyTimeout}
	fs.StringVar(&cfg.ID, "id", "", "appliance id")
	fs.StringVar(&cfg.Site, "site", "", "site id the appliance is installed in")
	fs.StringVar(&cfg.Profile, "profile", cfg.Profile, "flash (popular titles only) or storage (whole catalog)")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "listen address (TCP; with --h3 also the UDP port of HTTP/3)")
	var dirs cacheDirs
	fs.Var(&dirs, "cache-dir", "directory of the disk tier, `DIR[:CLASS][:SIZE]` with its class (flash, the default, or disk) and its own budget (default --disk-bytes); "+
		"repeat it (or separate with commas) for one directory per disk: objects spread across the directories of a class, the most requested on flash, "+
		"and one that fails is taken out of service")
	mem := byteSize(1 << 30)
	fs.Var(&mem, "mem-bytes", "memory tier budget (0 disables it)")
	disk := byteSize(10 << 30)
	fs.Var(&disk, "disk-bytes", "disk tier budget")
	scrub := byteSize(cfg.Cache.ScrubRate)
	fs.Var(&scrub, "scrub-rate", "bytes per second at which each cache directory is re-read to find corrupt objects (0: off)")
	fs.DurationVar(&cfg.Cache.ScrubEvery, "scrub-every", cfg.Cache.ScrubEvery, "shortest time between two scrub passes over a cache directory")
	fs.DurationVar(&cfg.Cache.VerifyAge, "verify-age", cfg.Cache.VerifyAge, "a disk object not verified for this long is checked against its checksum when next read")
	fs.BoolVar(&cfg.Cache.Fsync, "fsync", false, "fsync every cached object before indexing it (torn files are dropped either way)")
	upstreams := fs.String("upstream", "", "upstream base URLs, comma-separated: site peers first, the origin last")
	keysPath := fs.String("token-keys", "", "public key `FILE` (fillcast keys public): one \"<id> pub:<hex>\" a line; all verify tokens and peers' credentials")
	credFile := fs.String("credential-file", "", "`FILE` holding the appliance's credential (fca.…, answered when it was registered): sent to the control plane, peers and the origin")
	fs.StringVar(&d.AdminToken, "admin-token", "", "token for /admin/ calls, /v1/status and the pprof listener (Authorization: Bearer); also sent to the control plane without --credential-file")
	fs.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "maximum concurrent connections")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, "time allowed to read a request")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "keep-alive idle timeout")
	fs.DurationVar(&cfg.Server.WriteTimeout, "write-timeout", cfg.Server.WriteTimeout, "base time to write a response (plus size at 32 KiB/s)")
	fs.DurationVar(&cfg.Upstream.ConnectTimeout, "upstream-connect-timeout", cfg.Upstream.ConnectTimeout, "upstream connect timeout")
	fs.DurationVar(&cfg.Upstream.IdleTimeout, "upstream-read-timeout", cfg.Upstream.IdleTimeout, "abort an upstream body idle this long")
	controlplanes := fs.String("controlplane", "", "control-plane URLs, comma-separated: enables heartbeats and fills. "+
		"The other nodes are learned from any one, but only in memory: give two or more (or a DNS name of every node) so that a restart while one is down finds the rest")
	fs.StringVar(&cfg.AdvertiseURL, "advertise-url", "", "URL players and peers reach this appliance at (default http(s)://{--http})")
	fs.StringVar(&cfg.Server.SteeringURL, "steering-url", "", "public `URL` of the control plane whose content steering manifest the master playlists and MPDs served to players advertise (default: the first --controlplane)")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat", cfg.HeartbeatInterval, "time between heartbeats, and the longest a heartbeat waits for one control-plane node")
	fs.StringVar(&cfg.AccessLog, "access-log", "", "`FILE` to append a JSON line per content request to, with the playback's W3C trace id (default: no access log)")
	fs.DurationVar(&cfg.UsageInterval, "usage-interval", cfg.UsageInterval, "time between usage summaries (requests, bytes, statuses and players' CMCD per title and rendition) sent to the control plane")
	fs.Float64Var(&cfg.FillRateBits, "fill-rate", cfg.FillRateBits, "cap on off-peak fill traffic, bits per second")
	fs.DurationVar(&cfg.FillPoll, "fill-poll", cfg.FillPoll, "how often the fill manifest is fetched from the control plane")
	fs.BoolVar(&cfg.H3, "h3", false, "serve HTTP/3 on the UDP port of --http (needs --tls-cert and --tls-key)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate `FILE`: HTTP/1.1 is then served over TLS too")
	fs.StringVar(&cfg.TLSCA, "tls-ca", "", "PEM `FILE` of the CA https control-plane nodes, peers and origins are checked against; --tls-cert is then also the client certificate")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key `FILE` of --tls-cert")
	fs.StringVar(&cfg.TLSTicketKeys, "tls-ticket-keys", "", "session ticket key `FILE` (0600; \"<RFC 3339 date> <64 hex digits>\" lines) shared with the appliances that should resume each other's TLS sessions "+
		"(default: tls-ticket-keys in the first --cache-dir, created and rotated by the appliance, which upgrades share; none: keys in memory, lost at an upgrade)")
	fs.DurationVar(&cfg.TLSTicketRotate, "tls-ticket-rotate", 0, "add a session ticket key to --tls-ticket-keys this often, making this appliance the file's owner (default: 1h for the default file, never for a file given)")
	fs.DurationVar(&cfg.TLSTicketLifetime, "tls-ticket-lifetime", 0, "a TLS session ticket resumes for at least this long; the owner of the key file then drops its key (default 24h)")
	udpBuf := byteSize(cfg.UDPBufferBytes)
	fs.Var(&udpBuf, "udp-buffer", "HTTP/3 UDP socket buffer size asked for (the OS may cap it: see the log)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "time in-flight responses get to finish when the process stops or hands over to an upgrade")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "on SIGTERM, the longest wait for steering to move new players away")
	fs.DurationVar(&cfg.DrainQuiet, "drain-quiet", cfg.DrainQuiet, "on SIGTERM, stop once no new player has started a session for this long")
	fs.StringVar(&ops.PIDFile, "pid-file", "", "`FILE` that always holds the PID of the live process, across upgrades")
	fs.DurationVar(&ops.ReadyTimeout, "upgrade-timeout", ops.ReadyTimeout, "on SIGHUP, how long the new process may take to become ready before the upgrade is abandoned")
	fs.StringVar(&ops.AdminHTTP, "admin-http", "", "admin-only listen `ADDR` for /debug/pprof (e.g. 127.0.0.1:6060; empty: off)")
	fs.StringVar(&ops.Profiling.PyroscopeURL, "pyroscope", "", "push continuous profiles to this Pyroscope `URL` (empty: off)")
	lf := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Cache.MemBytes, cfg.Cache.DiskBytes, cfg.Cache.ScrubRate = int64(mem), int64(disk), int64(scrub)
	if len(dirs) == 1 && dirs[0].Bytes == 0 && dirs[0].Class == "" {
		cfg.Cache.Dir = dirs[0].Path
	} else {
		cfg.Cache.Dirs = dirs
	}
	cfg.UDPBufferBytes = int(udpBuf)
	cfg.Upstream.URLs = splitList(*upstreams)
	cfg.ControlPlanes = splitList(*controlplanes)
	var err error
	if d.Log, err = lf.logger(stderr); err != nil {
		return err
	}
	if d.Keys, err = loadKeys(*keysPath); err != nil {
		return err
	}
	if d.Credential, err = readCredentialFile(*credFile, d.Log); err != nil {
		return err
	}
	ops.Profiling.Tags = map[string]string{"appliance": cfg.ID, "site": cfg.Site}
	return flagError(process.Run(ctx, cfg, ops, d, hup), applianceFlags)
}

// applianceFlags names the flag that sets each field of appliance.Config
// and process.Options, for errors.
var applianceFlags = map[string]string{
	"ID": "id", "Site": "site", "Profile": "profile", "HTTP": "http",
	"Cache.Dir": "cache-dir", "Cache.Dirs": "cache-dir", "Cache.MemBytes": "mem-bytes", "Cache.DiskBytes": "disk-bytes", "Cache.Fsync": "fsync",
	"Cache.ScrubRate": "scrub-rate", "Cache.ScrubEvery": "scrub-every", "Cache.VerifyAge": "verify-age",
	"Upstream.URLs": "upstream", "Upstream.ConnectTimeout": "upstream-connect-timeout", "Upstream.IdleTimeout": "upstream-read-timeout",
	"MaxConns": "max-conns", "ReadTimeout": "read-timeout", "IdleTimeout": "idle-timeout", "Server.WriteTimeout": "write-timeout",
	"ControlPlanes": "controlplane", "AdvertiseURL": "advertise-url", "Server.SteeringURL": "steering-url", "HeartbeatInterval": "heartbeat", "UsageInterval": "usage-interval", "AccessLog": "access-log",
	"FillRateBits": "fill-rate", "FillPoll": "fill-poll",
	"H3": "h3", "TLSCert": "tls-cert", "TLSKey": "tls-key", "TLSCA": "tls-ca",
	"TLSTicketKeys": "tls-ticket-keys", "TLSTicketRotate": "tls-ticket-rotate", "TLSTicketLifetime": "tls-ticket-lifetime", "UDPBufferBytes": "udp-buffer",
	"ShutdownTimeout": "shutdown-timeout", "DrainTimeout": "drain-timeout", "DrainQuiet": "drain-quiet",
	"PIDFile": "pid-file", "ReadyTimeout": "upgrade-timeout", "AdminHTTP": "admin-http", "Profiling.PyroscopeURL": "pyroscope",
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

// cacheDirs is the --cache-dir flag: DIR[:CLASS][:SIZE], repeated or
// comma-separated (the form an environment variable or config file line
// gives).
type cacheDirs []cache.DirConfig

func (c *cacheDirs) String() string {
	var parts []string
	for _, d := range *c {
		p := d.Path
		if d.Class != "" {
			p += ":" + string(d.Class)
		}
		if d.Bytes > 0 {
			p += ":" + humanize.IBytes(uint64(d.Bytes))
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ",")
}

// cacheDirForm is the form a --cache-dir item takes, for errors.
const cacheDirForm = "want DIR[:CLASS][:SIZE] such as /ssd0:flash:800GiB or /hdd0:disk:8TiB"

func (c *cacheDirs) Set(v string) error {
	for _, item := range splitList(v) {
		parts := strings.Split(item, ":")
		d := cache.DirConfig{Path: parts[0]}
		rest := parts[1:]
		if len(rest) > 0 {
			if cl := cache.Class(rest[0]); cl == cache.ClassFlash || cl == cache.ClassDisk {
				d.Class, rest = cl, rest[1:]
			} else if len(rest) == 2 {
				return fmt.Errorf("%q: bad class %q: the class is flash or disk; %s", item, rest[0], cacheDirForm)
			}
		}
		switch {
		case d.Path == "":
			return fmt.Errorf("%q: no directory: %s", item, cacheDirForm)
		case len(rest) > 1:
			return fmt.Errorf("%q: too many parts: %s", item, cacheDirForm)
		case len(rest) == 1:
			var b byteSize
			if err := b.Set(rest[0]); err != nil || b <= 0 {
				return fmt.Errorf("%q: bad size %q (or class: flash or disk): %s", item, rest[0], cacheDirForm)
			}
			d.Bytes = int64(b)
		}
		*c = append(*c, d)
	}
	return nil
}
