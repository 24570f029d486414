//go:build !unix

package testprovider

import "os"

// lockFile does nothing where flock is not available: there nothing
// coordinates Providers, so use one Provider per directory.
func lockFile(*os.File, bool) error { return nil }

// unlockFile does nothing, like lockFile.
func unlockFile(*os.File) error { return nil }
