package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
)

// Takedowns at the origin. Deleting a title records a pending origin
// purge in the replicated state (fsm.TakedownRecord); the leader's
// Manager works them off: it sends the origin DELETE /{title} with the
// admin token and the takedown's token bound, and records the purge
// done (fsm.OpOriginPurged) once the origin has answered. A down origin
// only delays it: the purge stays pending, and the leader (this one or
// the next) tries again every Config.PurgeEvery. Writing the title again
// is refused meanwhile (fsm.ErrTakingDown).

// errDeletedWhileIngesting fails a job whose title was deleted while it
// ran: the files it published are deleted again.
var errDeletedWhileIngesting = errors.New("ingest: the title was deleted while it was being ingested; its published files were removed")

// purgeLoop works off the pending origin purges while this node leads,
// until ctx is done.
func (m *Manager) purgeLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.PurgeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.purgePending(ctx)
		}
	}
}

// purgePending deletes the files of every pending takedown from the
// origin, oldest first, and records each purge. It stops at the first
// failure: the origin is down, or refuses; the next round tries again.
// It takes turns with the publishing of file lists (lists.go).
func (m *Manager) purgePending(ctx context.Context) {
	if m.d.Leader != nil && !m.d.Leader() {
		return
	}
	m.originMu.Lock()
	defer m.originMu.Unlock()
	var pending []fsm.Takedown
	m.state.Read(func(s *fsm.State) { pending = s.Takedowns.Pending() })
	for _, td := range pending {
		if err := m.unpublish(ctx, td.Title, td.TokensUntil); err != nil {
			if ctx.Err() == nil {
				m.log.Warn("ingest: takedown waits for the origin", "title", td.Title, "seq", td.Seq, "err", err)
			}
			return
		}
		done := fsm.Command{Op: fsm.OpOriginPurged, Takedown: &fsm.Takedown{Takedown: fillcast.Takedown{Seq: td.Seq, Title: td.Title}}}
		if err := m.state.Apply(ctx, done); err != nil && !errors.Is(err, fsm.ErrNotFound) {
			m.log.Warn("ingest: record an origin purge", "title", td.Title, "seq", td.Seq, "err", err)
			return
		}
		m.log.Info("ingest: title deleted from the origin", "title", td.Title, "seq", td.Seq)
	}
}

// unpublish deletes title's files from the origin, refusing its tokens
// that expire at or before tokensUntil there (0: none), retried like a
// publish and guarded by the origin's breaker.
func (m *Manager) unpublish(ctx context.Context, title string, tokensUntil int64) error {
	return m.originCall(ctx, func(ctx context.Context) error {
		return m.deleteFile(ctx, title, tokensUntil)
	})
}

func (m *Manager) deleteFile(ctx context.Context, title string, tokensUntil int64) error {
	u := m.cfg.OriginURL + "/" + url.PathEscape(title)
	if tokensUntil > 0 {
		u += "?tokens_until=" + strconv.FormatInt(tokensUntil, 10)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return fmt.Errorf("ingest: delete %s: %w", title, err)
	}
	resp, err := m.originDo(req, "delete "+title)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// deletedMeanwhile reports whether title is gone from the catalog: a job
// that published it then deletes what it published, since the origin
// purge of the takedown may have run before.
func (m *Manager) deletedMeanwhile(ctx context.Context, title string) error {
	var gone bool
	m.state.Read(func(s *fsm.State) { gone = s.Titles[title] == nil })
	if !gone {
		return nil
	}
	if err := m.unpublish(ctx, title, 0); err != nil {
		return err
	}
	return errDeletedWhileIngesting
}
