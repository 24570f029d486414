package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/fillcast/fillcast/auth"
)

// runKeys manages key files: "generate" makes a private key line,
// "public" writes the public form of a private file, for appliances and
// the origin.
func runKeys(_ context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func() error {
		fmt.Fprintln(stderr, "Usage: fillcast keys generate --id ID [--out FILE]\n       fillcast keys public --token-keys FILE [--out FILE]")
		return fmt.Errorf("%w: want keys generate or keys public", errUsage)
	}
	if len(args) == 0 {
		return usage()
	}
	switch args[0] {
	case "generate":
		fs := newFlagSet("keys generate", "--id ID [--out FILE]", stderr)
		id := fs.String("id", "", "key id (letters, digits, '-', '_'; at most 32)")
		out := fs.String("out", "", "write to `FILE` (mode 0600, must not exist) instead of stdout")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		k, err := auth.GenerateKey(*id, rand.Reader)
		if err != nil {
			return fmt.Errorf("%w: --id: %v", errUsage, err)
		}
		return writeKeyFile(*out, auth.MarshalKeyFile([]auth.Key{k}), 0o600, stdout)
	case "public":
		fs := newFlagSet("keys public", "--token-keys FILE [--out FILE]", stderr)
		keysPath := fs.String("token-keys", "", "private key `FILE` of the control plane")
		out := fs.String("out", "", "write to `FILE` (must not exist) instead of stdout")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		keys, err := loadKeys(*keysPath)
		if err != nil {
			return err
		}
		b := append([]byte("# Public keys of "+*keysPath+": give this file to appliances and the origin.\n"), auth.MarshalKeyFile(keys.PublicList())...)
		return writeKeyFile(*out, b, 0o644, stdout)
	case "-h", "--help", "help":
		usage()
		return flag.ErrHelp
	}
	return usage()
}

// writeKeyFile writes b to path, which must not exist, or to stdout when
// path is empty.
func writeKeyFile(path string, b []byte, mode os.FileMode, stdout io.Writer) error {
	if path == "" {
		_, err := stdout.Write(b)
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Close())
}

// readCredentialFile reads the appliance's --credential-file: the
// credential answered when the appliance was registered, surrounding
// white space trimmed. A file others may read is used, with a warning.
func readCredentialFile(path string, log *slog.Logger) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: --credential-file: %v", errUsage, err)
	}
	cred := strings.TrimSpace(string(b))
	if !auth.IsCredential(cred) {
		return "", fmt.Errorf("%w: --credential-file: %s holds no appliance credential (want fca.…, as answered by PUT /v1/appliances/{id})", errUsage, path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("appliance: the credential file is readable by others: chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
	}
	return cred, nil
}
