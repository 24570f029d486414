// Package failpoint lets crash tests stop a process at a named step, as
// etcd's gofail does for its robustness tests: a test starts a real
// process with FILLCAST_FAILPOINTS set, and the process kills itself with
// SIGKILL when it reaches the step, leaving whatever a power cut there
// would leave. Unset (always, outside such tests), Hit costs one atomic
// load.
//
// FILLCAST_FAILPOINTS is a comma-separated list of name=action, where the
// action is "kill" (SIGKILL at once) or "kill-after:N" (SIGKILL at the
// Nth hit, counting from 1).
package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Env is the environment variable read once, at the first Hit.
const Env = "FILLCAST_FAILPOINTS"

var (
	once   sync.Once
	active atomic.Bool
	points map[string]*point
)

type point struct {
	at   int64 // the hit that kills, from 1
	hits atomic.Int64
}

// Parse returns the failpoints of a FILLCAST_FAILPOINTS value.
func Parse(v string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, action, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("failpoint: %q: want name=kill or name=kill-after:N", f)
		}
		switch {
		case action == "kill":
			out[name] = 1
		case strings.HasPrefix(action, "kill-after:"):
			n, err := strconv.ParseInt(strings.TrimPrefix(action, "kill-after:"), 10, 64)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("failpoint: %q: want kill-after:N with N ≥ 1", f)
			}
			out[name] = n
		default:
			return nil, fmt.Errorf("failpoint: %q: unknown action %q", f, action)
		}
	}
	return out, nil
}

func load() {
	v := os.Getenv(Env)
	if v == "" {
		return
	}
	ps, err := Parse(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	points = make(map[string]*point, len(ps))
	for name, at := range ps {
		points[name] = &point{at: at}
	}
	active.Store(len(points) > 0)
}

// Hit marks that the process reached the step name; if a failpoint of
// that name is due, the process dies there with SIGKILL.
func Hit(name string) {
	once.Do(load)
	if !active.Load() {
		return
	}
	p := points[name]
	if p == nil || p.hits.Add(1) != p.at {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint: %s: SIGKILL\n", name)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
