package fillcast

import (
	"encoding/json"
	"testing"
)

// TestHeartbeatLoadJSON: the fields the control plane's squeeze tests
// judge an appliance by have their wire names, and are sent when zero
// (an appliance that answered nothing says so).
func TestHeartbeatLoadJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hb   Heartbeat
		want map[string]any
	}{
		{"loaded", Heartbeat{Requests: 12000, P99Millis: 48.5, ErrorRatio: 0.0025},
			map[string]any{"requests": 12000.0, "p99_ms": 48.5, "error_ratio": 0.0025}},
		{"idle", Heartbeat{}, map[string]any{"requests": 0.0, "p99_ms": 0.0, "error_ratio": 0.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.hb)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.want {
				if got, ok := m[k]; !ok || got != want {
					t.Errorf("%s = %v (present %v), want %v in %s", k, got, ok, want, b)
				}
			}
			var back Heartbeat
			if err := json.Unmarshal(b, &back); err != nil || back.Requests != tt.hb.Requests || back.P99Millis != tt.hb.P99Millis || back.ErrorRatio != tt.hb.ErrorRatio {
				t.Errorf("round trip: %+v, %v", back, err)
			}
		})
	}
}
