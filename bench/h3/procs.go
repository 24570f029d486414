package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/quic-go/quic-go/http3"
)

// bench owns the server processes of a run.
type bench struct {
	dir   string
	procs []*exec.Cmd
}

// start starts a server process and returns its process id.
func (b *bench) start(name, bin string, args ...string) int {
	return b.startEnv(name, nil, bin, args...)
}

func (b *bench) startEnv(name string, env []string, bin string, args ...string) int {
	logf, err := os.Create(filepath.Join(b.dir, name+".log"))
	check(err)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		fail("start %s: %v", name, err)
	}
	b.procs = append(b.procs, cmd)
	return cmd.Process.Pid
}

// stopAll stops the servers it started, by process id.
func (b *bench) stopAll() {
	for _, c := range b.procs {
		c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range b.procs {
		c.Wait()
	}
}

// servePlain is the comparison server: quic-go's http3.Server over
// http.FileServer, nothing tuned.
func servePlain(args []string) {
	fs := flag.NewFlagSet("plain", flag.ExitOnError)
	root := fs.String("root", "", "directory")
	addr := fs.String("addr", "", "UDP address")
	cert := fs.String("cert", "", "certificate")
	key := fs.String("key", "", "key")
	fs.Parse(args)
	srv := &http3.Server{Addr: *addr, Handler: http.FileServer(http.Dir(*root))}
	if err := srv.ListenAndServeTLS(*cert, *key); err != nil && !errors.Is(err, net.ErrClosed) {
		log.Fatal(err)
	}
}

// raiseUDPBuffers raises net.core.rmem_max and wmem_max to at least n when
// running as root and returns a function that restores them.
func raiseUDPBuffers(n int) func() {
	if os.Geteuid() != 0 {
		fmt.Println("not root: UDP buffer limits left as they are (quic-go logs if they are too small)")
		return func() {}
	}
	var restore []func()
	for _, k := range []string{"rmem_max", "wmem_max"} {
		p := "/proc/sys/net/core/" + k
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		old := strings.TrimSpace(string(b))
		if v, _ := strconv.Atoi(old); v >= n {
			continue
		}
		if err := os.WriteFile(p, []byte(strconv.Itoa(n)), 0o644); err == nil {
			fmt.Printf("sysctl net.core.%s: %s -> %d for this run\n", k, old, n)
			restore = append(restore, func() { os.WriteFile(p, []byte(old), 0o644) })
		}
	}
	return func() {
		for _, r := range restore {
			r()
		}
	}
}
