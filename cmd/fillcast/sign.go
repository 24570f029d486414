package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/fillcast/fillcast"
)

func runSign(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sign", "--token-keys FILE --title ID [--ttl 1h] [--client CIDR]", stderr)
	keysPath := fs.String("token-keys", "", "key file: one `<id> <hex secret>` a line; the first signs")
	title := fs.String("title", "", "title id to sign for")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	client := fs.String("client", "", "bind the token to this client prefix (CIDR), optional")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := fillcast.ValidateTitleID(*title); err != nil {
		return fmt.Errorf("%w: --title: %v", errUsage, err)
	}
	if *ttl <= 0 {
		return fmt.Errorf("%w: --ttl must be positive", errUsage)
	}
	var pfx netip.Prefix
	if *client != "" {
		var err error
		if pfx, err = netip.ParsePrefix(*client); err != nil {
			return fmt.Errorf("%w: --client: %v", errUsage, err)
		}
	}
	keys, err := loadKeys(*keysPath)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, keys.SignPath(*title, time.Now().Add(*ttl), pfx))
	return nil
}
