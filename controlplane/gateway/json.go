package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DecodeJSON decodes the request body, a single JSON value, into v
// strictly: unknown fields, trailing data, a wrong type or a non-JSON
// Content-Type are refused. The error is an *Error (400, 413 or 415) whose
// message names the field or the problem, ready to be returned from an
// endpoint. Field names are the JSON (snake_case) names.
func DecodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return Errorf(http.StatusUnsupportedMediaType, "content type %q: send application/json", ct)
		}
	}
	if r.Body == nil || r.Body == http.NoBody {
		return Errorf(http.StatusBadRequest, "request body is empty: send a JSON object")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err)
		}
		return Errorf(http.StatusBadRequest, "unexpected data after the JSON value: send exactly one JSON value")
	}
	return nil
}

// jsonError turns a decoding error into a client-facing *Error.
func jsonError(err error) *Error {
	var (
		syn  *json.SyntaxError
		typ  *json.UnmarshalTypeError
		mbe  *http.MaxBytesError
		unk  = "json: unknown field "
		what string
	)
	switch {
	case errors.As(err, &mbe):
		return &Error{Status: http.StatusRequestEntityTooLarge, Message: "request body larger than " + strconv.FormatInt(mbe.Limit, 10) + " bytes", Err: err}
	case errors.Is(err, io.EOF):
		what = "request body is empty: send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		what = "request body ends in the middle of the JSON value"
	case errors.As(err, &syn):
		what = fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			what = fmt.Sprintf("body: want %s, got JSON %s", jsonKind(typ.Type.Kind().String()), typ.Value)
		} else {
			what = fmt.Sprintf("field %q: want %s, got JSON %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
		}
	case strings.HasPrefix(err.Error(), unk):
		what = "unknown field " + strings.TrimPrefix(err.Error(), unk) + ": check the spelling (fields are snake_case)"
	default:
		what = "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	return &Error{Status: http.StatusBadRequest, Message: what, Err: err}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(k string) string {
	switch k {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return k
}

// WriteJSON writes v as a JSON response with the status. It encodes before
// writing anything, so an unencodable v is returned as an error the
// gateway can still answer with a 500.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	b, err := encodeJSON(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

// WriteJSONETag writes v as a 200 JSON response with a strong ETag, the
// hash of the body, or answers 304 Not Modified without a body when the
// request's If-None-Match names that ETag: for documents polled often
// that seldom change, such as fill manifests. Equal values give equal
// ETags on every node. http.ServeContent does the conditional part.
func WriteJSONETag(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := encodeJSON(v)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	h := w.Header()
	h.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	h.Set("Content-Type", "application/json")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	return nil
}

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("gateway: encode response: %w", err)
	}
	return buf.Bytes(), nil
}
