package probe

import (
	"fmt"
	"strings"
	"testing"
)

// ffprobeJSON builds ffprobe-like output from stream snippets.
func ffprobeJSON(format string, streams ...string) []byte {
	return []byte(fmt.Sprintf(`{"streams":[%s],"format":{%s}}`, strings.Join(streams, ","), format))
}

const (
	fmt20 = `"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"20.000000","size":"5000000"`
	v1080 = `{"index":0,"codec_name":"h264","codec_type":"video","width":1920,"height":1080,"sample_aspect_ratio":"1:1","pix_fmt":"yuv420p","r_frame_rate":"30/1","avg_frame_rate":"30/1","duration":"20.000000","bit_rate":"1500000"}`
	aEng  = `{"index":1,"codec_name":"aac","codec_type":"audio","channels":2,"sample_rate":"48000","duration":"20.000000","bit_rate":"128000","tags":{"language":"eng"}}`
	aFre  = `{"index":2,"codec_name":"ac3","codec_type":"audio","channels":6,"sample_rate":"48000","tags":{"language":"fre","title":"Français 5.1"}}`
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []byte
		want    string // "WxH fps dur audio..." or the error's substring
		wantErr bool
	}{
		{"1080p with audio", ffprobeJSON(fmt20, v1080, aEng), "1920x1080 30 20 [eng:2]", false},
		{"two audio tracks", ffprobeJSON(fmt20, v1080, aEng, aFre), "1920x1080 30 20 [eng:2 fre:6]", false},
		{"no audio", ffprobeJSON(fmt20, v1080), "1920x1080 30 20 []", false},
		{"anamorphic", ffprobeJSON(fmt20, `{"index":0,"codec_type":"video","width":720,"height":576,"sample_aspect_ratio":"64:45","avg_frame_rate":"25/1","duration":"20"}`), "1024x576 25 20 []", false},
		{"rotated", ffprobeJSON(fmt20, `{"index":0,"codec_type":"video","width":1920,"height":1080,"avg_frame_rate":"30000/1001","duration":"20","side_data_list":[{"rotation":-90}]}`), "1080x1920 29.97 20 []", false},
		{"mkv without stream duration", ffprobeJSON(`"format_name":"matroska,webm","duration":"12.5"`, `{"index":0,"codec_type":"video","width":640,"height":360,"avg_frame_rate":"25/1"}`), "640x360 25 12.5 []", false},
		{"cover art is not video", ffprobeJSON(fmt20, aEng, `{"index":0,"codec_type":"video","width":600,"height":600,"avg_frame_rate":"0/0","disposition":{"attached_pic":1}}`), "audio only", true},
		{"audio only", ffprobeJSON(fmt20, aEng), "audio only", true},
		{"nothing", ffprobeJSON(`"duration":"1"`), "no video stream", true},
		{"zero duration", ffprobeJSON(`"duration":"0"`, `{"index":0,"codec_type":"video","width":640,"height":360,"avg_frame_rate":"25/1","duration":"0"}`), "zero duration", true},
		{"no duration", ffprobeJSON(`"format_name":"image2"`, `{"index":0,"codec_type":"video","width":640,"height":360,"avg_frame_rate":"25/1"}`), "zero duration", true},
		{"too small", ffprobeJSON(fmt20, `{"index":0,"codec_type":"video","width":8,"height":8,"avg_frame_rate":"25/1","duration":"2"}`), "too small", true},
		{"too large", ffprobeJSON(fmt20, `{"index":0,"codec_type":"video","width":10000,"height":16,"avg_frame_rate":"25/1","duration":"2"}`), "too large", true},
		{"too many pixels", ffprobeJSON(fmt20, `{"index":0,"codec_type":"video","width":8192,"height":8192,"avg_frame_rate":"25/1","duration":"2"}`), "too large", true},
		{"no size", ffprobeJSON(fmt20, `{"index":0,"codec_type":"video","avg_frame_rate":"25/1","duration":"2"}`), "no picture size", true},
		{"no frame rate", ffprobeJSON(fmt20, `{"index":0,"codec_type":"video","width":640,"height":360,"avg_frame_rate":"0/0","r_frame_rate":"0/0","duration":"2"}`), "frame rate", true},
		{"absurd frame rate", ffprobeJSON(fmt20, `{"index":0,"codec_type":"video","width":640,"height":360,"avg_frame_rate":"90000/1","duration":"2"}`), "frame rate", true},
		{"shorter than a frame", ffprobeJSON(`"duration":"0.01"`, `{"index":0,"codec_type":"video","width":640,"height":360,"avg_frame_rate":"25/1","duration":"0.01"}`), "too short", true},
		{"truncated", ffprobeJSON(`"duration":"20","size":"1000000"`, v1080, aEng), "truncated", true},
		{"not json", []byte("Invalid data found"), "unreadable", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := Parse(tt.in, Limits{})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Parse: got err %v, want one containing %q", err, tt.want)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var audio []string
			for _, a := range src.Audio {
				audio = append(audio, fmt.Sprintf("%s:%d", a.Language, a.Channels))
			}
			got := fmt.Sprintf("%dx%d %.4g %g %v", src.Video.Width, src.Video.Height, src.Video.FPS, src.Video.Duration, audio)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLastLine(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d] moov atom not found\n/tmp/x.mp4: Invalid data found when processing input\n", "Invalid data found when processing input"},
		{"", ""},
		{"\n\n[h264 @ 0x1] error\n\n", "error"},
	}
	for _, tt := range tests {
		if got := lastLine(tt.in, "/tmp/x.mp4"); got != tt.want {
			t.Errorf("lastLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(ffprobeJSON(fmt20, v1080, aEng, aFre))
	f.Add(ffprobeJSON(fmt20, `{"index":0,"codec_type":"video","width":720,"height":576,"sample_aspect_ratio":"64:45","avg_frame_rate":"25/1","duration":"20","side_data_list":[{"rotation":90}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := Parse(data, Limits{})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		v := src.Video
		if v.Width < 16 || v.Height < 16 || v.Width > 8192 || v.Height > 8192 || !(v.FPS > 0) || !(v.Duration > 0) {
			t.Fatalf("accepted unusable source %+v", src)
		}
	})
}
