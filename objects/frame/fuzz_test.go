package frame_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/holocron-run/holocron/objects/frame"
	"github.com/holocron-run/holocron/protocol"
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
		f, err := frame.DecodeFrame(data, binary)

		trimmed := bytes.TrimLeft(data, " \t\r\n")
		isObject := !binary && json.Valid(data) && len(trimmed) > 0 && trimmed[0] == '{'
		if !isObject {
			if err == nil || err.Code != protocol.CodeInvalidJSON || f != nil {
				t.Fatalf("DecodeFrame(%q, binary=%v) = %+v, %v; want nil, invalid_json", data, binary, f, err)
			}
			return
		}
		if f == nil {
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
		ridOK := !ridPresent || rid == nil || (ridIsString && frame.RuneCount(ridString) <= frame.MaxRequestIDRunes)

		switch {
		case !ridOK:
			if err == nil || err.Code != protocol.CodeInvalidField {
				t.Fatalf("DecodeFrame(%q) = %v; want invalid_field for requestId %v", data, err, rid)
			}
			if typeIsString && f.Type != typ {
				t.Fatalf("with a bad requestId Type = %q, want %q", f.Type, typ)
			}
		case !typeIsString || typ == "":
			if err == nil || err.Code != protocol.CodeUnknownType || f.Type != "" {
				t.Fatalf("DecodeFrame(%q) = %+v, %v; want unknown_type", data, f, err)
			}
		default:
			if err != nil {
				t.Fatalf("DecodeFrame(%q) = %v; want success", data, err)
			}
			if f.Type == "" || f.Type != typ {
				t.Fatalf("Type = %q, want %q", f.Type, typ)
			}
		}
		if ridOK && ridIsString && f.RequestID != ridString {
			t.Fatalf("RequestID = %q, want %q", f.RequestID, ridString)
		}
		if frame.RuneCount(f.RequestID) > frame.MaxRequestIDRunes {
			t.Fatalf("RequestID of %d code points accepted", frame.RuneCount(f.RequestID))
		}

		// The field helpers never panic and agree with Has and Raw on every
		// member the frame has.
		for name, v := range members {
			raw, ok := f.Raw(name)
			if ok != (v != nil) || ok != f.Has(name) {
				t.Fatalf("Raw(%q) ok=%v, Has=%v for member %v", name, ok, f.Has(name), v)
			}
			if ok && !json.Valid(raw) {
				t.Fatalf("Raw(%q) = %q is not JSON", name, raw)
			}
			s, serr := f.String(name)
			if _, isString := v.(string); isString != (serr == nil) || (isString && s != v) {
				t.Fatalf("String(%q) = %q, %v for member %#v", name, s, serr, v)
			}
			_, _, _ = f.OptString(name)
			_, _ = f.OptBool(name)
			_, _ = f.Number(name)
			_, _, _ = f.OptInt(name, -1000, 1000)
		}
		_, _ = f.RoomID()
		_, _ = f.PlayerID()
	})
}
