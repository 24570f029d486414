package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestConfigErrorsNameFlags: a missing or wrong setting that a library
// reports by its Config field reaches the user as an error naming the
// flag. Every case fails before anything is opened or started.
func TestConfigErrorsNameFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, []byte(opsKeys), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string][]string{
		"appliance":    {"--id", "a1", "--site", "s1", "--cache-dir", filepath.Join(dir, "cache"), "--upstream", "http://127.0.0.1:1", "--token-keys", keys},
		"controlplane": {"--id", "n1", "--data", filepath.Join(dir, "cp"), "--bootstrap", "--admin-token", "adm", "--token-keys", keys},
		"origin":       {"--root", filepath.Join(dir, "origin")},
		"targets":      {"--controlplane", "http://127.0.0.1:1"},
		"demo":         {"--dir", filepath.Join(dir, "demo")},
	}
	tests := []struct {
		name, cmd string
		drop      string   // a flag of base left out
		extra     []string // flags added to base
		wantFlag  string
	}{
		{"appliance without --cache-dir", "appliance", "--cache-dir", nil, "--cache-dir"},
		{"appliance without --upstream", "appliance", "--upstream", nil, "--upstream"},
		{"appliance without --site", "appliance", "--site", nil, "--site"},
		{"appliance with a bad --profile", "appliance", "", []string{"--profile", "edge"}, "--profile"},
		{"appliance with --disk-bytes 0", "appliance", "", []string{"--disk-bytes", "0"}, "--disk-bytes"},
		{"appliance with --h3 but no --tls-cert", "appliance", "", []string{"--h3"}, "--tls-cert"},
		{"appliance with --tls-cert but no --tls-key", "appliance", "", []string{"--tls-cert", "c.pem"}, "--tls-key"},
		{"appliance with --h3 on port 0", "appliance", "", []string{"--h3", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--http", "127.0.0.1:0"}, "--http"},
		{"appliance with a bad --controlplane", "appliance", "", []string{"--controlplane", "cp1:7000"}, "--controlplane"},
		{"appliance with a --usage-interval of 1ms", "appliance", "", []string{"--usage-interval", "1ms"}, "--usage-interval"},
		{"appliance with a bad --steering-url", "appliance", "", []string{"--steering-url", "cp.example"}, "--steering-url"},
		{"origin with a bad --steering-url", "origin", "", []string{"--steering-url", "cp.example"}, "--steering-url"},
		{"controlplane with --events-listen on port 0", "controlplane", "", []string{"--events-listen", "127.0.0.1:0"}, "--events-listen"},
		{"controlplane with a bad --events-url", "controlplane", "", []string{"--events-url", "http://x:4222"}, "--events-url"},
		{"controlplane with a password in --events-url", "controlplane", "", []string{"--events-url", "nats://u:secret@x:4222"}, "--events-url"},
		{"controlplane with --events-listen on the API's port", "controlplane", "", []string{"--http", "127.0.0.1:17100", "--events-listen", "127.0.0.1:17100"}, "--events-listen"},
		{"appliance with a negative --heartbeat", "appliance", "", []string{"--heartbeat", "-1s"}, "--heartbeat"},
		{"appliance with a negative --upstream-read-timeout", "appliance", "", []string{"--upstream-read-timeout", "-1s"}, "--upstream-read-timeout"},
		{"appliance with a bad --pyroscope", "appliance", "", []string{"--pyroscope", "pyroscope:4040"}, "--pyroscope"},
		{"controlplane with a bad --pyroscope", "controlplane", "", []string{"--pyroscope", "pyroscope:4040"}, "--pyroscope"},
		{"appliance with a negative --upgrade-timeout", "appliance", "", []string{"--upgrade-timeout", "-1s"}, "--upgrade-timeout"},
		{"appliance with a --credential-file holding no credential", "appliance", "", []string{"--credential-file", keys}, "--credential-file"},
		{"origin without --root", "origin", "--root", nil, "--root"},
		{"origin with --tls-cert but no --tls-key", "origin", "", []string{"--tls-cert", "c.pem"}, "--tls-key"},
		{"origin with --tls-ca alone", "origin", "", []string{"--tls-ca", "ca.pem"}, "--tls-cert"},
		{"controlplane without --raft", "controlplane", "", []string{"--raft="}, "--raft"},
		{"controlplane without --id", "controlplane", "--id", nil, "--id"},
		{"controlplane without --data", "controlplane", "--data", nil, "--data"},
		{"controlplane without --bootstrap or --join", "controlplane", "--bootstrap", nil, "--join"},
		{"controlplane with --epsilon 20", "controlplane", "", []string{"--epsilon", "20"}, "--epsilon"},
		{"controlplane with an ftp --origin", "controlplane", "", []string{"--origin", "ftp://origin"}, "--origin"},
		{"controlplane with a host-less --advertise-url", "controlplane", "", []string{"--advertise-url", "nohost"}, "--advertise-url"},
		{"controlplane with --ingest-workers -1", "controlplane", "", []string{"--origin", "http://origin:9000", "--ingest-workers", "-1"}, "--ingest-workers"},
		{"controlplane with a relative --ingest-dir", "controlplane", "", []string{"--origin", "http://origin:9000", "--ingest-dir", "media"}, "--ingest-dir"},
		{"controlplane with --concurrency-limit -1", "controlplane", "", []string{"--concurrency-limit", "-1"}, "--concurrency-limit"},
		{"controlplane with a bad --trusted-proxies", "controlplane", "", []string{"--trusted-proxies", "10.0.0.0/99"}, "--trusted-proxies"},
		{"controlplane with --tls-cert but no --tls-key", "controlplane", "", []string{"--tls-cert", "n1.pem"}, "--tls-key"},
		{"controlplane with --tls-cert but no --tls-ca", "controlplane", "", []string{"--tls-cert", "n1.pem", "--tls-key", "k.pem"}, "--tls-ca"},
		{"controlplane with --tls-ca alone", "controlplane", "", []string{"--tls-ca", "ca.pem"}, "--tls-cert"},
		{"controlplane with TLS and an http --advertise-url", "controlplane", "", []string{"--tls-cert", "n1.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem", "--advertise-url", "http://cp1:7000"}, "--advertise-url"},
		{"controlplane with TLS and an http --join", "controlplane", "--bootstrap", []string{"--tls-cert", "n1.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem", "--join", "http://cp1:7000"}, "--join"},
		{"targets without --controlplane", "targets", "--controlplane", nil, "--controlplane"},
		{"targets with an ftp --controlplane", "targets", "--controlplane", []string{"--controlplane", "ftp://cp1:7000"}, "--controlplane"},
		{"targets with a bad --dash-share", "targets", "", []string{"--dash-share", "2"}, "--dash-share"},
		{"demo with a bad --http", "demo", "", []string{"--http", "8000"}, "--http"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{tc.cmd}, without(base[tc.cmd], tc.drop)...)
			err := run(context.Background(), append(args, tc.extra...), io.Discard, io.Discard)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.wantFlag+":") || strings.Contains(err.Error(), "config ") {
				t.Fatalf("fillcast %s: got %v, want a usage error naming %s", strings.Join(args[1:], " "), err, tc.wantFlag)
			}
		})
	}
}

// without returns args without the flag name and the value after it (a
// boolean flag, such as --bootstrap, has none).
func without(args []string, name string) []string {
	i := slices.Index(args, name)
	if i < 0 {
		return args
	}
	n := 2
	if name == "--bootstrap" {
		n = 1
	}
	return slices.Concat(args[:i], args[i+n:])
}
