package api

import (
	"context"
	"io"
	"net/http"
	"strconv"

	"github.com/fillcast/fillcast/controlplane/gateway"
)

// clusterOps is what the membership, backup and readiness routes need of
// the raft node (*cluster.Node).
type clusterOps interface {
	RemoveMember(ctx context.Context, id, by string) error
	ServeRemove(w http.ResponseWriter, r *http.Request)
	Backup(ctx context.Context) (index uint64, write func(io.Writer) error, err error)
	Ready() error
}

// BackupIndexHeader carries the log index a backup reflects and
// BackupNodeHeader the node that served it; BackupCompleteTrailer, sent
// after the state, says it went out whole.
const (
	BackupIndexHeader     = "Fillcast-Backup-Index"
	BackupNodeHeader      = "Fillcast-Backup-Node"
	BackupCompleteTrailer = "Fillcast-Backup-Complete"
)

// removeMember is DELETE /v1/cluster/members/{id}: an administrator
// removes a (dead) member from the cluster.
func (a *API) removeMember(w http.ResponseWriter, r *http.Request) error {
	if err := a.d.Node.RemoveMember(r.Context(), r.PathValue("id"), gateway.Principal(r.Context()).String()); err != nil {
		return applyError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// backup is GET /v1/cluster/backup: the whole replicated state, read
// linearizably, as the node's snapshots hold it. The trailer says the
// body is whole; a failure half way cuts the connection.
func (a *API) backup(w http.ResponseWriter, r *http.Request) error {
	index, write, err := a.d.Node.Backup(r.Context())
	if err != nil {
		return applyError(err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "no-store")
	h.Set(BackupIndexHeader, strconv.FormatUint(index, 10))
	h.Set(BackupNodeHeader, a.d.Node.Status().ID)
	h.Set("Trailer", BackupCompleteTrailer)
	w.WriteHeader(http.StatusOK)
	if err := write(w); err != nil {
		a.d.Log.Error("api: backup cut short", "err", err)
		panic(http.ErrAbortHandler)
	}
	h.Set(BackupCompleteTrailer, "true")
	return nil
}

// readyz is GET /readyz: 200 when this node should take traffic (a known
// leader, its log caught up, its fleet view fresh), else 503 and why.
// /healthz stays the liveness check.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	err := a.d.Node.Ready()
	if err == nil {
		err = a.d.Fleet.Fresh()
	}
	if err != nil {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, werr := io.WriteString(w, "not ready: "+err.Error()+"\n")
		return werr
	}
	_, err = io.WriteString(w, "ready\n")
	return err
}
