package cluster

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fillcast/fillcast/controlplane/atomicfile"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// BackupPath serves a consistent copy of the replicated state (admin).
const BackupPath = "/v1/cluster/backup"

// backupMagic opens every backup file.
const backupMagic = "FILLCAST-BACKUP 1"

// BackupHeader describes a backup file: the line after backupMagic.
type BackupHeader struct {
	// Index is the raft log index the state reflects.
	Index uint64 `json:"index"`
	// Node is the node that served it; Taken when.
	Node  string    `json:"node"`
	Taken time.Time `json:"taken"`
	// Bytes and SHA256 cover the state that follows the header.
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Backup takes a copy of the replicated state after catching up
// linearizably (so that it has every write acknowledged before the call)
// and returns the log index it reflects and a function writing it as a
// snapshot holds it.
func (n *Node) Backup(ctx context.Context) (uint64, func(io.Writer) error, error) {
	if err := n.CatchUp(ctx); err != nil {
		return 0, nil, err
	}
	index, write := n.fsm.Backup()
	return index, write, nil
}

// WriteBackupFile writes a backup file at path from state (what Backup
// wrote) of index: it checks that the state decodes whole, then writes
// the header and the state under a temporary name, syncs and renames it,
// so that path is either the old file or a whole new one. It returns the
// header written.
func WriteBackupFile(path string, state io.Reader, index uint64, node string) (BackupHeader, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".backup-*")
	if err != nil {
		return BackupHeader{}, fmt.Errorf("cluster: backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil { // keys and password hashes
		return BackupHeader{}, fmt.Errorf("cluster: backup: %w", err)
	}
	h := BackupHeader{Index: index, Node: node, Taken: time.Now().UTC()}
	// The state goes in after a header of fixed length: rewritten once
	// its size and digest are known.
	if _, err := tmp.Seek(int64(headerRoom), io.SeekStart); err != nil {
		return h, fmt.Errorf("cluster: backup: %w", err)
	}
	sum := sha256.New()
	scratch := fsm.New(nil)
	cw := &countingWriter{w: io.MultiWriter(tmp, sum)}
	if err := scratch.Restore(io.NopCloser(io.TeeReader(state, cw))); err != nil {
		return h, fmt.Errorf("cluster: backup: the state does not decode: %w", err)
	}
	if _, err := io.Copy(cw, state); err != nil { // anything after the values: kept, and checked at restore
		return h, fmt.Errorf("cluster: backup: %w", err)
	}
	h.Bytes, h.SHA256 = cw.n, hex.EncodeToString(sum.Sum(nil))
	head, err := encodeHeader(h)
	if err != nil {
		return h, err
	}
	if _, err := tmp.WriteAt(head, 0); err != nil {
		return h, fmt.Errorf("cluster: backup: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return h, fmt.Errorf("cluster: backup: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return h, fmt.Errorf("cluster: backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return h, fmt.Errorf("cluster: backup: %w", err)
	}
	return h, atomicfile.SyncDir(filepath.Dir(path))
}

// headerRoom is the bytes before the state: the magic line and the
// header's JSON line, padded with spaces.
const headerRoom = 512

func encodeHeader(h BackupHeader) ([]byte, error) {
	j, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("cluster: backup: %w", err)
	}
	line := backupMagic + "\n" + string(j)
	if len(line)+1 > headerRoom {
		return nil, fmt.Errorf("cluster: backup: header of %d bytes", len(line))
	}
	b := make([]byte, headerRoom)
	copy(b, line)
	for i := len(line); i < headerRoom-1; i++ {
		b[i] = ' '
	}
	b[headerRoom-1] = '\n'
	return b, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadBackup reads a backup file into a new state machine, checking its
// header, size and digest: a truncated or altered file is an error.
func ReadBackup(r io.Reader) (*fsm.FSM, BackupHeader, error) {
	var h BackupHeader
	head := make([]byte, headerRoom)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, h, fmt.Errorf("cluster: restore: not a backup file (%v)", err)
	}
	adv, line, _ := bufio.ScanLines(head, true)
	if string(line) != backupMagic {
		return nil, h, errors.New("cluster: restore: not a backup file (no " + backupMagic + " line)")
	}
	if err := json.Unmarshal(head[adv:], &h); err != nil || h.SHA256 == "" || h.Bytes <= 0 {
		return nil, h, fmt.Errorf("cluster: restore: unreadable backup header (%v)", err)
	}
	sum := sha256.New()
	body := &checkedReader{r: io.LimitReader(r, h.Bytes), sum: sum}
	f := fsm.New(nil)
	if err := f.Restore(io.NopCloser(body)); err != nil {
		return nil, h, fmt.Errorf("cluster: restore: %w", err)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return nil, h, fmt.Errorf("cluster: restore: %w", err)
	}
	if body.n != h.Bytes || hex.EncodeToString(sum.Sum(nil)) != h.SHA256 {
		return nil, h, fmt.Errorf("cluster: restore: the backup is damaged: %d of %d bytes, digest mismatch", body.n, h.Bytes)
	}
	return f, h, nil
}

type checkedReader struct {
	r   io.Reader
	sum hash.Hash
	n   int64
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.sum.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// Restore seeds dataDir with the state of a backup, as a cluster of one
// voter, id at raftAddr: started on that directory (with the same id and
// raft address), the node elects itself and serves the backup's state; the
// old cluster's members are forgotten. dataDir must hold no raft state.
func Restore(backup io.Reader, dataDir, id, raftAddr string) (BackupHeader, error) {
	if id == "" || raftAddr == "" || dataDir == "" {
		return BackupHeader{}, fmt.Errorf("cluster: restore: %w: needs a data directory, an id and a raft address", fsm.ErrInvalid)
	}
	dir := filepath.Join(dataDir, "raft")
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return BackupHeader{}, fmt.Errorf("cluster: restore: %s already holds a node's raft state: restore into an empty data directory", dir)
	}
	f, h, err := ReadBackup(backup)
	if err != nil {
		return h, err
	}
	f.ResetMembership()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return h, fmt.Errorf("cluster: restore: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hclog.NewNullLogger())
	if err != nil {
		return h, fmt.Errorf("cluster: restore: %w", err)
	}
	index := max(h.Index, 1)
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(raftAddr)}}}
	// The store encodes the configuration's legacy peer list with a
	// transport; the in-memory one encodes an address as TCP's does.
	_, trans := raft.NewInmemTransport(raft.ServerAddress(raftAddr))
	defer trans.Close()
	sink, err := snaps.Create(raft.SnapshotVersionMax, index, 1, conf, index, trans)
	if err != nil {
		return h, fmt.Errorf("cluster: restore: %w", err)
	}
	_, write := f.Backup()
	if err := write(sink); err != nil {
		sink.Cancel()
		return h, fmt.Errorf("cluster: restore: %w", err)
	}
	if err := sink.Close(); err != nil {
		return h, fmt.Errorf("cluster: restore: %w", err)
	}
	_, err = newIncarnation(dir)
	return h, err
}
