package chatlobby

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestNewMessageFrameMatchesEncode(t *testing.T) {
	msg := encode(&ChatMessage{ID: "00000000000000000007", RoomID: "r", SenderID: "p1", SenderName: "Ann \"A\" <b>",
		Content: "héllo\n\u2028", Timestamp: "2026-11-28T10:00:00.000Z", Type: MessageText, ClientMsgID: "c1"})
	for _, requestID := range []string{"", "req-1", `quote " and \ backslash`, "ünï"} {
		got := newMessageFrame(msg, requestID)
		want := encode(NewMessageFrame{Type: TypeNewMessage, Message: msg, RequestID: requestID})
		if !bytes.Equal(got, want) {
			t.Errorf("requestId %q:\n got %s\nwant %s", requestID, got, want)
		}
		if !json.Valid(got) {
			t.Errorf("requestId %q: invalid JSON %s", requestID, got)
		}
	}
}

// BenchmarkEncodeNewMessage is what send_message encodes per message: the
// stored message once (its bytes are both the history record and the
// frame's payload) and the new_message frame around it once, shared by
// every member's socket.
func BenchmarkEncodeNewMessage(b *testing.B) {
	m := &ChatMessage{ID: "00000000000000012345", RoomID: "general", SenderID: "p1", SenderName: "Alice",
		Content: "hello, this is a chat message of a typical length for a busy room", Timestamp: "2026-11-28T10:00:00.000Z",
		Type: MessageText, ClientMsgID: "c-123456"}
	b.ReportAllocs()
	for b.Loop() {
		raw, err := json.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		_ = newMessageFrame(raw, "")
	}
}
