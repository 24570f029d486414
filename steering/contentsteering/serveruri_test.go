package contentsteering

import (
	"errors"
	"testing"
)

func TestServerURI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base, title, protocol, want string
	}{
		{"https://cp.example.net", "t1", ProtocolHLS, "https://cp.example.net/v1/steering/t1?protocol=hls"},
		{"https://cp.example.net/", "t1", ProtocolDASH, "https://cp.example.net/v1/steering/t1?protocol=dash"},
		{"http://10.0.0.5:7000/fillcast", "big_buck-2", ProtocolHLS, "http://10.0.0.5:7000/fillcast/v1/steering/big_buck-2?protocol=hls"},
	}
	for _, tt := range tests {
		if got := ServerURI(tt.base, tt.title, tt.protocol); got != tt.want {
			t.Errorf("ServerURI(%q, %q, %q) = %q, want %q", tt.base, tt.title, tt.protocol, got, tt.want)
		}
	}
}

func TestValidateBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base string
		ok   bool
	}{
		{"https://cp.example.net", true},
		{"http://127.0.0.1:7000", true},
		{"https://cp.example.net/fillcast/", true},
		{"http://[::1]:7000", true},
		{"", false},
		{"cp.example.net", false},
		{"cp1:7000", false},
		{"ftp://cp.example.net", false},
		{"https://", false},
		{"https://user@cp.example.net", false},
		{"https://cp.example.net/?a=b", false},
		{"https://cp.example.net/?", false},
		{"https://cp.example.net/#x", false},
		{"https://cp.example.net/\"", false},
		{"https://cp.example.net/a&b", false},
		{"https://cp.example.net/a b", false},
		{"https://cp.example.net/\n", false},
		{"https://cp.example.net/é", false},
	}
	for _, tt := range tests {
		err := ValidateBaseURL(tt.base)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrBaseURL) {
			t.Errorf("ValidateBaseURL(%q) = %v, want ok %v (or ErrBaseURL)", tt.base, err, tt.ok)
		}
	}
}
