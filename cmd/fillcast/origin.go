package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/origin"
)

func runOrigin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("origin", "--root DIR --http ADDR [--admin-token T] [--token-keys FILE] [--tls-cert FILE --tls-key FILE [--tls-ca FILE]]", stderr)
	cfg := origin.DefaultConfig()
	var d origin.Deps
	fs.StringVar(&cfg.Root, "root", "", "directory holding one sub-directory per title")
	addr := fs.String("http", "127.0.0.1:9000", "listen address")
	fs.StringVar(&d.AdminToken, "admin-token", "", "token for PUT (Authorization: Bearer); empty disables PUT")
	keys := fs.String("token-keys", "", "public key `FILE` (fillcast keys public); when set, content GETs need a valid path token, appliance credential or the admin token")
	maxUpload := byteSize(cfg.MaxUploadBytes)
	fs.Var(&maxUpload, "max-upload", "largest PUT body")
	fs.StringVar(&cfg.SteeringURL, "steering-url", "", "public `URL` of the control plane: the master playlists and MPDs served to players advertise its content steering manifest (empty: none)")
	var tf pki.Files
	fs.StringVar(&tf.Cert, "tls-cert", "", "PEM certificate `FILE` (a server certificate, see fillcast certs): serve HTTPS")
	fs.StringVar(&tf.Key, "tls-key", "", "PEM private key `FILE` of --tls-cert")
	fs.StringVar(&tf.CA, "tls-ca", "", "PEM `FILE` of the CAs a client certificate, when one is presented, must chain to (the cluster CA)")
	lf := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := tf.Validate(); err != nil {
		return flagError(fillcast.InField("TLS", err), originFlags)
	}
	cfg.MaxUploadBytes = int64(maxUpload)
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	d.Log = log
	if *keys != "" {
		if d.Keys, err = auth.LoadKeys(*keys); err != nil {
			return err
		}
	}
	srv, err := origin.New(cfg, d)
	if err != nil {
		return flagError(err, originFlags)
	}
	defer srv.Close()
	var tc *tls.Config
	if !tf.IsZero() {
		if tc, err = pki.ServerTLS(tf.Cert, tf.Key, tf.CA); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	log.Info("origin: serving", "root", cfg.Root, "http", ln.Addr().String(), "tls", !tf.IsZero())
	return origin.Serve(ctx, ln, srv)
}

// originFlags names the flag that sets each origin.Config field, for
// errors.
var originFlags = map[string]string{"Root": "root", "MaxUploadBytes": "max-upload", "SteeringURL": "steering-url", "TLS.Cert": "tls-cert", "TLS.Key": "tls-key", "TLS.CA": "tls-ca"}
