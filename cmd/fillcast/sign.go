package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

func runSign(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sign", "--token-keys FILE --title ID [--ttl 1h] [--client CIDR]", stderr)
	keysPath := fs.String("token-keys", "", "private key `FILE` (one \"<id> <hex seed>\" a line): the first private key signs")
	title := fs.String("title", "", "title id to sign for")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid (at most 24h: appliances refuse longer)")
	client := fs.String("client", "", "bind the token to this client prefix (CIDR), optional")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := fillcast.ValidateTitleID(*title); err != nil {
		return fmt.Errorf("%w: --title: %v", errUsage, err)
	}
	if *ttl <= 0 || *ttl > auth.DefaultMaxLifetime {
		return fmt.Errorf("%w: --ttl must be positive and at most %v: appliances and the origin refuse tokens that live longer", errUsage, auth.DefaultMaxLifetime)
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
	tok, err := keys.Sign(*title, time.Now().Add(*ttl), pfx)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	fmt.Fprintln(stdout, "/c/"+tok+"/"+*title)
	return nil
}
