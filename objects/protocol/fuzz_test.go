package protocol_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/holocron-run/holocron/objects/protocol"
)

// FuzzDecodeFrame checks DecodeFrame against an independent reading of the
// same bytes with encoding/json: it never panics, fails only with the three
// codes PROTOCOL.md gives a bad frame, and when it succeeds its Type and
// RequestID are exactly the frame's "type" and "requestId" members.
func FuzzDecodeFrame(f *testing.F) {
	seeds := []string{
		`{"type":"ping"}`,
		`{"type":"join_room","roomId":"lobby","playerId":"p1","playerName":"Ann","requestId":"r-1"}`,
		`{"type":"send_message","roomId":"r","playerId":"p","content":"héllo 😀","clientMsgId":"c1"}`,
		`{"type":"update_score","roomId":"r","playerId":"p","score":1e999}`,
		`{"type":"get_history","roomId":"r","limit":50.5,"before":null}`,
		`{"type":"game_action","roomId":"r","playerId":"p","action":"end_turn","data":{"a":[1,{"b":null}]}}`,
		`{"type":"ping","requestId":"` + strings.Repeat("x", 64) + `"}`,
		`{"type":"ping","requestId":"` + strings.Repeat("é", 65) + `"}`,
		`{"type":"ping","requestId":12}`,
		`{"type":"ping","requestId":null}`,
		`{"requestId":"only"}`,
		`{"type":null}`,
		`{"type":""}`,
		`{"type":7}`,
		`{"type":"a","type":"b"}`,
		`{"type":"p\u0069ng","requestId":"\ud83d\ude00"}`,
		"{\"type\":\"\xff\xfe\"}",
		`{}`,
		` {"type":"ping"} `,
		`[]`,
		`"ping"`,
		`null`,
		`0`,
		``,
		`{`,
		`{"type":"ping"}{}`,
		"\ufeff{\"type\":\"ping\"}",
		`{"type":"ping",}`,
		strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200),
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(`{"type":"ping"}`), true)
	f.Add([]byte{0x00, 0x01, 0x02}, true)

	f.Fuzz(func(t *testing.T, data []byte, binary bool) {
		frame, err := protocol.DecodeFrame(data, binary)

		trimmed := bytes.TrimLeft(data, " \t\r\n")
		isObject := !binary && json.Valid(data) && len(trimmed) > 0 && trimmed[0] == '{'
		if !isObject {
			if err == nil || err.Code != protocol.CodeInvalidJSON || frame != nil {
				t.Fatalf("DecodeFrame(%q, binary=%v) = %+v, %v; want nil, invalid_json", data, binary, frame, err)
			}
			return
		}
		if frame == nil {
			t.Fatalf("DecodeFrame(%q) returned no frame for a JSON object (err %v)", data, err)
		}

		// The reference reading. UseNumber: 1e999 is a valid JSON number.
		var members map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if e := dec.Decode(&members); e != nil {
			t.Fatalf("reference decode of a valid object failed: %v", e)
		}
		typ, typeIsString := members["type"].(string)
		rid, ridPresent := members["requestId"]
		ridString, ridIsString := rid.(string)
		ridOK := !ridPresent || rid == nil || (ridIsString && protocol.RuneCount(ridString) <= protocol.MaxRequestIDRunes)

		switch {
		case !ridOK:
			if err == nil || err.Code != protocol.CodeInvalidField {
				t.Fatalf("DecodeFrame(%q) = %v; want invalid_field for requestId %v", data, err, rid)
			}
			if typeIsString && frame.Type != typ {
				t.Fatalf("with a bad requestId Type = %q, want %q", frame.Type, typ)
			}
		case !typeIsString || typ == "":
			if err == nil || err.Code != protocol.CodeUnknownType || frame.Type != "" {
				t.Fatalf("DecodeFrame(%q) = %+v, %v; want unknown_type", data, frame, err)
			}
		default:
			if err != nil {
				t.Fatalf("DecodeFrame(%q) = %v; want success", data, err)
			}
			if frame.Type == "" || frame.Type != typ {
				t.Fatalf("Type = %q, want %q", frame.Type, typ)
			}
		}
		if ridOK && ridIsString && frame.RequestID != ridString {
			t.Fatalf("RequestID = %q, want %q", frame.RequestID, ridString)
		}
		if protocol.RuneCount(frame.RequestID) > protocol.MaxRequestIDRunes {
			t.Fatalf("RequestID of %d code points accepted", protocol.RuneCount(frame.RequestID))
		}

		// The field helpers never panic and agree with Has and Raw on every
		// member the frame has.
		for name, v := range members {
			raw, ok := frame.Raw(name)
			if ok != (v != nil) || ok != frame.Has(name) {
				t.Fatalf("Raw(%q) ok=%v, Has=%v for member %v", name, ok, frame.Has(name), v)
			}
			if ok && !json.Valid(raw) {
				t.Fatalf("Raw(%q) = %q is not JSON", name, raw)
			}
			s, serr := frame.String(name)
			if _, isString := v.(string); isString != (serr == nil) || (isString && s != v) {
				t.Fatalf("String(%q) = %q, %v for member %#v", name, s, serr, v)
			}
			_, _, _ = frame.OptString(name)
			_, _ = frame.OptBool(name)
			_, _ = frame.Number(name)
			_, _, _ = frame.OptInt(name, -1000, 1000)
		}
		_, _ = frame.RoomID()
		_, _ = frame.PlayerID()
	})
}
