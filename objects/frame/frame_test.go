package frame_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/holocron-run/holocron/objects/frame"
	"github.com/holocron-run/holocron/protocol"
)

func TestDecodeFrame(t *testing.T) {
	id64 := strings.Repeat("é", frame.MaxRequestIDRunes) // 64 code points, 128 bytes
	id65 := strings.Repeat("x", frame.MaxRequestIDRunes+1)
	tests := []struct {
		name          string
		data          string
		binary        bool
		wantCode      string // "" means success
		wantType      string
		wantRequestID string
		wantNilFrame  bool
	}{
		// invalid_json: anything but one JSON object in a text message.
		{name: "empty message", data: "", wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "only white space", data: " \t\r\n", wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "truncated object", data: `{"type":"ping"`, wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "trailing garbage", data: `{"type":"ping"}x`, wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "two objects", data: `{"type":"ping"}{"type":"ping"}`, wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "single quotes", data: `{'type':'ping'}`, wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "trailing comma", data: `{"type":"ping",}`, wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "array", data: `[{"type":"ping"}]`, wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "string", data: `"ping"`, wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "number", data: `42`, wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "null", data: `null`, wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "true", data: `true`, wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "byte order mark", data: "\ufeff{\"type\":\"ping\"}", wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "binary message even if it is a valid object", data: `{"type":"ping"}`, binary: true, wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},
		{name: "binary empty message", data: "", binary: true, wantCode: protocol.CodeInvalidJSON, wantNilFrame: true},

		// unknown_type: an object without a usable type.
		{name: "empty object", data: `{}`, wantCode: protocol.CodeUnknownType},
		{name: "missing type", data: `{"roomId":"r"}`, wantCode: protocol.CodeUnknownType},
		{name: "null type", data: `{"type":null}`, wantCode: protocol.CodeUnknownType},
		{name: "empty type", data: `{"type":""}`, wantCode: protocol.CodeUnknownType},
		{name: "number type", data: `{"type":1}`, wantCode: protocol.CodeUnknownType},
		{name: "boolean type", data: `{"type":true}`, wantCode: protocol.CodeUnknownType},
		{name: "object type", data: `{"type":{"name":"ping"}}`, wantCode: protocol.CodeUnknownType},
		{name: "array type", data: `{"type":["ping"]}`, wantCode: protocol.CodeUnknownType},
		{name: "type key is case sensitive", data: `{"Type":"ping"}`, wantCode: protocol.CodeUnknownType},
		{name: "missing type keeps a valid request id", data: `{"requestId":"r1"}`, wantCode: protocol.CodeUnknownType, wantRequestID: "r1"},

		// Success.
		{name: "minimal", data: `{"type":"ping"}`, wantType: "ping"},
		{name: "surrounding white space", data: " \r\n\t{\"type\":\"ping\"} \n", wantType: "ping"},
		{name: "escaped type", data: `{"type":"p\u0069ng"}`, wantType: "ping"},
		{name: "unknown type name is still decoded", data: `{"type":"no_such_type"}`, wantType: "no_such_type"},
		{name: "duplicate type keeps the last", data: `{"type":"a","type":"b"}`, wantType: "b"},
		{name: "extra fields", data: `{"type":"join_room","roomId":"r","n":1,"x":null}`, wantType: "join_room"},
		{name: "request id", data: `{"type":"ping","requestId":"abc"}`, wantType: "ping", wantRequestID: "abc"},
		{name: "empty request id", data: `{"type":"ping","requestId":""}`, wantType: "ping"},
		{name: "null request id is absent", data: `{"type":"ping","requestId":null}`, wantType: "ping"},
		{name: "request id of 64 code points", data: `{"type":"ping","requestId":"` + id64 + `"}`, wantType: "ping", wantRequestID: id64},

		// invalid_field: a bad requestId, with the type still reported.
		{name: "request id of 65 code points", data: `{"type":"ping","requestId":"` + id65 + `"}`, wantCode: protocol.CodeInvalidField, wantType: "ping"},
		{name: "number request id", data: `{"type":"ping","requestId":7}`, wantCode: protocol.CodeInvalidField, wantType: "ping"},
		{name: "object request id", data: `{"type":"send_message","requestId":{}}`, wantCode: protocol.CodeInvalidField, wantType: "send_message"},
		{name: "bad request id and no type", data: `{"requestId":false}`, wantCode: protocol.CodeInvalidField, wantType: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := frame.DecodeFrame([]byte(tt.data), tt.binary)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("DecodeFrame(%q) error %v, want success", tt.data, err)
				}
			} else if err == nil || err.Code != tt.wantCode {
				t.Fatalf("DecodeFrame(%q) error %v, want code %s", tt.data, err, tt.wantCode)
			}
			if tt.wantNilFrame {
				if f != nil {
					t.Errorf("frame = %+v, want nil", f)
				}
				return
			}
			if f == nil {
				t.Fatal("frame is nil")
			}
			if f.Type != tt.wantType {
				t.Errorf("Type = %q, want %q", f.Type, tt.wantType)
			}
			if f.RequestID != tt.wantRequestID {
				t.Errorf("RequestID = %q, want %q", f.RequestID, tt.wantRequestID)
			}
		})
	}
}

func TestDecodeFrameErrorMessagesAreTheSeedTexts(t *testing.T) {
	tests := []struct {
		data        string
		binary      bool
		wantCode    string
		wantMessage string
	}{
		{`[]`, false, protocol.CodeInvalidJSON, "Invalid message format"},
		{`{"type":"ping"}`, true, protocol.CodeInvalidJSON, "Invalid message format"},
		{`{"type":3}`, false, protocol.CodeUnknownType, "Unknown message type"},
		{`{}`, false, protocol.CodeUnknownType, "Unknown message type"},
	}
	for _, tt := range tests {
		_, err := frame.DecodeFrame([]byte(tt.data), tt.binary)
		if err == nil || err.Code != tt.wantCode || err.Message != tt.wantMessage {
			t.Errorf("DecodeFrame(%q, binary=%v) = %v; want %s %q", tt.data, tt.binary, err, tt.wantCode, tt.wantMessage)
		}
	}
}

func TestDecodeFrameRequestIDLimitIsInCodePointsNotBytes(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		wantErr bool
	}{
		{"64 ASCII", strings.Repeat("a", 64), false},
		{"65 ASCII", strings.Repeat("a", 65), true},
		{"64 two-byte runes", strings.Repeat("é", 64), false},
		{"65 two-byte runes", strings.Repeat("é", 65), true},
		{"64 four-byte runes (256 bytes)", strings.Repeat("😀", 64), false},
		{"65 four-byte runes", strings.Repeat("😀", 65), true},
		{"64 escaped runes", strings.Repeat(`\u00e9`, 64), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := frame.DecodeFrame([]byte(`{"type":"ping","requestId":"`+tt.id+`"}`), false)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && err.Code != protocol.CodeInvalidField {
				t.Errorf("code = %s, want invalid_field", err.Code)
			}
		})
	}
}

// mustDecode decodes a frame that must be valid.
func mustDecode(t *testing.T, data string) *frame.Frame {
	t.Helper()
	f, err := frame.DecodeFrame([]byte(data), false)
	if err != nil {
		t.Fatalf("DecodeFrame(%s): %v", data, err)
	}
	return f
}

// errCode renders a possibly nil *Error as its code, "" for nil.
func errCode(err *protocol.Error) string {
	if err == nil {
		return ""
	}
	return err.Code
}

func TestFrameString(t *testing.T) {
	tests := []struct {
		name     string
		fields   string
		want     string
		wantCode string
	}{
		{"present", `"name":"Ann"`, "Ann", ""},
		{"empty string is present", `"name":""`, "", ""},
		{"escapes decoded", `"name":"a\"b\\c\u00e9"`, "a\"b\\cé", ""},
		{"missing", ``, "", protocol.CodeMissingField},
		{"null is missing", `"name":null`, "", protocol.CodeMissingField},
		{"number", `"name":1`, "", protocol.CodeInvalidField},
		{"boolean", `"name":false`, "", protocol.CodeInvalidField},
		{"array", `"name":["Ann"]`, "", protocol.CodeInvalidField},
		{"object", `"name":{}`, "", protocol.CodeInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustDecode(t, withFields(tt.fields))
			got, err := f.String("name")
			if got != tt.want || errCode(err) != tt.wantCode {
				t.Errorf("String = %q, %v; want %q, %q", got, err, tt.want, tt.wantCode)
			}
			if err != nil && !strings.Contains(err.Message, "name") {
				t.Errorf("message %q does not name the field", err.Message)
			}
		})
	}
}

// withFields builds a ping frame with extra JSON members.
func withFields(fields string) string {
	if fields == "" {
		return `{"type":"ping"}`
	}
	return `{"type":"ping",` + fields + `}`
}

func TestFrameOptString(t *testing.T) {
	tests := []struct {
		name        string
		fields      string
		want        string
		wantPresent bool
		wantCode    string
	}{
		{"present", `"s":"x"`, "x", true, ""},
		{"empty string is present", `"s":""`, "", true, ""},
		{"missing", ``, "", false, ""},
		{"null is absent", `"s":null`, "", false, ""},
		{"number", `"s":0`, "", true, protocol.CodeInvalidField},
		{"object", `"s":{"a":1}`, "", true, protocol.CodeInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, present, err := mustDecode(t, withFields(tt.fields)).OptString("s")
			if got != tt.want || present != tt.wantPresent || errCode(err) != tt.wantCode {
				t.Errorf("OptString = %q, %v, %v; want %q, %v, %q", got, present, err, tt.want, tt.wantPresent, tt.wantCode)
			}
		})
	}
}

func TestValidRoomID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"a", true},
		{"Room_1-b", true},
		{"0123456789", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"has space", false},
		{"dot.ted", false},
		{"slash/ed", false},
		{"é", false},
		{"trailing-newline\n", false},
		{"\nleading-newline", false},
		{"nul\x00", false},
		{"emoji😀", false},
	}
	for _, tt := range tests {
		if got := frame.ValidRoomID(tt.id); got != tt.want {
			t.Errorf("ValidRoomID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestFrameRoomID(t *testing.T) {
	tests := []struct {
		name     string
		fields   string
		want     string
		wantCode string
	}{
		{"valid", `"roomId":"lobby-1"`, "lobby-1", ""},
		{"64 characters", `"roomId":"` + strings.Repeat("r", 64) + `"`, strings.Repeat("r", 64), ""},
		{"65 characters", `"roomId":"` + strings.Repeat("r", 65) + `"`, "", protocol.CodeInvalidField},
		{"empty", `"roomId":""`, "", protocol.CodeInvalidField},
		{"bad character", `"roomId":"a b"`, "", protocol.CodeInvalidField},
		{"escaped newline at end", `"roomId":"abc\n"`, "", protocol.CodeInvalidField},
		{"missing", ``, "", protocol.CodeMissingField},
		{"null", `"roomId":null`, "", protocol.CodeMissingField},
		{"number", `"roomId":12`, "", protocol.CodeInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustDecode(t, withFields(tt.fields)).RoomID()
			if got != tt.want || errCode(err) != tt.wantCode {
				t.Errorf("RoomID = %q, %v; want %q, %q", got, err, tt.want, tt.wantCode)
			}
		})
	}
}

func TestFramePlayerID(t *testing.T) {
	tests := []struct {
		name     string
		fields   string
		want     string
		wantCode string
	}{
		{"ascii", `"playerId":"p1"`, "p1", ""},
		{"any characters allowed", `"playerId":"Ann Lee/é"`, "Ann Lee/é", ""},
		{"64 code points of 4 bytes", `"playerId":"` + strings.Repeat("😀", 64) + `"`, strings.Repeat("😀", 64), ""},
		{"65 code points", `"playerId":"` + strings.Repeat("é", 65) + `"`, "", protocol.CodeInvalidField},
		{"empty", `"playerId":""`, "", protocol.CodeInvalidField},
		{"missing", ``, "", protocol.CodeMissingField},
		{"null", `"playerId":null`, "", protocol.CodeMissingField},
		{"number", `"playerId":5`, "", protocol.CodeInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustDecode(t, withFields(tt.fields)).PlayerID()
			if got != tt.want || errCode(err) != tt.wantCode {
				t.Errorf("PlayerID = %q, %v; want %q, %q", got, err, tt.want, tt.wantCode)
			}
		})
	}
}

func TestFrameOptBool(t *testing.T) {
	tests := []struct {
		name     string
		fields   string
		want     bool
		wantCode string
	}{
		{"true", `"b":true`, true, ""},
		{"false", `"b":false`, false, ""},
		{"missing is false", ``, false, ""},
		{"null is false", `"b":null`, false, ""},
		{"string true", `"b":"true"`, false, protocol.CodeInvalidField},
		{"number 1", `"b":1`, false, protocol.CodeInvalidField},
		{"array", `"b":[true]`, false, protocol.CodeInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustDecode(t, withFields(tt.fields)).OptBool("b")
			if got != tt.want || errCode(err) != tt.wantCode {
				t.Errorf("OptBool = %v, %v; want %v, %q", got, err, tt.want, tt.wantCode)
			}
		})
	}
}

func TestFrameNumber(t *testing.T) {
	tests := []struct {
		name     string
		fields   string
		want     float64
		wantCode string
	}{
		{"integer", `"score":42`, 42, ""},
		{"negative", `"score":-7`, -7, ""},
		{"zero", `"score":0`, 0, ""},
		{"negative zero", `"score":-0`, 0, ""},
		{"fraction", `"score":1.25`, 1.25, ""},
		{"exponent", `"score":1e3`, 1000, ""},
		{"largest finite", `"score":1.7976931348623157e308`, math.MaxFloat64, ""},
		{"smallest subnormal", `"score":5e-324`, 5e-324, ""},
		{"underflow to zero", `"score":1e-999`, 0, ""},
		{"overflow is not finite", `"score":1e999`, 0, protocol.CodeInvalidField},
		{"negative overflow is not finite", `"score":-1e999`, 0, protocol.CodeInvalidField},
		{"just above max float", `"score":1.8e308`, 0, protocol.CodeInvalidField},
		{"string number", `"score":"42"`, 0, protocol.CodeInvalidField},
		{"string NaN", `"score":"NaN"`, 0, protocol.CodeInvalidField},
		{"string Infinity", `"score":"Infinity"`, 0, protocol.CodeInvalidField},
		{"boolean", `"score":true`, 0, protocol.CodeInvalidField},
		{"object", `"score":{}`, 0, protocol.CodeInvalidField},
		{"missing", ``, 0, protocol.CodeMissingField},
		{"null is missing", `"score":null`, 0, protocol.CodeMissingField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustDecode(t, withFields(tt.fields)).Number("score")
			if got != tt.want || errCode(err) != tt.wantCode {
				t.Errorf("Number = %v, %v; want %v, %q", got, err, tt.want, tt.wantCode)
			}
		})
	}
}

func TestFrameOptInt(t *testing.T) {
	tests := []struct {
		name        string
		fields      string
		lo, hi      int
		want        int
		wantPresent bool
		wantCode    string
	}{
		{"inside range", `"n":50`, 1, 1000, 50, true, ""},
		{"lower bound inclusive", `"n":1`, 1, 1000, 1, true, ""},
		{"upper bound inclusive", `"n":1000`, 1, 1000, 1000, true, ""},
		{"below range", `"n":0`, 1, 1000, 0, true, protocol.CodeInvalidField},
		{"above range", `"n":1001`, 1, 1000, 0, true, protocol.CodeInvalidField},
		{"negative range", `"n":-5`, -10, -1, -5, true, ""},
		{"fraction", `"n":1.5`, 1, 1000, 0, true, protocol.CodeInvalidField},
		{"tiny fraction", `"n":10.000001`, 1, 1000, 0, true, protocol.CodeInvalidField},
		{"fraction just above the upper bound", `"n":1000.5`, 1, 1000, 0, true, protocol.CodeInvalidField},
		{"fraction just below the lower bound", `"n":0.5`, 1, 1000, 0, true, protocol.CodeInvalidField},
		{"whole number written with a fraction", `"n":20.0`, 1, 1000, 20, true, ""},
		{"whole number written with an exponent", `"n":2e2`, 1, 1000, 200, true, ""},
		{"overflow", `"n":1e999`, 1, 1000, 0, true, protocol.CodeInvalidField},
		{"huge but finite", `"n":1e300`, 1, 1000, 0, true, protocol.CodeInvalidField},
		{"huge negative", `"n":-1e300`, -1000, 1000, 0, true, protocol.CodeInvalidField},
		{"string", `"n":"5"`, 1, 1000, 0, true, protocol.CodeInvalidField},
		{"boolean", `"n":true`, 1, 1000, 0, true, protocol.CodeInvalidField},
		{"missing", ``, 1, 1000, 0, false, ""},
		{"null is absent", `"n":null`, 1, 1000, 0, false, ""},
		{"86400 seconds", `"n":86400`, 1, 86400, 86400, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, present, err := mustDecode(t, withFields(tt.fields)).OptInt("n", tt.lo, tt.hi)
			if got != tt.want || present != tt.wantPresent || errCode(err) != tt.wantCode {
				t.Errorf("OptInt(%d..%d) = %d, %v, %v; want %d, %v, %q", tt.lo, tt.hi, got, present, err, tt.want, tt.wantPresent, tt.wantCode)
			}
			if err != nil && !strings.Contains(err.Message, "n must be an integer") {
				t.Errorf("message %q does not name the field and rule", err.Message)
			}
		})
	}
}

func TestFrameHasAndRaw(t *testing.T) {
	f := mustDecode(t, `{"type":"ping","data":{"a":[1,2]},"nothing":null,"zero":0}`)
	tests := []struct {
		name    string
		field   string
		wantHas bool
		wantRaw string
	}{
		{"object", "data", true, `{"a":[1,2]}`},
		{"zero", "zero", true, `0`},
		{"null", "nothing", false, ``},
		{"missing", "absent", false, ``},
	}
	for _, tt := range tests {
		if got := f.Has(tt.field); got != tt.wantHas {
			t.Errorf("Has(%s) = %v, want %v", tt.field, got, tt.wantHas)
		}
		raw, ok := f.Raw(tt.field)
		if ok != tt.wantHas || string(raw) != tt.wantRaw {
			t.Errorf("Raw(%s) = %s, %v; want %s, %v", tt.field, raw, ok, tt.wantRaw, tt.wantHas)
		}
		if ok && !json.Valid(raw) {
			t.Errorf("Raw(%s) = %s is not valid JSON", tt.field, raw)
		}
	}
}

func TestRuneCountCountsCodePoints(t *testing.T) {
	tests := []struct {
		s    string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"é", 1},
		{"e\u0301", 2}, // combining accent: two code points
		{"😀", 1},
		{"日本語", 3},
		{"\xff", 1}, // an invalid byte counts as one
	}
	for _, tt := range tests {
		if got := frame.RuneCount(tt.s); got != tt.want {
			t.Errorf("RuneCount(%q) = %d, want %d", tt.s, got, tt.want)
		}
	}
}

func TestTimestampIsUTCWithMilliseconds(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"whole second keeps .000", time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC), "2025-03-04T05:06:07.000Z"},
		{"milliseconds", time.Date(2025, 3, 4, 5, 6, 7, 120_000_000, time.UTC), "2025-03-04T05:06:07.120Z"},
		{"sub-millisecond truncated, not rounded", time.Date(2025, 12, 31, 23, 59, 59, 999_999_999, time.UTC), "2025-12-31T23:59:59.999Z"},
		{"other zone converted to UTC", time.Date(2025, 1, 1, 1, 30, 0, 5_000_000, time.FixedZone("CET", 3600)), "2025-01-01T00:30:00.005Z"},
		{"negative offset crosses the date", time.Date(2025, 1, 1, 20, 0, 0, 0, time.FixedZone("EST", -5*3600)), "2025-01-02T01:00:00.000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := frame.Timestamp(tt.t)
			if got != tt.want {
				t.Errorf("Timestamp = %q, want %q", got, tt.want)
			}
			back, err := time.Parse(time.RFC3339Nano, got)
			if err != nil {
				t.Fatalf("Timestamp %q is not RFC 3339: %v", got, err)
			}
			if !back.Equal(tt.t.Truncate(time.Millisecond)) {
				t.Errorf("Timestamp %q parses to %v, want %v", got, back, tt.t.Truncate(time.Millisecond))
			}
		})
	}
}

func TestErrorfAndErrorString(t *testing.T) {
	err := protocol.Errorf(protocol.CodeInvalidField, "%s must be %d..%d", "limit", 1, 1000)
	if err.Code != protocol.CodeInvalidField || err.Message != "limit must be 1..1000" {
		t.Errorf("Errorf = %+v", err)
	}
	if got := err.Error(); got != "invalid_field: limit must be 1..1000" {
		t.Errorf("Error() = %q", got)
	}
}
