package client

import (
	"encoding/json"
	"time"
)

// GameRoom is a game room as the server shows it. CurrentPlayers is durable
// membership (a dropped socket keeps its place); Connected is live
// presence. StartedAt, EndsAt, EndedAt and EndReason are zero until the
// game got that far.
type GameRoom struct {
	ID             string       `json:"id"`
	Name           string       `json:"name"`
	GameType       string       `json:"gameType"` // cognitive, social or competitive
	MaxPlayers     int          `json:"maxPlayers"`
	CurrentPlayers []string     `json:"currentPlayers"`
	Connected      []string     `json:"connected"`
	Status         string       `json:"status"` // StatusWaiting, StatusPlaying or StatusFinished
	CreatedAt      time.Time    `json:"createdAt"`
	StartedAt      time.Time    `json:"startedAt"`
	EndsAt         time.Time    `json:"endsAt"`
	EndedAt        time.Time    `json:"endedAt"`
	EndReason      string       `json:"endReason"`
	Settings       GameSettings `json:"settings"`
	// LeaderboardPosted: the finished game's final scores are on
	// Settings.Leaderboard.
	LeaderboardPosted bool `json:"leaderboardPosted"`
}

// Game room statuses: a room is created waiting, plays once, and stays
// finished.
const (
	StatusWaiting  = "waiting"
	StatusPlaying  = "playing"
	StatusFinished = "finished"
)

// Why a game ended (GameEnded.Reason, GameRoom.EndReason).
const (
	ReasonClock     = "clock"     // settings.duration elapsed
	ReasonRounds    = "rounds"    // currentTurn reached settings.maxRounds
	ReasonEnded     = "ended"     // a player called EndGame
	ReasonAbandoned = "abandoned" // the last player left
)

// ActionEndTurn is the game action that advances the turn.
const ActionEndTurn = "end_turn"

// GameSettings are fixed when a room is created.
type GameSettings struct {
	Difficulty      string `json:"difficulty"`
	Duration        int    `json:"duration"` // seconds from start to the clock's end
	MaxRounds       int    `json:"maxRounds"`
	AllowSpectators bool   `json:"allowSpectators"`
	// Leaderboard names the Leaderboard the final scores are posted to
	// ("": none).
	Leaderboard string `json:"leaderboard"`
}

// SettingsPatch is the partial settings of NewGameRoom: zero fields keep
// the server's defaults (medium, 420 s, 10 rounds, spectators allowed).
type SettingsPatch struct {
	Difficulty      string `json:"difficulty,omitempty"`
	Duration        int    `json:"duration,omitempty"`
	MaxRounds       int    `json:"maxRounds,omitempty"`
	AllowSpectators *bool  `json:"allowSpectators,omitempty"`
	Leaderboard     string `json:"leaderboard,omitempty"`
}

// NewGameRoom is the body of GameClient.CreateRoom.
type NewGameRoom struct {
	RoomID     string         `json:"roomId"`
	Name       string         `json:"name"`
	GameType   string         `json:"gameType"`
	MaxPlayers int            `json:"maxPlayers,omitempty"` // 2..100; 0: the default, 4
	Settings   *SettingsPatch `json:"settings,omitempty"`
}

// GameState is the play state of a room.
type GameState struct {
	RoomID      string        `json:"roomId"`
	CurrentTurn int           `json:"currentTurn"`
	Players     []PlayerState `json:"players"`
	GameData    GameData      `json:"gameData"`
	LastUpdate  time.Time     `json:"lastUpdate"`
}

// GameData holds the newest 100 actions, oldest first, and once the game
// ended the scores it ended with.
type GameData struct {
	Actions     []GameAction `json:"actions"`
	FinalScores []FinalScore `json:"finalScores"`
}

// PlayerState is one player of a room, in join order.
type PlayerState struct {
	PlayerID     string    `json:"playerId"`
	PlayerName   string    `json:"playerName"`
	Score        float64   `json:"score"`
	Status       string    `json:"status"` // ready, playing or finished
	LastActivity time.Time `json:"lastActivity"`
}

// FinalScore is one line of a finished game's scores.
type FinalScore struct {
	PlayerID   string  `json:"playerId"`
	PlayerName string  `json:"playerName"`
	FinalScore float64 `json:"finalScore"`
}

// GameRoomState is a room with its play state (GetRoom).
type GameRoomState struct {
	Room      GameRoom  `json:"room"`
	GameState GameState `json:"gameState"`
}

// GameJoined answers JoinRoom and Spectate. Spectator says the socket
// watches rather than plays (a player of the room always joins as player).
type GameJoined struct {
	Room      GameRoom  `json:"room"`
	GameState GameState `json:"gameState"`
	Spectator bool      `json:"spectator"`
}

// GameRejoined says the client joined a room again on a new connection, by
// itself; it carries the room's current state, which may have moved on
// while the client was away.
type GameRejoined struct{ GameJoined }

// PlayerJoined says a new player joined the room. Players is the room's
// whole player list.
type PlayerJoined struct {
	RoomID     string        `json:"roomId"`
	PlayerID   string        `json:"playerId"`
	PlayerName string        `json:"playerName"`
	Players    []PlayerState `json:"players"`
}

// PlayerLeft says a player left the room for good.
type PlayerLeft struct {
	RoomID     string        `json:"roomId"`
	PlayerID   string        `json:"playerId"`
	PlayerName string        `json:"playerName"`
	Players    []PlayerState `json:"players"`
}

// RoomLeft says this client is no longer in the room although it did not
// leave it: another socket of the same player did. The client stops
// rejoining it.
type RoomLeft struct {
	RoomID string `json:"roomId"`
}

// GameStarted says the game started; the clock ends it at EndsAt.
type GameStarted struct {
	RoomID    string    `json:"roomId"`
	StartedAt time.Time `json:"startedAt"`
	EndsAt    time.Time `json:"endsAt"`
}

// ScoreUpdated says a player's score is now Score (absolute).
type ScoreUpdated struct {
	RoomID   string        `json:"roomId"`
	PlayerID string        `json:"playerId"`
	Score    float64       `json:"score"`
	Players  []PlayerState `json:"players"`
}

// GameAction is one action of a room: the event announcing it and an entry
// of GameData.Actions. Seq numbers a room's actions from 1; CurrentTurn is
// the turn after the action. Data is the JSON the player sent (null if
// none). RoomID is set on events; Timestamp on kept actions.
type GameAction struct {
	RoomID      string          `json:"roomId"`
	PlayerID    string          `json:"playerId"`
	Action      string          `json:"action"`
	Data        json.RawMessage `json:"data"`
	Seq         int64           `json:"seq"`
	CurrentTurn int             `json:"currentTurn"`
	Timestamp   time.Time       `json:"timestamp"`
}

// GameEnded says the game is over, why, and with which scores.
type GameEnded struct {
	RoomID      string       `json:"roomId"`
	EndedAt     time.Time    `json:"endedAt"`
	Reason      string       `json:"reason"`
	FinalScores []FinalScore `json:"finalScores"`
}

func (*GameRejoined) isEvent() {}
func (*PlayerJoined) isEvent() {}
func (*PlayerLeft) isEvent()   {}
func (*RoomLeft) isEvent()     {}
func (*GameStarted) isEvent()  {}
func (*ScoreUpdated) isEvent() {}
func (*GameAction) isEvent()   {}
func (*GameEnded) isEvent()    {}

// Frames the game client writes. Every room request names the room and
// the player.
type (
	gameJoinFrame struct {
		Type       string `json:"type"`
		RoomID     string `json:"roomId"`
		PlayerID   string `json:"playerId"`
		PlayerName string `json:"playerName"`
		Spectator  bool   `json:"spectator,omitempty"`
	}
	gameRoomFrame struct {
		Type     string `json:"type"`
		RoomID   string `json:"roomId"`
		PlayerID string `json:"playerId"`
	}
	updateScoreFrame struct {
		Type     string  `json:"type"`
		RoomID   string  `json:"roomId"`
		PlayerID string  `json:"playerId"`
		Score    float64 `json:"score"`
	}
	gameActionFrame struct {
		Type     string          `json:"type"`
		RoomID   string          `json:"roomId"`
		PlayerID string          `json:"playerId"`
		Action   string          `json:"action"`
		Data     json.RawMessage `json:"data,omitempty"`
	}
)

// Game frame types (join_room, leave_room, room_joined and room_left are
// shared with chat).
const (
	typeStartGame          = "start_game"
	typeUpdateScore        = "update_score"
	typeGameAction         = "game_action"
	typeEndGame            = "end_game"
	typePlayerJoined       = "player_joined"
	typePlayerLeft         = "player_left"
	typeGameStartedSuccess = "game_started_success"
	typeGameStarted        = "game_started"
	typeScoreUpdated       = "score_updated"
	typeGameEnded          = "game_ended"
)
