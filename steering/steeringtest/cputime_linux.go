package steeringtest

import (
	"syscall"
	"time"
)

// rusageThread is RUSAGE_THREAD, which package syscall does not name.
const rusageThread = 1

// ThreadCPU returns the CPU time the calling OS thread has used, user and
// system. A benchmark that locks its goroutine to its thread divides the
// difference by its operations to get a cost per operation that, unlike
// wall time, other processes on a busy machine do not inflate. It returns
// false where the platform cannot tell.
func ThreadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
