// Package events is the control plane's viewing-event log: the batches of
// play, progress, stop and complete events players post to
// POST /v1/events, checked field by field, appended to a checksummed
// append-only file on the node's disk, and folded into the per-user
// viewing history ("continue watching", finished titles) and the per-title
// watch time that package recs trains on.
//
// Each control-plane node keeps its own log (the embedded default): an
// event is soft data, recorded by the node that received it, and never
// passes through raft. The log is a series of segment files; when one
// reaches Config.SegmentBytes the state so far is written as a
// checksummed history snapshot and the segments it covers are deleted
// (see segment.go). Open loads the snapshot and replays the segments
// after it; a record cut short by a crash (or failing its CRC) at the
// end of the last segment is truncated away, and damage anywhere else is
// ErrCorrupt. By default every batch is fsynced before Append returns
// (SyncAlways); SyncInterval trades up to a second of acknowledged events
// on power loss for throughput.
//
// An API handler calls Log.DecodeBatch on the request body and then
// Log.Append; errors.Is(err, ErrInvalid) maps to 400 (the message names
// the event's index and field), ErrTooLarge to 413. History serves
// GET /v1/users/{id}/history.
package events

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/fillcast/fillcast"
)

// Event types, in the order a viewing session emits them.
const (
	TypePlay     = "play"
	TypeProgress = "progress"
	TypeStop     = "stop"
	TypeComplete = "complete"
)

// MaxUserLen bounds a user identifier.
const MaxUserLen = 128

// MaxDurationS bounds position_s and duration_s: a week of video.
const MaxDurationS = 7 * 24 * 3600

// Errors callers branch on. Validation failures wrap ErrInvalid (the API
// answers 400 with the message); an oversized batch wraps ErrTooLarge (413).
var (
	ErrInvalid  = errors.New("events: invalid event batch")
	ErrTooLarge = errors.New("events: batch too large")
	ErrClosed   = errors.New("events: log closed")
)

// Event is one viewing event as players post it.
type Event struct {
	// User is the viewer's identifier: the control plane sets it to the
	// profile of the session that posted the event, whatever it was.
	User string `json:"user"`
	// StreamID, when set, is the playback's stream lease: a progress
	// event keeps it alive. It is not kept in the log.
	StreamID string `json:"stream_id,omitempty"`
	// Title is the catalog title id.
	Title string `json:"title"`
	// Type is play, progress, stop or complete.
	Type string `json:"type"`
	// PositionS is the playhead in seconds from the start of the title.
	PositionS float64 `json:"position_s"`
	// DurationS is the title's length in seconds; zero when the player
	// does not know it yet (allowed on play only).
	DurationS float64 `json:"duration_s"`
	// TS is when the player saw the event; the zero time means "when the
	// node received it".
	TS time.Time `json:"ts"`
}

// ValidationError says which event of a batch was refused and why. It
// wraps ErrInvalid.
type ValidationError struct {
	// Index is the event's position in the batch, from 0; -1 when the
	// batch as a whole is malformed.
	Index int
	// Field is the JSON field at fault, empty when the event is not a
	// JSON object.
	Field string
	// Reason says what is wrong and what is expected.
	Reason string
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
	case len(e.User) > MaxUserLen:
		return bad("user", "longer than %d bytes", MaxUserLen)
	case !printable(e.User):
		return bad("user", "must be valid UTF-8 without control characters")
	}
	if e.StreamID != "" && fillcast.ValidateTitleID(e.StreamID) != nil {
		return bad("stream_id", "want the stream_id of a playback answer")
	}
	if err := fillcast.ValidateTitleID(e.Title); err != nil {
		if e.Title == "" {
			return bad("title", "required")
		}
		return bad("title", "want 1 to %d letters, digits, '-' or '_', not starting with '-'", fillcast.MaxTitleIDLen)
	}
	switch e.Type {
	case TypePlay, TypeProgress, TypeStop, TypeComplete:
	case "":
		return bad("type", "required: one of play, progress, stop, complete")
	default:
		return bad("type", "%q is not one of play, progress, stop, complete", e.Type)
	}
	if !finite(e.PositionS) || e.PositionS < 0 || e.PositionS > MaxDurationS {
		return bad("position_s", "want seconds between 0 and %d", MaxDurationS)
	}
	if !finite(e.DurationS) || e.DurationS < 0 || e.DurationS > MaxDurationS {
		return bad("duration_s", "want seconds between 0 and %d", MaxDurationS)
	}
	if e.DurationS == 0 && e.Type != TypePlay {
		return bad("duration_s", "required (greater than 0) for %s events", e.Type)
	}
	// Players round; a second of slack keeps an honest last tick valid.
	if e.DurationS > 0 && e.PositionS > e.DurationS+1 {
		return bad("position_s", "%g is past duration_s %g", e.PositionS, e.DurationS)
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

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func printable(s string) bool {
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
