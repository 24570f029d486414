package placement

import (
	"maps"
	"slices"
)

// Change is how one appliance's titles differ between two plans.
type Change struct {
	Appliance string
	Add       []string // titles to fill, sorted
	Remove    []string // titles no longer planned, sorted
}

// Diff returns the changes from prev to next, one per appliance whose
// titles differ, sorted by appliance id. An appliance missing from a plan
// counts as holding nothing there; a nil plan holds nothing.
func Diff(prev, next *Plan) []Change {
	var ids []string
	seen := map[string]bool{}
	for _, p := range []*Plan{prev, next} {
		if p == nil {
			continue
		}
		for id := range p.Holds {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	var out []Change
	for _, id := range ids {
		add, remove := sortedDiff(holds(next, id), holds(prev, id))
		if len(add) > 0 || len(remove) > 0 {
			out = append(out, Change{Appliance: id, Add: add, Remove: remove})
		}
	}
	return out
}

func holds(p *Plan, id string) []string {
	if p == nil {
		return nil
	}
	return p.Holds[id]
}

// sortedDiff returns what is in a and not b, and what is in b and not a,
// for sorted a and b.
func sortedDiff(a, b []string) (onlyA, onlyB []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			onlyA = append(onlyA, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return onlyA, onlyB
}

// Same reports whether p and q plan the same titles on the same
// appliances and leave the same titles unplaced, whatever their versions.
func (p *Plan) Same(q *Plan) bool {
	if p == nil || q == nil {
		return p == q
	}
	return slices.Equal(p.Unplaced, q.Unplaced) &&
		maps.EqualFunc(p.Holds, q.Holds, func(a, b []string) bool { return slices.Equal(a, b) })
}

// Bytes returns the total size of titles; titles missing from size count
// 0. Bytes(c.Add, size) is what a Change makes an appliance fill.
func Bytes(titles []string, size map[string]int64) int64 {
	var n int64
	for _, t := range titles {
		n += size[t]
	}
	return n
}
