package storecheck_test

import (
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/storecheck"
)

type record struct {
	ID      string
	At      time.Time
	Ends    *time.Time
	Renewed []time.Time
	Tags    []string
	Nested  struct{ At time.Time }
	hidden  time.Time
}

func TestInUTC(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2026, time.March, 1, 13, 0, 0, 0, paris)
	utc := at.UTC()
	ends := at.Add(time.Hour)
	in := record{ID: "r1", At: at, Ends: &ends, Renewed: []time.Time{at}, Tags: []string{}, hidden: at}
	in.Nested.At = at
	got := storecheck.InUTC(in)

	endsUTC := ends.UTC()
	want := record{ID: "r1", At: utc, Ends: &endsUTC, Renewed: []time.Time{utc}, Tags: nil, hidden: at}
	want.Nested.At = utc
	if !reflect.DeepEqual(got, want) {
		t.Errorf("InUTC:\n got %+v\nwant %+v", got, want)
	}
	// What the record points to and holds is copied, not changed.
	if in.Ends.Location() != paris || in.Renewed[0].Location() != paris {
		t.Errorf("InUTC changed its argument's pointee or slice: %v, %v", in.Ends, in.Renewed[0])
	}
}

func TestRace(t *testing.T) {
	lose := errors.New("lost")
	const n = 16
	var calls [n]atomic.Int32
	won := storecheck.Race(t, "Race", n, lose, func(i int) error {
		calls[i].Add(1)
		if i%4 == 0 {
			return nil
		}
		return lose
	})
	if won != n/4 {
		t.Errorf("Race: got %d won, want %d", won, n/4)
	}
	for i := range calls {
		if got := calls[i].Load(); got != 1 {
			t.Errorf("Race called fn(%d) %d times, want once", i, got)
		}
	}
}
