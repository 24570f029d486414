package mp4

import (
	"fmt"
)

// Track describes the single track of a CMAF init segment.
type Track struct {
	// ID is the track_ID that media segments refer to.
	ID uint32
	// Handler is "vide" or "soun".
	Handler string
	// Timescale is the media timescale in ticks per second.
	Timescale uint32
	// Codec is the RFC 6381 codecs string, such as "avc1.64001f" or
	// "mp4a.40.2".
	Codec string
	// Width and Height are the visual sample entry's size (video only).
	Width, Height int
	// Channels and SampleRate come from the audio sample entry.
	Channels, SampleRate int
	// DefaultDuration and DefaultFlags are the trex defaults that
	// fragments may rely on.
	DefaultDuration, DefaultFlags uint32
}

// ParseInit reads a CMAF init segment (ftyp + moov with one track).
func ParseInit(data []byte) (Track, error) {
	moov, err := path(data, "moov")
	if err != nil {
		return Track{}, err
	}
	trak, err := path(moov, "trak")
	if err != nil {
		return Track{}, err
	}
	var t Track
	tkhd, err := path(trak, "tkhd")
	if err != nil {
		return Track{}, err
	}
	r := &reader{b: tkhd}
	if v := r.u8(); v == 1 {
		r.take(3 + 8 + 8)
	} else {
		r.take(3 + 4 + 4)
	}
	t.ID = r.u32()
	mdhd, err := path(trak, "mdia", "mdhd")
	if err != nil {
		return Track{}, err
	}
	r = &reader{b: mdhd}
	if v := r.u8(); v == 1 {
		r.take(3 + 8 + 8)
	} else {
		r.take(3 + 4 + 4)
	}
	t.Timescale = r.u32()
	hdlr, err := path(trak, "mdia", "hdlr")
	if err != nil {
		return Track{}, err
	}
	r = &reader{b: hdlr}
	r.take(8)
	t.Handler = string(r.take(4))
	if r.bad || t.Timescale == 0 {
		return Track{}, fmt.Errorf("%w: bad tkhd, mdhd or hdlr", ErrFormat)
	}
	stsd, err := path(trak, "mdia", "minf", "stbl", "stsd")
	if err != nil {
		return Track{}, err
	}
	if len(stsd) < 8 {
		return Track{}, fmt.Errorf("%w: short stsd", ErrFormat)
	}
	entries, err := boxes(stsd[8:])
	if err != nil {
		return Track{}, err
	}
	if len(entries) == 0 {
		return Track{}, fmt.Errorf("%w: empty stsd", ErrFormat)
	}
	if err := t.sampleEntry(entries[0]); err != nil {
		return Track{}, err
	}
	if trex, ok, err := findTrex(moov, t.ID); err != nil {
		return Track{}, err
	} else if ok {
		t.DefaultDuration, t.DefaultFlags = trex[0], trex[1]
	}
	return t, nil
}

func (t *Track) sampleEntry(e box) error {
	switch e.typ {
	case "avc1", "avc3":
		// VisualSampleEntry: 6 reserved, data_reference_index, 16
		// pre-defined/reserved, width, height, then 50 more bytes
		// before the child boxes.
		r := &reader{b: e.body}
		r.take(6 + 2 + 16)
		t.Width, t.Height = int(r.u16()), int(r.u16())
		if r.bad {
			return fmt.Errorf("%w: short %s entry", ErrFormat, e.typ)
		}
		avcC, ok, err := child(e.body, 78, "avcC")
		if err != nil {
			return err
		}
		if !ok || len(avcC) < 4 {
			return fmt.Errorf("%w: %s without avcC", ErrFormat, e.typ)
		}
		t.Codec = fmt.Sprintf("%s.%02x%02x%02x", e.typ, avcC[1], avcC[2], avcC[3])
		return nil
	case "mp4a":
		// AudioSampleEntry: 6 reserved, data_reference_index, 8
		// reserved, channelcount, samplesize, 4 reserved, samplerate
		// as 16.16.
		r := &reader{b: e.body}
		r.take(6 + 2 + 8)
		t.Channels = int(r.u16())
		r.take(2 + 4)
		t.SampleRate = int(r.u32() >> 16)
		if r.bad {
			return fmt.Errorf("%w: short mp4a entry", ErrFormat)
		}
		esds, ok, err := child(e.body, 28, "esds")
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: mp4a without esds", ErrFormat)
		}
		oti, aot, err := parseESDS(esds)
		if err != nil {
			return err
		}
		if aot > 0 {
			t.Codec = fmt.Sprintf("mp4a.%02x.%d", oti, aot)
		} else {
			t.Codec = fmt.Sprintf("mp4a.%02x", oti)
		}
		return nil
	}
	return fmt.Errorf("%w: unsupported sample entry %q", ErrFormat, e.typ)
}

// parseESDS returns the objectTypeIndication and, for MPEG-4 audio (0x40),
// the audio object type from the DecoderSpecificInfo.
func parseESDS(b []byte) (oti uint8, aot int, err error) {
	r := &reader{b: b}
	r.take(4) // version and flags
	tag, n := descriptor(r)
	if tag != 0x03 || r.bad {
		return 0, 0, fmt.Errorf("%w: esds without ES_Descriptor", ErrFormat)
	}
	es := &reader{b: r.take(n)}
	es.take(2)
	flags := es.u8()
	if flags&0x80 != 0 {
		es.take(2)
	}
	if flags&0x40 != 0 {
		es.take(int(es.u8()))
	}
	if flags&0x20 != 0 {
		es.take(2)
	}
	tag, n = descriptor(es)
	if tag != 0x04 || es.bad {
		return 0, 0, fmt.Errorf("%w: esds without DecoderConfigDescriptor", ErrFormat)
	}
	dc := &reader{b: es.take(n)}
	oti = dc.u8()
	dc.take(1 + 3 + 4 + 4)
	if dc.bad {
		return 0, 0, fmt.Errorf("%w: short DecoderConfigDescriptor", ErrFormat)
	}
	if oti != 0x40 {
		return oti, 0, nil
	}
	tag, n = descriptor(dc)
	if tag != 0x05 || dc.bad || n < 1 {
		return oti, 0, nil
	}
	asc := dc.take(n)
	if dc.bad {
		return oti, 0, nil
	}
	aot = int(asc[0] >> 3)
	if aot == 31 && len(asc) >= 2 {
		aot = 32 + int(asc[0]&7)<<3 | int(asc[1]>>5)
	}
	return oti, aot, nil
}

// descriptor reads an MPEG-4 descriptor tag and its variable-length size.
func descriptor(r *reader) (tag uint8, size int) {
	tag = r.u8()
	for i := 0; i < 4; i++ {
		b := r.u8()
		size = size<<7 | int(b&0x7f)
		if b&0x80 == 0 {
			break
		}
	}
	return tag, size
}

// findTrex returns the default duration and flags for track id from
// moov/mvex/trex.
func findTrex(moov []byte, id uint32) ([2]uint32, bool, error) {
	mvex, ok, err := child(moov, 0, "mvex")
	if err != nil || !ok {
		return [2]uint32{}, false, err
	}
	bs, err := boxes(mvex)
	if err != nil {
		return [2]uint32{}, false, err
	}
	for _, b := range bs {
		if b.typ != "trex" {
			continue
		}
		r := &reader{b: b.body}
		r.take(4)
		tid := r.u32()
		r.take(4) // default_sample_description_index
		dur, _, flags := r.u32(), r.u32(), r.u32()
		if r.bad {
			return [2]uint32{}, false, fmt.Errorf("%w: short trex", ErrFormat)
		}
		if tid == id {
			return [2]uint32{dur, flags}, true, nil
		}
	}
	return [2]uint32{}, false, nil
}
