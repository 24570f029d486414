package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

// Takedowns. Every heartbeat says which takedown the appliance applied
// last (fillcast.Heartbeat.TakedownSeq), and the control plane answers
// with the later ones (fillcast.HeartbeatReply): so a takedown reaches a
// running appliance with its next heartbeat, and one that was down or
// cut off with the first heartbeat that gets through. For each, the
// agent purges the title (Purger) and refuses the tokens issued for it
// before the takedown (Deps.OnRefusals), until they would have expired
// anyway. An appliance further behind than the control plane's bounded
// record purges everything (Resync): it cannot know what it missed.

// Purger applies takedowns to the appliance.
type Purger interface {
	// PurgeTitle removes a title's objects from memory and disk, and
	// from the fill plan so that it is not filled again.
	PurgeTitle(title string)
	// PurgeAll removes every object: the resync of an appliance further
	// behind than the takedown record.
	PurgeAll()
}

// takedowns is what the agent has applied; only Run's goroutine (beat)
// touches until.
type takedowns struct {
	seq   atomic.Uint64
	until map[string]int64
}

// takedownFile is the JSON of Config.StateFile.
type takedownFile struct {
	Seq         uint64           `json:"takedown_seq"`
	TokensUntil map[string]int64 `json:"tokens_until,omitempty"`
}

// loadTakedowns reads Config.StateFile, if any, and hands its refusals
// on. A file that cannot be read leaves the agent knowing no takedown:
// the control plane then sends all of them again.
func (a *Agent) loadTakedowns() {
	a.takedowns.until = map[string]int64{}
	if a.cfg.StateFile == "" {
		return
	}
	b, err := os.ReadFile(a.cfg.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var f takedownFile
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	if err != nil {
		a.log.Warn("agent: takedown state unreadable; applying every takedown again", "file", a.cfg.StateFile, "err", err)
		return
	}
	a.takedowns.seq.Store(f.Seq)
	for title, u := range f.TokensUntil {
		if fillcast.ValidateTitleID(title) == nil {
			a.takedowns.until[title] = u
		}
	}
	a.prune()
	a.publishRefusals()
}

// applyTakedowns applies a heartbeat's answer: a resync, then each
// takedown in order; then it remembers where it got to.
func (a *Agent) applyTakedowns(r fillcast.HeartbeatReply) {
	if a.takedowns.until == nil {
		a.takedowns.until = map[string]int64{} // beat called without Run (tests)
	}
	if r.Resync {
		a.log.Warn("agent: further behind than the control plane's takedown record; purging the whole cache")
		if a.d.Purger != nil {
			a.d.Purger.PurgeAll()
		}
	}
	changed := a.prune()
	now := a.d.Now().Unix()
	// The tokens are refused before the objects go, so that no request
	// with an old token refills what the purge removes.
	var titles []string
	for _, td := range r.Takedowns {
		if err := fillcast.ValidateTitleID(td.Title); err != nil {
			a.log.Warn("agent: takedown of an invalid title id ignored", "title", td.Title, "err", err)
			continue
		}
		titles = append(titles, td.Title)
		a.log.Info("agent: title taken down", "title", td.Title, "seq", td.Seq, "at", td.At)
		if td.TokensUntil >= now && td.TokensUntil > a.takedowns.until[td.Title] {
			a.takedowns.until[td.Title] = td.TokensUntil
			changed = true
		}
	}
	if changed {
		a.publishRefusals()
	}
	if a.d.Purger != nil {
		for _, title := range titles {
			a.d.Purger.PurgeTitle(title)
		}
	}
	if a.takedowns.seq.Swap(r.TakedownSeq) != r.TakedownSeq || changed {
		if err := a.saveTakedowns(); err != nil {
			a.log.Warn("agent: save takedown state", "err", err)
		}
	}
}

// prune forgets the refusals whose tokens have all expired, and reports
// whether it forgot any.
func (a *Agent) prune() bool {
	now := a.d.Now().Unix()
	n := len(a.takedowns.until)
	maps.DeleteFunc(a.takedowns.until, func(_ string, u int64) bool { return u < now })
	return len(a.takedowns.until) != n
}

func (a *Agent) publishRefusals() {
	if a.d.OnRefusals != nil {
		a.d.OnRefusals(auth.NewTakedowns(a.takedowns.until))
	}
}

// saveTakedowns writes Config.StateFile through a temporary file renamed
// into place, so a crash leaves the old state or the new one; the old
// one only makes the appliance apply takedowns again.
func (a *Agent) saveTakedowns() error {
	if a.cfg.StateFile == "" {
		return nil
	}
	b, err := json.Marshal(takedownFile{Seq: a.takedowns.seq.Load(), TokensUntil: a.takedowns.until})
	if err != nil {
		return fmt.Errorf("agent: encode takedown state: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(a.cfg.StateFile), "."+filepath.Base(a.cfg.StateFile)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("agent: write takedown state: %w", err)
	}
	if err := os.Rename(tmp, a.cfg.StateFile); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("agent: write takedown state: %w", err)
	}
	return nil
}
