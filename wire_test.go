package fillcast

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestWireJSON pins the JSON of the shared API bodies: each golden body,
// as the control plane has always written it, decodes into its type with
// every field set and encodes back to the same bytes.
func TestWireJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		golden string
		v      any
	}{
		{"playback", `{"title":"t1","protocol":"hls","urls":["http://a:1/c/tok/t1/master.m3u8"],"steering_url":"http://cp/v1/steering/t1?protocol=hls","expires_at":"2026-11-26T00:00:00Z","stream_id":"S1"}`, &Playback{}},
		{"manifest", `{"appliance":"a1","version":3,"site":"s1","fill_window":"02:00-14:00","timezone":"Europe/Amsterdam","titles":[{"id":"t1","files":[{"path":"720p/seg-00001.m4s","size":10,"sha256":"ab"}]}],"catalog":[{"id":"t1","renditions":[{"id":"720p","height":720}]}]}`, &Manifest{}},
		{"manifest without site", `{"appliance":"a1","version":1,"titles":[]}`, &Manifest{}},
		{"cluster", `{"id":"n1","state":"Leader","leader":"n1","leader_url":"http://127.0.0.1:7000","term":"2","applied_index":42,"members":[{"id":"n1","raft_addr":"127.0.0.1:7001","http_url":"http://127.0.0.1:7000","voter":true,"leader":true},{"id":"n2","raft_addr":"127.0.0.1:7011","voter":false,"leader":false}]}`, &ClusterStatus{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := json.Unmarshal([]byte(tt.golden), tt.v); err != nil {
				t.Fatal(err)
			}
			if z := reflect.ValueOf(tt.v).Elem(); tt.name != "manifest without site" && hasZeroField(z) {
				t.Errorf("%+v: a field of the type is not in the golden body", z.Interface())
			}
			got, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.golden {
				t.Errorf("encodes to\n%s\nwant\n%s", got, tt.golden)
			}
		})
	}
}

// hasZeroField reports whether a field of struct v is its zero value.
func hasZeroField(v reflect.Value) bool {
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			return true
		}
	}
	return false
}
