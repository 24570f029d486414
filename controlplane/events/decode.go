package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"time"
)

// Limits bound what DecodeBatch accepts.
type Limits struct {
	// MaxBatchBytes bounds the request body; larger batches get
	// ErrTooLarge (413). Zero means 1 MiB.
	MaxBatchBytes int64
	// MaxBatchEvents bounds the events in one batch; more get
	// ErrTooLarge. Zero means 1000.
	MaxBatchEvents int
	// MaxClockSkew is how far ts may run ahead of the node's clock.
	// Zero means 5 minutes.
	MaxClockSkew time.Duration
	// KnownTitle, when set, reports whether a title is in the catalog:
	// an event naming another is refused.
	KnownTitle func(id string) bool
}

// DefaultLimits returns the limits the zero values stand for.
func DefaultLimits() Limits {
	return Limits{MaxBatchBytes: 1 << 20, MaxBatchEvents: 1000, MaxClockSkew: 5 * time.Minute}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBatchBytes <= 0 {
		l.MaxBatchBytes = d.MaxBatchBytes
	}
	if l.MaxBatchEvents <= 0 {
		l.MaxBatchEvents = d.MaxBatchEvents
	}
	if l.MaxClockSkew <= 0 {
		l.MaxClockSkew = d.MaxClockSkew
	}
	return l
}

// plain is Event without its methods, so that wireEvent can embed it
// and replace ts with a field parsed by hand (RFC 3339 strings and Unix
// seconds are both accepted).
type plain Event

type wireEvent struct {
	*plain
	TS json.RawMessage `json:"ts"`
}

// DecodeBatch reads a batch of events from r, either a JSON array of
// events or an object {"events": [...]}, and validates every event
// against now. Events that fail (malformed, invalid, or repeating an
// earlier event's id in the batch) are left out and described in
// rejected, in batch order; the others are returned. A body that is not
// a batch at all (malformed JSON, empty) gives a *ValidationError with
// Index -1; one over MaxBatchBytes or with more than MaxBatchEvents
// events gives an error wrapping ErrTooLarge.
func DecodeBatch(r io.Reader, lim Limits, now time.Time) (batch []Event, rejected []ValidationError, err error) {
	lim = lim.withDefaults()
	body, err := io.ReadAll(io.LimitReader(r, lim.MaxBatchBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("events: read batch: %w", err)
	}
	if int64(len(body)) > lim.MaxBatchBytes {
		return nil, nil, fmt.Errorf("%w: the body exceeds %d bytes; split it into smaller batches", ErrTooLarge, lim.MaxBatchBytes)
	}
	raws, err := splitBatch(body)
	if err != nil {
		return nil, nil, err
	}
	if len(raws) > lim.MaxBatchEvents {
		return nil, nil, fmt.Errorf("%w: %d events, at most %d per batch", ErrTooLarge, len(raws), lim.MaxBatchEvents)
	}
	batch = make([]Event, 0, len(raws))
	ids := make(map[string]struct{}, len(raws))
	for i, raw := range raws {
		var e Event
		err := decodeEvent(raw, i, &e)
		if err == nil {
			err = e.Validate(i, now, lim.MaxClockSkew)
		}
		if err == nil && e.Title != "" && lim.KnownTitle != nil && !lim.KnownTitle(e.Title) {
			err = &ValidationError{Index: i, Field: "title", Reason: fmt.Sprintf("no title %q in the catalog", e.Title)}
		}
		if _, dup := ids[e.ID]; err == nil && dup {
			err = &ValidationError{Index: i, Field: "id", Reason: fmt.Sprintf("%q repeats an earlier event's id in this batch", e.ID)}
		}
		var ve *ValidationError
		if errors.As(err, &ve) {
			rejected = append(rejected, *ve)
			continue
		}
		ids[e.ID] = struct{}{}
		if e.TS.IsZero() {
			e.TS = now
		}
		e.TS = e.TS.UTC()
		batch = append(batch, e)
	}
	return batch, rejected, nil
}

func splitBatch(body []byte) ([]json.RawMessage, error) {
	bad := func(reason string) error { return &ValidationError{Index: -1, Reason: reason} }
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, bad("empty body: send a JSON array of events")
	}
	var raws []json.RawMessage
	switch body[0] {
	case '[':
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, bad("malformed JSON: " + jsonReason(err))
		}
	case '{':
		var obj struct {
			Events []json.RawMessage `json:"events"`
		}
		d := json.NewDecoder(bytes.NewReader(body))
		d.DisallowUnknownFields()
		if err := d.Decode(&obj); err != nil {
			return nil, bad("malformed JSON: " + jsonReason(err))
		}
		if d.More() {
			return nil, bad("malformed JSON: data after the batch object")
		}
		raws = obj.Events
	default:
		return nil, bad("want a JSON array of events or {\"events\": [...]}")
	}
	if len(raws) == 0 {
		return nil, bad("empty batch: send at least one event")
	}
	return raws, nil
}

func decodeEvent(raw json.RawMessage, i int, e *Event) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return &ValidationError{Index: i, Reason: "want a JSON object"}
	}
	w := wireEvent{plain: (*plain)(e)}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		*e = Event{}
		ve := &ValidationError{Index: i, Reason: jsonReason(err)}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			ve.Field = te.Field[strings.LastIndexByte(te.Field, '.')+1:] // not the embedded "plain."
			ve.Reason = "want a JSON " + jsonKind(te.Type.Kind()) + ", not " + te.Value
		} else if f, ok := unknownField(err); ok {
			ve.Field = f
			ve.Reason = "unknown field; docs/api.md lists the fields of each event type"
		}
		return ve
	}
	ts, err := parseTS(w.TS)
	if err != nil {
		return &ValidationError{Index: i, Field: "ts", Reason: err.Error()}
	}
	e.TS = ts
	return nil
}

// parseTS accepts an RFC 3339 string, Unix seconds, null or nothing.
func parseTS(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, errors.New("want an RFC 3339 string or Unix seconds")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not RFC 3339 (2006-01-02T15:04:05Z)", s)
		}
		return t, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f < 0 || f > 1e11 {
		return time.Time{}, errors.New("want an RFC 3339 string or Unix seconds")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

func jsonReason(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

func unknownField(err error) (string, bool) {
	const p = `json: unknown field "`
	s := err.Error()
	if !strings.HasPrefix(s, p) {
		return "", false
	}
	return strings.TrimSuffix(s[len(p):], `"`), true
}

// jsonKind names a Go kind as JSON calls it.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64:
		return "number"
	case reflect.Bool:
		return "boolean"
	}
	return k.String()
}
