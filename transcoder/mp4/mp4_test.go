package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// mk builds a box from its type and payload parts.
func mk(typ string, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	b := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint32(b, uint32(8+len(body)))
	copy(b[4:], typ)
	return append(b, body...)
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func zeros(n int) []byte  { return make([]byte, n) }

// videoInit is a minimal CMAF init segment for a 1280x720 H.264 High
// level 3.1 track at timescale 15360.
func videoInit() []byte {
	avcC := mk("avcC", []byte{1, 0x64, 0x00, 0x1f, 0xff})
	entry := mk("avc1", zeros(6), u16(1), zeros(16), u16(1280), u16(720), zeros(50), avcC)
	return initWith("vide", 15360, entry)
}

// audioInit is a minimal init segment for 48 kHz stereo AAC-LC.
func audioInit() []byte {
	dsi := []byte{0x05, 2, 0x11, 0x90} // AOT 2, 48 kHz, stereo
	dcd := append([]byte{0x04, byte(13 + len(dsi)), 0x40, 0x15}, zeros(11)...)
	dcd = append(dcd, dsi...)
	es := append([]byte{0x03, byte(3 + len(dcd)), 0, 1, 0}, dcd...)
	esds := mk("esds", zeros(4), es)
	entry := mk("mp4a", zeros(6), u16(1), zeros(8), u16(2), u16(16), zeros(4), u32(48000<<16), esds)
	return initWith("soun", 48000, entry)
}

func initWith(handler string, timescale uint32, entry []byte) []byte {
	tkhd := mk("tkhd", zeros(4), zeros(8), u32(1), zeros(60))
	mdhd := mk("mdhd", zeros(4), zeros(8), u32(timescale), zeros(8))
	hdlr := mk("hdlr", zeros(8), []byte(handler), zeros(13))
	stsd := mk("stsd", zeros(4), u32(1), entry)
	minf := mk("minf", mk("stbl", stsd))
	trak := mk("trak", tkhd, mk("mdia", mdhd, hdlr, minf))
	trex := mk("trex", zeros(4), u32(1), u32(1), u32(512), u32(0), u32(0x01010000))
	return append(mk("ftyp", []byte("iso6"), zeros(4)), mk("moov", trak, mk("mvex", trex))...)
}

// segment builds a media segment with n samples of duration dur starting
// at start; the first sample is a sync sample when sync is set.
func segment(start uint64, n int, dur uint32, sync bool) []byte {
	tfhd := mk("tfhd", u32(0x020000), u32(1))
	tfdt := mk("tfdt", []byte{1, 0, 0, 0}, binary.BigEndian.AppendUint64(nil, start))
	first := uint32(0x02000000)
	if !sync {
		first = 0x01010000
	}
	var samples []byte
	for i := 0; i < n; i++ {
		samples = append(samples, u32(dur)...)
		samples = append(samples, u32(100)...)
	}
	trun := mk("trun", u32(0x000305), u32(uint32(n)), u32(0), u32(first), samples)
	moof := mk("moof", mk("mfhd", zeros(4), u32(1)), mk("traf", tfhd, tfdt, trun))
	return bytes.Join([][]byte{mk("styp", []byte("msdh")), moof, mk("mdat", zeros(n*100))}, nil)
}

func TestParseInit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
		want Track
	}{
		{"video", videoInit(), Track{ID: 1, Handler: "vide", Timescale: 15360, Codec: "avc1.64001f", Width: 1280, Height: 720, DefaultDuration: 512, DefaultFlags: 0x01010000}},
		{"audio", audioInit(), Track{ID: 1, Handler: "soun", Timescale: 48000, Codec: "mp4a.40.2", Channels: 2, SampleRate: 48000, DefaultDuration: 512, DefaultFlags: 0x01010000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseInit(tt.in)
			if err != nil {
				t.Fatalf("ParseInit: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseInitErrors(t *testing.T) {
	t.Parallel()
	good := videoInit()
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-10]},
		{"no moov", mk("ftyp", zeros(8))},
		{"box too long", append(u32(1000), []byte("moov")...)},
		{"unsupported codec", initWith("vide", 90000, mk("hev1", zeros(78)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseInit(tt.in); !errors.Is(err, ErrFormat) {
				t.Errorf("got %v, want ErrFormat", err)
			}
		})
	}
}

func TestParseSegment(t *testing.T) {
	t.Parallel()
	track, err := ParseInit(videoInit())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		want Fragment
	}{
		{"keyframe first", segment(61440, 120, 512, true), Fragment{Start: 61440, Duration: 61440, Samples: 120, FirstSync: true}},
		{"not a keyframe", segment(0, 3, 512, false), Fragment{Start: 0, Duration: 1536, Samples: 3, FirstSync: false}},
		{"two fragments", append(segment(0, 2, 512, true), segment(1024, 2, 512, false)[12:]...), Fragment{Start: 0, Duration: 2048, Samples: 4, FirstSync: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSegment(tt.in, track)
			if err != nil {
				t.Fatalf("ParseSegment: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := ParseSegment(segment(0, 2, 512, true)[:40], track); !errors.Is(err, ErrFormat) {
		t.Errorf("truncated segment: got %v, want ErrFormat", err)
	}
	other := track
	other.ID = 2
	if _, err := ParseSegment(segment(0, 2, 512, true), other); !errors.Is(err, ErrFormat) {
		t.Errorf("other track: got %v, want ErrFormat", err)
	}
}

func FuzzParseInit(f *testing.F) {
	f.Add(videoInit())
	f.Add(audioInit())
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseInit(data)
	})
}

func FuzzParseSegment(f *testing.F) {
	f.Add(segment(0, 4, 512, true))
	f.Add(segment(1<<40, 1, 1024, false))
	track, _ := ParseInit(videoInit())
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseSegment(data, track)
		if err == nil && got.Samples < 0 {
			t.Fatalf("negative samples %+v", got)
		}
	})
}

// movie builds a progressive MP4 from the video init's moov with the
// mdhd duration set, and an mdat before or after it.
func movie(faststart bool) []byte {
	init := videoInit()
	// Set the mdhd duration (version 0: after 4+4+4+4 bytes) to 2 s.
	i := bytes.Index(init, []byte("mdhd"))
	binary.BigEndian.PutUint32(init[i+4+16:], 2*15360)
	ftypLen := int(binary.BigEndian.Uint32(init))
	ftyp, moov := init[:ftypLen], init[ftypLen:]
	mdat := mk("mdat", zeros(100))
	if faststart {
		return bytes.Join([][]byte{ftyp, moov, mdat}, nil)
	}
	return bytes.Join([][]byte{ftyp, mdat, moov}, nil)
}

func TestParseMovie(t *testing.T) {
	t.Parallel()
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("faststart=%v", fast), func(t *testing.T) {
			data := movie(fast)
			m, err := ParseMovie(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatalf("ParseMovie: %v", err)
			}
			if m.Faststart != fast || len(m.Tracks) != 1 || m.Tracks[0].Duration != 2 || m.Tracks[0].Height != 720 {
				t.Errorf("got %+v, want faststart %v and one 2 s 720p track", m, fast)
			}
		})
	}
	data := movie(true)
	if _, err := ParseMovie(bytes.NewReader(data[:len(data)-50]), int64(len(data)-50)); !errors.Is(err, ErrFormat) {
		t.Errorf("truncated movie: got %v, want ErrFormat", err)
	}
}

func FuzzParseMovie(f *testing.F) {
	f.Add(movie(true))
	f.Add(movie(false))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseMovie(bytes.NewReader(data), int64(len(data)))
	})
}

// BenchmarkParseSegment measures the per-segment cost of verification: a
// two-hour title at 4 s segments and five rungs parses 9000 of them.
func BenchmarkParseSegment(b *testing.B) {
	track, err := ParseInit(videoInit())
	if err != nil {
		b.Fatal(err)
	}
	seg := segment(0, 120, 512, true)
	b.ReportAllocs()
	b.SetBytes(int64(len(seg)))
	for b.Loop() {
		if _, err := ParseSegment(seg, track); err != nil {
			b.Fatal(err)
		}
	}
}
