package roommanager

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/holocron-run/holocron/objects/frame"
	"github.com/holocron-run/holocron/runtime"
)

// Storage layout. Everything durable lives under these keys; an instance
// keeps nothing in memory, so a hibernated or restarted object rebuilds from
// them (and from its sockets' tags and attachments).
//
//	room/<id>                         roomRecord
//	final/<id>                        []FinalScore, once the game ended
//	action/<id>/<seq, 20 digits>      GameAction; the newest KeptActions per room
//	clock/<endsAt ms, 20 digits>/<id> empty; one per playing room, the game clock index
//	meta/roomSeq                      last room creation number
//	post/<id>/<seq, 20 digits>        pendingPost: final scores not yet on their leaderboard
//
// Actions and final scores have keys of their own because a value is
// limited to 128 KiB: a room record with 100 players stays well below it,
// 100 actions of 16 KiB would not.
const (
	roomPrefix   = "room/"
	finalPrefix  = "final/"
	actionPrefix = "action/"
	clockPrefix  = "clock/"
	roomSeqKey   = "meta/roomSeq"
	postPrefix   = "post/"
)

func postKey(rec *roomRecord) string { return fmt.Sprintf("%s%s/%020d", postPrefix, rec.ID, rec.Seq) }

func roomKey(id string) string  { return roomPrefix + id }
func finalKey(id string) string { return finalPrefix + id }

func actionsPrefix(id string) string { return actionPrefix + id + "/" }

func actionKey(id string, seq int64) string {
	return fmt.Sprintf("%s%020d", actionsPrefix(id), seq)
}

// clockKey orders playing rooms by deadline. Deadlines have millisecond
// precision (startedAt is truncated to milliseconds), so the key loses
// nothing.
func clockKey(endsAt time.Time, id string) string {
	return fmt.Sprintf("%s%020d/%s", clockPrefix, endsAt.UnixMilli(), id)
}

// clockBound is the first clock key after every deadline at or before t.
func clockBound(t time.Time) string {
	return fmt.Sprintf("%s%020d/", clockPrefix, t.UnixMilli()+1)
}

// parseClockKey returns a clock key's deadline and room id.
func parseClockKey(key string) (time.Time, string, error) {
	ms, id, ok := strings.Cut(strings.TrimPrefix(key, clockPrefix), "/")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", fmt.Errorf("bad clock key %q", key)
	}
	return time.UnixMilli(n).UTC(), id, nil
}

// roomRecord is a room as stored: the GameRoom and GameState fields that
// are not derived. currentPlayers is the ids of Players; connected comes
// from the live sockets; actions and final scores have their own keys.
type roomRecord struct {
	Seq         int64          `json:"seq"` // creation order
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	GameType    string         `json:"gameType"`
	MaxPlayers  int            `json:"maxPlayers"`
	Settings    GameSettings   `json:"settings"`
	Status      string         `json:"status"`
	CreatedAt   time.Time      `json:"createdAt"`
	StartedAt   time.Time      `json:"startedAt,omitzero"`
	EndsAt      time.Time      `json:"endsAt,omitzero"`
	EndedAt     time.Time      `json:"endedAt,omitzero"`
	EndReason   string         `json:"endReason,omitempty"`
	CurrentTurn int            `json:"currentTurn"`
	ActionSeq   int64          `json:"actionSeq"` // seq of the last action
	Players     []playerRecord `json:"players"`   // in join order
	LastUpdate  time.Time      `json:"lastUpdate"`
	// LeaderboardPosted: the final scores are on settings.leaderboard.
	LeaderboardPosted bool `json:"leaderboardPosted,omitempty"`
}

type playerRecord struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Score        float64   `json:"score"`
	Status       string    `json:"status"`
	LastActivity time.Time `json:"lastActivity"`
}

// player returns the index of playerID in Players, or -1.
func (r *roomRecord) player(playerID string) int {
	return slices.IndexFunc(r.Players, func(p playerRecord) bool { return p.ID == playerID })
}

func (r *roomRecord) setPlayerStatus(status string) {
	for i := range r.Players {
		r.Players[i].Status = status
	}
}

// room renders the record as a GameRoom with the given live presence.
func (r *roomRecord) room(connected []string) GameRoom {
	ids := make([]string, 0, len(r.Players))
	for _, p := range r.Players {
		ids = append(ids, p.ID)
	}
	if connected == nil {
		connected = []string{}
	}
	return GameRoom{
		ID:                r.ID,
		Name:              r.Name,
		GameType:          r.GameType,
		MaxPlayers:        r.MaxPlayers,
		CurrentPlayers:    ids,
		Connected:         connected,
		Status:            r.Status,
		CreatedAt:         timestamp(r.CreatedAt),
		StartedAt:         timestamp(r.StartedAt),
		EndsAt:            timestamp(r.EndsAt),
		EndedAt:           timestamp(r.EndedAt),
		EndReason:         r.EndReason,
		LeaderboardPosted: r.LeaderboardPosted,
		Settings:          r.Settings,
	}
}

// players renders gameState.players.
func (r *roomRecord) players() []PlayerState {
	out := make([]PlayerState, 0, len(r.Players))
	for _, p := range r.Players {
		out = append(out, PlayerState{
			PlayerID:     p.ID,
			PlayerName:   p.Name,
			Score:        p.Score,
			Status:       p.Status,
			LastActivity: timestamp(p.LastActivity),
		})
	}
	return out
}

// finalScores lists the players' scores at the end of the game.
func (r *roomRecord) finalScores() []FinalScore {
	out := make([]FinalScore, 0, len(r.Players))
	for _, p := range r.Players {
		out = append(out, FinalScore{PlayerID: p.ID, PlayerName: p.Name, FinalScore: p.Score})
	}
	return out
}

// timestamp renders t as PROTOCOL.md's time, or "" for the zero time.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return frame.Timestamp(t)
}

// rooms is the typed view of one object's storage.
type rooms struct{ st *runtime.Storage }

// get returns the room with id, or nil.
func (s rooms) get(id string) (*roomRecord, error) {
	rec, ok, err := runtime.GetJSON[roomRecord](s.st, roomKey(id))
	if err != nil || !ok {
		return nil, err
	}
	return &rec, nil
}

func (s rooms) put(rec *roomRecord) error { return putJSON(s.st, roomKey(rec.ID), rec) }

// all returns every room, oldest first.
func (s rooms) all() ([]*roomRecord, error) {
	kvs, err := s.st.List(runtime.ListOptions{Prefix: roomPrefix})
	if err != nil {
		return nil, err
	}
	out := make([]*roomRecord, 0, len(kvs))
	for _, kv := range kvs {
		var rec roomRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, fmt.Errorf("decode %q: %w", kv.Key, err)
		}
		out = append(out, &rec)
	}
	slices.SortFunc(out, func(a, b *roomRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// count is how many rooms were ever created (rooms are never deleted).
func (s rooms) count() (int64, error) {
	n, _, err := runtime.GetJSON[int64](s.st, roomSeqKey)
	return n, err
}

// nextSeq returns the next room creation number.
func (s rooms) nextSeq() (int64, error) {
	n, _, err := runtime.GetJSON[int64](s.st, roomSeqKey)
	if err != nil {
		return 0, err
	}
	n++
	return n, putJSON(s.st, roomSeqKey, n)
}

// addAction stores a room's action and forgets the one that falls out of
// the newest KeptActions.
func (s rooms) addAction(roomID string, a GameAction) error {
	if err := putJSON(s.st, actionKey(roomID, a.Seq), a); err != nil {
		return err
	}
	if old := a.Seq - KeptActions; old > 0 {
		return s.st.Delete(actionKey(roomID, old))
	}
	return nil
}

// actions returns a room's kept actions, oldest first.
func (s rooms) actions(roomID string) ([]GameAction, error) {
	kvs, err := s.st.List(runtime.ListOptions{Prefix: actionsPrefix(roomID), Reverse: true, Limit: KeptActions})
	if err != nil {
		return nil, err
	}
	out := make([]GameAction, len(kvs))
	for i, kv := range kvs {
		if err := json.Unmarshal(kv.Value, &out[len(kvs)-1-i]); err != nil {
			return nil, fmt.Errorf("decode %q: %w", kv.Key, err)
		}
	}
	return out, nil
}

func (s rooms) putFinal(roomID string, scores []FinalScore) error {
	return putJSON(s.st, finalKey(roomID), scores)
}

func (s rooms) final(roomID string) ([]FinalScore, error) {
	scores, _, err := runtime.GetJSON[[]FinalScore](s.st, finalKey(roomID))
	return scores, err
}

// startClock records a playing room's deadline and makes sure the alarm
// fires no later than it.
//
// The alarm is only ever moved earlier here, never later: a game that ends
// early leaves its alarm in place, and OnAlarm, finding nothing due, re-arms
// for the next deadline. So only OnAlarm computes "the next deadline", and
// no other event has to.
func (s rooms) startClock(rec *roomRecord) error {
	if err := s.st.Put(clockKey(rec.EndsAt, rec.ID), nil); err != nil {
		return err
	}
	return s.alarmNoLaterThan(rec.EndsAt)
}

func (s rooms) stopClock(rec *roomRecord) error {
	return s.st.Delete(clockKey(rec.EndsAt, rec.ID))
}

// dueClocks returns the clock keys whose deadline is at or before now.
func (s rooms) dueClocks(now time.Time) ([]string, error) {
	kvs, err := s.st.List(runtime.ListOptions{Prefix: clockPrefix, End: clockBound(now)})
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key
	}
	return keys, nil
}

// nextClock returns the earliest deadline of a playing room.
func (s rooms) nextClock() (time.Time, bool, error) {
	kvs, err := s.st.List(runtime.ListOptions{Prefix: clockPrefix, Limit: 1})
	if err != nil || len(kvs) == 0 {
		return time.Time{}, false, err
	}
	at, _, err := parseClockKey(kvs[0].Key)
	return at, err == nil, err
}

// pendingPost is a finished game's final scores on their way to the
// leaderboard of its settings. It is written with the game's end, so no
// crash loses it, and deleted once the leaderboard answered; the post is
// retried (by the alarm) until then, and the leaderboard records a game
// once however often it is posted.
type pendingPost struct {
	RoomID   string       `json:"roomId"`
	RoomSeq  int64        `json:"roomSeq"`
	Board    string       `json:"board"`
	Game     string       `json:"game"`
	Scores   []FinalScore `json:"scores"`
	Attempts int          `json:"attempts"`
	NextTry  time.Time    `json:"nextTry"`
	LastErr  string       `json:"lastErr,omitempty"`
}

// posts returns the pending posts, oldest room first.
func (s rooms) posts() (map[string]pendingPost, []string, error) {
	kvs, err := s.st.List(runtime.ListOptions{Prefix: postPrefix})
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]pendingPost, len(kvs))
	keys := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		var p pendingPost
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			return nil, nil, fmt.Errorf("pending post %s: %w", kv.Key, err)
		}
		out[kv.Key] = p
		keys = append(keys, kv.Key)
	}
	return out, keys, nil
}

// alarmNoLaterThan moves the object's alarm to t if it is set later (or
// not set).
func (s rooms) alarmNoLaterThan(t time.Time) error {
	at, ok, err := s.st.GetAlarm()
	if err != nil {
		return err
	}
	if ok && !at.After(t) {
		return nil
	}
	return s.st.SetAlarm(t)
}

// putJSON stores v as JSON without HTML escaping, which would inflate
// names made of '<', '>' and '&' sixfold toward the value size limit.
func putJSON(st *runtime.Storage, key string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	return st.Put(key, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}
