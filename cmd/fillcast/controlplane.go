package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/ratelimit"
	"github.com/fillcast/fillcast/internal/httpserve"
	"github.com/fillcast/fillcast/internal/profiling"
)

func runControlPlane(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "backup":
			return runBackup(ctx, args[1:], stdout, stderr)
		case "restore":
			return runRestore(ctx, args[1:], stdout, stderr)
		}
	}
	fs := newFlagSet("controlplane", "--id ID --data DIR --http ADDR --raft ADDR (--bootstrap | --join URL) --token-keys FILE --admin-token T [--origin URL] [--trusted-proxies CIDR,..] [--events-listen ADDR | --events-url URL] [--tls-cert FILE --tls-key FILE --tls-ca FILE]", stderr)
	var cfg controlplane.Config
	fs.StringVar(&cfg.ID, "id", "", "node id, unique in the cluster")
	fs.StringVar(&cfg.DataDir, "data", "", "directory for the raft log, snapshots and uploads")
	fs.StringVar(&cfg.HTTP, "http", "127.0.0.1:7000", "API listen address")
	fs.StringVar(&cfg.AdvertiseURL, "advertise-url", "", "URL other nodes and appliances reach this node at (default http://{--http}, https:// with --tls-cert)")
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
	fs.StringVar(&cfg.Ingest.IngestDir, "ingest-dir", "", "absolute `DIR` whose files ingest requests may name by path (default: none, uploads only)")
	fs.IntVar(&cfg.MaxConnsPerClient, "max-conns-per-client", httpserve.DefaultMaxConnsPerClient, "API connections one client address may hold open; more are closed (-1: no cap)")
	limit := fs.String("concurrency-limit", "adaptive", "requests in progress the node admits before shedding the least critical: adaptive (found from latency), a fixed number, or off")
	rateLimits := fs.String("rate-limits", "", "per-principal request limits by class, per second/burst, over the defaults (viewer=20/40,apikey=100/200,appliance=20/40,anonymous=10/30); off lifts one; limit rules add more at runtime")
	fs.StringVar(&cfg.Tracing.Endpoint, "otlp-endpoint", "", "OTLP/HTTP `URL` (http://collector:4318) to export the API's trace spans to (default: none; requests still carry W3C trace context)")
	fs.Float64Var(&cfg.Tracing.SampleRatio, "trace-sample", 0, "share of requests without a sampled parent whose traces are exported (default 1)")
	fs.BoolVar(&cfg.API.UnboundTokens, "unbound-tokens", false, "sign playback tokens valid from any client, not only the player's /24 (IPv4) or /48 (IPv6)")
	fs.StringVar(&cfg.AccountsDB, "accounts-db", "", "PostgreSQL `URL` (postgres://…) for viewers' accounts, profiles, plans, sessions and streams, shared by every node (default: the replicated state)")
	fs.DurationVar(&cfg.Accounts.SessionIdle, "session-idle", 0, "how long a viewer's session lives unused (default 720h)")
	fs.StringVar(&cfg.PaymentProvider, "payment-provider", "", "where payments go: test:`DIR`, the built-in test provider (cards 4242… pay, 4000000000000002 is declined, 4000000000000341 attaches then declines) keeping its records in DIR, which nodes on one machine may share (default test:{--data}/payments)")
	fs.IntVar(&cfg.Billing.TrialDays, "trial-days", 0, "free trial of a new account on a plan that sets no trial_days (default 7; -1: none)")
	fs.DurationVar(&cfg.Billing.Grace, "billing-grace", 0, "how long an account whose renewal failed still plays (default 72h)")
	fs.DurationVar(&cfg.RenewEvery, "renew-every", 0, "how often the leader charges due renewals and retries failed ones (default 1h)")
	fs.IntVar(&cfg.Accounts.SignUpsPerHour, "signups-per-hour", 0, "accounts one client address may create an hour (default 30; -1: no limit, for load tests)")
	fs.StringVar(&cfg.Events.Listen, "events-listen", "", "host:port of the embedded event stream's route listener, which the other nodes dial (default: the --raft host, its port + 1)")
	fs.StringVar(&cfg.Events.Advertise, "events-advertise", "", "host:port other nodes reach --events-listen at (default --events-listen)")
	fs.StringVar(&cfg.Events.URL, "events-url", "", "external NATS `URL`s (nats://host:4222, comma-separated) to keep the event stream on, instead of the embedded servers")
	fs.StringVar(&cfg.Events.Creds, "events-creds", "", "NATS credentials `FILE` (user JWT and nkey seed) for --events-url")
	fs.StringVar(&cfg.Events.CA, "events-ca", "", "PEM `FILE` of the CAs a tls:// --events-url is checked against (default: the system's); with --tls-cert the node presents its certificate")
	fs.IntVar(&cfg.Events.Replicas, "events-replicas", 0, "most copies of the event stream (default 3; fewer while the cluster has fewer nodes)")
	fs.DurationVar(&cfg.Events.MaxAge, "events-max-age", 0, "how long the stream keeps events (default 168h)")
	fs.Int64Var(&cfg.Events.MaxBytes, "events-max-bytes", 0, "most bytes the stream keeps, the oldest dropped first (default 10 GiB)")
	fs.DurationVar(&cfg.Recs.Interval, "recs-interval", 0, "how often the leader retrains the recommender once it has a model (default 1h)")
	fs.IntVar(&cfg.Recs.MinInteractions, "recs-min-interactions", 0, "viewer-title pairs the first model waits for; before, recommendations answer trending and catalog titles (default 100)")
	fs.StringVar(&cfg.TLS.Cert, "tls-cert", "", "PEM certificate `FILE` of this node (fillcast://node/{--id}, see fillcast certs): the API serves HTTPS, and raft and calls between nodes run over mutual TLS; needs --tls-key and --tls-ca")
	fs.StringVar(&cfg.TLS.Key, "tls-key", "", "PEM private key `FILE` of --tls-cert")
	fs.StringVar(&cfg.TLS.CA, "tls-ca", "", "PEM `FILE` of the cluster CA: raft and node-to-node calls admit only node certificates it signed, and the API checks the client certificates of appliances and operators against it")
	fs.StringVar(&cfg.OriginCA, "origin-ca", "", "PEM `FILE` of the CAs an https --origin's certificate is checked against (default: --tls-ca, else the system's)")
	prof := profiling.DefaultConfig()
	prof.AppName = "fillcast.controlplane"
	fs.StringVar(&prof.PyroscopeURL, "pyroscope", "", "push continuous profiles to this Pyroscope `URL` (empty: off)")
	lf := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Join = splitList(*join)
	var err error
	if cfg.API.Gateway.Concurrency, err = parseConcurrencyLimit(*limit); err != nil {
		return err
	}
	if *rateLimits != "" {
		if cfg.API.RateLimits.Classes, err = ratelimit.ParseLimits(*rateLimits); err != nil {
			return fmt.Errorf("%w: --rate-limits: %v", errUsage, err)
		}
	}
	if d.Log, err = lf.logger(stderr); err != nil {
		return err
	}
	if d.AdminToken == "" {
		return fmt.Errorf("%w: --admin-token is required", errUsage)
	}
	if d.Keys, err = loadKeys(*keysPath); err != nil {
		return err
	}
	if err := prof.Validate(); err != nil {
		return flagError(fillcast.InField("Profiling", err), controlplaneFlags)
	}
	n, err := controlplane.New(cfg, d)
	if err != nil {
		return flagError(err, controlplaneFlags)
	}
	prof.Tags = map[string]string{"node": cfg.ID}
	p, err := profiling.Start(prof, profiling.Deps{Log: d.Log})
	if err != nil {
		return err
	}
	defer p.Close()
	return n.Run(ctx)
}

// controlplaneFlags names the flag that sets each controlplane.Config
// field, for errors.
var controlplaneFlags = map[string]string{
	"ID": "id", "DataDir": "data", "HTTP": "http", "AdvertiseURL": "advertise-url", "RaftAddr": "raft",
	"Join": "join", "Origin": "origin", "TrustedProxies": "trusted-proxies", "Steering.Epsilon": "epsilon",
	"Ingest.Workers": "ingest-workers", "API.Gateway.Concurrency.Fixed": "concurrency-limit", "API.RateLimits": "rate-limits",
	"Tracing.Endpoint": "otlp-endpoint", "Tracing.SampleRatio": "trace-sample",
	"TLS.Cert": "tls-cert", "TLS.Key": "tls-key", "TLS.CA": "tls-ca", "OriginCA": "origin-ca",
	"Ingest.IngestDir": "ingest-dir", "AccountsDB": "accounts-db", "Accounts.SessionIdle": "session-idle", "Accounts.SignUpsPerHour": "signups-per-hour",
	"Events.Listen": "events-listen", "Events.Advertise": "events-advertise", "Events.URL": "events-url", "Events.Creds": "events-creds", "Events.CA": "events-ca", "Events.Replicas": "events-replicas",
	"Events.MaxAge": "events-max-age", "Events.MaxBytes": "events-max-bytes",
	"Recs.Interval": "recs-interval", "Recs.MinInteractions": "recs-min-interactions",
	"PaymentProvider": "payment-provider", "Billing.TrialDays": "trial-days", "Billing.Grace": "billing-grace", "RenewEvery": "renew-every",
	"Profiling.PyroscopeURL": "pyroscope",
}

// parseConcurrencyLimit reads --concurrency-limit: adaptive, off or a
// fixed number of requests in progress.
func parseConcurrencyLimit(s string) (gateway.ConcurrencyConfig, error) {
	switch s {
	case "adaptive", "":
		return gateway.ConcurrencyConfig{}, nil
	case "off":
		return gateway.ConcurrencyConfig{Off: true}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return gateway.ConcurrencyConfig{}, fmt.Errorf("%w: --concurrency-limit: %q: want adaptive, off or a positive number", errUsage, s)
	}
	return gateway.ConcurrencyConfig{Fixed: n}, nil
}
