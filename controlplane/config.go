package controlplane

import (
	"cmp"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fillcast/fillcast/billing/subscriptions"

	"github.com/fillcast/fillcast/accounts/pgstore"

	"github.com/fillcast/fillcast/accounts"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/ingest"
	"github.com/fillcast/fillcast/controlplane/planner"
	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/controlplane/squeeze"
	"github.com/fillcast/fillcast/controlplane/stream"
	"github.com/fillcast/fillcast/internal/httpserve"
	"github.com/fillcast/fillcast/internal/tracing"
	"github.com/fillcast/fillcast/steering"
)

// Config is everything a control-plane node is set up with; the secrets
// it works with come in Deps. Zero values mean the defaults named.
type Config struct {
	// ID names the node in the cluster. Required.
	ID string
	// DataDir holds the raft log, snapshots, uploads and the saved
	// popularity. Required.
	DataDir string
	// HTTP is the API listen address. Required. AdvertiseURL is how
	// other nodes and appliances reach it; zero means http://{HTTP}, or
	// https://{HTTP} with TLS.
	HTTP, AdvertiseURL string
	// RaftAddr is the raft transport address. Required.
	RaftAddr string
	// Bootstrap starts a new cluster; Join lists nodes of an existing
	// one. Exactly one is required.
	Bootstrap bool
	Join      []string
	// Origin is the origin's base URL: where ingest publishes and the
	// last resort of every playback answer. Empty disables ingest.
	Origin string
	// TrustedProxies are the CIDRs, comma-separated, whose
	// X-Forwarded-For is believed.
	TrustedProxies string
	// Steering tunes tier 2 (epsilon and staleness); its Origin is
	// Config.Origin.
	Steering steering.Config
	// API tunes the HTTP API; its Gateway.TrustedProxies are
	// Config.TrustedProxies.
	API api.Config
	// Accounts tunes the viewers' service: session lifetime, profile and
	// session limits, sign-in throttling, argon2id.
	Accounts accounts.Config
	// AccountsDB, when set, is a PostgreSQL URL (postgres://…) keeping
	// accounts, profiles, plans, sessions and stream leases, shared by
	// every node; empty keeps them in the replicated state. Billing's
	// subscriptions, invoices and ledger live beside them.
	AccountsDB string
	// Billing tunes subscriptions: the default trial, the grace of a
	// failed payment, the renewal pass's workers.
	Billing subscriptions.Config
	// PaymentProvider is where payments go: "test:DIR", the built-in
	// test provider keeping its records in DIR (nodes on one machine
	// share it by naming one DIR). Empty means test:DataDir/payments.
	PaymentProvider string
	// RenewEvery is how often the leader runs the renewal pass. Zero
	// means 1 h.
	RenewEvery time.Duration
	// Events configures the event stream. Its NodeID and Dir come from
	// ID and DataDir (its routes' password from the admin token); a zero Listen is
	// the raft address's host with the port after the raft port. With
	// URL set, the node uses that external NATS cluster and embeds none.
	Events stream.Config
	// Recs tunes the recommender: retraining interval, the data a model
	// needs.
	Recs recs.Config
	// Ingest tunes the job manager (Workers, Queue).
	Ingest ingest.Config
	// Squeeze tunes the runner of squeeze tests.
	Squeeze squeeze.Config
	// Tracing exports the API's spans over OTLP when Tracing.Endpoint is
	// set; Service and Instance default to "fillcast-controlplane" and
	// ID.
	Tracing tracing.Config
	// Planner tunes off-peak fill planning. Zero SnapshotPath means
	// DataDir/popularity.json.
	Planner planner.Config
	// Raft timing (tests use short ones); zero means the cluster defaults.
	HeartbeatTimeout, ElectionTimeout time.Duration
	// ShutdownTimeout bounds the wait for requests in flight when Run
	// stops. Zero means 15 s.
	ShutdownTimeout time.Duration
	// MaxConnsPerClient caps the API connections one client address
	// (an IPv6 /64) holds open; more are closed as they come. Trusted
	// proxies are exempt. Zero means 256; negative means no cap.
	MaxConnsPerClient int
	// TLS is this node's certificate and key and the cluster CA: PEM
	// files, all three or none, read when Run opens the node (New reads
	// no file). With them the API is served over TLS, checking a
	// client certificate against the CA when one is presented; raft
	// and the calls between nodes run over mutual TLS that admits only
	// node certificates from the CA; and AdvertiseURL and Join are
	// https. The certificate must be a node certificate for ID
	// (fillcast://node/{ID}, see auth/pki) naming the hosts of
	// AdvertiseURL and RaftAddr.
	TLS pki.Files
	// OriginCA is a PEM file of the CAs an https Origin's certificate is
	// checked against. Zero means TLS.CA with TLS, else the system's
	// roots. With TLS, ingest presents the node's certificate to the
	// origin.
	OriginCA string
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	for _, f := range []struct{ name, value, what string }{
		{"ID", c.ID, "the node's id, unique in the cluster"},
		{"DataDir", c.DataDir, "the directory of the raft log, snapshots and uploads"},
		{"HTTP", c.HTTP, "the API's listen address"},
		{"RaftAddr", c.RaftAddr, "the raft transport's host:port"},
	} {
		if f.value == "" {
			return fillcast.ConfigErrorf("controlplane", f.name, "required: %s", f.what)
		}
	}
	if c.Bootstrap == (len(c.Join) > 0) {
		return fillcast.ConfigErrorf("controlplane", "Join", "give exactly one of bootstrap (the first node) or the URLs of nodes to join (the others)")
	}
	if c.ShutdownTimeout < 0 {
		return fillcast.ConfigErrorf("controlplane", "ShutdownTimeout", "%v is negative", c.ShutdownTimeout)
	}
	if _, err := gateway.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return fillcast.ConfigErrorf("controlplane", "TrustedProxies", "%v", err)
	}
	for _, f := range []struct{ name, value string }{{"AdvertiseURL", c.AdvertiseURL}, {"Origin", c.Origin}} {
		if u, err := url.Parse(f.value); f.value != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			return fillcast.ConfigErrorf("controlplane", f.name, "%q: want a base URL such as http://host:7000", f.value)
		}
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	c = c.withDefaults()
	if err := c.Steering.Validate(); err != nil {
		return fillcast.InField("Steering", err)
	}
	if c.Origin != "" {
		if err := c.Ingest.Validate(); err != nil {
			return fillcast.InField("Ingest", err)
		}
	}
	if err := c.API.Validate(); err != nil {
		return fillcast.InField("API", err)
	}
	if err := c.Accounts.Validate(); err != nil {
		return fillcast.InField("Accounts", err)
	}
	if c.AccountsDB != "" {
		if err := (pgstore.Config{DSN: c.AccountsDB}).Validate(); err != nil {
			return fillcast.ConfigErrorf("controlplane", "AccountsDB", "not a PostgreSQL connection string (postgres://user@host/db)")
		}
	}
	if err := c.Billing.Validate(); err != nil {
		return fillcast.InField("Billing", err)
	}
	if err := validatePaymentProvider(c.PaymentProvider); err != nil {
		return err
	}
	if c.RenewEvery < 0 {
		return fillcast.ConfigErrorf("controlplane", "RenewEvery", "%v is negative", c.RenewEvery)
	}
	if err := c.Events.Validate(); err != nil {
		return fillcast.InField("Events", err)
	}
	if c.Events.URL == "" {
		if c.Events.Listen == c.HTTP || c.Events.Listen == c.RaftAddr {
			return fillcast.ConfigErrorf("controlplane", "Events.Listen", "%s is also the API's or raft's address: give --events-listen a port of its own", c.Events.Listen)
		}
		if host, _, _ := net.SplitHostPort(cmp.Or(c.Events.Advertise, c.Events.Listen)); host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
			return fillcast.ConfigErrorf("controlplane", "Events.Advertise", "%q: the other nodes cannot dial an unspecified address; give --events-advertise host:port", cmp.Or(c.Events.Advertise, c.Events.Listen))
		}
	}
	if err := c.Squeeze.Validate(); err != nil {
		return fillcast.InField("Squeeze", err)
	}
	if err := c.withDefaults().Tracing.Validate(); err != nil {
		return fillcast.InField("Tracing", err)
	}
	if err := c.Recs.Validate(); err != nil {
		return fillcast.InField("Recs", err)
	}
	if err := c.Planner.Validate(); err != nil {
		return fillcast.InField("Planner", err)
	}
	return nil
}

// validateTLS checks the TLS settings without reading the files: all
// three or none, and https wherever nodes are reached.
func (c Config) validateTLS() error {
	if err := c.TLS.ValidateMutual(); err != nil {
		return fillcast.InField("TLS", err)
	}
	if c.TLS.IsZero() {
		return nil
	}
	if c.AdvertiseURL != "" && !strings.HasPrefix(c.AdvertiseURL, "https://") {
		return fillcast.ConfigErrorf("controlplane", "AdvertiseURL", "%q: the API serves TLS, so want https://", c.AdvertiseURL)
	}
	for _, j := range c.Join {
		if !strings.HasPrefix(j, "https://") {
			return fillcast.ConfigErrorf("controlplane", "Join", "%q: the nodes serve TLS, so want https://", j)
		}
	}
	return nil
}

// withDefaults fills the zero fields, and the parts' fields that come
// from the node's own.
func (c Config) withDefaults() Config {
	if c.AdvertiseURL == "" {
		c.AdvertiseURL = "http://" + c.HTTP
		if !c.TLS.IsZero() {
			c.AdvertiseURL = "https://" + c.HTTP
		}
	}
	c.AdvertiseURL = strings.TrimSuffix(c.AdvertiseURL, "/")
	c.Origin = strings.TrimSuffix(c.Origin, "/")
	c.Tracing.Service = cmp.Or(c.Tracing.Service, "fillcast-controlplane")
	c.Tracing.Instance = cmp.Or(c.Tracing.Instance, c.ID)
	if c.MaxConnsPerClient == 0 {
		c.MaxConnsPerClient = httpserve.DefaultMaxConnsPerClient
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.Planner.SnapshotPath == "" {
		c.Planner.SnapshotPath = filepath.Join(c.DataDir, "popularity.json")
	}
	c.Steering.Origin = c.Origin
	c.Events.NodeID, c.Events.Dir, c.Events.Joining = c.ID, filepath.Join(c.DataDir, "stream"), len(c.Join) > 0
	if c.Events.URL != "" && c.Events.Cert == "" && !c.TLS.IsZero() {
		// The node's certificate is its identity to an external cluster
		// too.
		c.Events.Cert, c.Events.Key = c.TLS.Cert, c.TLS.Key
	}
	if c.Events.Listen == "" && c.Events.URL == "" {
		host, port, _ := net.SplitHostPort(c.RaftAddr)
		if p, err := strconv.Atoi(port); err == nil && p > 0 {
			c.Events.Listen = net.JoinHostPort(host, strconv.Itoa(p+1))
		}
	}
	c.API.Gateway.TrustedProxies, _ = gateway.ParseTrustedProxies(c.TrustedProxies)
	c.Ingest.Node, c.Ingest.Dir, c.Ingest.OriginURL = c.ID, filepath.Join(c.DataDir, "ingest"), c.Origin
	return c
}

// eventsAddr is the events address this node records in the member
// list: where the other nodes' streams dial its routes (none with an
// external stream).
func (c Config) eventsAddr() string {
	if c.Events.URL != "" {
		return ""
	}
	return cmp.Or(c.Events.Advertise, c.Events.Listen)
}

// Deps are what a node works with besides its Config.
type Deps struct {
	// AdminToken guards writes and node-to-node calls. Required.
	AdminToken string
	// Keys sign playback URLs. Required.
	Keys *auth.Keys
	// Log receives the node's log; nil discards it.
	Log *slog.Logger
	// RaftLog receives raft's own log lines; nil discards them.
	RaftLog io.Writer
	// Listener, if set, is where the API is served; nil means Run
	// listens on Config.HTTP. Run closes it.
	Listener net.Listener
}
