// Package ports finds free loopback TCP ports for the benchmarks'
// processes.
package ports

import "net"

// Free returns n distinct TCP ports free on 127.0.0.1 now: each is held
// open until all are found, so none is handed out twice, then released
// for the caller's processes to listen on.
func Free(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
