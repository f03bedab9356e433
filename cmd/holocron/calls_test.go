package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// gameRoom is what GET /api/room-manager/rooms/{id} answers, in part.
type gameRoom struct {
	Room struct {
		Status            string `json:"status"`
		LeaderboardPosted bool   `json:"leaderboardPosted"`
	} `json:"room"`
}

// playToTheEnd plays a two-player game in a new room whose final scores go
// to board, through node via, and returns once both players saw
// game_ended.
func playToTheEnd(t *testing.T, via *node, roomID, board string, score float64) {
	t.Helper()
	if code := via.do("POST", "/api/room-manager/rooms", map[string]any{"roomId": roomID, "name": roomID, "gameType": "competitive",
		"maxPlayers": 2, "settings": map[string]any{"leaderboard": board}}, nil); code != 201 {
		t.Fatalf("create game room %s: %d", roomID, code)
	}
	var socks []*runtimetest.Conn
	for _, p := range []string{"ann", "bob"} {
		c := runtimetest.DialURL(t, via.wsURL("/api/room-manager/websocket"), nil)
		c.Send(map[string]any{"type": "join_room", "roomId": roomID, "playerId": p + "-" + roomID, "playerName": p})
		until(c, "room_joined")
		socks = append(socks, c)
	}
	socks[0].Send(map[string]any{"type": "start_game", "roomId": roomID, "playerId": "ann-" + roomID})
	until(socks[0], "game_started")
	socks[1].Send(map[string]any{"type": "update_score", "roomId": roomID, "playerId": "bob-" + roomID, "score": score})
	until(socks[1], "score_updated")
	socks[0].Send(map[string]any{"type": "end_game", "roomId": roomID, "playerId": "ann-" + roomID})
	for _, c := range socks {
		until(c, "game_ended")
	}
}

// waitPosted waits until the room says its final scores are on their
// leaderboard, asking any live node.
func waitPosted(t *testing.T, c *testCluster, roomID string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, n := range c.live() {
			var room gameRoom
			if n.do("GET", "/api/room-manager/rooms/"+roomID, nil, &room) == http.StatusOK && room.Room.LeaderboardPosted {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s: final scores not on their leaderboard within 60s", roomID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// boardState is what the test reads of a leaderboard: how many games it
// recorded and each player's score.
func boardState(t *testing.T, n *node, board string) (games int, scores map[string]float64) {
	t.Helper()
	var g struct{ Recorded int }
	if code := n.do("GET", "/api/leaderboards/"+board+"/games", nil, &g); code != http.StatusOK {
		t.Fatalf("games of %s: %d", board, code)
	}
	var top struct {
		Entries []struct {
			PlayerID string  `json:"playerId"`
			Score    float64 `json:"score"`
		} `json:"entries"`
	}
	if code := n.do("GET", "/api/leaderboards/"+board+"/top?n=100", nil, &top); code != http.StatusOK {
		t.Fatalf("top of %s: %d", board, code)
	}
	scores = map[string]float64{}
	for _, e := range top.Entries {
		scores[e.PlayerID] = e.Score
	}
	return g.Recorded, scores
}

// A finished game's final scores reach the leaderboard its settings name,
// a call from the RoomManager's owner to the board's owner on another node
// over the peer link, exactly once: also when the board's owner or the
// manager's owner is killed -9 the moment the game ends (the post is in
// flight, or about to be sent, or answered but not yet marked done). The
// client port does not serve the call path.
func TestClusterGameResultsReachALeaderboardExactlyOnce(t *testing.T) {
	c := startCluster(t, 3)
	manager := c.leaderOf("RoomManager", "main")
	// A board led by another node, so that the call crosses the peer link.
	var board string
	for i := 0; board == ""; i++ {
		if i == 50 {
			t.Fatal("no leaderboard name led by a node other than the RoomManager's")
		}
		if name := fmt.Sprint("weekly-", i); c.leaderOf("Leaderboard", name) != manager {
			board = name
		}
	}
	boardOwner := c.leaderOf("Leaderboard", board)
	via := c.nodes[3-manager-boardOwner] // the third node
	t.Logf("RoomManager on %s, %s on %s, clients on %s", c.names[manager], board, c.names[boardOwner], c.names[3-manager-boardOwner])

	// The call path is the peer listener's, not the client port's.
	if code := via.do("POST", runtime.CallPath+"Leaderboard/"+runtime.ID{}.String()+"/game-results", map[string]any{"game": "x"}, nil); code != http.StatusNotFound {
		t.Fatalf("the client port answered the call path with %d, want 404", code)
	}

	playToTheEnd(t, via, "calm", board, 10)
	waitPosted(t, c, "calm")
	if games, scores := boardState(t, via, board); games != 1 || scores["bob-calm"] != 10 || len(scores) != 2 {
		t.Fatalf("after one game: %d games recorded, scores %v; want 1 game, ann 0 and bob 10", games, scores)
	}

	for round, kill := range []struct {
		what  string
		class string
		name  string
	}{
		{"the leaderboard's owner", "Leaderboard", board},
		{"the RoomManager's owner", "RoomManager", "main"},
	} {
		victim := c.leaderOf(kill.class, kill.name)
		survivor := c.nodes[c.otherThan(victim)]
		roomID := fmt.Sprint("kill", round)
		playToTheEnd(t, survivor, roomID, board, float64(20+round))
		c.nodes[victim].kill9()
		waitPosted(t, c, roomID)
		games, scores := boardState(t, survivor, board)
		if games != round+2 || scores["bob-"+roomID] != float64(20+round) {
			t.Fatalf("kill -9 of %s as game %s ended: %d games recorded, scores %v; want %d games, bob-%s %d",
				kill.what, roomID, games, scores, round+2, roomID, 20+round)
		}
		t.Logf("kill -9 of %s (%s) as game %s ended: posted once", kill.what, c.names[victim], roomID)
		c.nodes[victim] = c.launch(victim, false)
		c.waitConverged(3)
	}
}
