package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// maxRequestIDLen bounds a command's request id.
const maxRequestIDLen = 160

// keptRequests is how many request ids the state remembers: enough to
// cover the writes of the seconds a retry after a leader change takes.
const keptRequests = 4096

// RequestLog remembers the ids of the latest applied commands, oldest
// first, so that a command proposed twice (a client retrying after the
// leader changed) is applied once. It is part of the replicated state, so
// every node decides the same.
type RequestLog struct {
	ids  []string
	next int // where the next id goes once ids is full
	set  map[string]bool
}

// Seen reports whether id is a recent applied request id. The empty id is
// never seen.
func (l *RequestLog) Seen(id string) bool { return id != "" && l.set[id] }

// Add remembers id, forgetting the oldest beyond keptRequests.
func (l *RequestLog) Add(id string) {
	if id == "" {
		return
	}
	if l.set == nil {
		l.set = map[string]bool{}
	}
	if len(l.ids) < keptRequests {
		l.ids = append(l.ids, id)
	} else {
		delete(l.set, l.ids[l.next])
		l.ids[l.next] = id
		l.next = (l.next + 1) % keptRequests
	}
	l.set[id] = true
}

// ordered returns the ids oldest first.
func (l *RequestLog) ordered() []string {
	out := make([]string, 0, len(l.ids))
	out = append(out, l.ids[l.next:]...)
	return append(out, l.ids[:l.next]...)
}

func (l *RequestLog) clone() *RequestLog {
	c := &RequestLog{}
	for _, id := range l.ordered() {
		c.Add(id)
	}
	return c
}

// MarshalJSON writes the ids oldest first.
func (l *RequestLog) MarshalJSON() ([]byte, error) { return json.Marshal(l.ordered()) }

// UnmarshalJSON reads what MarshalJSON wrote.
func (l *RequestLog) UnmarshalJSON(b []byte) error {
	var ids []string
	if err := json.Unmarshal(b, &ids); err != nil {
		return err
	}
	*l = RequestLog{}
	for _, id := range ids {
		l.Add(id)
	}
	return nil
}

// Stamp sets c's RequestID from the id of the request that asked for it
// and a digest of the command, so that the request retried with the same
// id (after a leader change) applies once, and one id reused for another
// write does not swallow it. An empty id stamps nothing. Who asked and
// when are left out of the digest: a node sets them anew on a retry.
func (c *Command) Stamp(requestID string) {
	if requestID == "" {
		return
	}
	c.RequestID = ""
	if b, err := c.withoutAudit().Encode(); err == nil {
		sum := sha256.Sum256(b)
		c.RequestID = requestID + "/" + hex.EncodeToString(sum[:8])
	}
}
