// Package pgserver runs a throwaway PostgreSQL: a data directory made
// with initdb in a temporary directory, a server started with pg_ctl
// listening only on a Unix socket there, as the postgres user when the
// caller is root (PostgreSQL refuses to run as root). internal/pgtest
// gives tests one through testing.TB; benchmarks use it directly. A
// server whose starter died without stopping it is stopped by the next
// Start, which finds it by its directory's name and owner file.
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// port only names the socket file: the server listens on no TCP port.
	port = 5432
	// superuser is the role initdb makes and tests connect as.
	superuser = "postgres"
	// dirPrefix names the servers' directories, so that orphans can be
	// found.
	dirPrefix = "fillcast-pgtest-"
	// ownerFile holds the pid of the test binary that started a server.
	ownerFile = "owner"
	// osUser is who runs the server when the tests run as root, which
	// PostgreSQL refuses to run as.
	osUser = "postgres"
)

// Server is one running PostgreSQL: its files under dir, its socket in
// socketDir.
type Server struct {
	bin       string
	dir       string
	dataDir   string
	socketDir string
	// asUser runs the binaries as the postgres user (through runuser)
	// when the tests run as root.
	asUser  bool
	durable bool
}

// Start makes a data directory with initdb and starts a server on
// it, stopping orphans of earlier test binaries first.
func Start() (*Server, error) { return StartWith(Options{}) }

// Options are how a server runs.
type Options struct {
	// Durable keeps PostgreSQL's defaults (fsync, synchronous commit,
	// full-page writes), for benchmarks that measure what a deployment
	// pays; tests leave them off.
	Durable bool
}

// StartWith is Start with o.
func StartWith(o Options) (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	asUser := os.Geteuid() == 0
	// Under root the postgres user must reach the directory, which a
	// TMPDIR under /root would forbid; a Unix socket's path must also be
	// short (107 bytes).
	base := os.TempDir()
	if asUser || len(base) > 50 {
		base = "/tmp"
	}
	sweep(base, bin, asUser)
	dir, err := os.MkdirTemp(base, dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	s := &Server{bin: bin, dir: dir, dataDir: filepath.Join(dir, "data"), socketDir: filepath.Join(dir, "sock"), asUser: asUser, durable: o.Durable}
	if err := s.start(); err != nil {
		s.remove()
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	if err := os.WriteFile(filepath.Join(s.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if err := os.Mkdir(s.socketDir, 0o700); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if s.asUser {
		u, err := user.Lookup(osUser)
		if err != nil {
			return fmt.Errorf("pgserver: running as root, the server must run as the %s user: %w", osUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{s.dir, s.socketDir} {
			if err := os.Chown(d, uid, gid); err != nil {
				return fmt.Errorf("pgserver: %w", err)
			}
		}
	}
	if out, err := s.run("initdb", "-D", s.dataDir, "-U", superuser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return fmt.Errorf("pgserver: initdb: %w\n%s", err, out)
	}
	// Durability is of no use to a test's throwaway server; speed is.
	conf := fmt.Sprintf("\nlisten_addresses = ''\nunix_socket_directories = '%s'\nport = %d\n", s.socketDir, port)
	if !s.durable {
		conf += "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
	}
	f, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	logFile := filepath.Join(s.dir, "server.log")
	if out, err := s.run("pg_ctl", "-D", s.dataDir, "-l", logFile, "-w", "-t", "60", "start"); err != nil {
		logged, _ := os.ReadFile(logFile)
		return fmt.Errorf("pgserver: pg_ctl start: %w\n%s\n%s", err, out, logged)
	}
	return nil
}

// Stop stops the server and removes its files.
func (s *Server) Stop() error {
	_, err := s.run("pg_ctl", "-D", s.dataDir, "-m", "fast", "-w", "-t", "30", "stop")
	if err != nil {
		if _, err2 := s.run("pg_ctl", "-D", s.dataDir, "-m", "immediate", "-w", "stop"); err2 != nil {
			return fmt.Errorf("pgserver: stop the server in %s: %w", s.dir, err)
		}
	}
	return s.remove()
}

func (s *Server) remove() error {
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

// run runs one of PostgreSQL's programs, as the postgres user if need be,
// and returns its output.
func (s *Server) run(prog string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(s.bin, prog)
	var cmd *exec.Cmd
	if s.asUser {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", osUser, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	// The postgres user may not be allowed in the test's directory.
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// findBin returns the directory of the newest PostgreSQL's binaries.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if executable(filepath.Join(d, "initdb")) && executable(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

// version is the major version of /usr/lib/postgresql/VERSION/bin.
func version(binDir string) int {
	n, _ := strconv.Atoi(strings.SplitN(filepath.Base(filepath.Dir(binDir)), ".", 2)[0])
	return n
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// sweep stops the servers of test binaries that died without stopping
// them, and removes their directories. A directory whose owner is alive,
// or not yet written, is left alone.
func sweep(base, bin string, asUser bool) {
	dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		s := &Server{bin: bin, dir: dir, dataDir: filepath.Join(dir, "data"), asUser: asUser}
		if _, err := os.Stat(filepath.Join(s.dataDir, "postmaster.pid")); err == nil {
			s.run("pg_ctl", "-D", s.dataDir, "-m", "immediate", "-w", "stop")
		}
		s.remove()
	}
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Exec runs one statement on the server's postgres database.
func (s *Server) Exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("connect to the test server: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// DSN is the connection string of database db on the server.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", s.socketDir, port, superuser, db)
}

var ErrNoBinaries = errors.New("pgserver: PostgreSQL's initdb and pg_ctl were not found in /usr/lib/postgresql/*/bin nor on PATH")

// Dir is the directory holding the server's files.
func (s *Server) Dir() string { return s.dir }

// Version is what the server's postgres binary says it is.
func (s *Server) Version() string {
	out, _ := s.run("postgres", "--version")
	return strings.TrimSpace(string(out))
}
