package main

import (
	"encoding/json"
	"testing"

	"github.com/holocron-run/holocron/objects/chatlobby"
	"github.com/holocron-run/holocron/objects/roommanager"
)

// The scanner must read frames exactly as the server encodes them, so
// these tests encode with the server's own frame types.

func TestNewMessageScanReadsServerEncoding(t *testing.T) {
	raw := appendSendMessage(nil, "room-1", "p7", 42, 123456789, 32)
	var sent struct {
		Type, RoomID, PlayerID, Content, ClientMsgID string
	}
	if err := json.Unmarshal(raw, &sent); err != nil {
		t.Fatalf("client frame is not JSON: %v: %s", err, raw)
	}
	if sent.Type != "send_message" || sent.RoomID != "room-1" || sent.PlayerID != "p7" || sent.ClientMsgID != "42" || len(sent.Content) != 32 {
		t.Fatalf("client frame decodes to %+v", sent)
	}
	msg, _ := json.Marshal(chatlobby.ChatMessage{
		ID: "00000000000000000017", RoomID: "room-1", SenderID: "p7", SenderName: "p7",
		Content: sent.Content, Timestamp: "2026-11-25T10:00:00.000Z", Type: chatlobby.MessageText, ClientMsgID: sent.ClientMsgID,
	})
	frame, _ := json.Marshal(chatlobby.NewMessageFrame{Type: chatlobby.TypeNewMessage, Message: msg, RequestID: "r1"})
	if got := string(frameType(frame)); got != "new_message" {
		t.Fatalf("frameType = %q", got)
	}
	d, ok := parseNewMessage(frame)
	if !ok {
		t.Fatalf("parseNewMessage failed on %s", frame)
	}
	if string(d.ID) != "00000000000000000017" || string(d.SenderID) != "p7" || !d.HasCMID || d.ClientMsgID != 42 || !d.HasStamp || d.Stamp != 123456789 {
		t.Fatalf("parsed %+v from %s", d, frame)
	}
}

func TestNewMessageWithoutClientMsgID(t *testing.T) {
	msg, _ := json.Marshal(chatlobby.ChatMessage{ID: "00000000000000000001", RoomID: "r", SenderID: "x", Content: "hello", Type: "text"})
	frame, _ := json.Marshal(chatlobby.NewMessageFrame{Type: chatlobby.TypeNewMessage, Message: msg})
	d, ok := parseNewMessage(frame)
	if !ok || d.HasCMID || d.HasStamp {
		t.Fatalf("parsed %+v, ok=%v from %s", d, ok, frame)
	}
}

func TestGameActionScanReadsServerEncoding(t *testing.T) {
	raw := appendGameAction(nil, "g1", "g1p0", 987654321)
	var sent struct {
		Type, Action string
		Data         struct{ T int64 }
	}
	if err := json.Unmarshal(raw, &sent); err != nil || sent.Type != "game_action" || sent.Data.T != 987654321 {
		t.Fatalf("client frame %s decodes to %+v (%v)", raw, sent, err)
	}
	frame, _ := json.Marshal(&roommanager.GameActionFrame{
		Type: roommanager.TypeGameAction, RoomID: "g1", PlayerID: "g1p0", Action: "move",
		Data: json.RawMessage(`{"t":987654321}`), Seq: 12, CurrentTurn: 3,
	})
	if got := string(frameType(frame)); got != "game_action" {
		t.Fatalf("frameType = %q", got)
	}
	if ts, ok := intField(frame, "t"); !ok || ts != 987654321 {
		t.Fatalf("t = %d, %v in %s", ts, ok, frame)
	}
	if pid, ok := stringField(frame, "playerId"); !ok || string(pid) != "g1p0" {
		t.Fatalf("playerId = %q, %v", pid, ok)
	}
}

func TestJoinRoomFrame(t *testing.T) {
	for _, tc := range []struct {
		since    string
		hasSince bool
	}{{"", false}, {"", true}, {"00000000000000000009", true}} {
		raw := appendJoinRoom(nil, "room", "p1", tc.since, tc.hasSince)
		var f map[string]any
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		since, has := f["since"]
		if f["type"] != "join_room" || f["playerName"] != "p1" || has != tc.hasSince || (has && since != tc.since) {
			t.Fatalf("join frame %s", raw)
		}
	}
}

func TestFrameTypeFallsBackToScan(t *testing.T) {
	if got := string(frameType([]byte(`{"code":"x","type":"error"}`))); got != "error" {
		t.Fatalf("frameType = %q", got)
	}
	if got := frameType([]byte(`not json`)); got != nil {
		t.Fatalf("frameType of garbage = %q", got)
	}
}
