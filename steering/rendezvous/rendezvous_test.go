package rendezvous

import (
	"fmt"
	"math"
	"testing"
)

func nodes(weights ...float64) []Node {
	ns := make([]Node, len(weights))
	for i, w := range weights {
		ns[i] = Node{Key: Key(fmt.Sprintf("oca-%02d", i)), Weight: w}
	}
	return ns
}

func first(key uint64, ns []Node) int {
	var buf [64]int
	return Rank(buf[:0], key, ns)[0]
}

// TestKeyStable pins the hash: every control-plane node, old or new, must
// send a title to the same appliances.
func TestKeyStable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want uint64
	}{
		{"", 0xefd01f60ba992926},
		{"t1", 0x51bedeb748030edd},
		{"isp1-ams-oca-01", 0x183d89caf3b2d59f},
	}
	for _, tc := range tests {
		if got := Key(tc.in); got != tc.want {
			t.Errorf("Key(%q) = %#x; want %#x", tc.in, got, tc.want)
		}
	}
	if got, want := Mix(Key("t1"), Key("oca-01")), uint64(0x16e99c51a0c27265); got != want {
		t.Errorf("Mix = %#x; want %#x", got, want)
	}
	if Key("t1") == Key("t2") || Key("a") == Key("b") {
		t.Errorf("Key collides on short inputs")
	}
}

func TestWeightedShares(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		weights []float64
	}{
		{"equal", []float64{1, 1, 1, 1, 1}},
		{"one double", []float64{2, 1, 1, 1}},
		{"mixed", []float64{10, 40, 25, 25}},
	}
	const keys = 200000
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := nodes(tc.weights...)
			total := 0.0
			for _, w := range tc.weights {
				total += w
			}
			got := make([]int, len(ns))
			for k := 0; k < keys; k++ {
				got[first(Key(fmt.Sprint("title-", k)), ns)]++
			}
			for i, w := range tc.weights {
				want := keys * w / total
				if math.Abs(float64(got[i])-want) > 0.03*want+50 {
					t.Errorf("node %d (weight %v) first for %d keys; want about %.0f", i, w, got[i], want)
				}
			}
		})
	}
}

func TestMinimalMovement(t *testing.T) {
	t.Parallel()
	ns := nodes(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	without := append(append([]Node(nil), ns[:3]...), ns[4:]...)
	withExtra := append(append([]Node(nil), ns...), Node{Key: Key("new"), Weight: 1})
	const keys = 50000
	movedLeave, movedJoin := 0, 0
	for k := 0; k < keys; k++ {
		key := Key(fmt.Sprint("t", k))
		before := first(key, ns)
		after := first(key, without)
		if after >= 3 {
			after++ // index in ns
		}
		if before != after {
			movedLeave++
			if before != 3 {
				t.Fatalf("key %d moved from %d to %d though node 3 left", k, before, after)
			}
		}
		joined := first(key, withExtra)
		if joined != before {
			movedJoin++
			if joined != len(ns) {
				t.Fatalf("key %d moved from %d to %d though only a new node joined", k, before, joined)
			}
		}
	}
	for _, m := range []struct {
		name  string
		moved int
	}{{"leave", movedLeave}, {"join", movedJoin}} {
		if frac := float64(m.moved) / keys; frac > 0.12 || frac < 0.07 {
			t.Errorf("%s moved %.3f of keys; want about 1/10 or 1/11", m.name, frac)
		}
	}
}

func TestRankDeterministic(t *testing.T) {
	t.Parallel()
	ns := nodes(1, 3, 2, 1, 5)
	a := Rank(nil, Key("t9"), ns)
	b := Rank(nil, Key("t9"), ns)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("Rank = %v then %v; want the same order", a, b)
	}
	seen := map[int]bool{}
	for _, i := range a {
		seen[i] = true
	}
	if len(a) != len(ns) || len(seen) != len(ns) {
		t.Errorf("Rank = %v; want a permutation of %d nodes", a, len(ns))
	}
}

func FuzzScore(f *testing.F) {
	f.Add(uint64(0), uint64(0), 1.0)
	f.Add(^uint64(0), uint64(42), 1e-9)
	f.Add(uint64(7), ^uint64(0), 1e9)
	f.Fuzz(func(t *testing.T, key, node uint64, w float64) {
		u := Unit(Mix(key, node))
		if !(u > 0 && u < 1) {
			t.Fatalf("Unit = %v; want in (0, 1)", u)
		}
		if !(w > 0) || math.IsInf(w, 0) {
			return
		}
		s := Score(key, node, w)
		if !(s > 0) || math.IsNaN(s) {
			t.Fatalf("Score(%d, %d, %v) = %v; want positive", key, node, w, s)
		}
	})
}

func TestNegLog(t *testing.T) {
	t.Parallel()
	for _, u := range []float64{Unit(0), Unit(^uint64(0)), 1e-300, 0.5, 0.999999, 0.25, 0.7, 1.0 / 3, 0.1} {
		got, want := negLog(u), -math.Log(u)
		if math.Abs(got-want) > 1e-9*math.Abs(want)+1e-15 {
			t.Errorf("negLog(%v) = %v; want %v", u, got, want)
		}
	}
}

func FuzzNegLog(f *testing.F) {
	f.Add(uint64(12345))
	f.Fuzz(func(t *testing.T, m uint64) {
		u := Unit(m)
		got, want := negLog(u), -math.Log(u)
		if !(got > 0) || math.Abs(got-want) > 1e-9*want+1e-15 {
			t.Fatalf("negLog(%v) = %v; want %v", u, got, want)
		}
	})
}
