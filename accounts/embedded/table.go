package embedded

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"sync/atomic"
)

// tableShards is how many maps a Table spreads its records over: a write
// after a snapshot copies one shard, 1/256 of the table.
const tableShards = 256

// Table is a map from ids to records that copies on write after Clone: a
// snapshot of a million accounts takes a pointer per shard, where
// copying the maps held the state machine's lock for over a second, and
// the first write to a shard afterwards copies that shard alone. It
// encodes to JSON as a plain object, so snapshots keep their format. Not
// safe for concurrent writes: the state machine's lock orders them.
type Table[V any] struct {
	shards [tableShards]*shard[V]
	n      int
}

type shard[V any] struct {
	m map[string]V
	// shared marks a shard that a clone holds too: a write copies it
	// first. Atomic, since a snapshot marks shards while reads go on.
	shared atomic.Bool
}

// NewTable returns an empty Table.
func NewTable[V any]() *Table[V] {
	t := &Table[V]{}
	for i := range t.shards {
		t.shards[i] = &shard[V]{m: map[string]V{}}
	}
	return t
}

// shardOf hashes a key with FNV-1a.
func shardOf(k string) int {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h = (h ^ uint32(k[i])) * 16777619
	}
	return int(h % tableShards)
}

// Get returns the record of k.
func (t *Table[V]) Get(k string) (V, bool) {
	v, ok := t.shards[shardOf(k)].m[k]
	return v, ok
}

// At returns the record of k, or the zero value.
func (t *Table[V]) At(k string) V {
	v, _ := t.Get(k)
	return v
}

// Len returns the number of records.
func (t *Table[V]) Len() int { return t.n }

// writable returns k's shard, copied first if a clone shares it.
func (t *Table[V]) writable(k string) *shard[V] {
	i := shardOf(k)
	s := t.shards[i]
	if s.shared.Load() {
		s = &shard[V]{m: maps.Clone(s.m)}
		t.shards[i] = s
	}
	return s
}

// Set stores v as k's record.
func (t *Table[V]) Set(k string, v V) {
	s := t.writable(k)
	if _, ok := s.m[k]; !ok {
		t.n++
	}
	s.m[k] = v
}

// Delete removes k's record.
func (t *Table[V]) Delete(k string) {
	if _, ok := t.Get(k); !ok {
		return
	}
	delete(t.writable(k).m, k)
	t.n--
}

// All yields every record, in no order.
func (t *Table[V]) All(yield func(string, V) bool) {
	for _, s := range t.shards {
		for k, v := range s.m {
			if !yield(k, v) {
				return
			}
		}
	}
}

// Clone returns a Table that shares every shard with t until either
// writes to it: a snapshot's copy, made in a time that does not grow
// with the records.
func (t *Table[V]) Clone() *Table[V] {
	c := &Table[V]{n: t.n}
	for i, s := range t.shards {
		s.shared.Store(true)
		c.shards[i] = s
	}
	return c
}

// MarshalJSON encodes the table as one JSON object.
func (t *Table[V]) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	if err := t.writeJSON(bw); err != nil {
		return nil, err
	}
	bw.Flush()
	return b.Bytes(), nil
}

// writeJSON writes the table as one JSON object, a record at a time.
func (t *Table[V]) writeJSON(w *bufio.Writer) error {
	w.WriteByte('{')
	first := true
	var err error
	for k, v := range t.All {
		var kb, vb []byte
		if kb, err = json.Marshal(k); err != nil {
			break
		}
		if vb, err = json.Marshal(v); err != nil {
			break
		}
		if !first {
			w.WriteByte(',')
		}
		first = false
		w.Write(kb)
		w.WriteByte(':')
		w.Write(vb)
	}
	if err != nil {
		return fmt.Errorf("accounts: encode table: %w", err)
	}
	return w.WriteByte('}')
}

// UnmarshalJSON decodes a JSON object into the table, replacing what it
// held.
func (t *Table[V]) UnmarshalJSON(b []byte) error {
	var m map[string]V
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("accounts: decode table: %w", err)
	}
	*t = *NewTable[V]()
	for k, v := range m {
		t.Set(k, v)
	}
	return nil
}

// readJSON decodes a JSON object from dec into the table, a record at a
// time, replacing what it held: a restore reads the snapshot once, where
// UnmarshalJSON would have the decoder buffer and scan it again.
func (t *Table[V]) readJSON(dec *json.Decoder) error {
	*t = *NewTable[V]()
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("accounts: decode table: %w", err)
		}
		k, ok := tok.(string)
		if !ok {
			return fmt.Errorf("accounts: decode table: key %v is not a string", tok)
		}
		var v V
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("accounts: decode table: record %q: %w", k, err)
		}
		t.Set(k, v)
	}
	return expectDelim(dec, '}')
}

// expectDelim reads the delimiter d from dec.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("accounts: decode: %w", err)
	}
	if tok != d {
		return fmt.Errorf("accounts: decode: %v where %v was expected", tok, d)
	}
	return nil
}
