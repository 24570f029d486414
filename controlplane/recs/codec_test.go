package recs_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"reflect"
	"testing"

	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/controlplane/recs/recstest"
)

// header is the fixed part of a model's encoding.
type header struct {
	version, width   byte
	reserved         uint16
	k, users, titles uint32
}

// encode builds a model's encoding by hand, as codec.go's comment lays
// it out, so that the decoder is not only tested against its encoder.
func encode(h header, ids []string, factors []float64) []byte {
	b := []byte("FCRM")
	b = append(b, h.version, h.width)
	b = binary.LittleEndian.AppendUint16(b, h.reserved)
	b = binary.LittleEndian.AppendUint32(b, h.k)
	b = binary.LittleEndian.AppendUint32(b, h.users)
	b = binary.LittleEndian.AppendUint32(b, h.titles)
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
	}
	for _, v := range factors {
		if h.width == 8 {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		} else {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
		}
	}
	return seal(b)
}

// seal appends the CRC-32C of body.
func seal(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
}

// tiny is user a and titles x and y with one factor each: a·x = 2,
// a·y = 1.
var (
	tinyHeader = header{version: 1, width: 8, k: 1, users: 1, titles: 2}
	tinyIDs    = []string{"a", "x", "y"}
	tinyX      = []float64{1, 2, 1}
)

func tinyModel() []byte { return encode(tinyHeader, tinyIDs, tinyX) }

// corruptModels are encodings UnmarshalBinary must refuse.
func corruptModels() []struct {
	name string
	data []byte
} {
	h := func(edit func(*header)) header { c := tinyHeader; edit(&c); return c }
	valid := tinyModel()
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/2] ^= 0x40
	badMagic := bytes.Clone(valid[:len(valid)-4])
	badMagic[0] = 'X'
	return []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"shorter than a header", valid[:10]},
		{"bad magic", seal(badMagic)},
		{"other version", encode(h(func(c *header) { c.version = 2 }), tinyIDs, tinyX)},
		{"bit flipped", flipped},
		{"truncated", valid[:len(valid)-1]},
		{"bad width", encode(h(func(c *header) { c.width = 3 }), tinyIDs, tinyX)},
		{"reserved set", encode(h(func(c *header) { c.reserved = 1 }), tinyIDs, tinyX)},
		{"no factors", encode(h(func(c *header) { c.k = 0 }), tinyIDs, nil)},
		{"too many factors", encode(h(func(c *header) { c.k = 513 }), tinyIDs, make([]float64, 3*513))},
		{"no titles", encode(h(func(c *header) { c.titles = 0 }), tinyIDs[:1], tinyX[:1])},
		{"counts beyond the data", encode(h(func(c *header) { c.users = math.MaxUint32 }), tinyIDs, tinyX)},
		{"empty id", encode(tinyHeader, []string{"", "xx", "y"}, tinyX)},
		{"id missing", encode(tinyHeader, tinyIDs[:2], tinyX)},
		{"duplicate user", encode(h(func(c *header) { c.users, c.titles = 2, 1 }), []string{"a", "a", "x"}, tinyX)},
		{"duplicate title", encode(tinyHeader, []string{"a", "x", "x"}, tinyX)},
		{"NaN factor", encode(tinyHeader, tinyIDs, []float64{math.NaN(), 2, 1})},
		{"infinite float32 factor", encode(h(func(c *header) { c.width = 4 }), tinyIDs, []float64{1, math.Inf(1), 1})},
		{"factor missing", encode(tinyHeader, tinyIDs, tinyX[:2])},
		{"trailing bytes", encode(tinyHeader, tinyIDs, []float64{1, 2, 1, 7})},
	}
}

func TestModelUnmarshalRefusesCorrupt(t *testing.T) {
	t.Parallel()
	for _, tt := range corruptModels() {
		t.Run(tt.name, func(t *testing.T) {
			var m recs.Model
			if err := m.UnmarshalBinary(tt.data); !errors.Is(err, recs.ErrBadModel) {
				t.Errorf("UnmarshalBinary = %v, want ErrBadModel", err)
			}
		})
	}
}

func TestModelUnmarshalHandEncoded(t *testing.T) {
	t.Parallel()
	for _, width := range []byte{4, 8} {
		h := tinyHeader
		h.width = width
		var m recs.Model
		if err := m.UnmarshalBinary(encode(h, tinyIDs, tinyX)); err != nil {
			t.Fatalf("width %d: %v", width, err)
		}
		got, ok := m.Recommend("a", 5, nil)
		if want := []recs.Item{{ID: "x", Score: 2}, {ID: "y", Score: 1}}; !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("width %d: Recommend(a) = %v, %v; want %v", width, got, ok, want)
		}
		if got, want := m.Users()+m.Titles(), 3; got != want {
			t.Errorf("width %d: %d users and titles, want %d", width, got, want)
		}
	}
}

func TestModelRoundTrip(t *testing.T) {
	t.Parallel()
	d := planted(11)
	cfg := recs.DefaultALSConfig()
	cfg.Factors, cfg.Iterations = 8, 3
	m, err := recs.Train(context.Background(), d.Train, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b[5], byte(4); got != want {
		t.Errorf("factor width %d, want %d: Train keeps float32 precision", got, want)
	}
	var got recs.Model
	// A Model in use before, with score vectors of another length.
	if err := got.UnmarshalBinary(tinyModel()); err != nil {
		t.Fatal(err)
	}
	got.Recommend("a", 1, nil)
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for u := range 1200 {
		user := recstest.User(u)
		w, wok := m.Recommend(user, 10, nil)
		g, gok := got.Recommend(user, 10, nil)
		if wok != gok || !reflect.DeepEqual(g, w) {
			t.Fatalf("Recommend(%s) after the round trip = %v, %v; want %v, %v", user, g, gok, w, wok)
		}
	}
	for tt := range 240 {
		title := recstest.Title(tt)
		w, wok := m.Similar(title, 10)
		g, gok := got.Similar(title, 10)
		if wok != gok || !reflect.DeepEqual(g, w) {
			t.Fatalf("Similar(%s) after the round trip = %v, %v; want %v, %v", title, g, gok, w, wok)
		}
	}
	again, err := got.MarshalBinary()
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("re-encoding differs (%v)", err)
	}
	// A failed decode leaves the model as it was.
	if err := got.UnmarshalBinary(b[:len(b)-1]); err == nil {
		t.Fatal("truncated model decoded")
	}
	if _, ok := got.Recommend(recstest.User(0), 3, nil); !ok {
		t.Error("model lost after a failed UnmarshalBinary")
	}
	var empty recs.Model
	if _, err := empty.MarshalBinary(); err == nil {
		t.Error("MarshalBinary of an empty model succeeded")
	}
}

func FuzzModelUnmarshal(f *testing.F) {
	f.Add(tinyModel(), false)
	small := recstest.Generate(recstest.Spec{Users: 12, Titles: 6, Genres: 2, PerUser: 3, Seed: 1, Start: start})
	cfg := recs.DefaultALSConfig()
	cfg.Factors, cfg.Iterations = 2, 2
	m, err := recs.Train(context.Background(), small.Train, cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	b, err := m.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, false)
	f.Add(b, true)
	for _, c := range corruptModels() {
		f.Add(c.data, false)
	}
	// reseal recomputes the checksum, so that mutations reach the
	// parser behind it.
	f.Fuzz(func(t *testing.T, data []byte, reseal bool) {
		if reseal && len(data) >= 4 {
			data = seal(bytes.Clone(data[:len(data)-4]))
		}
		var m recs.Model
		if err := m.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, recs.ErrBadModel) {
				t.Fatalf("UnmarshalBinary = %v, want ErrBadModel", err)
			}
			return
		}
		m.Recommend("a", 5, nil)
		m.Similar("x", 5)
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a decoded model: %v", err)
		}
		var again recs.Model
		if err := again.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if b2, err := again.MarshalBinary(); err != nil || !bytes.Equal(b2, b) {
			t.Fatalf("re-encoding differs (%v)", err)
		}
	})
}
