package manifestfilter_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/fillcast/fillcast/manifestfilter"
	"github.com/fillcast/fillcast/manifestfilter/manifestfiltertest"
)

// steeringLines returns the lines of a playlist naming the steering tag.
func steeringLines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if name, _, _ := strings.Cut(l, ":"); name == "#EXT-X-CONTENT-STEERING" {
			out = append(out, l)
		}
	}
	return out
}

// FuzzSteerMaster: whatever playlist comes in, a steered one is the
// input with one line added, the tag with the URI given, or the input
// itself when it had the tag; steering it again changes nothing.
func FuzzSteerMaster(f *testing.F) {
	f.Add(manifestfiltertest.Master(), hlsURI)
	f.Add([]byte("#EXTM3U\r\n#EXT-X-STREAM-INF:PATHWAY-ID=\"a\"\r\nx\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\ny"), "http://h/s?x=1&y")
	f.Add([]byte("#EXTM3U\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"x\"\n"), hlsURI)
	f.Add([]byte("#EXTM3U"), "https://[::1]:1/")
	f.Add([]byte("#EXTM3Ux\n#EXT-X-STREAM-INF:BANDWIDTH=1\nx\n"), hlsURI)
	f.Fuzz(func(t *testing.T, data []byte, uri string) {
		got, err := manifestfilter.SteerMaster(data, uri)
		if err != nil {
			if !errors.Is(err, manifestfilter.ErrSyntax) && !errors.Is(err, manifestfilter.ErrServerURI) && !errors.Is(err, manifestfilter.ErrOwnPathways) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !bytes.HasPrefix(got, []byte("#EXTM3U")) {
			t.Fatalf("the steered playlist does not start with #EXTM3U:\n%q", got)
		}
		had := steeringLines(data)
		if bytes.Equal(got, data) {
			if len(had) == 0 {
				t.Fatalf("unchanged, yet the input has no steering tag:\n%q", data)
			}
			return
		}
		if len(had) != 0 {
			t.Fatalf("the input had a steering tag and was changed:\n%q\nto\n%q", data, got)
		}
		want := `#EXT-X-CONTENT-STEERING:SERVER-URI="` + uri + `",PATHWAY-ID="."`
		if lines := steeringLines(got); len(lines) != 1 || lines[0] != want {
			t.Fatalf("steering tags %q, want just %q", lines, want)
		}
		i := bytes.Index(got, []byte(want))
		j := i + len(want)
		for j < len(got) && (got[j] == '\r' || got[j] == '\n') && got[j-1] != '\n' {
			j++
		}
		rest := append(bytes.Clone(got[:i]), got[j:]...)
		// An input without a last line break gets one before the tag.
		if tail, ok := bytes.CutPrefix(rest, data); !ok || len(tail) > 0 && string(tail) != "\n" && string(tail) != "\r\n" {
			t.Fatalf("without the tag\n%q\nis not the input\n%q", rest, data)
		}
		if again, err := manifestfilter.SteerMaster(got, uri); err != nil || !bytes.Equal(again, got) {
			t.Fatalf("steering twice: %q, %v", again, err)
		}
	})
}

// FuzzSteerMPD: whatever MPD comes in, a steered one is well-formed XML
// with the elements of the input and the two added under the root (the
// BaseURL and, last, the ContentSteering with the URI given), or the
// input itself when it had a ContentSteering; steering it again changes
// nothing.
func FuzzSteerMPD(f *testing.F) {
	f.Add(manifestfiltertest.MPD(), dashURI)
	f.Add([]byte(`<m:MPD xmlns:m="u"><m:ProgramInformation/><m:Period><m:BaseURL>a/</m:BaseURL></m:Period></m:MPD>`), "http://h/s?x=1&y=<")
	f.Add([]byte("<MPD>\r\n <Period/>\r\n <ContentSteering>x</ContentSteering>\r\n</MPD>"), dashURI)
	f.Add([]byte(`<?xml version="1.0"?><!-- c --><MPD/>`), dashURI)
	f.Fuzz(func(t *testing.T, data []byte, uri string) {
		got, err := manifestfilter.SteerMPD(data, uri)
		if err != nil {
			if !errors.Is(err, manifestfilter.ErrSyntax) && !errors.Is(err, manifestfilter.ErrServerURI) && !errors.Is(err, manifestfilter.ErrOwnPathways) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if bytes.Equal(got, data) {
			if _, steering := rootChildren(t, data); steering == nil {
				t.Fatalf("unchanged, yet the input has no ContentSteering:\n%q", data)
			}
			return
		}
		before, _ := elements(data)
		after, ok := elements(got)
		if !ok {
			t.Fatalf("the steered MPD is not well-formed:\n%q", got)
		}
		// The BaseURL is the first child after any ProgramInformation, the
		// ContentSteering the last; the rest is the input's.
		b := slices.IndexFunc(after, func(e string) bool { return strings.HasPrefix(e, "1 ") && e != "1 ProgramInformation" })
		if b < 0 || after[b] != "1 BaseURL" || after[len(after)-1] != "1 ContentSteering" ||
			!slices.Equal(slices.Concat(after[:b], after[b+1:len(after)-1]), before) {
			t.Fatalf("elements %q from %q", after, before)
		}
		children, steering := rootChildren(t, got)
		first := slices.IndexFunc(children, func(c string) bool { return c != "ProgramInformation" })
		if children[first] != "BaseURL ." || steering == nil || steering.text != uri || steering.def != "." || steering.query != "false" {
			t.Fatalf("children %q, steering %+v; want the BaseURL of \".\" and the steering of %q", children, steering, uri)
		}
		if again, err := manifestfilter.SteerMPD(got, uri); err != nil || !bytes.Equal(again, got) {
			t.Fatalf("steering twice: %q, %v", again, err)
		}
	})
}

// elements lists the start elements of an XML document as "{depth}
// {name}", and whether it is well-formed.
func elements(data []byte) ([]string, bool) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var out []string
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out, depth == 0
		}
		if err != nil {
			return out, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			out = append(out, string(rune('0'+min(depth, 9)))+" "+t.Name.Local)
			depth++
		case xml.EndElement:
			depth--
		}
	}
}

// contentSteering is a ContentSteering element as players read it.
type contentSteering struct{ def, query, text string }

// rootChildren returns the root's children ("BaseURL ." for a BaseURL
// with its serviceLocation) and its last ContentSteering, as shaka-player
// and dash.js find them.
func rootChildren(t *testing.T, data []byte) ([]string, *contentSteering) {
	t.Helper()
	var root struct {
		Children []struct {
			XMLName xml.Name
			Attrs   []xml.Attr `xml:",any,attr"`
			Text    string     `xml:",chardata"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(data, &root); err != nil {
		t.Fatalf("unmarshal: %v\n%q", err, data)
	}
	var (
		names []string
		cs    *contentSteering
	)
	for _, c := range root.Children {
		attr := func(name string) string {
			for _, a := range c.Attrs {
				if a.Name.Local == name {
					return a.Value
				}
			}
			return ""
		}
		switch c.XMLName.Local {
		case "BaseURL":
			names = append(names, "BaseURL "+attr("serviceLocation"))
		case "ContentSteering":
			cs = &contentSteering{def: attr("defaultServiceLocation"), query: attr("queryBeforeStart"), text: c.Text}
			names = append(names, c.XMLName.Local)
		default:
			names = append(names, c.XMLName.Local)
		}
	}
	return names, cs
}
