package cmcd

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// hlsjs is a payload as hls.js sends it for a video segment.
const hlsjs = `br=3200,bl=21300,bs,cid="faec5fc2-ac30-11ea-bb37-0242ac130002",d=4004,mtp=25400,ot=v,sf=h,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",st=v,tb=6000,com.example-myKey="a,b\"c"`

func TestParse(t *testing.T) {
	t.Parallel()
	sid := []byte("6e2fb550-c457-11e9-bb97-0800200c9a66")
	tests := []struct {
		name    string
		payload string
		want    Data
		err     string // a part of the error; "" for none
	}{
		{"empty", "", Data{}, ""},
		{"blank", "  ", Data{}, ""},
		{"player", hlsjs, Data{
			Has:     KeyBitrate | KeyBuffer | KeyStarved | KeyContent | KeyDuration | KeyThroughput | KeyObject | KeySession,
			Bitrate: 3200, Buffer: 21300, Starved: true, Duration: 4004, Throughput: 25400, Object: ObjectVideo,
			Content: []byte("faec5fc2-ac30-11ea-bb37-0242ac130002"), Session: sid,
		}, ""},
		{"manifest", `ot=m,sf=h,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",su`, Data{Has: KeyObject | KeySession, Object: ObjectManifest, Session: sid}, ""},
		{"spaces", " br = 3200\t", Data{Has: KeyBitrate, Bitrate: 3200}, ""},
		{"spaces around pairs", " br=3200 , ot=av ", Data{Has: KeyBitrate | KeyObject, Bitrate: 3200, Object: ObjectMuxed}, ""},
		{"last wins", "br=1,br=2", Data{Has: KeyBitrate, Bitrate: 2}, ""},
		{"escaped quote", `sid="a\"b"`, Data{Has: KeySession, Session: []byte(`a\"b`)}, ""},
		{"every object type", "ot=tt", Data{Has: KeyObject, Object: ObjectTimedText}, ""},
		{"unknown quoted value with a comma", `x="a,b",br=5`, Data{Has: KeyBitrate, Bitrate: 5}, ""},
		{"unknown negative number", `pr=-1.25,bl=100`, Data{Has: KeyBuffer, Buffer: 100}, ""},
		{"trailing comma", "br=1,", Data{}, "want a key after ','"},
		{"leading comma", ",br=1", Data{}, "want a key"},
		{"double comma", "br=1,,bl=2", Data{}, "want a key"},
		{"empty value", "br=", Data{}, "empty value"},
		{"negative", "br=-1", Data{}, `key "br": want a non-negative integer`},
		{"decimal", "bl=1.5", Data{}, "non-negative integer"},
		{"too many digits", "mtp=1234567890123456789", Data{}, "non-negative integer"},
		{"quoted number", `d="4004"`, Data{}, "non-negative integer"},
		{"bare integer key", "br", Data{}, "non-negative integer"},
		{"boolean with a value", "bs=true", Data{}, "without '='"},
		{"unquoted sid", "sid=abc", Data{}, "quoted string"},
		{"long sid", `sid="` + strings.Repeat("x", 65) + `"`, Data{}, "at most 64 bytes"},
		{"unterminated", `sid="abc`, Data{}, "closing"},
		{"escape at the end", `sid="abc\`, Data{}, "closing"},
		{"control character", "cid=\"a\x01\"", Data{}, "control character"},
		{"quote in a token", `ot=v"`, Data{}, "want a token"},
		{"bad object type", "ot=x", Data{}, "want an object type"},
		{"quoted object type", `ot="v"`, Data{}, "want an object type"},
		{"bad key", "b r=1", Data{}, "want ',' between keys"},
		{"key of symbols", "%=1", Data{}, "want a key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Data
			err := Parse(&got, []byte(tt.payload))
			if tt.err != "" {
				var se *SyntaxError
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.As(err, &se) {
					t.Fatalf("Parse(%q) = %v, want a *SyntaxError with %q", tt.payload, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.payload, err)
			}
			if !equal(got, tt.want) {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.payload, got, tt.want)
			}
		})
	}
}

func equal(a, b Data) bool {
	return a.Has == b.Has && a.Bitrate == b.Bitrate && a.Buffer == b.Buffer && a.Duration == b.Duration &&
		a.Throughput == b.Throughput && a.Starved == b.Starved && a.Object == b.Object &&
		bytes.Equal(a.Session, b.Session) && bytes.Equal(a.Content, b.Content)
}

// TestParseHeaders: the four headers of a real fasthttp request add up.
func TestParseHeaders(t *testing.T) {
	t.Parallel()
	var req fasthttp.Request
	req.Header.Set("CMCD-Object", "br=3200,d=4004,ot=v,tb=6000")
	req.Header.Set("cmcd-request", "bl=21300,mtp=25400,su")
	req.Header.Set("CMCD-Session", `cid="c1",sid="s1",sf=h,st=v`)
	req.Header.Set("CMCD-Status", "bs,rtp=15000")
	var d Data
	if err := ParseHeaders(&d, &req.Header); err != nil {
		t.Fatal(err)
	}
	want := Data{Has: KeyBitrate | KeyDuration | KeyObject | KeyBuffer | KeyThroughput | KeyContent | KeySession | KeyStarved,
		Bitrate: 3200, Duration: 4004, Object: ObjectVideo, Buffer: 21300, Throughput: 25400, Starved: true,
		Content: []byte("c1"), Session: []byte("s1")}
	if !equal(d, want) {
		t.Errorf("got %+v, want %+v", d, want)
	}
	req.Header.Set("CMCD-Status", "bs=1")
	if err := ParseHeaders(&d, &req.Header); err == nil {
		t.Error("a malformed CMCD-Status header parsed")
	}
}

func TestAppendQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, query, want string
		found             bool
		err               string
	}{
		{"alone", "CMCD=" + url.QueryEscape(hlsjs), hlsjs, true, ""},
		{"as players send it", "CMCD=br%3D3200%2Cbl%3D21300%2Cd%3D4004%2Cot%3Dv%2Csid%3D%226e2fb550-c457-11e9-bb97-0800200c9a66%22",
			`br=3200,bl=21300,d=4004,ot=v,sid="6e2fb550-c457-11e9-bb97-0800200c9a66"`, true, ""},
		{"among others", "a=1&CMCD=br%3D3200%2Cot%3Dv&b=2", "br=3200,ot=v", true, ""},
		{"escaped letters", "CMCD=%62r%3d1", "br=1", true, ""},
		{"first counts", "CMCD=br%3D1&CMCD=br%3D2", "br=1", true, ""},
		{"empty", "CMCD=", "", true, ""},
		{"absent", "a=1&cmcd=br%3D1&XCMCD=1", "", false, ""},
		{"no query", "", "", false, ""},
		{"bare name", "CMCD", "", false, ""},
		{"plus is a space", "CMCD=br%3D1+", "br=1 ", true, ""},
		{"bad escape", "CMCD=br%3", "", true, "byte 7: '%' in the query"},
		{"bad hex", "x=1&CMCD=br%zz1", "", true, "byte 11: '%'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found, err := AppendQuery(nil, []byte(tt.query))
			if found != tt.found || (err != nil) != (tt.err != "") || err != nil && !strings.Contains(err.Error(), tt.err) || err == nil && string(got) != tt.want {
				t.Errorf("AppendQuery(%q) = %q, %v, %v; want %q, %v, error with %q", tt.query, got, found, err, tt.want, tt.found, tt.err)
			}
		})
	}
	got, _, _ := AppendQuery([]byte("x"), []byte("CMCD=a"))
	if string(got) != "xa" {
		t.Errorf("AppendQuery does not append: %q", got)
	}
}

func TestObjectTypeString(t *testing.T) {
	t.Parallel()
	for o, want := range map[ObjectType]string{ObjectNone: "", ObjectMuxed: "av", ObjectOther: "o", 42: "ObjectType(42)"} {
		if got := o.String(); got != want {
			t.Errorf("ObjectType(%d).String() = %q, want %q", o, got, want)
		}
	}
}

// FuzzParse: any payload, as a query or a header, parses or is refused
// with a *SyntaxError, never panics, and what it reads views the input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{hlsjs, "", "bs", `sid="a\"b"`, "br=1,", "ot=av,x=\"", "CMCD=br%3D1", "CMCD=sid%3D%22a%5C%22%22", "a+b%zz&CMCD=%2", "br=999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in := []byte(s)
		var d Data
		if err := Parse(&d, in); err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(in) {
				t.Fatalf("Parse(%q): %v is not a *SyntaxError within the input", s, err)
			}
		}
		for _, v := range [][]byte{d.Session, d.Content} {
			if len(v) > MaxStringLen || (len(v) > 0 && !bytes.Contains(in, v)) {
				t.Fatalf("Parse(%q): string %q is not a short view of the input", s, v)
			}
		}
		if d.Bitrate < 0 || d.Buffer < 0 || d.Duration < 0 || d.Throughput < 0 || int(d.Object) >= len(objectTokens) {
			t.Fatalf("Parse(%q) = %+v", s, d)
		}
		// The same bytes as a query decode to no more bytes, or to a
		// *SyntaxError.
		dec, _, err := AppendQuery(nil, in)
		var se *SyntaxError
		if err != nil && (!errors.As(err, &se) || se.Offset < 0 || se.Offset > len(in)) || len(dec) > len(in) {
			t.Fatalf("AppendQuery(%q) = %q, %v", s, dec, err)
		}
	})
}

// BenchmarkParse parses a full player payload, as the server does for
// every segment request that carries one.
func BenchmarkParse(b *testing.B) {
	in := []byte(hlsjs)
	var d Data
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		d.Reset()
		if err := Parse(&d, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendQuery decodes the same payload from a query, as a
// server without fasthttp's decoding would, and parses it.
func BenchmarkAppendQuery(b *testing.B) {
	q := []byte("a=1&CMCD=" + url.QueryEscape(hlsjs))
	buf := make([]byte, 0, 512)
	var d Data
	b.ReportAllocs()
	b.SetBytes(int64(len(q)))
	for b.Loop() {
		v, _, _ := AppendQuery(buf[:0], q)
		d.Reset()
		if err := Parse(&d, v); err != nil {
			b.Fatal(err)
		}
	}
}
