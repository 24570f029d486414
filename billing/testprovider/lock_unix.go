//go:build unix

package testprovider

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on f without waiting. The kernel drops
// it when the process dies, so a SIGKILLed control plane does not leave the
// directory locked.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
