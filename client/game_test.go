package client

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/holocron-run/holocron/protocol"
)

// TestGameRequests plays a whole game against one node through every
// RoomManager request and REST endpoint, with the failures each can give.
func TestGameRequests(t *testing.T) {
	checkLeaks(t)
	node := startNode(t)
	addrs := []string{node.Addr}
	p1, ev1 := dialGame(t, addrs, testOptions())
	p2, ev2 := dialGame(t, addrs, testOptions())
	watcher, evW := dialGame(t, addrs, testOptions())
	ctx := ctxT(t, 30*time.Second)

	noSpectators := false
	room, err := p1.CreateRoom(ctx, NewGameRoom{RoomID: "quiz", Name: "Quiz", GameType: "cognitive", MaxPlayers: 3, Settings: &SettingsPatch{Duration: 600, MaxRounds: 2}})
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	if room.Status != StatusWaiting || room.MaxPlayers != 3 || room.Settings.Duration != 600 || room.Settings.MaxRounds != 2 || room.Settings.Difficulty != "medium" || !room.Settings.AllowSpectators {
		t.Fatalf("CreateRoom = %+v", room)
	}
	if _, err := p1.CreateRoom(ctx, NewGameRoom{RoomID: "closed", Name: "Closed", GameType: "social", Settings: &SettingsPatch{AllowSpectators: &noSpectators}}); err != nil {
		t.Fatalf("CreateRoom closed: %v", err)
	}

	j1, err := p1.JoinRoom(ctx, "quiz", "p1", "Ann")
	if err != nil {
		t.Fatalf("JoinRoom: %v", err)
	}
	if j1.Spectator || j1.Room.Status != StatusWaiting || len(j1.GameState.Players) != 1 || j1.GameState.Players[0].PlayerName != "Ann" {
		t.Fatalf("JoinRoom = %+v", j1)
	}
	if _, err := p2.JoinRoom(ctx, "quiz", "p2", "Ben"); err != nil {
		t.Fatalf("p2 JoinRoom: %v", err)
	}
	pj := waitEvent(t, ev1, 5*time.Second, func(e *PlayerJoined) bool { return e.PlayerID == "p2" })
	if pj.PlayerName != "Ben" || len(pj.Players) != 2 {
		t.Fatalf("PlayerJoined = %+v", pj)
	}
	jw, err := watcher.Spectate(ctx, "quiz", "w", "Watcher")
	if err != nil || !jw.Spectator {
		t.Fatalf("Spectate = %+v, %v", jw, err)
	}

	if err := p1.StartGame(ctx, "quiz"); err != nil {
		t.Fatalf("StartGame: %v", err)
	}
	for _, ev := range []*recorder{ev1, ev2, evW} {
		gs := waitEvent[*GameStarted](t, ev, 5*time.Second, nil)
		if gs.RoomID != "quiz" || gs.EndsAt.Sub(gs.StartedAt) != 600*time.Second {
			t.Fatalf("GameStarted = %+v", gs)
		}
	}

	su, err := p2.UpdateScore(ctx, "quiz", 42.5)
	if err != nil {
		t.Fatalf("UpdateScore: %v", err)
	}
	if su.PlayerID != "p2" || su.Score != 42.5 || su.Players[1].Score != 42.5 {
		t.Fatalf("UpdateScore = %+v", su)
	}
	waitEvent(t, evW, 5*time.Second, func(e *ScoreUpdated) bool { return e.PlayerID == "p2" && e.Score == 42.5 })
	if _, err := p1.UpdateScore(ctx, "quiz", -3); err != nil {
		t.Fatalf("negative UpdateScore: %v", err)
	}

	act, err := p1.GameAction(ctx, "quiz", "answer", map[string]any{"q": 1, "a": "B"})
	if err != nil {
		t.Fatalf("GameAction: %v", err)
	}
	if act.Seq != 1 || act.CurrentTurn != 0 || act.Action != "answer" || string(act.Data) != `{"a":"B","q":1}` {
		t.Fatalf("GameAction = %+v (data %s)", act, act.Data)
	}
	seen := waitEvent(t, ev2, 5*time.Second, func(e *GameAction) bool { return e.Seq == 1 })
	if seen.PlayerID != "p1" || !json.Valid(seen.Data) {
		t.Fatalf("p2 saw %+v", seen)
	}
	if act, err := p2.GameAction(ctx, "quiz", ActionEndTurn, nil); err != nil || act.CurrentTurn != 1 || string(act.Data) != "null" {
		t.Fatalf("end_turn = %+v, %v", act, err)
	}

	failures := []struct {
		name string
		err  func() error
		code string
	}{
		{"spectator scores", func() error { _, err := watcher.UpdateScore(ctx, "quiz", 1); return err }, protocol.CodeForbidden},
		{"spectator starts", func() error { return watcher.StartGame(ctx, "quiz") }, protocol.CodeForbidden},
		{"start a playing game", func() error { return p1.StartGame(ctx, "quiz") }, protocol.CodeGameInProgress},
		{"join a playing game as a new player", func() error { _, err := watcher.JoinRoom(ctx, "quiz", "w", "Watcher"); return err }, protocol.CodeGameInProgress},
		{"join a missing room", func() error { _, err := p1.JoinRoom(ctx, "nowhere", "p1", "Ann"); return err }, protocol.CodeRoomNotFound},
		{"join as another player (spoofed playerId)", func() error { _, err := p1.JoinRoom(ctx, "closed", "p9", "Eve"); return err }, protocol.CodeForbidden},
		{"spectate a room without spectators", func() error { _, err := p2.Spectate(ctx, "closed", "p2", "Ben"); return err }, protocol.CodeForbidden},
		{"start with one player", func() error {
			if _, err := p2.JoinRoom(ctx, "closed", "p2", "Ben"); err != nil {
				return err
			}
			return p2.StartGame(ctx, "closed")
		}, protocol.CodeNotEnoughPlayers},
		{"score in a waiting room", func() error { _, err := p2.UpdateScore(ctx, "closed", 1); return err }, protocol.CodeInvalidState},
		{"end a waiting game", func() error { _, err := p2.EndGame(ctx, "closed"); return err }, protocol.CodeInvalidState},
		{"act with an empty action", func() error { _, err := p1.GameAction(ctx, "quiz", "", nil); return err }, protocol.CodeInvalidField},
		{"act in a room not joined", func() error { _, err := p1.GameAction(ctx, "closed", "x", nil); return err }, protocol.CodeNotInRoom},
		{"create an existing room", func() error {
			_, err := p1.CreateRoom(ctx, NewGameRoom{RoomID: "quiz", Name: "Q", GameType: "social"})
			return err
		}, protocol.CodeRoomExists},
		{"create with a bad game type", func() error {
			_, err := p1.CreateRoom(ctx, NewGameRoom{RoomID: "q2", Name: "Q", GameType: "chess"})
			return err
		}, protocol.CodeInvalidField},
		{"get a missing room", func() error { _, err := p1.GetRoom(ctx, "nowhere"); return err }, protocol.CodeRoomNotFound},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) { wantCode(t, f.err(), f.code) })
	}
	var e *Error
	if err := watcher.StartGame(ctx, "quiz"); !errors.As(err, &e) || e.Message != protocol.MessageStartFailed || e.Detail == "" {
		t.Fatalf("start_game_failed = %+v, want the fixed message and a detail", e)
	}

	ended, err := p1.EndGame(ctx, "quiz")
	if err != nil {
		t.Fatalf("EndGame: %v", err)
	}
	want := []FinalScore{{"p1", "Ann", -3}, {"p2", "Ben", 42.5}}
	if ended.Reason != ReasonEnded || !slices.Equal(ended.FinalScores, want) {
		t.Fatalf("EndGame = %+v", ended)
	}
	waitEvent(t, evW, 5*time.Second, func(e *GameEnded) bool { return e.Reason == ReasonEnded })
	waitEvent(t, ev2, 5*time.Second, func(e *GameEnded) bool { return e.Reason == ReasonEnded })

	st, err := p2.GetRoom(ctx, "quiz")
	if err != nil {
		t.Fatalf("GetRoom: %v", err)
	}
	if st.Room.Status != StatusFinished || st.Room.EndReason != ReasonEnded || st.GameState.CurrentTurn != 1 ||
		len(st.GameState.GameData.Actions) != 2 || !slices.Equal(st.GameState.GameData.FinalScores, want) {
		t.Fatalf("GetRoom = %+v", st)
	}
	rooms, err := p2.ListRooms(ctx)
	if err != nil || len(rooms) != 2 || rooms[0].ID != "quiz" || rooms[1].ID != "closed" {
		t.Fatalf("ListRooms = %+v, %v", rooms, err)
	}

	// A player's second socket: when one leaves, the room is left for all
	// of the player's sockets, and the other hears RoomLeft.
	tab2, evTab := dialGame(t, addrs, testOptions())
	if _, err := tab2.JoinRoom(ctx, "closed", "p2", "Ben"); err != nil {
		t.Fatalf("second tab JoinRoom: %v", err)
	}
	if err := p2.LeaveRoom(ctx, "closed"); err != nil {
		t.Fatalf("LeaveRoom: %v", err)
	}
	waitEvent(t, evTab, 5*time.Second, func(e *RoomLeft) bool { return e.RoomID == "closed" })
	if _, err := tab2.UpdateScore(ctx, "closed", 1); !IsCode(err, protocol.CodeNotInRoom) {
		t.Fatalf("act after RoomLeft = %v, want not_in_room", err)
	}
	if err := p2.LeaveRoom(ctx, "closed"); !IsCode(err, protocol.CodeNotInRoom) {
		t.Fatalf("second LeaveRoom = %v, want not_in_room", err)
	}
}
