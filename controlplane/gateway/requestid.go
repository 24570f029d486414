package gateway

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
)

// maxRequestIDLen bounds an incoming X-Request-Id that is honoured.
const maxRequestIDLen = 128

// validRequestID reports whether an incoming X-Request-Id may be reused:
// short, and only characters that are safe in logs, headers and JSON.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == ':' || c == '=' || c == '/' || c == '+') {
			return false
		}
	}
	return true
}

// idGenerator makes request ids unique within the process and, through a
// random prefix chosen at start, across processes: "<12 hex>-<base36 n>".
// A counter is much cheaper than reading randomness on every request. The
// same random bytes seed the trace and span ids (see spanContext).
type idGenerator struct {
	prefix string
	n      atomic.Uint64
	seed   [2]uint64
	spans  atomic.Uint64
}

func newIDGenerator(r io.Reader) (*idGenerator, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("gateway: read the random seed of request and trace ids: %w", err)
	}
	g := &idGenerator{prefix: hex.EncodeToString(b[:6]) + "-"}
	g.seed[0], g.seed[1] = binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
	return g, nil
}

func (g *idGenerator) next() string {
	var buf [32]byte
	b := append(buf[:0], g.prefix...)
	b = strconv.AppendUint(b, g.n.Add(1), 36)
	return string(b)
}
