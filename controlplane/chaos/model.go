// Package chaos checks that the control plane keeps its promise of
// linearizable titles while things break, the way Jepsen checks etcd and
// Consul: clients create, update and read a handful of titles through
// every node of a real three-node cluster while a nemesis kills and
// partitions leaders, and the recorded history is checked against a
// sequential model with porcupine.
//
// The pieces are plain library code so that they can be tested on their
// own and run for as long as wanted: Cluster runs the real `fillcast
// controlplane` binary once per node, each in its own network namespace
// (internal/netns); Workload is the clients; Nemesis is the faults;
// History records both and Check judges it. chaos_test.go wires them for
// `go test` (a minute of faults, FILLCAST_CHAOS_DURATION for more;
// FILLCAST_CHAOS_BINARY tests a given fillcast binary instead of this
// tree's), and restart_test.go replays one fault sequence it found.
//
// Each title is a register whose value is the title's name: every write
// writes a value no other write writes, so a read names the write it saw.
// POST /v1/titles is create-if-absent (201, or 409 when the title
// exists), PUT /v1/titles/{id} overwrites, GET /v1/titles/{id} answers
// the name or 404.
package chaos

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// Kind is what an operation does to a title.
type Kind uint8

// The operations of the workload.
const (
	Read   Kind = iota // GET /v1/titles/{id}
	Create             // POST /v1/titles: create if absent
	Update             // PUT /v1/titles/{id}: create or overwrite
)

func (k Kind) String() string {
	switch k {
	case Read:
		return "read"
	case Create:
		return "create"
	case Update:
		return "update"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Input is an operation as called: its kind, its title and, for writes,
// the value (title name) written.
type Input struct {
	Kind  Kind
	Title string
	Value string
}

// Result is how a write ended.
type Result uint8

// Write results.
const (
	// OK: the write was applied (201 or 200).
	OK Result = iota
	// Exists: a create found the title there and changed nothing (409).
	Exists
	// Unknown: the write may or may not have been applied, now or
	// later (a timeout, a 5xx, a connection lost after the request
	// was sent). Its operation never returns.
	Unknown
)

func (r Result) String() string {
	switch r {
	case OK:
		return "ok"
	case Exists:
		return "exists"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("result(%d)", uint8(r))
}

// Output is an operation's answer: Result for writes; Value for reads,
// empty when the title was not found.
type Output struct {
	Result Result
	Value  string
}

// Model is the sequential specification of the titles, partitioned by
// title: the state of one title is its value, "" while it does not
// exist (written values are never empty). Titles are never deleted.
func Model() porcupine.Model {
	return porcupine.Model{
		Partition: partitionByTitle,
		Init:      func() any { return "" },
		Step: func(state, input, output any) (bool, any) {
			return step(state.(string), input.(Input), output.(Output))
		},
		DescribeOperation: func(input, output any) string {
			return describe(input.(Input), output.(Output))
		},
		DescribeState: func(state any) string {
			if state == "" {
				return "(absent)"
			}
			return state.(string)
		},
		DescribeOperationMetadata: func(info any) string {
			if info == nil {
				return ""
			}
			return fmt.Sprint(info)
		},
	}
}

// step applies one operation to a title's value and reports whether the
// answer it got is possible there. An unknown write is taken as applied
// at the point it is linearized: one that was never applied is one
// linearized after everything else, which its never-returning operation
// allows.
func step(state string, in Input, out Output) (bool, string) {
	switch in.Kind {
	case Read:
		return out.Value == state, state
	case Create:
		switch out.Result {
		case OK:
			return state == "", in.Value
		case Exists:
			return state != "", state
		}
		if state == "" {
			return true, in.Value
		}
		return true, state
	case Update:
		return out.Result != Exists, in.Value
	}
	return false, state
}

func describe(in Input, out Output) string {
	if in.Kind == Read {
		v := out.Value
		if v == "" {
			v = "404"
		}
		return fmt.Sprintf("read %s → %s", in.Title, v)
	}
	return fmt.Sprintf("%s %s=%s → %s", in.Kind, in.Title, in.Value, out.Result)
}

func partitionByTitle(history []porcupine.Operation) [][]porcupine.Operation {
	index := map[string]int{}
	var parts [][]porcupine.Operation
	for _, op := range history {
		t := op.Input.(Input).Title
		i, ok := index[t]
		if !ok {
			i = len(parts)
			index[t] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}
