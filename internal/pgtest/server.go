package pgtest

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

// server is one running PostgreSQL: its files under dir, its socket in
// socketDir.
type server struct {
	bin       string
	dir       string
	dataDir   string
	socketDir string
	// asUser runs the binaries as the postgres user (through runuser)
	// when the tests run as root.
	asUser bool
}

// startServer makes a data directory with initdb and starts a server on
// it, stopping orphans of earlier test binaries first.
func startServer() (*server, error) {
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
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &server{bin: bin, dir: dir, dataDir: filepath.Join(dir, "data"), socketDir: filepath.Join(dir, "sock"), asUser: asUser}
	if err := s.start(); err != nil {
		s.remove()
		return nil, err
	}
	return s, nil
}

func (s *server) start() error {
	if err := os.WriteFile(filepath.Join(s.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := os.Mkdir(s.socketDir, 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if s.asUser {
		u, err := user.Lookup(osUser)
		if err != nil {
			return fmt.Errorf("pgtest: running as root, the server must run as the %s user: %w", osUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{s.dir, s.socketDir} {
			if err := os.Chown(d, uid, gid); err != nil {
				return fmt.Errorf("pgtest: %w", err)
			}
		}
	}
	if out, err := s.run("initdb", "-D", s.dataDir, "-U", superuser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	// Durability is of no use to a throwaway server; speed is.
	conf := fmt.Sprintf("\nlisten_addresses = ''\nunix_socket_directories = '%s'\nport = %d\n"+
		"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n", s.socketDir, port)
	f, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	logFile := filepath.Join(s.dir, "server.log")
	if out, err := s.run("pg_ctl", "-D", s.dataDir, "-l", logFile, "-w", "-t", "60", "start"); err != nil {
		logged, _ := os.ReadFile(logFile)
		return fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, logged)
	}
	return nil
}

// stop stops the server and removes its files.
func (s *server) stop() error {
	_, err := s.run("pg_ctl", "-D", s.dataDir, "-m", "fast", "-w", "-t", "30", "stop")
	if err != nil {
		if _, err2 := s.run("pg_ctl", "-D", s.dataDir, "-m", "immediate", "-w", "stop"); err2 != nil {
			return fmt.Errorf("pgtest: stop the server in %s: %w", s.dir, err)
		}
	}
	return s.remove()
}

func (s *server) remove() error {
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// run runs one of PostgreSQL's programs, as the postgres user if need be,
// and returns its output.
func (s *server) run(prog string, args ...string) ([]byte, error) {
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
	return "", errNoBinaries
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
		s := &server{bin: bin, dir: dir, dataDir: filepath.Join(dir, "data"), asUser: asUser}
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
