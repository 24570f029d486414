//go:build unix

package testprovider

import (
	"os"
	"syscall"
)

// lockFile takes flock on f, exclusive or shared, waiting for it. The lock
// belongs to f's open file description, so two Providers of one process,
// each with its own open of the log, exclude each other as two processes
// do. The kernel drops it when the process dies, so a SIGKILLed control
// plane does not leave the directory locked.
func lockFile(f *os.File, exclusive bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// unlockFile releases the lock lockFile took.
func unlockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
