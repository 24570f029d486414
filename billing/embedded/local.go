package embedded

import acctembedded "github.com/fillcast/fillcast/accounts/embedded"

// NewLocal returns a Store over a State of its own in this process: the
// same state machine without raft, for tests and tools of one process.
func NewLocal() *Store {
	apply, read := acctembedded.LocalMachine[Command](NewState())
	return NewStore(apply, read, nil)
}
