package fsm

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
)

func takedownOf(title string, origin bool) *Takedown {
	return &Takedown{Takedown: fillcast.Takedown{Title: title, At: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC), TokensUntil: 1_800_000_000}, Origin: origin}
}

// TestTakedownCommands: a takedown needs the title to exist, numbers
// itself, keeps the origin purge pending until confirmed, refuses the
// title written again meanwhile, and survives a snapshot.
func TestTakedownCommands(t *testing.T) {
	t.Parallel()
	f := New(nil)
	steps := []struct {
		name string
		cmd  Command
		want error // nil, or what the error wraps
	}{
		{"create t1", Command{Op: OpCreateTitle, Title: readyTitle("t1")}, nil},
		{"create t2", Command{Op: OpCreateTitle, Title: readyTitle("t2")}, nil},
		{"take down an unknown title", Command{Op: OpDeleteTitle, ID: "t9", Takedown: takedownOf("t9", true)}, ErrNotFound},
		{"takedown of another title", Command{Op: OpDeleteTitle, ID: "t1", Takedown: takedownOf("t2", true)}, ErrInvalid},
		{"takedown without a bound", Command{Op: OpDeleteTitle, ID: "t1", Takedown: &Takedown{Takedown: fillcast.Takedown{Title: "t1"}}}, ErrInvalid},
		{"take down t1", Command{Op: OpDeleteTitle, ID: "t1", Takedown: takedownOf("t1", true)}, nil},
		{"take down t1 again", Command{Op: OpDeleteTitle, ID: "t1", Takedown: takedownOf("t1", true)}, ErrNotFound},
		{"create t1 while its origin purge is pending", Command{Op: OpCreateTitle, Title: readyTitle("t1")}, fillcast.ErrConflict},
		{"put t1 while its origin purge is pending", Command{Op: OpPutTitle, Title: readyTitle("t1")}, ErrTakingDown},
		{"take down t2 without an origin", Command{Op: OpDeleteTitle, ID: "t2", Takedown: takedownOf("t2", false)}, nil},
		{"create t2 again", Command{Op: OpCreateTitle, Title: readyTitle("t2")}, nil},
		{"confirm a purge of the wrong seq", Command{Op: OpOriginPurged, Takedown: &Takedown{Takedown: fillcast.Takedown{Title: "t1", Seq: 2}}}, ErrNotFound},
		{"confirm without a seq", Command{Op: OpOriginPurged, Takedown: &Takedown{Takedown: fillcast.Takedown{Title: "t1"}}}, ErrInvalid},
		{"confirm t1's purge", Command{Op: OpOriginPurged, Takedown: &Takedown{Takedown: fillcast.Takedown{Title: "t1", Seq: 1}}}, nil},
		{"create t1 again", Command{Op: OpCreateTitle, Title: readyTitle("t1")}, nil},
		{"plain delete", Command{Op: OpDeleteTitle, ID: "t2"}, nil},
	}
	for i, s := range steps {
		r := f.Apply(logOf(t, uint64(i+1), s.cmd))
		err, _ := r.(error)
		if (s.want == nil) != (err == nil) || (s.want != nil && !errors.Is(err, s.want)) {
			t.Fatalf("%s: Apply = %v, want %v", s.name, r, s.want)
		}
	}
	f.Read(func(s *State) {
		r := s.Takedowns
		if r.Seq != 2 || len(r.Log) != 2 || r.Log[0].Title != "t1" || r.Log[1].Seq != 2 || len(r.Pending()) != 0 {
			t.Errorf("record %+v, want t1 #1 and t2 #2, nothing pending", r)
		}
	})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var out sink
	if err := snap.Persist(&out); err != nil {
		t.Fatal(err)
	}
	g := New(nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(out.Bytes()))); err != nil {
		t.Fatal(err)
	}
	var want, got *TakedownRecord
	f.Read(func(s *State) { want = s.Takedowns })
	g.Read(func(s *State) { got = s.Takedowns })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("restored record %+v, want %+v", got, want)
	}
}

// TestTakedownReply: what a heartbeat is answered with, by what the
// appliance has applied, of a record that has dropped takedowns 1 to 4.
func TestTakedownReply(t *testing.T) {
	t.Parallel()
	r := &TakedownRecord{Seq: 7}
	for seq := uint64(5); seq <= 7; seq++ {
		r.Log = append(r.Log, Takedown{Takedown: fillcast.Takedown{Seq: seq, Title: "t" + string(rune('0'+seq))}})
	}
	tests := []struct {
		name   string
		r      *TakedownRecord
		since  uint64
		seqs   []uint64
		resync bool
	}{
		{"current", r, 7, nil, false},
		{"one behind", r, 6, []uint64{7}, false},
		{"at the record's start", r, 4, []uint64{5, 6, 7}, false},
		{"behind the record", r, 3, []uint64{5, 6, 7}, true},
		{"new appliance", r, 0, []uint64{5, 6, 7}, true},
		{"another history", r, 9, []uint64{5, 6, 7}, false},
		{"new appliance, whole record", &TakedownRecord{Seq: 1, Log: []Takedown{{Takedown: fillcast.Takedown{Seq: 1, Title: "t1"}}}}, 0, []uint64{1}, false},
		{"no takedowns", nil, 0, nil, false},
		{"no takedowns, another history", &TakedownRecord{}, 3, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.r.Reply(tt.since)
			var seqs []uint64
			for _, td := range got.Takedowns {
				seqs = append(seqs, td.Seq)
			}
			if !reflect.DeepEqual(seqs, tt.seqs) || got.Resync != tt.resync || (tt.r != nil && got.TakedownSeq != tt.r.Seq) {
				t.Errorf("Reply(%d) = seq %d %v resync %v; want %v resync %v", tt.since, got.TakedownSeq, seqs, got.Resync, tt.seqs, tt.resync)
			}
		})
	}
}

// TestTakedownRecordIsBounded: the record keeps the latest KeptTakedowns.
func TestTakedownRecordIsBounded(t *testing.T) {
	t.Parallel()
	s := newState()
	for i := range KeptTakedowns + 10 {
		s.Titles["t1"] = readyTitle("t1")
		applyTakedown(s, Command{Op: OpDeleteTitle, ID: "t1", Takedown: takedownOf("t1", i%2 == 0)})
	}
	r := s.Takedowns
	if len(r.Log) != KeptTakedowns || r.Log[0].Seq != 11 || r.Seq != KeptTakedowns+10 || len(r.OriginPending) != 1 {
		t.Errorf("record of %d takedowns from #%d, seq %d, %d pending; want %d from #11, 1 pending",
			len(r.Log), r.Log[0].Seq, r.Seq, len(r.OriginPending), KeptTakedowns)
	}
}
