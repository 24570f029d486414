package events

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func good() Event {
	return Event{User: "u1", Title: "t1", Type: TypeProgress, PositionS: 30, DurationS: 600, TS: t0}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(e *Event)
		field string // "" means valid
	}{
		{"ok", func(e *Event) {}, ""},
		{"ok play without duration", func(e *Event) { e.Type = TypePlay; e.DurationS = 0 }, ""},
		{"ok no ts", func(e *Event) { e.TS = time.Time{} }, ""},
		{"ok no user (the control plane sets the profile)", func(e *Event) { e.User = "" }, ""},
		{"bad stream id", func(e *Event) { e.StreamID = "a b" }, "stream_id"},
		{"long user", func(e *Event) { e.User = strings.Repeat("u", MaxUserLen+1) }, "user"},
		{"control char user", func(e *Event) { e.User = "a\nb" }, "user"},
		{"missing title", func(e *Event) { e.Title = "" }, "title"},
		{"bad title", func(e *Event) { e.Title = "../etc" }, "title"},
		{"missing type", func(e *Event) { e.Type = "" }, "type"},
		{"bad type", func(e *Event) { e.Type = "pause" }, "type"},
		{"negative position", func(e *Event) { e.PositionS = -1 }, "position_s"},
		{"nan position", func(e *Event) { e.PositionS = math.NaN() }, "position_s"},
		{"position past end", func(e *Event) { e.PositionS = 700 }, "position_s"},
		{"inf duration", func(e *Event) { e.DurationS = math.Inf(1) }, "duration_s"},
		{"progress without duration", func(e *Event) { e.DurationS = 0 }, "duration_s"},
		{"future ts", func(e *Event) { e.TS = t0.Add(time.Hour) }, "ts"},
		{"ancient ts", func(e *Event) { e.TS = time.Unix(5, 0) }, "ts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := good()
			tt.edit(&e)
			err := e.Validate(7, t0, 5*time.Minute)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want *ValidationError", err)
			}
			if got, want := ve.Field, tt.field; got != want {
				t.Errorf("field = %q, want %q (%v)", got, want, err)
			}
			if got, want := ve.Index, 7; got != want {
				t.Errorf("index = %d, want %d", got, want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
			if !strings.Contains(err.Error(), "event 7") || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name index and field", err)
			}
		})
	}
}

func TestDecodeBatch(t *testing.T) {
	lim := Limits{MaxBatchBytes: 512, MaxBatchEvents: 3}
	ev := `{"user":"u1","title":"t1","type":"play","position_s":0,"duration_s":60,"ts":"2026-11-26T11:00:00Z"}`
	tests := []struct {
		name    string
		body    string
		wantN   int
		wantErr error
		index   int
		field   string
	}{
		{"array", "[" + ev + "," + ev + "]", 2, nil, 0, ""},
		{"object", `{"events":[` + ev + `]}`, 1, nil, 0, ""},
		{"unix ts", `[{"user":"u","title":"t","type":"play","ts":1795000000}]`, 1, nil, 0, ""},
		{"empty body", "  ", 0, ErrInvalid, -1, ""},
		{"empty array", "[]", 0, ErrInvalid, -1, ""},
		{"not json", "hello", 0, ErrInvalid, -1, ""},
		{"truncated", "[" + ev, 0, ErrInvalid, -1, ""},
		{"not object", `[` + ev + `,42]`, 0, ErrInvalid, 1, ""},
		{"unknown field", `[` + ev + `,{"user":"u","usr":"x"}]`, 0, ErrInvalid, 1, "usr"},
		{"wrong type", `[{"user":"u","title":"t","type":"play","position_s":"ten"}]`, 0, ErrInvalid, 0, "position_s"},
		{"bad ts", `[{"user":"u","title":"t","type":"play","ts":"yesterday"}]`, 0, ErrInvalid, 0, "ts"},
		{"bad second event", `[` + ev + `,{"user":"u","title":"t","type":"rewind"}]`, 0, ErrInvalid, 1, "type"},
		{"too many", "[" + ev + "," + ev + "," + ev + "," + ev + "]", 0, ErrTooLarge, 0, ""},
		{"too many bytes", "[" + strings.Repeat(" ", 600) + "]", 0, ErrTooLarge, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBatch(strings.NewReader(tt.body), lim, t0)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("DecodeBatch = %v", err)
				}
				if len(got) != tt.wantN {
					t.Fatalf("got %d events, want %d", len(got), tt.wantN)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DecodeBatch err = %v, want %v", err, tt.wantErr)
			}
			var ve *ValidationError
			if errors.As(err, &ve) {
				if ve.Index != tt.index || ve.Field != tt.field {
					t.Errorf("got index %d field %q, want %d %q (%v)", ve.Index, ve.Field, tt.index, tt.field, err)
				}
			}
		})
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`[{"user":"u1","title":"t1","type":"play","position_s":0,"duration_s":60,"ts":"2026-11-26T11:00:00Z"}]`))
	f.Add([]byte(`{"events":[{"user":"u","title":"t","type":"complete","duration_s":1,"ts":1795000000.5}]}`))
	f.Add([]byte(`[{"user":null}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := DecodeBatch(strings.NewReader(string(body)), Limits{}, t0)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrInvalid nor ErrTooLarge", err)
			}
			return
		}
		for i := range evs {
			if err := evs[i].Validate(i, t0, 5*time.Minute); err != nil {
				t.Fatalf("accepted an invalid event: %v", err)
			}
		}
		// What the decoder accepts must survive the log's encoding.
		rec := appendRecord(nil, evs)
		back, err := decodePayload(rec[headerLen:])
		if err != nil || len(back) != len(evs) {
			t.Fatalf("round trip: %d events, err %v; want %d", len(back), err, len(evs))
		}
	})
}

func FuzzDecodePayload(f *testing.F) {
	f.Add(appendRecord(nil, []Event{good(), good()})[headerLen:])
	f.Add([]byte{1, 2, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		evs, err := decodePayload(p)
		if err != nil {
			return
		}
		back, err := decodePayload(appendRecord(nil, evs)[headerLen:])
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(back) != len(evs) {
			t.Fatalf("re-decode: %d events, want %d", len(back), len(evs))
		}
		for i := range evs {
			a, b := evs[i], back[i]
			if a.User != b.User || a.Title != b.Title || a.Type != b.Type || !a.TS.Equal(b.TS) ||
				math.Float64bits(a.PositionS) != math.Float64bits(b.PositionS) ||
				math.Float64bits(a.DurationS) != math.Float64bits(b.DurationS) {
				t.Fatalf("event %d: got %+v, want %+v", i, b, a)
			}
		}
	})
}
