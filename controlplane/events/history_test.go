package events

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"reflect"
	"slices"
	"testing"
	"time"
)

// ev is a viewing event of user on title at t0 - 1h + at.
func ev(user, title, typ string, pos, dur float64, at time.Duration) Event {
	return Event{ID: fmt.Sprint(user, title, typ, at), User: user, Title: title, Type: typ, PositionS: pos, DurationS: dur, TS: t0.Add(-time.Hour + at)}
}

func titles(es []Entry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.Title)
	}
	return out
}

func TestHistory(t *testing.T) {
	v := NewViewing()
	v.Apply(1, []Event{
		ev("u", "a", TypePlay, 0, 0, 0),
		ev("u", "a", TypeProgress, 300, 1000, time.Second),
		ev("u", "b", TypePlay, 0, 100, 2*time.Second),
		ev("u", "b", TypeStop, 97, 100, 3*time.Second), // in the credits: finished
		ev("u", "c", TypeComplete, 0, 200, 4*time.Second),
		ev("u", "c", TypePlay, 0, 200, 5*time.Second), // rewatch started at 0
		ev("u", "c", TypeProgress, 50, 200, 6*time.Second),
		ev("u", "a", TypeProgress, 100, 1000, -time.Second), // late, older: ignored for position
		ev("v", "a", TypeComplete, 1000, 1000, 0),
		valid(TypeQoE), valid(TypeSearch), valid(TypeClick), // not viewing: ignored
	})
	h := v.History("u", 0)
	if got, want := titles(h.ContinueWatching), []string{"c", "a"}; !slices.Equal(got, want) {
		t.Fatalf("continue watching = %v, want %v", got, want)
	}
	for _, tt := range []struct {
		e             Entry
		pos, progress float64
	}{{h.ContinueWatching[0], 50, 0.25}, {h.ContinueWatching[1], 300, 0.3}} {
		if tt.e.PositionS != tt.pos || tt.e.Progress != tt.progress {
			t.Errorf("%s at %g (%g), want %g (%g)", tt.e.Title, tt.e.PositionS, tt.e.Progress, tt.pos, tt.progress)
		}
	}
	if got, want := titles(h.Finished), []string{"c", "b"}; !slices.Equal(got, want) {
		t.Errorf("finished = %v, want %v", got, want)
	}
	if got, want := h.Finished[0].UpdatedAt, t0.Add(-time.Hour+6*time.Second); !got.Equal(want) {
		t.Errorf("c updated at %v, want %v", got, want)
	}
	fin := v.Finished("u")
	slices.Sort(fin)
	if want := []string{"b", "c"}; !slices.Equal(fin, want) {
		t.Errorf("Finished = %v, want %v", fin, want)
	}
	watch := v.TitleWatchSeconds()
	if got, want := watch, map[string]float64{"a": 300 + 1000, "b": 97, "c": 200}; !reflect.DeepEqual(got, want) {
		t.Errorf("watch seconds = %v, want %v", got, want)
	}
	weights := map[string]float64{}
	for _, in := range v.Interactions() {
		if in.User == "u" {
			weights[in.Title] = in.Weight
		}
	}
	if got, want := weights, map[string]float64{"a": 0.3, "b": 1, "c": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("weights = %v, want %v", got, want)
	}
	if got := v.History("u", 1); len(got.ContinueWatching) != 1 || len(got.Finished) != 1 {
		t.Errorf("History(limit 1) = %+v, want one entry per list", got)
	}
	if got := v.History("nobody", 5); got.User != "nobody" || len(got.ContinueWatching)+len(got.Finished) != 0 || got.Finished == nil {
		t.Errorf("unknown user history = %+v, want empty lists", got)
	}
}

// TestViewingSeq: a batch at or before the sequence applied is a
// redelivery and counts once; sequence 0 (a batch from no stream) always
// applies and leaves the sequence alone.
func TestViewingSeq(t *testing.T) {
	batch := func(pos float64) []Event {
		return []Event{ev("u", "a", TypeProgress, pos, 1000, time.Duration(pos)*time.Second)}
	}
	tests := []struct {
		seq       uint64
		pos       float64
		wantPos   float64
		wantApply uint64
	}{
		{5, 100, 100, 5},
		{5, 200, 100, 5}, // redelivered
		{3, 300, 100, 5}, // older
		{6, 400, 400, 6},
		{0, 500, 500, 6},
		{7, 600, 600, 7},
	}
	v := NewViewing()
	for _, tt := range tests {
		v.Apply(tt.seq, batch(tt.pos))
		got := v.History("u", 0).ContinueWatching
		if len(got) != 1 || got[0].PositionS != tt.wantPos {
			t.Errorf("after seq %d: %+v, want position %g", tt.seq, got, tt.wantPos)
		}
		if got := v.Applied(); got != tt.wantApply {
			t.Errorf("after seq %d: Applied = %d, want %d", tt.seq, got, tt.wantApply)
		}
	}
}

func TestHistoryBounded(t *testing.T) {
	v := NewViewing()
	batch := make([]Event, 0, MaxTitlesPerUser+1)
	for i := range MaxTitlesPerUser + 1 {
		batch = append(batch, ev("u1", fmt.Sprintf("t%d", i), TypeProgress, 10, 100, time.Duration(i)*time.Millisecond))
	}
	v.Apply(1, batch)
	h := v.History("u1", 0)
	if got, want := len(h.ContinueWatching), MaxTitlesPerUser; got != want {
		t.Errorf("history of %d titles, want %d", got, want)
	}
	if slices.Contains(titles(h.ContinueWatching), "t0") {
		t.Error("the title updated longest ago is still in the history")
	}
}

// fill applies n batches, from sequence from on, of 20 users watching
// 30 titles.
func fill(v *Viewing, from uint64, n int) {
	for i := range n {
		k := int(from) + i
		u, title, at := fmt.Sprintf("user-%d", k%20), fmt.Sprintf("t%d", k%30), time.Duration(k)*time.Second
		batch := []Event{ev(u, title, TypePlay, 0, 0, at), ev(u, title, TypeProgress, float64(k%7)*100, 1000, at+time.Millisecond)}
		if k%3 == 0 {
			batch = append(batch, ev(u, title, TypeComplete, 1000, 1000, at+2*time.Millisecond))
		}
		v.Apply(from+uint64(i), batch)
	}
}

// state is everything a Viewing answers.
type state struct {
	Applied      uint64
	History      []History
	Interactions []Interaction
	Watch        map[string]float64
}

func stateOf(v *Viewing) state {
	s := state{Applied: v.Applied(), Watch: v.TitleWatchSeconds(), Interactions: v.Interactions()}
	for i := range 21 {
		s.History = append(s.History, v.History(fmt.Sprintf("user-%d", i), 0))
	}
	slices.SortFunc(s.Interactions, func(a, b Interaction) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Title, b.Title))
	})
	return s
}

func TestViewingCheckpoint(t *testing.T) {
	v := NewViewing()
	fill(v, 1, 300)
	b, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	r := NewViewing()
	fill(r, 1000, 5) // replaced whole
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	if got, want := stateOf(r), stateOf(v); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored state differs:\n got %+v\nwant %+v", got.History[0], want.History[0])
	}
	// The stream goes on from the checkpoint's sequence, and both agree.
	fill(v, 301, 50)
	fill(r, 1, 350) // the first 300 are redeliveries
	if got, want := stateOf(r), stateOf(v); !reflect.DeepEqual(got, want) {
		t.Errorf("state after the stream went on differs")
	}
	empty := NewViewing()
	b, _ = empty.MarshalBinary()
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got, want := stateOf(r), stateOf(empty); !reflect.DeepEqual(got, want) {
		t.Errorf("restoring an empty checkpoint left %+v", got)
	}
}

// reseal fixes the length and checksum of a checkpoint whose payload was
// edited, so that the structural checks are what refuses it.
func reseal(b []byte) []byte {
	payload := b[snapHeaderLen:]
	binary.LittleEndian.PutUint64(b[len(snapMagic):], uint64(len(payload)))
	binary.LittleEndian.PutUint32(b[len(snapMagic)+8:], crc32.Checksum(payload, castagnoli))
	return b
}

func TestViewingCheckpointCorrupt(t *testing.T) {
	src := NewViewing()
	fill(src, 1, 40)
	good, _ := src.MarshalBinary()
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"header only", good[:snapHeaderLen]},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"flipped payload bit", edit(func(b []byte) []byte { b[snapHeaderLen+5] ^= 0x40; return b })},
		{"flipped checksum", edit(func(b []byte) []byte { b[len(snapMagic)+8] ^= 1; return b })},
		{"truncated", good[:len(good)-1]},
		{"length too long", edit(func(b []byte) []byte { b[len(snapMagic)]++; return b })},
		{"trailing byte, resealed", edit(func(b []byte) []byte { return reseal(append(b, 0)) })},
		{"truncated, resealed", edit(func(b []byte) []byte { return reseal(b[:len(b)-3]) })},
		{"huge user count, resealed", edit(func(b []byte) []byte {
			p := binary.AppendUvarint(b[:snapHeaderLen], 1)
			return reseal(binary.AppendUvarint(p, 1<<40))
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewViewing()
			fill(v, 1, 10)
			before := stateOf(v)
			if err := v.UnmarshalBinary(tt.b); err == nil {
				t.Fatalf("UnmarshalBinary accepted a corrupt checkpoint")
			}
			if got := stateOf(v); !reflect.DeepEqual(got, before) {
				t.Errorf("a refused checkpoint changed the state")
			}
		})
	}
}

func FuzzViewingUnmarshal(f *testing.F) {
	v := NewViewing()
	fill(v, 1, 5)
	b, _ := v.MarshalBinary()
	f.Add(b)
	f.Add([]byte(snapMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Reseal most inputs so that the fuzzer gets past the checksum.
		if len(b) >= snapHeaderLen && b[len(b)-1]&1 == 0 {
			copy(b, snapMagic)
			reseal(b)
		}
		v := NewViewing()
		if err := v.UnmarshalBinary(b); err != nil {
			if v.Applied() != 0 || len(v.users) != 0 {
				t.Fatalf("a refused checkpoint changed the state")
			}
			return
		}
		again, err := v.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		r := NewViewing()
		if err := r.UnmarshalBinary(again); err != nil {
			t.Fatalf("a checkpoint of a restored state does not restore: %v", err)
		}
	})
}
