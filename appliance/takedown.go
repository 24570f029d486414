package appliance

import (
	"path/filepath"

	"github.com/fillcast/fillcast/appliance/agent"
	"github.com/fillcast/fillcast/appliance/server"
)

// takedownFile is where the agent keeps the takedowns it applied, beside
// the disk tier's objects/ and tmp/ (which the cache alone manages).
const takedownFile = "takedowns.json"

// purger applies the control plane's takedowns (agent.Purger): out of
// the fill plan first, so that no fill brings the title back, then out
// of the cache, fills under way included.
type purger struct{ a *Appliance }

var _ agent.Purger = purger{}

func (p purger) PurgeTitle(title string) {
	prefix, err := server.TitlePrefix(title)
	if err != nil {
		p.a.log.Warn("appliance: takedown of an invalid title id ignored", "title", title, "err", err)
		return
	}
	if p.a.fill != nil {
		p.a.fill.Drop(title)
	}
	n := p.a.cache.Purge(prefix)
	p.a.log.Info("appliance: title taken down", "title", title, "purged", n)
}

func (p purger) PurgeAll() {
	n := p.a.cache.Purge("")
	p.a.log.Warn("appliance: takedown resync: cache emptied", "purged", n)
}

// takedownState is the agent's Config.StateFile: in the cache's (first)
// directory.
func (c Config) takedownState() string {
	dir := c.Cache.Dir
	if dir == "" && len(c.Cache.Dirs) > 0 {
		dir = c.Cache.Dirs[0].Path
	}
	return filepath.Join(dir, takedownFile)
}
