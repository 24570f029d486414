package api

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/fillcast/fillcast/controlplane/fsm"
)

// The cluster operations of the API tests' single-node stand-in: the
// real ones are tested on raft nodes (controlplane TestMembership,
// TestBackupRestore, TestReadyz).

func (n *localNode) RemoveMember(_ context.Context, id, _ string) error {
	return fmt.Errorf("api test: %w: no member %s", fsm.ErrNotFound, id)
}

func (n *localNode) ServeRemove(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNotImplemented)
}

func (n *localNode) Backup(context.Context) (uint64, func(io.Writer) error, error) {
	index, write := n.f.Backup()
	return index, write, nil
}

func (n *localNode) Ready() error { return nil }
