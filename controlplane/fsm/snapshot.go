package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/fillcast/fillcast/accounts/embedded"
	billembedded "github.com/fillcast/fillcast/billing/embedded"
	"github.com/hashicorp/raft"
)

// Snapshot implements raft.FSM. Records are immutable, so copying the maps
// is enough to let writes continue while the snapshot is written.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.snapshotLocked(), nil
}

func (f *FSM) snapshotLocked() *snapshot {
	s := f.state
	cp := &State{
		Titles: cloneMap(s.Titles), Sites: cloneMap(s.Sites), Appliances: cloneMap(s.Appliances),
		Members: cloneMap(s.Members), Removed: cloneMap(s.Removed), Jobs: cloneMap(s.Jobs), Rules: cloneMap(s.Rules),
		Manifests: cloneMap(s.Manifests), SigningKeys: s.SigningKeys, KeysIndex: s.KeysIndex,
		APIKeys: cloneMap(s.APIKeys), Registrations: cloneMap(s.Registrations), Requests: s.Requests.clone(),
		Accounts: s.Accounts.Clone(), Billing: s.Billing.Clone(), RuleLog: slices.Clone(s.RuleLog), Squeezes: cloneMap(s.Squeezes),
		Takedowns: s.Takedowns, FileLists: cloneMap(s.FileLists),
	}
	return &snapshot{state: cp}
}

func cloneMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Restore implements raft.FSM. A snapshot of the previous release, with
// every title's files, is normalized as Apply normalizes such titles:
// their lists are moved to State.FileLists.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	// Decoding into an initialised state keeps maps that an older
	// snapshot lacks non-nil.
	s := newState()
	dec := json.NewDecoder(rc)
	if err := dec.Decode(s); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if err := completeState(s); err != nil {
		return err
	}
	moved, dropped, err := normalizeRestored(s)
	if err != nil {
		return err
	}
	// The accounts follow as a second JSON value (see Persist), read a
	// record at a time.
	acc := embedded.NewState()
	switch err := acc.ReadJSON(dec); {
	case err == nil:
		s.Accounts = acc
	case !errors.Is(err, io.EOF):
		return fmt.Errorf("fsm: restore accounts: %w", err)
	case s.Accounts == nil:
		s.Accounts = acc
	}
	s.Accounts.Rebuild()
	if s.Billing == nil {
		s.Billing = billembedded.NewState()
	}
	if s.Takedowns == nil {
		s.Takedowns = &TakedownRecord{}
	}
	s.Billing.Rebuild()
	f.mu.Lock()
	f.state = s
	f.gen.Add(1)
	f.mu.Unlock()
	f.moved.Add(uint64(moved))
	f.dropped.Add(uint64(dropped))
	if f.onChange != nil {
		f.onChange(Command{Op: OpRestore})
	}
	return nil
}

// Generation counts the changes of the state: every applied command
// that changed it and every Restore (a follower that installs a snapshot
// may keep its AppliedIndex, so caches of derived views must not key on
// that). A cache keyed by it reads Generation before reading the state:
// a value built then is never older than its key.
func (f *FSM) Generation() uint64 { return f.gen.Load() }

type snapshot struct{ state *State }

// Persist writes the state as two JSON values: the state without the
// accounts, then the accounts, written a record at a time
// (embedded.State.WriteJSON), since at scale they are most of it.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	rest := *s.state
	rest.Accounts = nil
	err := json.NewEncoder(sink).Encode(&rest)
	if err == nil {
		err = s.state.Accounts.WriteJSON(sink)
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
