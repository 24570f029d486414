package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/filelist"
)

// File lists at the origin. A title's list of files is one
// content-addressed object, published at filelist.Path(title, digest)
// beside the packaged files. A job publishes its title's list itself
// (publish, run.go). A title written with its files through the API, by
// an operator, a packager of the previous release or a log entry of the
// previous release replayed, has its list kept in the replicated state
// (fsm.PendingList) until it is at the origin: the leader's Manager PUTs
// each one there (PUT is idempotent: the same path always holds the same
// bytes) and then records it published (fsm.OpFilesPublished), which
// drops it from the state. A down origin only delays it: the list stays
// pending and readable from the state, and the leader (this one or the
// next) tries again, backing off.

// errListMismatch fails a publish whose list reads back from the origin
// other than it was written.
var errListMismatch = errors.New("ingest: the file list read back from the origin differs from the one written")

// maxPublishBackoff caps the wait after failed rounds of publishLoop.
const maxPublishBackoff = time.Minute

// putList PUTs title's encoded list of digest to the origin.
func (m *Manager) putList(ctx context.Context, title, digest string, body []byte) error {
	return m.originCall(ctx, func(ctx context.Context) error {
		return m.putObject(ctx, filelist.Path(title, digest), bytes.NewReader(body), int64(len(body)))
	})
}

// verifyList reads title's list of digest back from the origin, size
// bytes long, and checks its digest.
func (m *Manager) verifyList(ctx context.Context, title, digest string, size int) error {
	return m.originCall(ctx, func(ctx context.Context) error {
		return m.checkList(ctx, title, digest, size)
	})
}

func (m *Manager) checkList(ctx context.Context, title, digest string, size int) error {
	path := filelist.Path(title, digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.cfg.OriginURL+"/"+path, nil)
	if err != nil {
		return fmt.Errorf("ingest: verify %s: %w", path, err)
	}
	resp, err := m.originDo(req, "verify "+path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// One byte more than written tells a longer object from the list.
	got, err := io.ReadAll(io.LimitReader(resp.Body, int64(size)+1))
	if err != nil {
		return fmt.Errorf("ingest: verify %s at the origin: %w", path, err)
	}
	if len(got) != size || filelist.Digest(got) != digest {
		return fmt.Errorf("%w: %s: %d bytes of digest %s", errListMismatch, path, len(got), filelist.Digest(got))
	}
	return nil
}

// publishLoop publishes the pending file lists while this node leads,
// every Config.PublishEvery, waiting twice as long after each failed
// round (up to maxPublishBackoff), until ctx is done.
func (m *Manager) publishLoop(ctx context.Context) {
	wait := m.cfg.PublishEvery
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.publishPending(ctx); err != nil {
			wait = min(2*wait, max(maxPublishBackoff, m.cfg.PublishEvery))
			if ctx.Err() == nil {
				m.log.Warn("ingest: file lists wait for the origin", "retry_in", wait, "err", err)
			}
		} else {
			wait = m.cfg.PublishEvery
		}
		t.Reset(wait)
	}
}

// publishPending PUTs every pending file list to the origin and records
// each published. It stops at the first failure that the origin being
// down or overloaded explains (the next round tries again); a list the
// origin refuses (4xx) is skipped, left pending, and reported.
//
// The round works off a copy of the pending lists, and a takedown may
// come meanwhile: each list is read again from the state just before its
// PUT (stillPending) and left alone when it is no longer pending, or its
// title is gone or being purged from the origin. The PUT and the purges
// take turns (Manager.originMu), so that a purge deletes what a PUT
// wrote. Recording the list published names the applied index read
// before the check (publishList): a list of the same path added again
// after it (the title deleted and written again with the same files)
// stays pending.
func (m *Manager) publishPending(ctx context.Context) error {
	if m.d.Leader != nil && !m.d.Leader() {
		return nil
	}
	if m.state.AppliedIndex() == 0 {
		// Restored from a snapshot with nothing applied since: the index
		// a publish names (publishList) is not known yet, and a leader
		// applies an entry of its own term before long.
		return nil
	}
	var pending []*fsm.PendingList
	m.state.Read(func(s *fsm.State) { pending = s.PendingLists() })
	var refused []error
	for _, pl := range pending {
		published, index, err := m.publishList(ctx, pl)
		if err != nil {
			m.metrics.listErrors.Inc()
			if oe := (*originError)(nil); errors.As(err, &oe) && oe.status < 500 {
				refused = append(refused, err)
				continue
			}
			return err
		}
		if published == nil {
			m.log.Debug("ingest: file list no longer to publish", "title", pl.Title, "digest", pl.Digest)
			continue
		}
		done := fsm.Command{Op: fsm.OpFilesPublished, ID: published.Title, Digest: published.Digest, ListIndex: index}
		if err := m.state.Apply(ctx, done); err != nil {
			m.metrics.listErrors.Inc()
			return fmt.Errorf("ingest: record the list %s published: %w", filelist.Path(pl.Title, pl.Digest), err)
		}
		m.metrics.listsPublished.Inc()
		m.log.Debug("ingest: file list published", "title", published.Title, "digest", published.Digest, "bytes", len(published.Body))
	}
	return errors.Join(refused...)
}

// publishList PUTs pl's list to the origin if it is still to be
// published (stillPending), taking turns with the purges, and returns
// the pending list it PUT, or nil, with the applied index read before
// the state was: files_published names it, so that it removes the list
// on every node (whatever index the list was added at on each, as an
// upgrade's replay makes them differ) but not a list added again after
// this check.
func (m *Manager) publishList(ctx context.Context, pl *fsm.PendingList) (*fsm.PendingList, uint64, error) {
	m.originMu.Lock()
	defer m.originMu.Unlock()
	index := m.state.AppliedIndex()
	var cur *fsm.PendingList
	m.state.Read(func(s *fsm.State) { cur = stillPending(s, pl) })
	if cur == nil {
		return nil, 0, nil
	}
	if err := m.putList(ctx, cur.Title, cur.Digest, cur.Body); err != nil {
		return nil, 0, err
	}
	return cur, max(index, cur.Index), nil
}

// stillPending returns the list of pl's path pending in s, unless the
// list is no longer pending, or its title is gone or has a takedown
// whose origin purge is pending.
func stillPending(s *fsm.State, pl *fsm.PendingList) *fsm.PendingList {
	cur := s.FileLists[filelist.Path(pl.Title, pl.Digest)]
	if cur == nil || s.Titles[pl.Title] == nil {
		return nil
	}
	if td := s.Takedowns; td != nil {
		if _, purging := td.OriginPending[pl.Title]; purging {
			return nil
		}
	}
	return cur
}
