package h3

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
)

// TestSetBuffers asks for buffer sizes the kernel grants and one it cannot
// (1 GiB: Linux caps any socket buffer, forced or not, at INT_MAX/2 =
// 1 GiB - 1) and wants the second,
// only, to produce the warning that names the sysctl to raise.
func TestSetBuffers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		want     int
		wantWarn bool
	}{
		{"small", 64 << 10, false},
		{"beyond any limit", 1 << 30, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			var logs bytes.Buffer
			b := SetBuffers(pc, tc.want, slog.New(slog.NewTextHandler(&logs, nil)))
			warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "net.core.rmem_max")
			if warned != tc.wantWarn {
				t.Fatalf("warned %v, want %v; log: %s", warned, tc.wantWarn, logs.String())
			}
			if !tc.wantWarn && (b.Read < tc.want || b.Write < tc.want) {
				t.Fatalf("granted %+v, want at least %d", b, tc.want)
			}
		})
	}
}

// TestSetBuffersForced checks the root path: past net.core.rmem_max with
// SO_RCVBUFFORCE. It needs root (CAP_NET_ADMIN).
func TestSetBuffersForced(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN) to exceed net.core.rmem_max")
	}
	max, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip("no /proc/sys/net/core/rmem_max")
	}
	limit := 0
	for _, c := range strings.TrimSpace(string(max)) {
		limit = limit*10 + int(c-'0')
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	want := 2 * limit
	b := SetBuffers(pc, want, slog.New(slog.DiscardHandler))
	if b.Read < want || !b.Forced {
		t.Fatalf("granted %+v with rmem_max %d, want %d forced", b, limit, want)
	}
}
