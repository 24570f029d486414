// Package events defines the events players post to POST /v1/events
// (viewing: play, progress, stop, complete; UI: impression, click,
// search; player errors; quality of experience), checks them field by
// field, encodes a batch as one message of the control plane's event
// stream (AppendRecord, DecodeRecord), and folds the viewing events into
// the per-profile viewing history ("continue watching", finished titles)
// and the per-title watch time that package recs trains on (Viewing).
//
// An API handler calls DecodeBatch on the request body: the events that
// pass are published to the stream, and those that fail are answered
// with their index and reason (ValidationError). ErrTooLarge maps to 413
// and a body that is no batch at all to 400. Every node consumes the
// stream into its own Viewing, which remembers the stream sequence it
// has folded to, so a batch delivered twice counts once.
package events

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/fillcast/fillcast"
)

// Event types: viewing (play, progress, stop, complete), UI
// (impression, click, search), player errors, and quality of experience.
const (
	TypePlay       = "play"
	TypeProgress   = "progress"
	TypeStop       = "stop"
	TypeComplete   = "complete"
	TypeImpression = "impression"
	TypeClick      = "click"
	TypeSearch     = "search"
	TypeError      = "error"
	TypeQoE        = "qoe"
)

// Types lists every event type, in the order of their wire codes.
var Types = [...]string{TypePlay, TypeProgress, TypeStop, TypeComplete, TypeImpression, TypeClick, TypeSearch, TypeError, TypeQoE}

const typeList = "play, progress, stop, complete, impression, click, search, error, qoe"

// Bounds of the fields.
const (
	// MaxUserLen bounds a user identifier.
	MaxUserLen = 128
	// MaxIDLen bounds an event's id.
	MaxIDLen = 64
	// MaxDurationS bounds position_s and duration_s: a week of video.
	MaxDurationS = 7 * 24 * 3600
	// MaxTextLen bounds the free text fields: query, message, row,
	// code, appliance and site.
	MaxTextLen = 256
	// MaxCount bounds the counters of a qoe event and the rank and
	// results of UI events.
	MaxCount = 1_000_000
	// MaxStartupMS bounds startup_ms: ten minutes.
	MaxStartupMS = 600_000
)

// Errors callers branch on. Validation failures wrap ErrInvalid (the API
// answers 400 with the message); an oversized batch wraps ErrTooLarge (413).
var (
	ErrInvalid  = errors.New("events: invalid event batch")
	ErrTooLarge = errors.New("events: batch too large")
)

// Event is one event as players post it. Which fields an event carries
// depends on its type; the others are zero.
type Event struct {
	// ID is chosen by the client, unique among its profile's events: a
	// batch sent again with the same ids is stored once.
	ID string `json:"id"`
	// User is the viewer's identifier: the control plane sets it to the
	// profile of the session that posted the event, whatever it was.
	User string `json:"user"`
	// StreamID, when set, is the playback's stream lease: a progress
	// event keeps it alive. It is not kept on the stream.
	StreamID string `json:"stream_id,omitempty"`
	// Title is the catalog title id: required for viewing, impression,
	// click and qoe events, optional for errors, absent from searches.
	Title string `json:"title,omitempty"`
	// Type is one of the Type constants.
	Type string `json:"type"`
	// TS is when the player saw the event; the zero time means "when the
	// node received it".
	TS time.Time `json:"ts"`
	// Site is the site of the client's address, set by the control
	// plane when it accepts the event.
	Site string `json:"site,omitempty"`
	// Appliance is the appliance (or "origin") the player was playing
	// from, for error and qoe events.
	Appliance string `json:"appliance,omitempty"`

	// PositionS is the playhead in seconds from the start of the title
	// (viewing events).
	PositionS float64 `json:"position_s,omitempty"`
	// DurationS is the title's length in seconds; zero when the player
	// does not know it yet (allowed on play only).
	DurationS float64 `json:"duration_s,omitempty"`

	// Row names where a title was shown (impression, click): a row of
	// the home page, "search", "similar".
	Row string `json:"row,omitempty"`
	// Rank is the title's place in its row, from 0.
	Rank int `json:"rank,omitempty"`
	// Query is what the viewer searched for; Results how many titles
	// the search answered (search).
	Query   string `json:"query,omitempty"`
	Results int    `json:"results,omitempty"`

	// Code is the player's error code, Message its words, and Fatal
	// whether playback stopped (error).
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Fatal   bool   `json:"fatal,omitempty"`

	// QoE, over the interval since the player's previous qoe event:
	// StartupMS is the time from the play request to the first frame
	// (only on a playback's first qoe event); PlayedS the seconds played;
	// Rebuffers and RebufferMS the stalls after startup; BitrateKbps
	// the mean bitrate played; Switches the rendition switches; and
	// DroppedFrames the frames the decoder dropped.
	StartupMS     float64 `json:"startup_ms,omitempty"`
	PlayedS       float64 `json:"played_s,omitempty"`
	Rebuffers     int     `json:"rebuffers,omitempty"`
	RebufferMS    float64 `json:"rebuffer_ms,omitempty"`
	BitrateKbps   float64 `json:"bitrate_kbps,omitempty"`
	Switches      int     `json:"switches,omitempty"`
	DroppedFrames int     `json:"dropped_frames,omitempty"`
}

// Viewing reports whether e is a viewing event (play, progress, stop,
// complete), the kind history and recommendations fold.
func (e *Event) Viewing() bool {
	switch e.Type {
	case TypePlay, TypeProgress, TypeStop, TypeComplete:
		return true
	}
	return false
}

// ValidationError says which event of a batch was refused and why. It
// wraps ErrInvalid.
type ValidationError struct {
	// Index is the event's position in the batch, from 0; -1 when the
	// batch as a whole is malformed.
	Index int `json:"index"`
	// Field is the JSON field at fault, empty when the event is not a
	// JSON object.
	Field string `json:"field,omitempty"`
	// Reason says what is wrong and what is expected.
	Reason string `json:"reason"`
}

// Error returns a message fit to show the client.
func (e *ValidationError) Error() string {
	switch {
	case e.Index < 0:
		return "events: " + e.Reason
	case e.Field == "":
		return fmt.Sprintf("events: event %d: %s", e.Index, e.Reason)
	}
	return fmt.Sprintf("events: event %d: field %q: %s", e.Index, e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Validate checks one event; index is its place in the batch and now the
// node's clock, against which ts may run ahead by at most skew.
func (e *Event) Validate(index int, now time.Time, skew time.Duration) error {
	bad := func(field, format string, args ...any) error {
		return &ValidationError{Index: index, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case e.ID == "":
		return bad("id", "required: a client-chosen id, unique among the profile's events, so that a batch sent again is stored once")
	case len(e.ID) > MaxIDLen || !Printable(e.ID):
		return bad("id", "want 1 to %d printable characters", MaxIDLen)
	case len(e.User) > MaxUserLen:
		return bad("user", "longer than %d bytes", MaxUserLen)
	case !Printable(e.User):
		return bad("user", "must be valid UTF-8 without control characters")
	}
	if e.StreamID != "" && fillcast.ValidateTitleID(e.StreamID) != nil {
		return bad("stream_id", "want the stream_id of a playback answer")
	}
	if err := e.validateType(bad); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"row", e.Row}, {"query", e.Query}, {"code", e.Code}, {"message", e.Message}, {"appliance", e.Appliance}, {"site", e.Site}} {
		if len(f.v) > MaxTextLen || !Printable(f.v) {
			return bad(f.name, "want at most %d printable characters", MaxTextLen)
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"rank", e.Rank}, {"results", e.Results}, {"rebuffers", e.Rebuffers}, {"switches", e.Switches}, {"dropped_frames", e.DroppedFrames}} {
		if f.v < 0 || f.v > MaxCount {
			return bad(f.name, "want a count between 0 and %d", MaxCount)
		}
	}
	for _, f := range []struct {
		name     string
		v, limit float64
	}{{"position_s", e.PositionS, MaxDurationS}, {"duration_s", e.DurationS, MaxDurationS}, {"startup_ms", e.StartupMS, MaxStartupMS},
		{"played_s", e.PlayedS, MaxDurationS}, {"rebuffer_ms", e.RebufferMS, MaxDurationS * 1000}, {"bitrate_kbps", e.BitrateKbps, 1e6}} {
		if !finite(f.v) || f.v < 0 || f.v > f.limit {
			return bad(f.name, "want a number between 0 and %g", f.limit)
		}
	}
	if e.Viewing() {
		if e.DurationS == 0 && e.Type != TypePlay {
			return bad("duration_s", "required (greater than 0) for %s events", e.Type)
		}
		// Players round; a second of slack keeps an honest last tick valid.
		if e.DurationS > 0 && e.PositionS > e.DurationS+1 {
			return bad("position_s", "%g is past duration_s %g", e.PositionS, e.DurationS)
		}
	}
	if !e.TS.IsZero() {
		if e.TS.Year() < 2000 {
			return bad("ts", "before the year 2000; send RFC 3339 or leave it out")
		}
		if e.TS.After(now.Add(skew)) {
			return bad("ts", "more than %s in the future", skew)
		}
	}
	return nil
}

// validateType checks the type and the fields it requires.
func (e *Event) validateType(bad func(field, format string, args ...any) error) error {
	titled := true
	switch e.Type {
	case TypePlay, TypeProgress, TypeStop, TypeComplete, TypeImpression, TypeClick, TypeQoE:
	case TypeSearch:
		titled = false
		if e.Query == "" {
			return bad("query", "required for search events: what the viewer searched for")
		}
		if e.Title != "" {
			return bad("title", "a search event names no title")
		}
	case TypeError:
		titled = e.Title != ""
		if e.Code == "" {
			return bad("code", "required for error events: the player's error code")
		}
	case "":
		return bad("type", "required: one of %s", typeList)
	default:
		return bad("type", "%q is not one of %s", e.Type, typeList)
	}
	if !titled {
		return nil
	}
	if err := fillcast.ValidateTitleID(e.Title); err != nil {
		if e.Title == "" {
			return bad("title", "required for %s events", e.Type)
		}
		return bad("title", "want 1 to %d letters, digits, '-' or '_', not starting with '-'", fillcast.MaxTitleIDLen)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Printable reports whether s is valid UTF-8 without control characters:
// what every text field of an event, and every term searched for, must be.
func Printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
