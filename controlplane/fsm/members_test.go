package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestRemovedMembers: a removal records the member's incarnation; that
// incarnation cannot announce itself again, a new one of the same id
// can; the record keeps the newest RemovedLen; a backup carries it and
// ResetMembership forgets it.
func TestRemovedMembers(t *testing.T) {
	f := New(nil)
	i := uint64(0)
	apply := func(c Command) error {
		i++
		if err, _ := f.Apply(logOf(t, i, c)).(error); err != nil {
			return err
		}
		return nil
	}
	member := func(id, inc string) Command {
		return Command{Op: OpPutMember, Member: &Member{ID: id, RaftAddr: "127.0.0.1:1", HTTPURL: "http://x", Incarnation: inc}}
	}
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		name string
		cmd  Command
		want error
	}{
		{"n3 announces", member("n3", "old"), nil},
		{"n3 removed", Command{Op: OpRemoveMember, ID: "n3", By: "admin", At: at}, nil},
		{"n3 back on its old directory", member("n3", "old"), ErrRemoved},
		{"n3 on a new directory", member("n3", "new"), nil},
		{"a node older than incarnations", member("n3", ""), nil},
	} {
		if err := apply(step.cmd); !errors.Is(err, step.want) {
			t.Errorf("%s: %v, want %v", step.name, err, step.want)
		}
	}
	f.Read(func(s *State) {
		if r := s.Removed["n3"]; r == nil || r.Incarnation != "old" || r.By != "admin" || !r.At.Equal(at) {
			t.Errorf("removal record: %+v", r)
		}
	})
	for k := range RemovedLen + 5 {
		id := fmt.Sprintf("m%03d", k)
		apply(member(id, "i"+id))
		apply(Command{Op: OpRemoveMember, ID: id, At: at.Add(time.Duration(k+1) * time.Minute)})
	}
	var buf bytes.Buffer
	_, write := f.Backup()
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	g := New(nil)
	if err := g.Restore(nopCloser{&buf}); err != nil {
		t.Fatal(err)
	}
	g.Read(func(s *State) {
		if len(s.Removed) != RemovedLen || s.Removed["n3"] != nil || s.Removed["m004"] != nil || s.Removed[fmt.Sprintf("m%03d", RemovedLen+4)] == nil {
			t.Errorf("after %d removals and a backup: %d kept, want the newest %d", RemovedLen+6, len(s.Removed), RemovedLen)
		}
	})
	g.ResetMembership()
	g.Read(func(s *State) {
		if len(s.Removed) != 0 || len(s.Members) != 0 {
			t.Errorf("ResetMembership left %d members, %d removals", len(s.Members), len(s.Removed))
		}
	})
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }
