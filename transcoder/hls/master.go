package hls

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Audio is an EXT-X-MEDIA rendition of TYPE=AUDIO.
type Audio struct {
	// GroupID ties the rendition to variants' AUDIO attribute.
	GroupID string
	// Language is an RFC 5646 tag such as "en"; empty when unknown.
	Language string
	// Name is the human-readable name shown in players' menus.
	Name string
	// Default and AutoSelect are the attributes of the same names.
	Default, AutoSelect bool
	// Channels is the channel count ("2").
	Channels int
	// URI is the media playlist, relative to the master.
	URI string
}

// Variant is an EXT-X-STREAM-INF entry.
type Variant struct {
	// URI is the media playlist, relative to the master.
	URI string
	// Bandwidth is the peak segment bit rate including the audio.
	Bandwidth int
	// AverageBandwidth is the average segment bit rate including audio.
	AverageBandwidth int
	// Width and Height make RESOLUTION.
	Width, Height int
	// Codecs lists every codec of the variant, comma-separated.
	Codecs string
	// FrameRate is the maximum frame rate.
	FrameRate float64
	// Audio is the GROUP-ID of the audio renditions, or empty.
	Audio string
}

// Master is a multivariant playlist.
type Master struct {
	// Independent reports EXT-X-INDEPENDENT-SEGMENTS.
	Independent bool
	// Audio renditions, written before the variants.
	Audio []Audio
	// Variants in the order written, usually highest first.
	Variants []Variant
}

// Encode renders the multivariant playlist.
func (m Master) Encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n", Version)
	if m.Independent {
		b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	}
	for _, a := range m.Audio {
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=%s", quoted(a.GroupID))
		if a.Language != "" {
			fmt.Fprintf(&b, ",LANGUAGE=%s", quoted(a.Language))
		}
		fmt.Fprintf(&b, ",NAME=%s,DEFAULT=%s,AUTOSELECT=%s", quoted(a.Name), yesNo(a.Default), yesNo(a.AutoSelect))
		if a.Channels > 0 {
			fmt.Fprintf(&b, ",CHANNELS=\"%d\"", a.Channels)
		}
		fmt.Fprintf(&b, ",URI=%s\n", quoted(a.URI))
	}
	for _, v := range m.Variants {
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d", v.Bandwidth)
		if v.AverageBandwidth > 0 {
			fmt.Fprintf(&b, ",AVERAGE-BANDWIDTH=%d", v.AverageBandwidth)
		}
		if v.Width > 0 && v.Height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", v.Width, v.Height)
		}
		fmt.Fprintf(&b, ",CODECS=%s", quoted(v.Codecs))
		if v.FrameRate > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%.3f", v.FrameRate)
		}
		if v.Audio != "" {
			fmt.Fprintf(&b, ",AUDIO=%s", quoted(v.Audio))
		}
		fmt.Fprintf(&b, "\n%s\n", v.URI)
	}
	return b.Bytes()
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// ParseMaster reads a multivariant playlist.
func ParseMaster(data []byte) (Master, error) {
	lines, err := splitLines(data)
	if err != nil {
		return Master{}, err
	}
	var m Master
	var pending *Variant
	for i, l := range lines {
		tag, value, _ := strings.Cut(l, ":")
		switch {
		case tag == "#EXT-X-INDEPENDENT-SEGMENTS":
			m.Independent = true
		case tag == "#EXT-X-MEDIA":
			a, err := ParseAttributes(value)
			if err != nil {
				return Master{}, fmt.Errorf("%w: line %d: %v", ErrSyntax, i+1, err)
			}
			if a["TYPE"] != "AUDIO" {
				continue
			}
			ch, _ := strconv.Atoi(strings.SplitN(a["CHANNELS"], "/", 2)[0])
			m.Audio = append(m.Audio, Audio{
				GroupID: a["GROUP-ID"], Language: a["LANGUAGE"], Name: a["NAME"],
				Default: a["DEFAULT"] == "YES", AutoSelect: a["AUTOSELECT"] == "YES",
				Channels: ch, URI: a["URI"],
			})
		case tag == "#EXT-X-STREAM-INF":
			a, err := ParseAttributes(value)
			if err != nil {
				return Master{}, fmt.Errorf("%w: line %d: %v", ErrSyntax, i+1, err)
			}
			v := Variant{Codecs: a["CODECS"], Audio: a["AUDIO"]}
			if v.Bandwidth, err = strconv.Atoi(a["BANDWIDTH"]); err != nil || v.Bandwidth <= 0 {
				return Master{}, fmt.Errorf("%w: line %d: bad BANDWIDTH %q", ErrSyntax, i+1, a["BANDWIDTH"])
			}
			if s, ok := a["AVERAGE-BANDWIDTH"]; ok {
				if v.AverageBandwidth, err = strconv.Atoi(s); err != nil || v.AverageBandwidth < 0 {
					return Master{}, fmt.Errorf("%w: line %d: bad AVERAGE-BANDWIDTH %q", ErrSyntax, i+1, s)
				}
			}
			if s, ok := a["RESOLUTION"]; ok {
				w, h, found := strings.Cut(s, "x")
				v.Width, err = strconv.Atoi(w)
				if err == nil {
					v.Height, err = strconv.Atoi(h)
				}
				if !found || err != nil || v.Width <= 0 || v.Height <= 0 {
					return Master{}, fmt.Errorf("%w: line %d: bad RESOLUTION %q", ErrSyntax, i+1, s)
				}
			}
			if s, ok := a["FRAME-RATE"]; ok {
				if v.FrameRate, err = strconv.ParseFloat(s, 64); err != nil || v.FrameRate <= 0 {
					return Master{}, fmt.Errorf("%w: line %d: bad FRAME-RATE %q", ErrSyntax, i+1, s)
				}
			}
			pending = &v
		case strings.HasPrefix(l, "#"):
		default:
			if pending == nil {
				return Master{}, fmt.Errorf("%w: line %d: URI without EXT-X-STREAM-INF", ErrSyntax, i+1)
			}
			pending.URI = l
			m.Variants = append(m.Variants, *pending)
			pending = nil
		}
	}
	if pending != nil {
		return Master{}, fmt.Errorf("%w: EXT-X-STREAM-INF without URI at the end", ErrSyntax)
	}
	if len(m.Variants) == 0 {
		return Master{}, fmt.Errorf("%w: no variants", ErrSyntax)
	}
	return m, nil
}
