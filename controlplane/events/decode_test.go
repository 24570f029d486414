package events

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// jsonEvent is a valid play event with the given id, as a player sends it.
func jsonEvent(id string) string {
	return `{"id":"` + id + `","user":"u1","title":"t1","type":"play","position_s":0,"duration_s":60,"ts":"2026-11-26T11:00:00Z"}`
}

// fieldBug: decodeEvent reports a JSON type error's field as
// json.UnmarshalTypeError.Field, the path through wireEvent's embedded
// *plain ("plain.position_s"); it should keep what follows the last dot.
const fieldBug = "type errors name the field plain.<name>"

func TestDecodeBatch(t *testing.T) {
	lim := Limits{MaxBatchBytes: 1024, MaxBatchEvents: 5}
	a, b, c := jsonEvent("a"), jsonEvent("b"), jsonEvent("c")
	tests := []struct {
		name     string
		body     string
		ids      []string          // the events kept, by id
		rejected []ValidationError // Reason is not compared
		wantErr  error             // a whole-batch error
		index    int               // its Index, when a *ValidationError
		bug      string            // a known bug that makes the case fail: skip it
	}{
		{name: "array", body: "[" + a + "," + b + "]", ids: []string{"a", "b"}},
		{name: "object", body: `{"events":[` + a + `]}`, ids: []string{"a"}},
		{name: "spaces around", body: " \n[" + a + "]\n ", ids: []string{"a"}},
		{name: "unix ts", body: `[{"id":"x","user":"u","title":"t","type":"play","ts":1795000000.5}]`, ids: []string{"x"}},
		{name: "null ts", body: `[{"id":"x","title":"t","type":"play","ts":null}]`, ids: []string{"x"}},
		{name: "partial", body: "[" + a + `,{"id":"p","title":"t","type":"rewind"},` + b + `,42,{"id":"q","usr":"x"}]`,
			ids: []string{"a", "b"},
			rejected: []ValidationError{
				{Index: 1, Field: "type"},
				{Index: 3},
				{Index: 4, Field: "usr"},
			}},
		{name: "duplicate id", body: "[" + a + "," + b + "," + a + "]", ids: []string{"a", "b"},
			rejected: []ValidationError{{Index: 2, Field: "id"}}},
		{name: "duplicate of a rejected event kept", body: `[{"id":"a","type":"play"},` + a + "]", ids: []string{"a"},
			rejected: []ValidationError{{Index: 0, Field: "title"}}},
		{name: "all rejected", body: `[null,{"id":"a","type":"play","title":"t","position_s":"ten"}]`, ids: []string{},
			rejected: []ValidationError{{Index: 0}, {Index: 1, Field: "position_s"}}, bug: fieldBug},
		{name: "bad ts", body: `[{"id":"a","title":"t","type":"play","ts":"yesterday"},` + b + `]`, ids: []string{"b"},
			rejected: []ValidationError{{Index: 0, Field: "ts"}}},
		{name: "negative unix ts", body: `[{"id":"a","title":"t","type":"play","ts":-1}]`, ids: []string{},
			rejected: []ValidationError{{Index: 0, Field: "ts"}}},
		{name: "future ts", body: `[{"id":"a","title":"t","type":"play","ts":"2026-11-26T13:00:00Z"}]`, ids: []string{},
			rejected: []ValidationError{{Index: 0, Field: "ts"}}},
		{name: "huge number", body: `[{"id":"a","title":"t","type":"play","position_s":1e400}]`, ids: []string{},
			rejected: []ValidationError{{Index: 0, Field: "position_s"}}, bug: fieldBug},

		{name: "empty body", body: "  ", wantErr: ErrInvalid, index: -1},
		{name: "empty array", body: "[]", wantErr: ErrInvalid, index: -1},
		{name: "null", body: "null", wantErr: ErrInvalid, index: -1},
		{name: "object without events", body: "{}", wantErr: ErrInvalid, index: -1},
		{name: "object with unknown field", body: `{"events":[` + a + `],"more":1}`, wantErr: ErrInvalid, index: -1},
		{name: "data after the object", body: `{"events":[` + a + `]} {}`, wantErr: ErrInvalid, index: -1},
		{name: "data after the array", body: "[" + a + "] x", wantErr: ErrInvalid, index: -1},
		{name: "not json", body: "hello", wantErr: ErrInvalid, index: -1},
		{name: "truncated", body: "[" + a, wantErr: ErrInvalid, index: -1},
		{name: "too many events", body: "[" + strings.Repeat(c+",", 5) + c + "]", wantErr: ErrTooLarge},
		{name: "too many bytes", body: "[" + a + strings.Repeat(" ", 1024) + "]", wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batch, rejected, err := DecodeBatch(strings.NewReader(tt.body), lim, t0)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("DecodeBatch err = %v, want %v", err, tt.wantErr)
				}
				if batch != nil || rejected != nil {
					t.Errorf("DecodeBatch = %v, %v with an error, want nothing", batch, rejected)
				}
				var ve *ValidationError
				if errors.As(err, &ve) && ve.Index != tt.index {
					t.Errorf("index = %d, want %d (%v)", ve.Index, tt.index, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeBatch = %v", err)
			}
			ids := []string{}
			for _, e := range batch {
				ids = append(ids, e.ID)
			}
			if !reflect.DeepEqual(ids, tt.ids) {
				t.Errorf("kept %v, want %v", ids, tt.ids)
			}
			if got, want := len(rejected), len(tt.rejected); got != want {
				t.Fatalf("rejected %+v, want %d", rejected, want)
			}
			for i, got := range rejected {
				want := tt.rejected[i]
				if got.Index != want.Index || got.Field != want.Field {
					if tt.bug != "" {
						t.Fatalf("bug: %s: rejected[%d] = %d %q", tt.bug, i, got.Index, got.Field)
					}
					t.Errorf("rejected[%d] = %d %q, want %d %q (%v)", i, got.Index, got.Field, want.Index, want.Field, got.Reason)
				}
				if got.Reason == "" {
					t.Errorf("rejected[%d] has no reason", i)
				}
			}
		})
	}
}

func TestDecodeBatchFields(t *testing.T) {
	body := `[{"id":"q1","user":"u","title":"t1","type":"qoe","ts":"2026-11-26T11:00:00.25Z","site":"s1","appliance":"a1",
		"startup_ms":850,"played_s":10,"rebuffers":1,"rebuffer_ms":420,"bitrate_kbps":2400,"switches":2,"dropped_frames":5}]`
	batch, rejected, err := DecodeBatch(strings.NewReader(body), Limits{}, t0)
	if err != nil || len(rejected) != 0 {
		t.Fatalf("DecodeBatch = %v, %v", rejected, err)
	}
	want := Event{ID: "q1", User: "u", Title: "t1", Type: TypeQoE, TS: time.Date(2026, 11, 26, 11, 0, 0, 250e6, time.UTC),
		Site: "s1", Appliance: "a1", StartupMS: 850, PlayedS: 10, Rebuffers: 1, RebufferMS: 420, BitrateKbps: 2400, Switches: 2, DroppedFrames: 5}
	if diff := diffEvent(batch[0], want); diff != "" {
		t.Errorf("decoded event: %s", diff)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte("[" + jsonEvent("a") + "," + jsonEvent("b") + "]"))
	f.Add([]byte(`{"events":[{"id":"c","user":"u","title":"t","type":"complete","duration_s":1,"ts":1795000000.5}]}`))
	f.Add([]byte(`[{"id":"q","title":"t","type":"qoe","appliance":"a","startup_ms":12.5,"played_s":3,"rebuffers":2,"ts":"2026-11-26T11:00:00+02:00"}]`))
	f.Add([]byte(`[{"id":"s","type":"search","query":"x","results":3,"ts":1795000000},{"id":"e","type":"error","code":"E","fatal":true,"ts":1795000000}]`))
	f.Add([]byte(`[{"id":"i","title":"t","type":"click","row":"r","rank":4,"stream_id":"abc","ts":1795000000},{"id":"i"}]`))
	f.Add([]byte(`[{"user":null},7,"x",[]]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		batch, rejected, err := DecodeBatch(bytes.NewReader(body), Limits{}, t0)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrInvalid nor ErrTooLarge", err)
			}
			if batch != nil || rejected != nil {
				t.Fatalf("events returned with an error")
			}
			return
		}
		if len(batch)+len(rejected) == 0 {
			t.Fatalf("no error and no events")
		}
		last := -1
		for _, r := range rejected {
			if r.Index <= last || r.Reason == "" {
				t.Fatalf("rejected %+v: indexes must increase and reasons be given", rejected)
			}
			last = r.Index
		}
		ids := map[string]bool{}
		for i := range batch {
			if err := batch[i].Validate(i, t0, DefaultLimits().MaxClockSkew); err != nil {
				t.Fatalf("accepted an invalid event: %v", err)
			}
			if ids[batch[i].ID] {
				t.Fatalf("accepted id %q twice", batch[i].ID)
			}
			ids[batch[i].ID] = true
		}
		// What the decoder accepts must survive the stream's encoding,
		// once the node has stamped the events that carry no ts (see
		// TestRecordZeroTS).
		stamped := stampZeroTS(batch, t0)
		back, err := DecodeRecord(AppendRecord(nil, stamped))
		if err != nil || len(back) != len(batch) {
			t.Fatalf("round trip: %d events, err %v; want %d", len(back), err, len(batch))
		}
		for i := range back {
			want := stamped[i]
			want.StreamID = "" // not kept on the stream
			if diff := diffEvent(back[i], want); diff != "" {
				t.Fatalf("event %d after the round trip: %s", i, diff)
			}
		}
	})
}

// stampZeroTS returns a copy of batch with the events without ts given
// now, what "the zero time means when the node received it" asks of the
// node before it publishes.
func stampZeroTS(batch []Event, now time.Time) []Event {
	out := append([]Event(nil), batch...)
	for i := range out {
		if out[i].TS.IsZero() {
			out[i].TS = now
		}
	}
	return out
}
