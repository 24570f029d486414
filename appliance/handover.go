package appliance

// During a zero-downtime upgrade (appliance/upgrade) two processes serve
// for a while: the new one from the moment it is ready, the old one until
// its in-flight responses are done. The TCP listener is shared, each
// process has its own HTTP/3 socket (appliance/reuseport), and both write
// into the same cache directory.

// AdoptCacheFiles indexes the objects the process upgraded from wrote into
// the disk cache after this one had built its index (it keeps filling
// while it drains). Call it once that process has exited.
func (a *Appliance) AdoptCacheFiles() {
	n, err := a.cache.Adopt()
	if err != nil {
		a.log.Warn("appliance: adopting the previous process's cache objects", "err", err)
		return
	}
	a.log.Info("appliance: adopted the cache objects the previous process wrote while it drained", "objects", n)
}
