package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
)

// TestKeysAndSign: a generated private file signs with fillcast sign,
// its public form (fillcast keys public) verifies and cannot sign.
func TestKeysAndSign(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "keys"), filepath.Join(dir, "keys.pub")
	ctx := context.Background()
	if err := run(ctx, []string{"keys", "generate", "--id", "k7", "--out", priv}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private file: %v %v, want mode 0600", fi, err)
	}
	if err := run(ctx, []string{"keys", "generate", "--id", "k7", "--out", priv}, io.Discard, io.Discard); err == nil {
		t.Error("keys generate overwrote an existing file")
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"keys", "public", "--token-keys", priv}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	seed, _ := os.ReadFile(priv)
	if !strings.Contains(out.String(), "k7 pub:") || strings.Contains(out.String(), strings.Fields(string(seed))[1]) {
		t.Fatalf("public file:\n%s", out.String())
	}
	pubKeys, err := auth.LoadKeys(pub)
	if err != nil || pubKeys.CanSign() {
		t.Fatalf("public file: %v, CanSign %v", err, pubKeys != nil && pubKeys.CanSign())
	}

	out.Reset()
	if err := run(ctx, []string{"sign", "--token-keys", priv, "--title", "t1", "--client", "203.0.113.0/24"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	path := strings.TrimSpace(out.String())
	parts := strings.Split(path, "/")
	if len(parts) != 4 || parts[1] != "c" || parts[3] != "t1" {
		t.Fatalf("sign printed %q, want /c/{token}/t1", path)
	}
	if _, err := pubKeys.Verify(parts[2], "t1", time.Now(), netip.MustParseAddr("203.0.113.9")); err != nil {
		t.Errorf("the public file does not verify %s: %v", path, err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"sign with the public file", []string{"sign", "--token-keys", pub, "--title", "t1"}, "public keys only"},
		{"sign beyond the lifetime", []string{"sign", "--token-keys", priv, "--title", "t1", "--ttl", "25h"}, "--ttl"},
		{"keys public without a file", []string{"keys", "public"}, "--token-keys"},
		{"keys generate with a bad id", []string{"keys", "generate", "--id", "k.1"}, "--id"},
		{"keys without a verb", []string{"keys"}, "keys generate or keys public"},
	} {
		err := run(ctx, tt.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error naming %q", tt.name, err, tt.want)
		}
	}
}

func TestReadCredentialFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys, _ := auth.ParseKeys(strings.NewReader(opsKeys))
	cred, _ := keys.SignCredential("a1")
	private, shared, bogus := filepath.Join(dir, "cred"), filepath.Join(dir, "shared"), filepath.Join(dir, "bogus")
	os.WriteFile(private, []byte(cred+"\n"), 0o600)
	os.WriteFile(shared, []byte("  "+cred+"\n"), 0o644)
	os.WriteFile(bogus, []byte("adm\n"), 0o600)
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	if got, err := readCredentialFile(private, logger); got != cred || err != nil || log.Len() != 0 {
		t.Errorf("0600 file: %q, %v, log %q", got, err, log.String())
	}
	if got, err := readCredentialFile(shared, logger); got != cred || err != nil || !strings.Contains(log.String(), "readable by others") {
		t.Errorf("0644 file: %q, %v, log %q", got, err, log.String())
	}
	if _, err := readCredentialFile(bogus, logger); !errors.Is(err, errUsage) {
		t.Errorf("file without a credential: %v, want a usage error", err)
	}
	if got, err := readCredentialFile("", logger); got != "" || err != nil {
		t.Errorf("no file: %q, %v", got, err)
	}
}
