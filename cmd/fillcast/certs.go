package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fillcast/fillcast/auth/pki"
)

// certsSynopsis is the usage line of fillcast certs, and what it makes.
const certsSynopsis = `--dir DIR [--nodes ID,..] [--appliances ID,..] [--operators NAME,..] [--servers NAME,..] [--hosts HOST,..]

Makes certificates for a lab (real deployments bring their own, with the same
URI SANs): a CA in DIR (ca.pem, ca-key.pem) unless DIR has one, which then
signs; and for each id a certificate and key, DIR/{role}-{id}.pem and
DIR/{role}-{id}-key.pem (keys 0600). An existing file is never replaced.

  node       fillcast://node/{id}, client and server for --hosts: a control-plane
             node's --tls-cert (its --tls-ca is DIR/ca.pem)
  appliance  fillcast://appliance/{id}, client, and server for --hosts
  operator   fillcast://operator/{name}, client only
  server     no identity, server for --hosts: an origin's --tls-cert

Example, a lab of three nodes and two appliances on one machine:
  fillcast certs --dir certs --nodes n1,n2,n3 --appliances a1,a2 --servers origin`

func runCerts(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certs", certsSynopsis, stderr)
	dir := fs.String("dir", "", "`DIR` of the CA and the certificates")
	nodes := fs.String("nodes", "", "control-plane node ids, comma-separated")
	appliances := fs.String("appliances", "", "appliance ids, comma-separated")
	operators := fs.String("operators", "", "operator names, comma-separated")
	servers := fs.String("servers", "", "names of server-only certificates (an origin), comma-separated")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "DNS names and IP addresses that node, appliance and server certificates serve, comma-separated")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("%w: --dir is required", errUsage)
	}
	ca, err := pki.LoadCA(*dir)
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "using the CA in %s\n", filepath.Join(*dir, pki.CAFile))
	case errors.Is(err, os.ErrNotExist):
		if ca, err = pki.NewCA(*dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "made a CA: %s, %s\n", filepath.Join(*dir, pki.CAFile), filepath.Join(*dir, pki.CAKeyFile))
	default:
		return err
	}
	hostList := splitList(*hosts)
	for _, set := range []struct {
		role, ids string
		hosts     []string
	}{
		{pki.RoleNode, *nodes, hostList},
		{pki.RoleAppliance, *appliances, hostList},
		{pki.RoleOperator, *operators, nil},
		{pki.RoleServer, *servers, hostList},
	} {
		for _, id := range splitList(set.ids) {
			cert, key, err := pki.Issue(ca, set.role, id, set.hosts, *dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s %s: %s, %s\n", set.role, id, cert, key)
		}
	}
	return nil
}
