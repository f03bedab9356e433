package chatlobby_test

import (
	"encoding/json"
	"testing"

	"github.com/holocron-run/holocron/objects/chatlobby"
)

// BenchmarkEncodeNewMessage is what send_message encodes per message: the
// stored message once (its bytes are both the history record and the
// frame's payload) and the new_message frame around it once, shared by
// every member's socket.
func BenchmarkEncodeNewMessage(b *testing.B) {
	m := &chatlobby.ChatMessage{ID: "00000000000000012345", RoomID: "general", SenderID: "p1", SenderName: "Alice",
		Content: "hello, this is a chat message of a typical length for a busy room", Timestamp: "2026-11-28T10:00:00.000Z",
		Type: "text", ClientMsgID: "c-123456"}
	b.ReportAllocs()
	for b.Loop() {
		raw, err := json.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(chatlobby.NewMessageFrame{Type: chatlobby.TypeNewMessage, Message: raw}); err != nil {
			b.Fatal(err)
		}
	}
}
