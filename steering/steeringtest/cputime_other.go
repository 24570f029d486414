//go:build !linux

package steeringtest

import "time"

// ThreadCPU returns the CPU time the calling OS thread has used; on this
// platform it cannot tell and returns false.
func ThreadCPU() (time.Duration, bool) { return 0, false }
