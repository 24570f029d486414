package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/cluster"
)

// runBackup is `fillcast controlplane backup`: a consistent copy of a live
// cluster's replicated state, written to a file.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("controlplane backup", "--to FILE [--controlplane URL] [--token ADMIN-TOKEN] [--tls-ca FILE]", stderr)
	to := fs.String("to", "", "backup `FILE` to write (mode 0600: it holds keys and password hashes)")
	cp := fs.String("controlplane", os.Getenv("FILLCAST_CONTROLPLANE"), "control-plane base `URL` (default $FILLCAST_CONTROLPLANE)")
	token := fs.String("token", os.Getenv("FILLCAST_TOKEN"), "the cluster's admin `TOKEN` (default $FILLCAST_TOKEN)")
	ca := fs.String("tls-ca", "", "PEM `FILE` of the CA an https control plane is checked against")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *to == "" || *cp == "" || *token == "" {
		return fmt.Errorf("%w: controlplane backup needs --to, --controlplane and --token", errUsage)
	}
	hc, err := httpClient(*ca)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(*cp, "/")+cluster.BackupPath, nil)
	if err != nil {
		return fmt.Errorf("controlplane backup: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+*token)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("controlplane backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("controlplane backup: %s answered %s: %s", *cp, resp.Status, strings.TrimSpace(string(msg)))
	}
	index, err := strconv.ParseUint(resp.Header.Get(api.BackupIndexHeader), 10, 64)
	if err != nil {
		return fmt.Errorf("controlplane backup: no %s header: is %s a control plane?", api.BackupIndexHeader, *cp)
	}
	body := &completeBody{resp: resp}
	h, err := cluster.WriteBackupFile(*to, body, index, resp.Header.Get(api.BackupNodeHeader))
	if err != nil {
		return fmt.Errorf("controlplane backup: %w", err)
	}
	fmt.Fprintf(stdout, "controlplane backup: wrote %s: log index %d, %d bytes, sha256 %s\n", *to, h.Index, h.Bytes, h.SHA256)
	return nil
}

// completeBody reads a backup answer and fails at its end unless the
// server's trailer says the state went out whole.
type completeBody struct{ resp *http.Response }

func (b *completeBody) Read(p []byte) (int, error) {
	n, err := b.resp.Body.Read(p)
	if errors.Is(err, io.EOF) && b.resp.Trailer.Get(api.BackupCompleteTrailer) != "true" {
		return n, errors.New("the backup answer was cut short")
	}
	return n, err
}

// runRestore is `fillcast controlplane restore`: seeds an empty data
// directory with a backup, for a new single-node cluster.
func runRestore(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("controlplane restore", "--from FILE --data DIR [--id ID] [--raft ADDR]", stderr)
	from := fs.String("from", "", "backup `FILE` written by controlplane backup")
	data := fs.String("data", "", "empty data `DIR` of the new node")
	id := fs.String("id", "cp1", "the new node's id")
	raftAddr := fs.String("raft", "127.0.0.1:7001", "the new node's raft `ADDR` (start it with the same --raft)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || *data == "" {
		return fmt.Errorf("%w: controlplane restore needs --from and --data", errUsage)
	}
	f, err := os.Open(*from)
	if err != nil {
		return fmt.Errorf("controlplane restore: %w", err)
	}
	defer f.Close()
	h, err := cluster.Restore(f, *data, *id, *raftAddr)
	if err != nil {
		return fmt.Errorf("controlplane restore: %w", err)
	}
	fmt.Fprintf(stdout, "controlplane restore: %s seeded from %s (log index %d, taken %s)\n", *data, *from, h.Index, h.Taken.Format("2006-01-02 15:04:05Z"))
	fmt.Fprintf(stdout, "start it: fillcast controlplane --id %s --data %s --raft %s (and the --token-keys, --admin-token and other flags the old nodes had); other nodes --join it with empty data directories\n", *id, *data, *raftAddr)
	return nil
}

// httpClient returns a client trusting the CA in caFile (PEM), or the
// system's roots when caFile is empty.
func httpClient(caFile string) (*http.Client, error) {
	tc, err := pki.ClientTLS("", "", caFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}, nil
}
