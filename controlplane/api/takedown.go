package api

import (
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
)

// takedownGrace widens a takedown's token bound: tokens signed up to a
// minute after the deletion (by a node that applied it late, or whose
// clock runs ahead) are refused too. A title created again gets working
// tokens a minute after its takedown.
const takedownGrace = time.Minute

// takedown returns the takedown that deleting title records: now, and
// the latest expiry of a token signed for it before (or within
// takedownGrace after). The origin's files are deleted when this node
// publishes to one.
func (a *API) takedown(title string) *fsm.Takedown {
	at := a.d.Now().UTC()
	return &fsm.Takedown{
		Takedown: fillcast.Takedown{Title: title, At: at, TokensUntil: a.tokenExpiry(at.Add(takedownGrace)).Unix()},
		Origin:   a.d.Ingest != nil,
	}
}

// tokenExpiry returns the expiry of the playback tokens signed at now:
// now plus TokenTTL, rounded up to tokenBucket.
func (a *API) tokenExpiry(now time.Time) time.Time {
	return now.Add(a.cfg.TokenTTL + tokenBucket - time.Nanosecond).Truncate(tokenBucket)
}
