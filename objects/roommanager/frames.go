package roommanager

import (
	"encoding/json"

	"github.com/holocron-run/holocron/protocol"
)

// Client message types (PROTOCOL.md "RoomManager").
const (
	TypeJoinRoom    = "join_room"
	TypeLeaveRoom   = "leave_room"
	TypeStartGame   = "start_game"
	TypeUpdateScore = "update_score"
	TypeGameAction  = "game_action"
	TypeEndGame     = "end_game"
)

// Server frame types. TypeGameAction is both a request and the room frame
// that announces it.
const (
	TypeRoomJoined         = "room_joined"
	TypeJoinFailed         = "join_failed"
	TypePlayerJoined       = "player_joined"
	TypeRoomLeft           = "room_left"
	TypePlayerLeft         = "player_left"
	TypeGameStartedSuccess = "game_started_success"
	TypeGameStarted        = "game_started"
	TypeStartGameFailed    = "start_game_failed"
	TypeScoreUpdated       = "score_updated"
	TypeGameEnded          = "game_ended"
)

// Room statuses: a room is created waiting, plays once, and stays finished.
const (
	StatusWaiting  = "waiting"
	StatusPlaying  = "playing"
	StatusFinished = "finished"
)

// Player statuses follow the room: ready while it waits, playing while it
// plays, finished once it ended.
const (
	PlayerReady    = "ready"
	PlayerPlaying  = "playing"
	PlayerFinished = "finished"
)

// Why a game ended (game_ended.reason).
const (
	ReasonClock     = "clock"     // settings.duration elapsed
	ReasonRounds    = "rounds"    // currentTurn reached settings.maxRounds
	ReasonEnded     = "ended"     // a player sent end_game
	ReasonAbandoned = "abandoned" // the last player sent leave_room
)

// ActionEndTurn is the game_action that advances currentTurn.
const ActionEndTurn = "end_turn"

// Limits and defaults of PROTOCOL.md.
const (
	MinPlayers         = 2
	MaxPlayersLimit    = 100
	DefaultMaxPlayers  = 4
	DefaultDifficulty  = "medium"
	DefaultDuration    = 420 // seconds
	MaxDuration        = 86400
	DefaultMaxRounds   = 10
	MaxRoundsLimit     = 1000
	MaxActionRunes     = 64
	MaxActionDataBytes = 16 << 10
	// KeptActions is how many of a room's newest actions gameData keeps.
	KeptActions = 100
)

// GameTypes and Difficulties are the accepted values of those fields.
var (
	GameTypes    = []string{"cognitive", "social", "competitive"}
	Difficulties = []string{"easy", "medium", "hard"}
)

// GameRoom is a room as clients see it. EndsAt and EndReason are additions
// to PROTOCOL.md's shape, set once the game started / ended; so is
// LeaderboardPosted, true once the finished game's final scores are on the
// leaderboard its settings name.
type GameRoom struct {
	ID             string       `json:"id"`
	Name           string       `json:"name"`
	GameType       string       `json:"gameType"`
	MaxPlayers     int          `json:"maxPlayers"`
	CurrentPlayers []string     `json:"currentPlayers"`
	Connected      []string     `json:"connected"`
	Status         string       `json:"status"`
	CreatedAt      string       `json:"createdAt"`
	StartedAt      string       `json:"startedAt,omitempty"`
	EndsAt         string       `json:"endsAt,omitempty"`
	EndedAt        string       `json:"endedAt,omitempty"`
	EndReason      string       `json:"endReason,omitempty"`
	Settings       GameSettings `json:"settings"`
	// LeaderboardPosted: see the type's comment.
	LeaderboardPosted bool `json:"leaderboardPosted,omitempty"`
}

// GameSettings are fixed when the room is created.
type GameSettings struct {
	Difficulty      string `json:"difficulty"`
	Duration        int    `json:"duration"` // seconds from startedAt to endsAt
	MaxRounds       int    `json:"maxRounds"`
	AllowSpectators bool   `json:"allowSpectators"`
	// Leaderboard, when set, names the Leaderboard object that a finished
	// game's final scores are posted to (exactly once; see postResults).
	Leaderboard string `json:"leaderboard,omitempty"`
}

// DefaultSettings are what a room gets for every setting not given.
func DefaultSettings() GameSettings {
	return GameSettings{Difficulty: DefaultDifficulty, Duration: DefaultDuration, MaxRounds: DefaultMaxRounds, AllowSpectators: true}
}

// GameState is the play state of a room.
type GameState struct {
	RoomID      string        `json:"roomId"`
	CurrentTurn int           `json:"currentTurn"`
	Players     []PlayerState `json:"players"`
	GameData    GameData      `json:"gameData"`
	LastUpdate  string        `json:"lastUpdate"`
}

// GameData holds the newest KeptActions actions, oldest first, and once the
// game ended the scores it ended with.
type GameData struct {
	Actions     []GameAction `json:"actions"`
	FinalScores []FinalScore `json:"finalScores,omitempty"`
}

// PlayerState is one player of a room.
type PlayerState struct {
	PlayerID     string  `json:"playerId"`
	PlayerName   string  `json:"playerName"`
	Score        float64 `json:"score"`
	Status       string  `json:"status"`
	LastActivity string  `json:"lastActivity"`
}

// GameAction is one kept action: what the game_action frame announced.
type GameAction struct {
	Seq         int64           `json:"seq"`
	PlayerID    string          `json:"playerId"`
	Action      string          `json:"action"`
	Data        json.RawMessage `json:"data"`
	CurrentTurn int             `json:"currentTurn"`
	Timestamp   string          `json:"timestamp"`
}

// FinalScore is one line of game_ended.finalScores.
type FinalScore struct {
	PlayerID   string  `json:"playerId"`
	PlayerName string  `json:"playerName"`
	FinalScore float64 `json:"finalScore"`
}

// echo carries the requestId a frame echoes to the socket that asked.
type echo struct {
	RequestID string `json:"requestId,omitempty"`
}

func (e *echo) setRequestID(id string) { e.RequestID = id }

// roomFrame is a frame sent to a room; the actor's copy may echo its
// requestId.
type roomFrame interface{ setRequestID(string) }

// RoomJoined answers a successful join_room. Spectator (an addition) says
// whether the socket watches rather than plays.
type RoomJoined struct {
	Type      string    `json:"type"`
	Room      GameRoom  `json:"room"`
	GameState GameState `json:"gameState"`
	Spectator bool      `json:"spectator"`
	echo
}

// PlayerJoined tells the room a new player joined.
type PlayerJoined struct {
	Type       string        `json:"type"`
	RoomID     string        `json:"roomId"`
	PlayerID   string        `json:"playerId"`
	PlayerName string        `json:"playerName"`
	Players    []PlayerState `json:"players"`
	echo
}

// RoomLeft tells a socket it is no longer in the room.
type RoomLeft struct {
	Type   string `json:"type"`
	RoomID string `json:"roomId"`
	echo
}

// PlayerLeft tells the room a player left it.
type PlayerLeft struct {
	Type       string        `json:"type"`
	RoomID     string        `json:"roomId"`
	PlayerID   string        `json:"playerId"`
	PlayerName string        `json:"playerName"`
	Players    []PlayerState `json:"players"`
	echo
}

// GameStartedSuccess answers a successful start_game.
type GameStartedSuccess struct {
	Type   string `json:"type"`
	RoomID string `json:"roomId"`
	echo
}

// GameStarted tells the room the game started and when the clock ends it.
type GameStarted struct {
	Type      string `json:"type"`
	RoomID    string `json:"roomId"`
	StartedAt string `json:"startedAt"`
	EndsAt    string `json:"endsAt"`
	echo
}

// ScoreUpdated tells the room a player's new (absolute) score.
type ScoreUpdated struct {
	Type     string        `json:"type"`
	RoomID   string        `json:"roomId"`
	PlayerID string        `json:"playerId"`
	Score    float64       `json:"score"`
	Players  []PlayerState `json:"players"`
	echo
}

// GameActionFrame tells the room about an action; CurrentTurn is the turn
// after it (an end_turn has already advanced it).
type GameActionFrame struct {
	Type        string          `json:"type"`
	RoomID      string          `json:"roomId"`
	PlayerID    string          `json:"playerId"`
	Action      string          `json:"action"`
	Data        json.RawMessage `json:"data"`
	Seq         int64           `json:"seq"`
	CurrentTurn int             `json:"currentTurn"`
	echo
}

// GameEnded tells the room the game is over.
type GameEnded struct {
	Type        string       `json:"type"`
	RoomID      string       `json:"roomId"`
	EndedAt     string       `json:"endedAt"`
	Reason      string       `json:"reason"`
	FinalScores []FinalScore `json:"finalScores"`
	echo
}

// Pong answers ping.
type Pong struct {
	Type string `json:"type"`
	echo
}

// Failure is join_failed, start_game_failed or the generic error frame.
// Detail (an addition) keeps the specific reason where Message is the fixed
// text of start_game_failed.
type Failure struct {
	protocol.ErrorFrame
	Detail string `json:"detail,omitempty"`
}

// RoomResponse is GET /rooms/{id}.
type RoomResponse struct {
	Room      GameRoom  `json:"room"`
	GameState GameState `json:"gameState"`
}

// RoomList is GET /rooms.
type RoomList struct {
	Rooms []GameRoom `json:"rooms"`
}
