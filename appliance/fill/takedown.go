package fill

import "github.com/fillcast/fillcast"

// Drop takes title out of the manifest in force, unpinning its files and
// stopping a fill pass under way, and fetches the manifest again: a
// taken-down title is not filled again. The control plane's manifests
// leave a deleted title out; Drop only keeps the executor from filling
// it until the next one arrives. The manifest's ETag is kept, so a node
// still answering the old manifest gets a 304 and the drop stands.
func (e *Executor) Drop(title string) {
	e.mu.Lock()
	cur := e.manifest
	if cur == nil || !lists(cur.Manifest, title) {
		e.mu.Unlock()
		return
	}
	m := *cur.Manifest
	m.Titles = make([]fillcast.ManifestTitle, 0, len(cur.Titles)-1)
	for _, t := range cur.Titles {
		if t.ID != title {
			m.Titles = append(m.Titles, t)
		}
	}
	next := &manifest{Manifest: &m, etag: cur.etag}
	e.manifest = next
	e.mu.Unlock()
	e.survey(false)
	e.Poke()
}

func lists(m *fillcast.Manifest, title string) bool {
	for _, t := range m.Titles {
		if t.ID == title {
			return true
		}
	}
	return false
}
