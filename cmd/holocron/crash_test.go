package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// ack is one chat message whose sender saw it echoed.
type ack struct {
	clientMsgID string
	id          string
}

// chatSender joins room as player and sends messages until its socket dies,
// recording every message it saw echoed back to itself.
func chatSender(t *testing.T, n *node, room, player string, acks chan<- ack) {
	c := runtimetest.DialURL(t, n.wsURL("/api/lobby/websocket"), nil)
	c.Send(map[string]any{"type": "join_room", "roomId": room, "playerId": player, "playerName": "Player " + player})
	for {
		f, err := c.TryRead()
		if err != nil {
			return
		}
		if f.Type() == "room_joined" {
			break
		}
	}
	for i := 0; ; i++ {
		cmid := fmt.Sprintf("%s-%06d", player, i)
		if err := c.WS.WriteJSON(map[string]any{"type": "send_message", "roomId": room, "playerId": player,
			"content": "message " + cmid, "clientMsgId": cmid}); err != nil {
			return
		}
		for {
			f, err := c.TryRead()
			if err != nil {
				return
			}
			msg := f.Obj("message")
			if f.Type() == "new_message" && msg.Str("clientMsgId") == cmid && msg.Str("senderId") == player {
				acks <- ack{clientMsgID: cmid, id: msg.Str("id")}
				break
			}
		}
	}
}

func TestKill9KeepsEveryEchoedChatMessage(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	if code := n.do("POST", "/api/lobby/rooms", map[string]any{"roomId": "crash", "name": "Crash"}, nil); code != 201 {
		t.Fatalf("create room: %d", code)
	}
	acks := make(chan ack, 1<<16)
	var wg sync.WaitGroup
	const senders = 4
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chatSender(t, n, "crash", fmt.Sprintf("p%d", i), acks)
		}()
	}
	// Kill mid-traffic: after a good number of acknowledged messages.
	acked := map[string]string{}
	timeout := time.After(60 * time.Second)
	for len(acked) < 300 {
		select {
		case a := <-acks:
			acked[a.clientMsgID] = a.id
		case <-timeout:
			t.Fatalf("only %d acks in 60s", len(acked))
		}
	}
	n.kill9()
	wg.Wait()
	close(acks)
	for a := range acks {
		acked[a.clientMsgID] = a.id
	}
	seen := len(acked)

	n2 := startNode(t, dir)
	var page struct {
		Messages []struct {
			ID          string `json:"id"`
			SenderID    string `json:"senderId"`
			ClientMsgID string `json:"clientMsgId"`
			Type        string `json:"type"`
		} `json:"messages"`
		HasMore bool `json:"hasMore"`
	}
	if code := n2.do("GET", "/api/lobby/rooms/crash/messages?limit=1000", nil, &page); code != 200 {
		t.Fatalf("history after restart: %d", code)
	}
	count := map[string]int{}
	lastID := ""
	for _, m := range page.Messages {
		if m.ID <= lastID {
			t.Fatalf("history out of order: %q after %q", m.ID, lastID)
		}
		lastID = m.ID
		if m.ClientMsgID != "" {
			count[m.ClientMsgID]++
			if want, ok := acked[m.ClientMsgID]; ok && want != m.ID {
				t.Errorf("message %s has id %s after restart, %s when acknowledged", m.ClientMsgID, m.ID, want)
			}
		}
	}
	for cmid := range acked {
		if count[cmid] != 1 {
			t.Errorf("acknowledged message %s appears %d times after kill -9", cmid, count[cmid])
		}
	}
	t.Logf("%d messages acknowledged before kill -9; all present once after restart (%d in history)", seen, len(page.Messages))
}

func TestKill9KeepsGameScoresAndClockStillEndsGame(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	const duration = 5
	if code := n.do("POST", "/api/room-manager/rooms", map[string]any{"roomId": "g1", "name": "Game", "gameType": "competitive",
		"settings": map[string]any{"duration": duration}}, nil); code != 201 {
		t.Fatalf("create game room: %d", code)
	}
	a := runtimetest.DialURL(t, n.wsURL("/api/room-manager/websocket"), nil)
	b := runtimetest.DialURL(t, n.wsURL("/api/room-manager/websocket"), nil)
	a.Send(map[string]any{"type": "join_room", "roomId": "g1", "playerId": "a", "playerName": "Alice"})
	a.Expect("room_joined")
	a.Expect("player_joined")
	b.Send(map[string]any{"type": "join_room", "roomId": "g1", "playerId": "b", "playerName": "Bob"})
	b.Expect("room_joined")
	a.Send(map[string]any{"type": "start_game", "roomId": "g1", "playerId": "a"})
	a.Expect("player_joined") // Bob
	a.Expect("game_started_success")
	started := a.Expect("game_started")
	endsAt, err := time.Parse(time.RFC3339, started.Str("endsAt"))
	if err != nil {
		t.Fatalf("endsAt %q: %v", started.Str("endsAt"), err)
	}
	a.Send(map[string]any{"type": "update_score", "roomId": "g1", "playerId": "a", "score": 10})
	a.Expect("score_updated")
	b.Send(map[string]any{"type": "update_score", "roomId": "g1", "playerId": "b", "score": -3.5})
	for {
		// b sees a's score first; the kill follows b's own broadcast.
		if f := b.Read(); f.Type() == "score_updated" && f.Str("playerId") == "b" {
			break
		}
	}
	n.kill9()

	n2 := startNode(t, dir)
	var got struct {
		Room struct {
			Status string `json:"status"`
		} `json:"room"`
		GameState struct {
			Players []struct {
				PlayerID string  `json:"playerId"`
				Score    float64 `json:"score"`
			} `json:"players"`
		} `json:"gameState"`
	}
	if code := n2.do("GET", "/api/room-manager/rooms/g1", nil, &got); code != 200 {
		t.Fatalf("room after restart: %d", code)
	}
	if time.Now().Before(endsAt) && got.Room.Status != "playing" {
		t.Fatalf("status after restart = %q, want playing", got.Room.Status)
	}
	scores := map[string]float64{}
	for _, p := range got.GameState.Players {
		scores[p.PlayerID] = p.Score
	}
	if scores["a"] != 10 || scores["b"] != -3.5 || len(scores) != 2 {
		t.Fatalf("scores after kill -9: %v, want a=10 b=-3.5", scores)
	}
	// The game clock is a durable alarm: the restarted node ends the game.
	c := runtimetest.DialURL(t, n2.wsURL("/api/room-manager/websocket"), nil)
	c.Send(map[string]any{"type": "join_room", "roomId": "g1", "playerId": "a", "playerName": "Alice"})
	joined := c.Expect("room_joined")
	if joined.Obj("room").Str("status") == "playing" {
		ended := c.Expect("game_ended")
		if ended.Str("reason") != "clock" {
			t.Fatalf("game ended with reason %q, want clock", ended.Str("reason"))
		}
		endedAt, err := time.Parse(time.RFC3339, ended.Str("endedAt"))
		if err != nil || endedAt.Before(endsAt) {
			t.Fatalf("endedAt %q before endsAt %s", ended.Str("endedAt"), endsAt)
		}
	}
	if code := n2.do("GET", "/api/room-manager/rooms/g1", nil, &got); code != 200 || got.Room.Status != "finished" {
		t.Fatalf("room after clock: %d %q, want finished", code, got.Room.Status)
	}
}
