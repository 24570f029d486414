package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// outcome is how a child ended.
type outcome struct {
	res childResult
	// killed is a child that died of SIGKILL (the failpoint's).
	killed bool
	// began is when the child said it started the pass (zero if it did
	// not); ended, when it exited.
	began, ended time.Time
	// maxRSS is the child's peak resident memory, in bytes.
	maxRSS int64
}

// passSeconds is how long the pass ran, from the child's marker to its
// exit: the wall time of a killed pass.
func (o outcome) passSeconds() float64 {
	if o.began.IsZero() {
		return 0
	}
	return o.ended.Sub(o.began).Seconds()
}

// spawn runs exe as a child on spec, with env added to this process's
// environment, and waits for it. A child killed by SIGKILL is an
// outcome, not an error; any other failure is an error carrying the end
// of the child's log. The child dies with this process.
func spawn(ctx context.Context, exe string, spec childSpec, env ...string) (outcome, error) {
	var out outcome
	specFile := strings.TrimSuffix(spec.Result, ".result.json") + ".spec.json"
	b, err := json.Marshal(spec)
	if err != nil {
		return out, err
	}
	if err := os.WriteFile(specFile, b, 0o644); err != nil {
		return out, err
	}
	os.Remove(spec.Result)
	logf, err := os.OpenFile(spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return out, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "== %s child %s\n", time.Now().Format(time.RFC3339), spec.Phase)
	cmd := exec.CommandContext(ctx, exe, "-child", specFile)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 10 * time.Second
	marker := &markerWriter{}
	cmd.Stdout = marker
	if err := cmd.Start(); err != nil {
		return out, err
	}
	waitErr := cmd.Wait()
	out.ended, out.began = time.Now(), marker.seen()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		out.maxRSS = ru.Maxrss << 10 // KiB on Linux
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL && ctx.Err() == nil {
		out.killed = true
		return out, nil
	}
	if waitErr != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		return out, fmt.Errorf("%s child: %w\n%s", spec.Phase, waitErr, logTail(spec.Log))
	}
	b, err = os.ReadFile(spec.Result)
	if err != nil {
		return out, fmt.Errorf("%s child wrote no result: %w", spec.Phase, err)
	}
	if err := json.Unmarshal(b, &out.res); err != nil {
		return out, fmt.Errorf("%s child's result: %w", spec.Phase, err)
	}
	return out, nil
}

// markerWriter is a child's stdout: it notes when passMarker's line
// arrives. exec's copying goroutine writes to it; Wait waits for that.
type markerWriter struct {
	mu    sync.Mutex
	line  []byte
	began time.Time
}

func (w *markerWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range p {
		if c != '\n' {
			if len(w.line) < 256 {
				w.line = append(w.line, c)
			}
			continue
		}
		if string(w.line) == passMarker && w.began.IsZero() {
			w.began = time.Now()
		}
		w.line = w.line[:0]
	}
	return len(p), nil
}

func (w *markerWriter) seen() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.began
}

// logTail is the end of a child's log, for errors.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return fmt.Sprintf("(end of %s)\n%s", path, strings.TrimSpace(string(b)))
}

// resultFile is where the child of a phase named name writes its result,
// beside its spec (the same name, .spec.json).
func resultFile(dir, name string) string { return filepath.Join(dir, name+".result.json") }

// errNotKilled is an interrupted pass that ended before the failpoint.
var errNotKilled = errors.New("the pass ended before the failpoint killed it: more subscriptions, or a lower -kill-at")
