package embedded_test

import (
	"testing"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/accounts/embedded"
	"github.com/fillcast/fillcast/accounts/storetest"
)

// TestStoreContract runs the contract suite on the state machine in this
// process (NewLocal); controlplane's TestAccountsOnRaft runs it through
// raft.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) accounts.Store { return embedded.NewLocal() })
}
