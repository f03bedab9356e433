// Package frame decodes and validates the JSON frames and bodies of the
// shipped objects (PROTOCOL.md), once for every object: a Frame's fields
// are checked with the protocol's error codes (package protocol) and
// limits. Object-specific frames live with their object.
package frame

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/holocron-run/holocron/protocol"
)

// Limits and formats of PROTOCOL.md.
const (
	MaxMessageBytes   = 65536
	MaxRequestIDRunes = 64
	MaxNameRunes      = 100
	MaxHTTPBodyBytes  = 64 << 10
	TimestampLayout   = "2006-01-02T15:04:05.000Z07:00"
)

// ValidRoomID reports whether s is a legal room id: 1 to 64 of
// [A-Za-z0-9_-] (a loop, not a regexp: every request checks one).
func ValidRoomID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// RuneCount counts code points, which is how PROTOCOL.md measures lengths.
func RuneCount(s string) int { return utf8.RuneCountInString(s) }

// Timestamp renders t as PROTOCOL.md's RFC 3339 UTC time with milliseconds.
func Timestamp(t time.Time) string { return t.UTC().Format(TimestampLayout) }

// Frame is a decoded client frame: its type, request id and raw fields.
type Frame struct {
	Type      string
	RequestID string
	fields    map[string]json.RawMessage
}

// DecodeFrame parses one client WebSocket message. It fails with
// invalid_json for anything but a JSON object (binary messages included) and
// unknown_type for a missing or non-string type. A bad requestId is an
// invalid_field failure, but the type is still returned so the reply can
// name it.
func DecodeFrame(data []byte, binary bool) (*Frame, *protocol.Error) {
	if binary {
		return nil, &protocol.Error{Code: protocol.CodeInvalidJSON, Message: protocol.MessageInvalidFormat}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &protocol.Error{Code: protocol.CodeInvalidJSON, Message: protocol.MessageInvalidFormat}
	}
	// Unmarshal checks the whole of data is valid JSON before it decodes.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, &protocol.Error{Code: protocol.CodeInvalidJSON, Message: protocol.MessageInvalidFormat}
	}
	f := &Frame{fields: fields}
	if raw, ok := fields["requestId"]; ok && !isNull(raw) {
		var id string
		if err := json.Unmarshal(raw, &id); err != nil || RuneCount(id) > MaxRequestIDRunes {
			f.Type, _ = f.optString("type")
			return f, protocol.Errorf(protocol.CodeInvalidField, "requestId must be a string of at most %d characters", MaxRequestIDRunes)
		}
		f.RequestID = id
	}
	t, ok := f.optString("type")
	if !ok || t == "" {
		return f, &protocol.Error{Code: protocol.CodeUnknownType, Message: protocol.MessageUnknownType}
	}
	f.Type = t
	return f, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func (f *Frame) optString(name string) (string, bool) {
	raw, ok := f.fields[name]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// Has reports whether the frame has the field with a non-null value.
func (f *Frame) Has(name string) bool {
	raw, ok := f.fields[name]
	return ok && !isNull(raw)
}

// Raw returns a field's raw JSON.
func (f *Frame) Raw(name string) (json.RawMessage, bool) {
	raw, ok := f.fields[name]
	if !ok || isNull(raw) {
		return nil, false
	}
	return raw, true
}

// String returns a required string field: missing_field when absent or
// null, invalid_field when not a string.
func (f *Frame) String(name string) (string, *protocol.Error) {
	if !f.Has(name) {
		return "", protocol.Errorf(protocol.CodeMissingField, "%s is required", name)
	}
	s, ok := f.optString(name)
	if !ok {
		return "", protocol.Errorf(protocol.CodeInvalidField, "%s must be a string", name)
	}
	return s, nil
}

// OptString returns an optional string field; present reports whether it
// was given.
func (f *Frame) OptString(name string) (s string, present bool, err *protocol.Error) {
	if !f.Has(name) {
		return "", false, nil
	}
	s, ok := f.optString(name)
	if !ok {
		return "", true, protocol.Errorf(protocol.CodeInvalidField, "%s must be a string", name)
	}
	return s, true, nil
}

// RoomID returns the required roomId field, checked against the id pattern.
func (f *Frame) RoomID() (string, *protocol.Error) {
	id, err := f.String("roomId")
	if err != nil {
		return "", err
	}
	if !ValidRoomID(id) {
		return "", protocol.Errorf(protocol.CodeInvalidField, "roomId must match [A-Za-z0-9_-]{1,64}")
	}
	return id, nil
}

// PlayerID returns the required playerId field (1..64 characters).
func (f *Frame) PlayerID() (string, *protocol.Error) {
	id, err := f.String("playerId")
	if err != nil {
		return "", err
	}
	if id == "" || RuneCount(id) > 64 {
		return "", protocol.Errorf(protocol.CodeInvalidField, "playerId must be 1..64 characters")
	}
	return id, nil
}

// OptBool returns an optional boolean field.
func (f *Frame) OptBool(name string) (bool, *protocol.Error) {
	raw, ok := f.Raw(name)
	if !ok {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, protocol.Errorf(protocol.CodeInvalidField, "%s must be a boolean", name)
	}
	return b, nil
}

// Number returns a required finite number field.
func (f *Frame) Number(name string) (float64, *protocol.Error) {
	raw, ok := f.Raw(name)
	if !ok {
		return 0, protocol.Errorf(protocol.CodeMissingField, "%s is required", name)
	}
	var n float64
	if err := json.Unmarshal(raw, &n); err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, protocol.Errorf(protocol.CodeInvalidField, "%s must be a finite number", name)
	}
	return n, nil
}

// OptInt returns an optional integer field within [lo, hi].
func (f *Frame) OptInt(name string, lo, hi int) (n int, present bool, err *protocol.Error) {
	raw, ok := f.Raw(name)
	if !ok {
		return 0, false, nil
	}
	var v float64
	if e := json.Unmarshal(raw, &v); e != nil || v != math.Trunc(v) || v < float64(lo) || v > float64(hi) {
		return 0, true, protocol.Errorf(protocol.CodeInvalidField, "%s must be an integer in %d..%d", name, lo, hi)
	}
	return int(v), true, nil
}

// DecodeHTTPBody reads a JSON object body of at most MaxHTTPBodyBytes into
// a Frame, so HTTP handlers validate fields exactly as frames do.
func DecodeHTTPBody(r *http.Request) (*Frame, *protocol.Error) {
	body, err := readLimited(r, MaxHTTPBodyBytes)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, protocol.Errorf(protocol.CodeInvalidJSON, "body must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if e := json.Unmarshal(body, &fields); e != nil {
		return nil, protocol.Errorf(protocol.CodeInvalidJSON, "body must be a JSON object")
	}
	return &Frame{fields: fields}, nil
}

func readLimited(r *http.Request, limit int64) ([]byte, *protocol.Error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || n > limit {
			return nil, protocol.Errorf(protocol.CodeTooLarge, "body over %d bytes", limit)
		}
		return nil, protocol.Errorf(protocol.CodeInvalidJSON, "read body: %v", err)
	}
	return buf.Bytes(), nil
}
