// Package cmcd reads Common Media Client Data (CTA-5004): the state a
// player attaches to each segment request, as the CMCD query parameter
// or the CMCD-Object, CMCD-Request, CMCD-Session and CMCD-Status headers.
// The appliance's server parses it on every content request and hands it
// to the usage recorder (appliance/usage), which sums it per title and
// rendition for the control plane.
//
// It reads the keys the summaries use: br (encoded bitrate, kbps), bl
// (buffer length, ms), bs (buffer starvation), sid and cid (session and
// content ids), ot (object type), d (object duration, ms) and mtp
// (measured throughput, kbps). Other keys, custom ones included, are
// checked for syntax and skipped. Parsing runs on the hit path, so it
// allocates nothing: it fills a Data the caller owns, whose strings are
// sub-slices of the bytes parsed.
package cmcd

import (
	"bytes"
	"strconv"

	"github.com/fillcast/fillcast/internal/decimal"
)

// Keys is a set of the keys a Data was given.
type Keys uint16

// The keys this package reads.
const (
	KeyBitrate    Keys = 1 << iota // br
	KeyBuffer                      // bl
	KeyStarved                     // bs
	KeySession                     // sid
	KeyContent                     // cid
	KeyObject                      // ot
	KeyDuration                    // d
	KeyThroughput                  // mtp
)

// ObjectType is the ot key: what kind of object the request is for.
type ObjectType uint8

// Object types, with their tokens.
const (
	ObjectNone      ObjectType = iota // ot not sent
	ObjectManifest                    // m: a manifest or playlist
	ObjectAudio                       // a: audio only
	ObjectVideo                       // v: video only
	ObjectMuxed                       // av: muxed audio and video
	ObjectInit                        // i: an init segment
	ObjectCaption                     // c: captions or subtitles
	ObjectTimedText                   // tt: ISOBMFF timed text track
	ObjectKey                         // k: a cryptographic key, license or certificate
	ObjectOther                       // o: anything else
)

var objectTokens = [...]string{"", "m", "a", "v", "av", "i", "c", "tt", "k", "o"}

// String returns the token of o ("v"), or "" for ObjectNone.
func (o ObjectType) String() string {
	if int(o) < len(objectTokens) {
		return objectTokens[o]
	}
	return "ObjectType(" + strconv.Itoa(int(o)) + ")"
}

// MaxStringLen is the longest sid or cid accepted, in bytes between the
// quotes: CTA-5004 allows 64 characters.
const MaxStringLen = 64

// QueryParam is the name of the query parameter that carries CMCD.
const QueryParam = "CMCD"

// HeaderNames are the headers that carry CMCD, each with some of the
// keys, in the canonical form a server that normalizes header names
// stores them in (fasthttp's default; HTTP/2 and 3 send them lower-case).
var HeaderNames = [...]string{"Cmcd-Object", "Cmcd-Request", "Cmcd-Session", "Cmcd-Status"}

// Data is what a request's CMCD said. Integer fields are meaningful only
// when Has holds their key. Session and Content are views into the bytes
// parsed, with any backslash escapes left in: they must not outlive those
// bytes.
type Data struct {
	// Has is the set of keys given.
	Has Keys
	// Bitrate is br: the encoded bitrate of the object, kbps.
	Bitrate int64
	// Buffer is bl: the buffer length, ms (rounded to 100 ms by the
	// player).
	Buffer int64
	// Duration is d: the playback duration of the object, ms.
	Duration int64
	// Throughput is mtp: the throughput the player measured, kbps.
	Throughput int64
	// Starved is bs: the buffer ran empty since the previous request.
	Starved bool
	// Object is ot.
	Object ObjectType
	// Session is sid, the playback session's id, unquoted.
	Session []byte
	// Content is cid, the content's id, unquoted.
	Content []byte
}

// Reset forgets every key.
func (d *Data) Reset() { *d = Data{} }

// SyntaxError is CMCD that cannot be read: where and why.
type SyntaxError struct {
	// Offset is the byte of the payload at which the problem is.
	Offset int
	// Key is the key whose value is wrong; empty for a problem of the
	// list itself.
	Key string
	// Problem says what was expected.
	Problem string
}

// Error returns "cmcd: byte N: key K: problem".
func (e *SyntaxError) Error() string {
	s := "cmcd: byte " + strconv.Itoa(e.Offset) + ": "
	if e.Key != "" {
		s += "key " + strconv.Quote(e.Key) + ": "
	}
	return s + e.Problem
}

func syntaxError(at int, key []byte, problem string) error {
	return &SyntaxError{Offset: at, Key: string(key), Problem: problem}
}

// Header is what ParseHeaders reads a request's headers with: the value
// of the header of the canonical name key ("Cmcd-Request"), nil when
// absent. *fasthttp.RequestHeader is one, as long as its server
// normalizes header names (the default).
type Header interface {
	PeekCanonical(key []byte) []byte
}

// headerKeys are HeaderNames as PeekCanonical takes them.
var headerKeys = [len(HeaderNames)][]byte{
	[]byte(HeaderNames[0]), []byte(HeaderNames[1]), []byte(HeaderNames[2]), []byte(HeaderNames[3]),
}

// ParseHeaders parses each CMCD-* header of h that is present into d.
// The first malformed one is an error; d then holds what came before it.
func ParseHeaders(d *Data, h Header) error {
	for _, name := range headerKeys {
		if v := h.PeekCanonical(name); len(v) > 0 {
			if err := Parse(d, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Parse parses one CMCD payload, the decoded value of the CMCD query
// parameter or the value of one CMCD-* header
// ("br=3200,bl=21300,ot=v,sid=\"x\""), into d, adding its keys to those d
// holds (a key given again replaces the earlier value). An empty payload
// adds nothing. Whitespace around keys, '=' and values is allowed.
// Malformed input is a *SyntaxError; d then holds the keys before the
// problem.
func Parse(d *Data, b []byte) error {
	i := skipSpace(b, 0)
	if i == len(b) {
		return nil
	}
	for {
		ks := i
		for i < len(b) && isKeyByte(b[i]) {
			i++
		}
		if i == ks {
			return syntaxError(i, nil, "want a key: letters, digits, '.', '-' or '_'")
		}
		key := b[ks:i]
		var val []byte
		hasVal, quoted := false, false
		if j := skipSpace(b, i); j < len(b) && b[j] == '=' {
			i = skipSpace(b, j+1)
			hasVal = true
			var err error
			if val, quoted, i, err = value(b, i, key); err != nil {
				return err
			}
		}
		if err := d.set(key, val, hasVal, quoted, ks); err != nil {
			return err
		}
		i = skipSpace(b, i)
		if i == len(b) {
			return nil
		}
		if b[i] != ',' {
			return syntaxError(i, nil, "want ',' between keys")
		}
		if i = skipSpace(b, i+1); i == len(b) {
			return syntaxError(i, nil, "want a key after ','")
		}
	}
}

// value reads the value that starts at b[i], after a key's '=': a quoted
// string (returned without its quotes) or a bare token or number. It
// returns the index after it.
func value(b []byte, i int, key []byte) (val []byte, quoted bool, next int, err error) {
	if i < len(b) && b[i] == '"' {
		start := i + 1
		// The usual string, without backslashes, ends at the next quote.
		if j := bytes.IndexByte(b[start:], '"'); j >= 0 && bytes.IndexByte(b[start:start+j], '\\') < 0 {
			for k, c := range b[start : start+j] {
				if c < 0x20 || c == 0x7f {
					return nil, false, start + k, syntaxError(start+k, key, "control character in a string")
				}
			}
			return b[start : start+j], true, start + j + 1, nil
		}
		for i = start; i < len(b) && b[i] != '"'; i++ {
			switch c := b[i]; {
			case c == '\\':
				i++ // the escaped byte, checked below unless it ends b
				if i < len(b) && (b[i] < 0x20 || b[i] == 0x7f) {
					return nil, false, i, syntaxError(i, key, "control character in a string")
				}
			case c < 0x20 || c == 0x7f:
				return nil, false, i, syntaxError(i, key, "control character in a string")
			}
		}
		if i >= len(b) {
			return nil, false, len(b), syntaxError(start-1, key, "string without its closing '\"'")
		}
		return b[start:i], true, i + 1, nil
	}
	start := i
	for i < len(b) && b[i] != ',' && b[i] != ' ' && b[i] != '\t' {
		if c := b[i]; c < 0x20 || c == 0x7f || c == '"' {
			return nil, false, i, syntaxError(i, key, "want a token or number, or a quoted string")
		}
		i++
	}
	if i == start {
		return nil, false, i, syntaxError(i, key, "empty value after '='")
	}
	return b[start:i], false, i, nil
}

// set applies one key of the payload to d; at is the key's offset.
func (d *Data) set(key, val []byte, hasVal, quoted bool, at int) error {
	switch string(key) {
	case "br":
		return d.setInt(KeyBitrate, &d.Bitrate, key, val, hasVal && !quoted, at)
	case "bl":
		return d.setInt(KeyBuffer, &d.Buffer, key, val, hasVal && !quoted, at)
	case "d":
		return d.setInt(KeyDuration, &d.Duration, key, val, hasVal && !quoted, at)
	case "mtp":
		return d.setInt(KeyThroughput, &d.Throughput, key, val, hasVal && !quoted, at)
	case "bs":
		if hasVal {
			return syntaxError(at, key, "a true boolean is sent as the key alone, without '='")
		}
		d.Starved = true
		d.Has |= KeyStarved
	case "sid":
		return d.setString(KeySession, &d.Session, key, val, hasVal && quoted, at)
	case "cid":
		return d.setString(KeyContent, &d.Content, key, val, hasVal && quoted, at)
	case "ot":
		if hasVal && !quoted {
			for o, tok := range objectTokens[1:] {
				if string(val) == tok {
					d.Object = ObjectType(o + 1)
					d.Has |= KeyObject
					return nil
				}
			}
		}
		return syntaxError(at, key, "want an object type: m, a, v, av, i, c, tt, k or o")
	}
	return nil // a key of no interest here: skipped
}

func (d *Data) setInt(k Keys, dst *int64, key, val []byte, ok bool, at int) error {
	n, valid := decimal.ParseUint(val)
	if !ok || !valid {
		return syntaxError(at, key, "want a non-negative integer of at most 18 digits")
	}
	*dst = n
	d.Has |= k
	return nil
}

func (d *Data) setString(k Keys, dst *[]byte, key, val []byte, ok bool, at int) error {
	if !ok || len(val) > MaxStringLen {
		return syntaxError(at, key, "want a quoted string of at most 64 bytes")
	}
	*dst = val
	d.Has |= k
	return nil
}

// isKeyByte reports whether c may be part of a key: CTA-5004's keys are
// lower-case letters, and custom keys ("com.example-myKey") add
// upper-case letters, digits, '.' and '-'.
func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}
