package main

import (
	"context"
	"fmt"
	"io"

	"github.com/fillcast/fillcast/controlplane"
)

func runControlPlane(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("controlplane", "--id ID --data DIR --http ADDR --raft ADDR (--bootstrap | --join URL) --token-keys FILE --admin-token T [--origin URL] [--trusted-proxies CIDR,..]", stderr)
	var cfg controlplane.Config
	fs.StringVar(&cfg.ID, "id", "", "node id, unique in the cluster")
	fs.StringVar(&cfg.DataDir, "data", "", "directory for the raft log, snapshots and uploads")
	fs.StringVar(&cfg.HTTP, "http", "127.0.0.1:7000", "API listen address")
	fs.StringVar(&cfg.AdvertiseURL, "advertise-url", "", "URL other nodes and appliances reach this node at (default http://{--http})")
	fs.StringVar(&cfg.RaftAddr, "raft", "127.0.0.1:7001", "raft transport address (host:port other nodes can reach)")
	fs.BoolVar(&cfg.Bootstrap, "bootstrap", false, "start a new cluster with this node (first node only)")
	join := fs.String("join", "", "URLs of existing nodes to join, comma-separated")
	keysPath := fs.String("token-keys", "", "key `FILE` for signing playback URLs (same file as the appliances)")
	var d controlplane.Deps
	fs.StringVar(&d.AdminToken, "admin-token", "", "token for admin calls, appliances and node-to-node calls")
	fs.StringVar(&cfg.Origin, "origin", "", "origin base URL: ingest publishes there, and it is every player's last resort")
	fs.StringVar(&cfg.TrustedProxies, "trusted-proxies", "", "CIDRs whose X-Forwarded-For is believed, comma-separated")
	fs.Float64Var(&cfg.Steering.Epsilon, "epsilon", 0.25, "bounded-load slack: an appliance takes at most (1+epsilon) times its share")
	fs.IntVar(&cfg.Ingest.Workers, "ingest-workers", 1, "transcoding jobs run at once")
	fs.IntVar(&cfg.API.Gateway.MaxInFlight, "max-in-flight", 0, "shed low-priority requests above this many in flight (0: no shedding)")
	lf := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Join = splitList(*join)
	var err error
	if d.Log, err = lf.logger(stderr); err != nil {
		return err
	}
	if d.AdminToken == "" {
		return fmt.Errorf("%w: --admin-token is required", errUsage)
	}
	if d.Keys, err = loadKeys(*keysPath); err != nil {
		return err
	}
	n, err := controlplane.New(cfg, d)
	if err != nil {
		return flagError(err, controlplaneFlags)
	}
	return n.Run(ctx)
}

// controlplaneFlags names the flag that sets each controlplane.Config
// field, for errors.
var controlplaneFlags = map[string]string{
	"ID": "id", "DataDir": "data", "HTTP": "http", "AdvertiseURL": "advertise-url", "RaftAddr": "raft",
	"Join": "join", "Origin": "origin", "TrustedProxies": "trusted-proxies", "Steering.Epsilon": "epsilon",
	"Ingest.Workers": "ingest-workers", "API.Gateway.MaxInFlight": "max-in-flight",
}
