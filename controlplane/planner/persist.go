package planner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/fillcast/fillcast/controlplane/atomicfile"
)

// Restore loads the tracker saved at Config.SnapshotPath, if any: before
// Run, and before the catalog replays into the planner. A file that
// cannot be read or parsed is logged and left alone: the planner then
// starts from no history, as a new cluster does, rather than refuse to
// start.
func (p *Planner) Restore() {
	if p.cfg.SnapshotPath == "" {
		return
	}
	b, err := os.ReadFile(p.cfg.SnapshotPath)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		err = p.tracker.Restore(b)
	}
	if err != nil {
		p.log.Warn("planner: popularity not restored; starting without history", "path", p.cfg.SnapshotPath, "err", err)
		return
	}
	p.log.Info("planner: popularity restored", "path", p.cfg.SnapshotPath, "regions", len(p.tracker.Regions()))
}

// save writes the tracker to Config.SnapshotPath atomically: a crash
// leaves the previous file or the new one, never half of one.
func (p *Planner) save() error {
	if p.cfg.SnapshotPath == "" {
		return nil
	}
	b, err := p.tracker.Snapshot()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p.cfg.SnapshotPath, b); err != nil {
		return fmt.Errorf("planner: save popularity: %w", err)
	}
	return nil
}
