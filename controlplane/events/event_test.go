package events

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// valid returns a valid event of type typ with every field its type
// uses set.
func valid(typ string) Event {
	e := Event{ID: "e1", User: "u1", Title: "t1", Type: typ, TS: t0.Add(-time.Minute), Site: "s1"}
	switch typ {
	case TypePlay:
		e.PositionS = 0
	case TypeProgress, TypeStop, TypeComplete:
		e.PositionS, e.DurationS = 30, 600
	case TypeImpression, TypeClick:
		e.Row, e.Rank = "trending", 3
	case TypeSearch:
		e.Title, e.Query, e.Results = "", "space western", 12
	case TypeError:
		e.Appliance, e.Code, e.Message, e.Fatal = "a1", "MEDIA_ERR_DECODE", "decoder gave up", true
	case TypeQoE:
		e.Appliance = "a1"
		e.StartupMS, e.PlayedS, e.Rebuffers, e.RebufferMS = 850, 10, 1, 420
		e.BitrateKbps, e.Switches, e.DroppedFrames = 2400, 2, 5
	}
	return e
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		typ   string
		edit  func(e *Event)
		field string // "" means valid
	}{
		{"play", TypePlay, func(e *Event) {}, ""},
		{"play without duration", TypePlay, func(e *Event) { e.DurationS = 0 }, ""},
		{"progress", TypeProgress, func(e *Event) {}, ""},
		{"stop", TypeStop, func(e *Event) {}, ""},
		{"complete", TypeComplete, func(e *Event) {}, ""},
		{"impression", TypeImpression, func(e *Event) {}, ""},
		{"click", TypeClick, func(e *Event) {}, ""},
		{"search", TypeSearch, func(e *Event) {}, ""},
		{"search without results", TypeSearch, func(e *Event) { e.Results = 0 }, ""},
		{"error", TypeError, func(e *Event) {}, ""},
		{"error without title", TypeError, func(e *Event) { e.Title = "" }, ""},
		{"error without message", TypeError, func(e *Event) { e.Message = "" }, ""},
		{"qoe", TypeQoE, func(e *Event) {}, ""},
		{"qoe after the first (no startup)", TypeQoE, func(e *Event) { e.StartupMS = 0 }, ""},
		{"no ts", TypeProgress, func(e *Event) { e.TS = time.Time{} }, ""},
		{"ts within the skew", TypeProgress, func(e *Event) { e.TS = t0.Add(4 * time.Minute) }, ""},
		{"no user (the control plane sets the profile)", TypeProgress, func(e *Event) { e.User = "" }, ""},
		{"position a second past the end", TypeProgress, func(e *Event) { e.PositionS = 601 }, ""},
		{"stream id", TypeProgress, func(e *Event) { e.StreamID = "abc_123" }, ""},
		{"longest id", TypePlay, func(e *Event) { e.ID = strings.Repeat("i", MaxIDLen) }, ""},
		{"bounds inclusive", TypeQoE, func(e *Event) {
			e.StartupMS, e.PlayedS, e.RebufferMS, e.BitrateKbps = MaxStartupMS, MaxDurationS, MaxDurationS*1000, 1e6
			e.Rebuffers, e.Switches, e.DroppedFrames = MaxCount, MaxCount, MaxCount
		}, ""},

		{"id required", TypePlay, func(e *Event) { e.ID = "" }, "id"},
		{"id too long", TypePlay, func(e *Event) { e.ID = strings.Repeat("i", MaxIDLen+1) }, "id"},
		{"id control char", TypePlay, func(e *Event) { e.ID = "a\tb" }, "id"},
		{"id invalid utf-8", TypePlay, func(e *Event) { e.ID = "a\xffb" }, "id"},
		{"user too long", TypePlay, func(e *Event) { e.User = strings.Repeat("u", MaxUserLen+1) }, "user"},
		{"user control char", TypePlay, func(e *Event) { e.User = "a\nb" }, "user"},
		{"bad stream id", TypeProgress, func(e *Event) { e.StreamID = "a b" }, "stream_id"},
		{"missing type", TypePlay, func(e *Event) { e.Type = "" }, "type"},
		{"unknown type", TypePlay, func(e *Event) { e.Type = "pause" }, "type"},

		{"play without title", TypePlay, func(e *Event) { e.Title = "" }, "title"},
		{"progress without title", TypeProgress, func(e *Event) { e.Title = "" }, "title"},
		{"impression without title", TypeImpression, func(e *Event) { e.Title = "" }, "title"},
		{"click without title", TypeClick, func(e *Event) { e.Title = "" }, "title"},
		{"qoe without title", TypeQoE, func(e *Event) { e.Title = "" }, "title"},
		{"bad title", TypePlay, func(e *Event) { e.Title = "../etc" }, "title"},
		{"title starting with a dash", TypePlay, func(e *Event) { e.Title = "-t" }, "title"},
		{"bad title on an error", TypeError, func(e *Event) { e.Title = "a/b" }, "title"},
		{"search without query", TypeSearch, func(e *Event) { e.Query = "" }, "query"},
		{"search with a title", TypeSearch, func(e *Event) { e.Title = "t1" }, "title"},
		{"error without code", TypeError, func(e *Event) { e.Code = "" }, "code"},

		{"row too long", TypeImpression, func(e *Event) { e.Row = strings.Repeat("r", MaxTextLen+1) }, "row"},
		{"query too long", TypeSearch, func(e *Event) { e.Query = strings.Repeat("q", MaxTextLen+1) }, "query"},
		{"query control char", TypeSearch, func(e *Event) { e.Query = "a\x7f" }, "query"},
		{"code too long", TypeError, func(e *Event) { e.Code = strings.Repeat("c", MaxTextLen+1) }, "code"},
		{"message control char", TypeError, func(e *Event) { e.Message = "line\nbreak" }, "message"},
		{"appliance too long", TypeQoE, func(e *Event) { e.Appliance = strings.Repeat("a", MaxTextLen+1) }, "appliance"},
		{"site control char", TypeQoE, func(e *Event) { e.Site = "s\x00" }, "site"},

		{"negative rank", TypeImpression, func(e *Event) { e.Rank = -1 }, "rank"},
		{"rank too large", TypeClick, func(e *Event) { e.Rank = MaxCount + 1 }, "rank"},
		{"negative results", TypeSearch, func(e *Event) { e.Results = -1 }, "results"},
		{"rebuffers too many", TypeQoE, func(e *Event) { e.Rebuffers = MaxCount + 1 }, "rebuffers"},
		{"negative switches", TypeQoE, func(e *Event) { e.Switches = -1 }, "switches"},
		{"dropped frames too many", TypeQoE, func(e *Event) { e.DroppedFrames = MaxCount + 1 }, "dropped_frames"},

		{"negative position", TypeProgress, func(e *Event) { e.PositionS = -1 }, "position_s"},
		{"nan position", TypeProgress, func(e *Event) { e.PositionS = math.NaN() }, "position_s"},
		{"position past the end", TypeProgress, func(e *Event) { e.PositionS = 700 }, "position_s"},
		{"position past a week", TypePlay, func(e *Event) { e.PositionS = MaxDurationS + 1 }, "position_s"},
		{"inf duration", TypeProgress, func(e *Event) { e.DurationS = math.Inf(1) }, "duration_s"},
		{"progress without duration", TypeProgress, func(e *Event) { e.DurationS = 0 }, "duration_s"},
		{"stop without duration", TypeStop, func(e *Event) { e.DurationS = 0 }, "duration_s"},
		{"complete without duration", TypeComplete, func(e *Event) { e.DurationS = 0 }, "duration_s"},
		{"startup too long", TypeQoE, func(e *Event) { e.StartupMS = MaxStartupMS + 1 }, "startup_ms"},
		{"nan startup", TypeQoE, func(e *Event) { e.StartupMS = math.NaN() }, "startup_ms"},
		{"negative played", TypeQoE, func(e *Event) { e.PlayedS = -0.5 }, "played_s"},
		{"inf rebuffer ms", TypeQoE, func(e *Event) { e.RebufferMS = math.Inf(1) }, "rebuffer_ms"},
		{"rebuffer ms too long", TypeQoE, func(e *Event) { e.RebufferMS = MaxDurationS*1000 + 1 }, "rebuffer_ms"},
		{"bitrate too high", TypeQoE, func(e *Event) { e.BitrateKbps = 1e6 + 1 }, "bitrate_kbps"},
		{"nan bitrate", TypeQoE, func(e *Event) { e.BitrateKbps = math.NaN() }, "bitrate_kbps"},

		{"future ts", TypeProgress, func(e *Event) { e.TS = t0.Add(6 * time.Minute) }, "ts"},
		{"ancient ts", TypeProgress, func(e *Event) { e.TS = time.Unix(5, 0) }, "ts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid(tt.typ)
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
			if ve.Reason == "" {
				t.Errorf("empty reason")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "events: event 7: ") || !strings.Contains(msg, `"`+tt.field+`"`) {
				t.Errorf("message %q does not name index and field", msg)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	tests := []struct {
		err  ValidationError
		want string
	}{
		{ValidationError{Index: -1, Reason: "empty body"}, "events: empty body"},
		{ValidationError{Index: 2, Reason: "want a JSON object"}, "events: event 2: want a JSON object"},
		{ValidationError{Index: 0, Field: "ts", Reason: "bad"}, `events: event 0: field "ts": bad`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestTypes(t *testing.T) {
	if got, want := strings.Join(Types[:], ", "), typeList; got != want {
		t.Errorf("Types = %q, typeList = %q: they must agree", got, want)
	}
	viewing := map[string]bool{TypePlay: true, TypeProgress: true, TypeStop: true, TypeComplete: true}
	for _, typ := range Types {
		e := valid(typ)
		if err := e.Validate(0, t0, time.Minute); err != nil {
			t.Errorf("valid(%s): %v", typ, err)
		}
		if got, want := e.Viewing(), viewing[typ]; got != want {
			t.Errorf("%s: Viewing() = %v, want %v", typ, got, want)
		}
	}
}
