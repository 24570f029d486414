package fill

import (
	"context"
	"testing"
)

// TestDropStopsFillingATitle: a title dropped (taken down) is out of the
// plan in force: it is not filled again, though the control plane still
// answers the old manifest (a 304 for the same ETag), and its files are
// no longer counted; the other titles fill as before.
func TestDropStopsFillingATitle(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.plan(t, 1, "02:00-14:00", "t1", "t2")
	clk := &clock{t: beforeWindow}
	e, c := w.appliance(t, t.TempDir(), clk, 1e9)
	ctx := context.Background()
	e.pass(ctx) // adopted, nothing filled yet
	e.Drop("t1")
	e.Drop("t9") // not planned: nothing happens
	clk.set(inWindow)
	e.pass(ctx)
	for key := range w.files {
		if got, want := c.Has(key), key[:2] == "t2"; got != want {
			t.Errorf("%s cached: %v, want %v", key, got, want)
		}
	}
	if v, got := e.Complete(); v != 1 || len(got) != 1 || got[0] != "t2" {
		t.Errorf("Complete() = %d, %v; want 1, [t2]", v, got)
	}
	if s := e.Status(); s.PlannedFiles != 3 {
		t.Errorf("planned files %d, want t2's 3", s.PlannedFiles)
	}
}
