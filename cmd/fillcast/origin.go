package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/origin"
)

func runOrigin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("origin", "--root DIR --http ADDR [--admin-token T] [--token-keys FILE]", stderr)
	cfg := origin.DefaultConfig()
	var d origin.Deps
	fs.StringVar(&cfg.Root, "root", "", "directory holding one sub-directory per title")
	addr := fs.String("http", "127.0.0.1:9000", "listen address")
	fs.StringVar(&d.AdminToken, "admin-token", "", "token for PUT (Authorization: Bearer); empty disables PUT")
	keys := fs.String("token-keys", "", "key `FILE`; when set, content GETs need a valid path token or the admin token")
	maxUpload := byteSize(cfg.MaxUploadBytes)
	fs.Var(&maxUpload, "max-upload", "largest PUT body")
	lf := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
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
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	log.Info("origin: serving", "root", cfg.Root, "http", ln.Addr().String())
	return origin.Serve(ctx, ln, srv)
}

// originFlags names the flag that sets each origin.Config field, for
// errors.
var originFlags = map[string]string{"Root": "root", "MaxUploadBytes": "max-upload"}
