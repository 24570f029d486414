package fillcast

import "testing"

func TestDisposition(t *testing.T) {
	t.Parallel()
	tests := []struct{ title, path, want string }{
		{"t1", "download/720p.mp4", `attachment; filename="t1-720p.mp4"`},
		{"t1", "720p/seg-00001.m4s", ""},
		{"t1", "master.m3u8", ""},
		{"t1", "download/", ""},
		{"t1", "download/x/y.mp4", ""},
		{"", "download/720p.mp4", ""},
	}
	for _, tt := range tests {
		if got := Disposition(tt.title, tt.path); got != tt.want {
			t.Errorf("Disposition(%q, %q) = %q, want %q", tt.title, tt.path, got, tt.want)
		}
	}
}
