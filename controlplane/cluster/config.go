package cluster

import (
	"net/url"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth/pki"
)

// Config configures a Node. Zero values mean the defaults named.
type Config struct {
	// ID names the node in the cluster. Required, unique.
	ID string
	// DataDir holds the raft log and snapshots. Required.
	DataDir string
	// RaftAddr is the host:port the raft transport listens on and
	// advertises. Required (a concrete address, not :0, unless
	// Deps.Transport is given).
	RaftAddr string
	// HTTPURL is where this node's API is reached by the other nodes.
	// Required.
	HTTPURL string
	// Events is the host:port of this node's event-stream route
	// listener, recorded in the member list for the other nodes' streams
	// to dial; empty for none.
	Events string
	// Bootstrap makes a node without existing state start a new cluster
	// of itself.
	Bootstrap bool
	// Join lists API URLs of nodes of an existing cluster that Run asks
	// to add this node.
	Join []string
	// HeartbeatTimeout and ElectionTimeout tune raft; zero means 1 s.
	HeartbeatTimeout, ElectionTimeout time.Duration
	// ApplyTimeout bounds one write. Zero means 10 s.
	ApplyTimeout time.Duration
	// SnapshotThreshold is how many applied log entries trigger a
	// snapshot (the node's, not raft's: snapshots.go). Zero means 8192.
	SnapshotThreshold uint64
	// SnapshotBytes triggers a snapshot too: once the log entries applied
	// since the last one add up to more bytes, whatever their count (a
	// few large entries fill the disk long before SnapshotThreshold of
	// them). Zero means 64 MiB.
	SnapshotBytes int64
	// TrailingLogs is how many entries a snapshot leaves in the log, so
	// that a follower that far behind catches up from the log instead of
	// receiving a whole snapshot; more of them keep more disk. A snapshot
	// keeps fewer when the latest entries are large: no more than
	// SnapshotBytes/2 of them. Zero means 1024.
	TrailingLogs uint64
	// segmentBytes is the size of the log's segment files; zero means
	// segmentBytes (tests take smaller ones).
	segmentBytes int
	// TLS is this node's certificate and key and the cluster CA, PEM
	// files that Open reads: all three, or none for plain TCP. With
	// them raft runs over mutual TLS, accepting and dialling only peers
	// whose certificate chains to the CA and names a node
	// (fillcast://node/{id}), and node-to-node HTTP presents the
	// certificate; HTTPURL and the Join URLs are then https. The
	// certificate must name this node's ID.
	TLS pki.Files
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return fillcast.ConfigErrorf("cluster", "ID", "required: the node's id, unique in the cluster")
	case c.DataDir == "":
		return fillcast.ConfigErrorf("cluster", "DataDir", "required: the directory of the raft log and snapshots")
	case c.HTTPURL == "":
		return fillcast.ConfigErrorf("cluster", "HTTPURL", "required: the URL other nodes reach this node's API at")
	}
	u, err := url.Parse(c.HTTPURL)
	if err != nil || u.Host == "" {
		return fillcast.ConfigErrorf("cluster", "HTTPURL", "%q is not a URL", c.HTTPURL)
	}
	if c.SnapshotBytes < 0 {
		return fillcast.ConfigErrorf("cluster", "SnapshotBytes", "%d: negative (zero means 64 MiB)", c.SnapshotBytes)
	}
	if c.TrailingLogs > maxTrailingLogs {
		return fillcast.ConfigErrorf("cluster", "TrailingLogs", "%d: want at most %d (zero means 1024)", c.TrailingLogs, maxTrailingLogs)
	}
	if c.Bootstrap && len(c.Join) > 0 {
		return fillcast.ConfigErrorf("cluster", "Join", "a node either bootstraps a new cluster or joins one, not both")
	}
	if err := c.TLS.ValidateMutual(); err != nil {
		return fillcast.InField("TLS", err)
	}
	if c.TLS.IsZero() {
		return nil
	}
	if u.Scheme != "https" {
		return fillcast.ConfigErrorf("cluster", "HTTPURL", "%q: the nodes talk TLS, so want https://", c.HTTPURL)
	}
	for _, j := range c.Join {
		if !strings.HasPrefix(j, "https://") {
			return fillcast.ConfigErrorf("cluster", "Join", "%q: the nodes talk TLS, so want https://", j)
		}
	}
	return nil
}

// maxTrailingLogs bounds Config.TrailingLogs: the node keeps the size of
// that many latest entries in memory (4 bytes each).
const maxTrailingLogs = 1 << 20

func (c Config) withDefaults() Config {
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = time.Second
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = time.Second
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = 64 << 20
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 1024
	}
	if c.segmentBytes == 0 {
		c.segmentBytes = segmentBytes
	}
	return c
}
