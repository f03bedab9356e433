package client

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/holocron-run/holocron/objects/chatlobby"
	"github.com/holocron-run/holocron/objects/roommanager"
)

// jsonFields lists the JSON keys a struct type encodes or decodes,
// including those of embedded structs.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "":
			out = append(out, jsonFields(f.Type)...)
		case !f.IsExported():
		case name == "":
			out = append(out, f.Name)
		default:
			out = append(out, name)
		}
	}
	return out
}

// TestClientTypesReadEveryServerField keeps the client's wire types (which
// do not import the server's packages, to keep Pebble and Raft out of
// client binaries) in step with the server's: every field a server frame
// or body carries has a field in the client type that reads it.
func TestClientTypesReadEveryServerField(t *testing.T) {
	envelopeOnly := []string{"type", "requestId"}
	pairs := []struct {
		server, client any
	}{
		{chatlobby.ChatRoom{}, ChatRoom{}},
		{chatlobby.ChatMessage{}, ChatMessage{}},
		{chatlobby.RoomJoinedFrame{}, ChatJoined{}},
		{chatlobby.PresenceFrame{}, Presence{}},
		{chatlobby.HistoryFrame{}, MessagePage{}},
		{chatlobby.ResumeFrame{}, historyFrame{}},
		{chatlobby.MessagePage{}, MessagePage{}},
		{roommanager.GameRoom{}, GameRoom{}},
		{roommanager.GameSettings{}, GameSettings{}},
		{roommanager.GameState{}, GameState{}},
		{roommanager.GameData{}, GameData{}},
		{roommanager.PlayerState{}, PlayerState{}},
		{roommanager.FinalScore{}, FinalScore{}},
		{roommanager.GameAction{}, GameAction{}},
		{roommanager.GameActionFrame{}, GameAction{}},
		{roommanager.RoomJoined{}, GameJoined{}},
		{roommanager.PlayerJoined{}, PlayerJoined{}},
		{roommanager.PlayerLeft{}, PlayerLeft{}},
		{roommanager.RoomLeft{}, RoomLeft{}},
		{roommanager.GameStarted{}, GameStarted{}},
		{roommanager.ScoreUpdated{}, ScoreUpdated{}},
		{roommanager.GameEnded{}, GameEnded{}},
		{roommanager.RoomResponse{}, GameRoomState{}},
	}
	for _, p := range pairs {
		st, ct := reflect.TypeOf(p.server), reflect.TypeOf(p.client)
		have := jsonFields(ct)
		for _, f := range jsonFields(st) {
			if !slices.Contains(have, f) && !slices.Contains(envelopeOnly, f) {
				t.Errorf("%v has %q, which client.%s does not read", st, f, ct.Name())
			}
		}
	}
}
