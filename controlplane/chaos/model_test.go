package chaos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op builds an operation on title "t" over [call, ret] (in ms; ret < 0
// for never).
func op(client int, kind Kind, value string, out Output, call, ret int) Op {
	o := Op{Client: client, Input: Input{Kind: kind, Title: "t", Value: value}, Output: out,
		Call: time.Duration(call) * time.Millisecond, Return: time.Duration(ret) * time.Millisecond}
	if kind == Read {
		o.Input.Value = ""
	}
	if ret < 0 {
		o.Return = Never
	}
	return o
}

func read(client int, saw string, call, ret int) Op {
	return op(client, Read, "", Output{Value: saw}, call, ret)
}

func write(client int, kind Kind, v string, r Result, call, ret int) Op {
	if r == Unknown {
		ret = -1
	}
	return op(client, kind, v, Output{Result: r}, call, ret)
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ops   []Op
		want  porcupine.CheckResult
		stale int // reads StaleReads names
	}{
		{"read before any write finds nothing", []Op{read(0, "", 0, 1), write(1, Create, "a", OK, 2, 3), read(0, "a", 4, 5)}, porcupine.Ok, 0},
		{"create then exists", []Op{write(0, Create, "a", OK, 0, 1), write(1, Create, "b", Exists, 2, 3), read(0, "a", 4, 5)}, porcupine.Ok, 0},
		{"create on an existing title cannot succeed", []Op{write(0, Create, "a", OK, 0, 1), write(1, Create, "b", OK, 2, 3)}, porcupine.Illegal, 0},
		{"exists before any write is impossible", []Op{write(0, Create, "a", Exists, 0, 1)}, porcupine.Illegal, 0},
		{"concurrent writes, either order", []Op{write(0, Update, "a", OK, 0, 10), write(1, Update, "b", OK, 1, 9), read(2, "a", 11, 12), read(2, "a", 13, 14)}, porcupine.Ok, 0},
		{"stale read after an acknowledged update", []Op{write(0, Create, "a", OK, 0, 1), write(1, Update, "b", OK, 2, 3), read(2, "a", 4, 5)}, porcupine.Illegal, 1},
		{"404 after an acknowledged create", []Op{write(0, Create, "a", OK, 0, 1), read(2, "", 2, 3)}, porcupine.Illegal, 1},
		{"a read goes back", []Op{write(0, Update, "a", OK, 0, 1), write(1, Update, "b", OK, 2, 10), read(2, "b", 3, 4), read(2, "a", 5, 6)}, porcupine.Illegal, 0},
		{"an unknown write may be seen late", []Op{write(0, Update, "a", OK, 0, 1), write(1, Update, "b", Unknown, 2, 0), read(2, "a", 3, 4), read(2, "b", 50, 51)}, porcupine.Ok, 0},
		{"an unknown write may never happen", []Op{write(0, Update, "a", OK, 0, 1), write(1, Update, "b", Unknown, 2, 0), read(2, "a", 50, 51)}, porcupine.Ok, 0},
		{"an unknown write cannot be undone", []Op{write(0, Update, "a", OK, 0, 1), write(1, Update, "b", Unknown, 2, 0), read(2, "b", 10, 11), read(2, "a", 50, 51)}, porcupine.Illegal, 0},
		{"an unknown create on an existing title changes nothing", []Op{write(0, Create, "a", OK, 0, 1), write(1, Create, "b", Unknown, 2, 0), read(2, "b", 10, 11)}, porcupine.Illegal, 0},
		{"no value from nowhere", []Op{write(0, Update, "a", OK, 0, 1), read(2, "z", 2, 3)}, porcupine.Illegal, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Check(tc.ops, nil, 10*time.Second)
			if v.Result != tc.want {
				t.Errorf("Check = %s, want %s", v.Result, tc.want)
			}
			if got := len(StaleReads(tc.ops, nil)); got != tc.stale {
				t.Errorf("StaleReads named %d reads, want %d: %v", got, tc.stale, StaleReads(tc.ops, nil))
			}
		})
	}
}

func TestPrune(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ops    []Op
		pruned int
	}{
		{"unseen unknown write after the title exists goes", []Op{write(0, Create, "a", OK, 0, 1), write(1, Update, "b", Unknown, 2, 0), read(2, "a", 3, 4)}, 1},
		{"a seen one stays", []Op{write(0, Create, "a", OK, 0, 1), write(1, Update, "b", Unknown, 2, 0), read(2, "b", 3, 4)}, 0},
		{"one before the title surely exists stays", []Op{write(1, Update, "b", Unknown, 0, 0), write(0, Create, "a", Exists, 1, 2)}, 0},
		{"existence shown by a write still running does not count", []Op{write(0, Create, "a", OK, 0, 5), write(1, Update, "b", Unknown, 2, 0)}, 0},
		{"a read that found the title shows it exists", []Op{write(0, Update, "x", Unknown, 0, 0), read(2, "x", 1, 2), write(1, Create, "b", Unknown, 3, 0)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kept, pruned := Prune(tc.ops)
			if pruned != tc.pruned || len(kept) != len(tc.ops)-tc.pruned {
				t.Errorf("Prune kept %d, pruned %d; want pruned %d of %d", len(kept), pruned, tc.pruned, len(tc.ops))
			}
			// Pruning never changes the verdict.
			full, _ := porcupine.CheckOperationsVerbose(Model(), Porcupine(tc.ops), 10*time.Second)
			if got := Check(tc.ops, nil, 10*time.Second).Result; got != full {
				t.Errorf("pruned history is %s, the full one %s", got, full)
			}
		})
	}
}

// TestVisualize writes porcupine's picture of an illegal history, with
// the faults marked.
func TestVisualize(t *testing.T) {
	ops := []Op{write(0, Create, "a", OK, 0, 1), write(1, Update, "b", OK, 2, 3), read(2, "a", 4, 5)}
	v := Check(ops, nil, 10*time.Second)
	path := filepath.Join(t.TempDir(), "v.html")
	if err := v.Visualize(path, []Fault{{At: 2 * time.Millisecond, Node: 0, What: "partition"}}); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(t.TempDir(), "h.txt")
	if err := WriteText(text, ops, []Fault{{At: 2 * time.Millisecond, What: "partition"}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ path, want string }{{path, "partition n1"}, {text, "read t → a"}} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), f.want) {
			t.Errorf("%s lacks %q", f.path, f.want)
		}
	}
}

func TestStaleReadsNamePartitions(t *testing.T) {
	ops := []Op{write(0, Create, "a", OK, 0, 1), write(1, Update, "b", OK, 2, 3), read(2, "a", 10, 11), read(2, "a", 30, 31)}
	ops[2].Node, ops[3].Node = 1, 1
	faults := []Fault{{At: 5 * time.Millisecond, Node: 1, What: "partition"}, {At: 20 * time.Millisecond, Node: 1, What: "heal"}}
	got := StaleReads(ops, faults)
	if len(got) != 2 || !strings.Contains(got[0], "partitioned since 5ms") || !strings.Contains(got[1], "a connected node") {
		t.Errorf("StaleReads = %q, want the first read from a node partitioned since 5ms, the second from a connected one", got)
	}
}
