package embedded_test

import (
	"testing"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/embedded"
	"github.com/fillcast/fillcast/billing/storetest"
)

// TestStoreContract runs the contract suite on the state machine in this
// process (NewLocal); controlplane's TestBillingOnRaft runs it through
// raft.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) billing.Store { return embedded.NewLocal() })
}
