package gateway

import (
	"crypto/rand"
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
// A counter is much cheaper than reading randomness on every request.
type idGenerator struct {
	prefix string
	n      atomic.Uint64
}

func newIDGenerator(r io.Reader) (*idGenerator, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [6]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("gateway: read request id prefix: %w", err)
	}
	return &idGenerator{prefix: hex.EncodeToString(b[:]) + "-"}, nil
}

func (g *idGenerator) next() string {
	var buf [32]byte
	b := append(buf[:0], g.prefix...)
	b = strconv.AppendUint(b, g.n.Add(1), 36)
	return string(b)
}
