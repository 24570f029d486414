package gateway

import (
	"net/netip"
	"strings"
)

// clientAddr resolves the client of a request. The peer (remote, as in
// http.Request.RemoteAddr) is the client unless it is a trusted proxy; then
// X-Forwarded-For is read from the right, skipping trusted proxies, and the
// first untrusted address is the client. Everything left of it was written
// by the client and cannot be believed. If every hop is trusted the
// left-most is the client; a malformed hop stops the walk at the last good
// one.
func clientAddr(remote string, xff []string, trusted []netip.Prefix) netip.Addr {
	peer := parseHost(remote)
	if len(trusted) == 0 || len(xff) == 0 || !isTrusted(peer, trusted) {
		return peer
	}
	last := peer
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for len(line) > 0 {
			hop := line
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				hop, line = line[j+1:], line[:j]
			} else {
				line = ""
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue
			}
			a := parseHost(hop)
			if !a.IsValid() {
				return last
			}
			if !isTrusted(a, trusted) {
				return a
			}
			last = a
		}
	}
	return last
}

// parseHost parses "addr", "addr:port" or "[addr]:port", dropping any IPv6
// zone and unmapping IPv4-in-IPv6. It returns the zero Addr on failure.
func parseHost(s string) netip.Addr {
	var a netip.Addr
	// Choose the parser by shape: a failed parse allocates its error, and
	// this runs on every request.
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}
		}
		a = ap.Addr()
	} else {
		var err error
		if a, err = netip.ParseAddr(s); err != nil {
			return netip.Addr{}
		}
	}
	return a.WithZone("").Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
