package chaos

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Never is the return time of an operation that never returned: an
// unknown write.
const Never = time.Duration(math.MaxInt64)

// Op is one recorded operation.
type Op struct {
	// Client numbers the caller for porcupine's picture: a client whose
	// write ended unknown goes on under a new number, since that write
	// is still open.
	Client int
	// Node is the node (from 0) the operation was sent to.
	Node   int
	Input  Input
	Output Output
	// Call and Return are on the history's monotonic clock; Return is
	// Never for an unknown write.
	Call, Return time.Duration
	// Why says how an unknown write ended (status, error), and carries
	// the request id for finding it in the nodes' logs.
	Why string
}

// Fault is one nemesis action, for the record and the picture.
type Fault struct {
	At   time.Duration
	Node int
	What string // "kill", "partition", "heal", "restart"
}

// History records operations and faults on one monotonic clock. It is
// safe for concurrent use.
type History struct {
	start time.Time

	mu      sync.Mutex
	ops     []Op
	faults  []Fault
	dropped map[string]int // operations not recorded, by reason
}

// NewHistory starts a history's clock at now.
func NewHistory(now time.Time) *History {
	return &History{start: now, dropped: map[string]int{}}
}

// Now is the time on the history's clock.
func (h *History) Now() time.Duration { return time.Since(h.start) }

// Add records an operation.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Drop counts an operation left out of the history, and why: a read
// without an answer, or a write that certainly did not happen.
func (h *History) Drop(reason string) {
	h.mu.Lock()
	h.dropped[reason]++
	h.mu.Unlock()
}

// Fault records a nemesis action on node at the current time.
func (h *History) Fault(node int, what string) {
	h.mu.Lock()
	h.faults = append(h.faults, Fault{At: h.Now(), Node: node, What: what})
	h.mu.Unlock()
}

// Ops returns a copy of the recorded operations, by call time.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	ops := append([]Op(nil), h.ops...)
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	return ops
}

// Faults returns a copy of the recorded faults, in order.
func (h *History) Faults() []Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Fault(nil), h.faults...)
}

// FaultCounts counts the faults by what they were.
func (h *History) FaultCounts() map[string]int {
	out := map[string]int{}
	for _, f := range h.Faults() {
		out[f.What]++
	}
	return out
}

// Dropped returns the counts of operations left out, by reason.
func (h *History) Dropped() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.dropped {
		out[k] = v
	}
	return out
}

// Prune leaves out the unknown writes that cannot change the verdict,
// which otherwise make the check exponential in how many are open at
// once. An unknown write w of value v to title k goes if no read saw v
// and k certainly existed before w was called: an operation that
// returned before w's call saw or made it exist (a create or update
// that succeeded, a create answered "exists", a read that found it).
//
// Why the verdict stays: a history with w left out and linearizable
// stays so with w put back last (w never returns, so last is allowed).
// Conversely, take a linearization with w and remove w. Until the next
// write of k, k reads the value before w instead of v: no read there
// saw v (none did), and that value is not "absent" (k existed before
// w's call, and titles are never deleted), so the creates there still
// find k and answer "exists". Nothing else changes.
func Prune(ops []Op) (kept []Op, pruned int) {
	seen := map[string]bool{} // values some read returned
	for _, op := range ops {
		if op.Input.Kind == Read && op.Output.Value != "" {
			seen[op.Output.Value] = true
		}
	}
	// The earliest return of an operation that showed each title exists.
	exists := map[string]time.Duration{}
	for _, op := range ops {
		shows := op.Return != Never && (op.Input.Kind != Read || op.Output.Value != "")
		if first, ok := exists[op.Input.Title]; shows && (!ok || op.Return < first) {
			exists[op.Input.Title] = op.Return
		}
	}
	for _, op := range ops {
		if op.Input.Kind != Read && op.Output.Result == Unknown && !seen[op.Input.Value] {
			if first, ok := exists[op.Input.Title]; ok && first < op.Call {
				pruned++
				continue
			}
		}
		kept = append(kept, op)
	}
	return kept, pruned
}

// Porcupine converts ops for porcupine: times in nanoseconds, Never as
// the largest time, the node and the request in the metadata.
func Porcupine(ops []Op) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		ret := int64(op.Return)
		meta := fmt.Sprintf("n%d", op.Node+1)
		if op.Why != "" {
			meta += " " + op.Why
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: op.Input, Output: op.Output,
			Call: int64(op.Call), Return: ret, Metadata: meta})
	}
	return out
}

// Verdict is the outcome of Check.
type Verdict struct {
	Result  porcupine.CheckResult
	Checked int // operations given to porcupine
	Pruned  int // unknown writes Prune left out
	Unknown int // unknown writes checked
	// Stale lists reads that certainly returned an old value (see
	// StaleReads); with Result Illegal, the likely reason.
	Stale []string
	info  porcupine.LinearizationInfo
}

// Check prunes ops and checks them against Model within timeout; faults
// annotate the stale reads it lists.
func Check(ops []Op, faults []Fault, timeout time.Duration) Verdict {
	kept, pruned := Prune(ops)
	v := Verdict{Checked: len(kept), Pruned: pruned}
	for _, op := range kept {
		if op.Return == Never {
			v.Unknown++
		}
	}
	v.Result, v.info = porcupine.CheckOperationsVerbose(Model(), Porcupine(kept), timeout)
	if v.Result != porcupine.Ok {
		v.Stale = StaleReads(kept, faults)
	}
	return v
}

// Visualize writes porcupine's HTML picture of the checked history, with
// the faults marked, to path.
func (v Verdict) Visualize(path string, faults []Fault) error {
	var notes []porcupine.Annotation
	for _, f := range faults {
		notes = append(notes, porcupine.Annotation{Tag: "nemesis", Start: int64(f.At),
			Description: fmt.Sprintf("%s n%d", f.What, f.Node+1)})
	}
	v.info.AddAnnotations(notes)
	if err := porcupine.VisualizePath(Model(), v.info, path); err != nil {
		return fmt.Errorf("chaos: visualize: %w", err)
	}
	return nil
}

// StaleReads names the reads that returned a value some acknowledged
// write had certainly replaced before the read was called: the read
// saw v (or nothing), a write of another value w succeeded before the
// read began, and the write of v had returned before w was called (or
// the read found nothing although a write had succeeded). Values are
// unique, so no later write brings v back: no order explains the read.
// It finds the common violation, not every one (porcupine does). A read
// from a node partitioned at the time (by faults) says so.
func StaleReads(ops []Op, faults []Fault) []string {
	writer := map[string]Op{} // value: the write that wrote it
	byTitle := map[string][]Op{}
	for _, op := range ops {
		if op.Input.Kind != Read {
			writer[op.Input.Value] = op
			if op.Output.Result == OK {
				byTitle[op.Input.Title] = append(byTitle[op.Input.Title], op)
			}
		}
	}
	var out []string
	for _, r := range ops {
		if r.Input.Kind != Read {
			continue
		}
		w1, found := writer[r.Output.Value]
		if !found && r.Output.Value != "" {
			out = append(out, fmt.Sprintf("read of %s via n%d at %v–%v returned %s, which no write wrote",
				r.Input.Title, r.Node+1, ms(r.Call), ms(r.Return), r.Output.Value))
			continue
		}
		for _, w2 := range byTitle[r.Input.Title] {
			if w2.Return >= r.Call || w2.Input.Value == r.Output.Value {
				continue
			}
			if found && !(w1.Return < w2.Call) {
				continue
			}
			saw := "404"
			if found {
				saw = fmt.Sprintf("%s (written via n%d, returned %v)", r.Output.Value, w1.Node+1, ms(w1.Return))
			}
			where := "a connected node"
			if since, ok := partitioned(faults, r.Node, r.Call); ok {
				where = fmt.Sprintf("a node partitioned since %v", ms(since))
			}
			out = append(out, fmt.Sprintf("read of %s via n%d (%s) at %v–%v returned %s, but %s=%s was acknowledged (via n%d) at %v",
				r.Input.Title, r.Node+1, where, ms(r.Call), ms(r.Return), saw, w2.Input.Kind, w2.Input.Value, w2.Node+1, ms(w2.Return)))
			break
		}
	}
	return out
}

// partitioned reports whether node was partitioned at time at by faults,
// and since when.
func partitioned(faults []Fault, node int, at time.Duration) (since time.Duration, ok bool) {
	for _, f := range faults {
		if f.At > at {
			break
		}
		if f.Node == node && f.What == "partition" {
			since, ok = f.At, true
		} else if f.Node == node && f.What == "heal" {
			ok = false
		}
	}
	return since, ok
}

func ms(d time.Duration) string {
	if d == Never {
		return "never"
	}
	return d.Round(time.Millisecond).String()
}

// WriteText writes the history as text, one operation a line, with the
// faults among them: for reading next to the nodes' logs.
func WriteText(path string, ops []Op, faults []Fault) error {
	var b strings.Builder
	fi := 0
	for _, op := range ops {
		for ; fi < len(faults) && faults[fi].At <= op.Call; fi++ {
			fmt.Fprintf(&b, "%10v  nemesis   %s n%d\n", ms(faults[fi].At), faults[fi].What, faults[fi].Node+1)
		}
		fmt.Fprintf(&b, "%10v  %-8s  c%-3d n%d  %s  %s\n", ms(op.Call), ms(op.Return), op.Client, op.Node+1, describe(op.Input, op.Output), op.Why)
	}
	for ; fi < len(faults); fi++ {
		fmt.Fprintf(&b, "%10v  nemesis   %s n%d\n", ms(faults[fi].At), faults[fi].What, faults[fi].Node+1)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	return nil
}
