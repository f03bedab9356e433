// Package leaderboard is the Leaderboard object: players submit scores, the
// board keeps each player's best, answers the top N and any player's rank,
// pushes live updates over WebSockets, and ends seasons by alarm (the
// season's final standings are kept, the scores reset).
//
// It is written only against the public runtime API, as an example of what
// an object author has to work with (docs/authoring.md refers to it).
package leaderboard

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/holocron-run/holocron/objects/frame"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
)

// ClassName is the class the Leaderboard registers under.
const ClassName = "Leaderboard"

// Options configure every Leaderboard of a node.
type Options struct {
	// SeasonLength, when set, ends a season that long after its first
	// score; a season may also be started with POST /season.
	SeasonLength time.Duration
	// MaxTop bounds n in top-N queries and live updates. Default 100.
	MaxTop int
}

// New returns the Leaderboard constructor.
func New(opts Options) runtime.Constructor {
	if opts.MaxTop <= 0 {
		opts.MaxTop = 100
	}
	return func(st *runtime.State) (runtime.Object, error) {
		return &Board{state: st, opts: opts}, nil
	}
}

// Board is one leaderboard. Everything it knows is in its storage; it keeps
// nothing in memory between events, so eviction costs nothing.
type Board struct {
	state *runtime.State
	opts  Options
}

// Entry is one player's standing.
type Entry struct {
	Rank       int     `json:"rank"`
	PlayerID   string  `json:"playerId"`
	PlayerName string  `json:"playerName"`
	Score      float64 `json:"score"`
	At         string  `json:"at"`
}

// season is the current season's record.
type season struct {
	Number int    `json:"number"`
	EndsAt string `json:"endsAt,omitempty"`
}

// Storage layout:
//
//	score/<playerId>            the player's best Entry (rank unset)
//	rank/<key(score)>/<player>  "" — ordered best first (see rankKey)
//	season                      the current season
//	archive/<season number>     the final top of an ended season
//	game/<game key>             "" — a game's results were recorded
//	games                       how many games' results were recorded
const (
	prefixScore   = "score/"
	prefixRank    = "rank/"
	keySeason     = "season"
	prefixArchive = "archive/"
	prefixGame    = "game/"
	keyGames      = "games"
)

// rankKey orders scores best first: the float's bits made order-preserving,
// then inverted, in hex.
func rankKey(score float64, playerID string) string {
	bits := math.Float64bits(score)
	if bits&(1<<63) != 0 {
		bits = ^bits
	} else {
		bits |= 1 << 63
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ^bits)
	return prefixRank + hex.EncodeToString(b[:]) + "/" + playerID
}

// ServeHTTP: POST /scores, GET /top?n=, GET /rank/{playerId}, POST /season
// {durationSeconds}, GET /seasons/{n}, GET /websocket, POST /game-results
// from other objects (see postResults) and GET /games (how many games were
// recorded).
func (b *Board) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/websocket":
		if _, err := b.state.AcceptWebSocket(w, r, "live"); err != nil {
			protocol.WriteHTTPError(w, http.StatusUpgradeRequired, protocol.Errorf(protocol.CodeInvalidField, "%v", err))
		}
	case path == "/scores" && r.Method == http.MethodPost:
		f, perr := frame.DecodeHTTPBody(r)
		if perr != nil {
			protocol.WriteHTTPError(w, http.StatusBadRequest, perr)
			return
		}
		principal, _ := runtime.PrincipalFrom(r.Context())
		e, err := b.submit(f, principal)
		b.reply(w, http.StatusOK, e, err)
	case path == GameResultsPath && r.Method == http.MethodPost:
		b.postResults(w, r)
	case path == "/games" && r.Method == http.MethodGet:
		n, _, err := runtime.GetJSON[int](b.state.Storage(), keyGames)
		b.reply(w, http.StatusOK, map[string]int{"recorded": n}, err)
	case path == "/top" && r.Method == http.MethodGet:
		n, err := b.topN(r.URL.Query().Get("n"))
		if err != nil {
			b.reply(w, 0, nil, err)
			return
		}
		top, err := b.top(n)
		b.reply(w, http.StatusOK, map[string]any{"season": b.season().Number, "entries": top}, err)
	case strings.HasPrefix(path, "/rank/") && r.Method == http.MethodGet:
		e, err := b.rank(strings.TrimPrefix(path, "/rank/"))
		b.reply(w, http.StatusOK, e, err)
	case path == "/season" && r.Method == http.MethodPost:
		f, perr := frame.DecodeHTTPBody(r)
		if perr != nil {
			protocol.WriteHTTPError(w, http.StatusBadRequest, perr)
			return
		}
		secs, given, perr := f.OptInt("durationSeconds", 1, 365*24*3600)
		if perr != nil || !given {
			b.reply(w, 0, nil, cmpErr(perr, protocol.Errorf(protocol.CodeMissingField, "durationSeconds is required")))
			return
		}
		s, err := b.startSeason(time.Duration(secs) * time.Second)
		b.reply(w, http.StatusOK, s, err)
	case strings.HasPrefix(path, "/seasons/") && r.Method == http.MethodGet:
		raw, ok, err := b.state.Storage().Get(prefixArchive + strings.TrimPrefix(path, "/seasons/"))
		if err == nil && !ok {
			err = protocol.Errorf(protocol.CodeNotFound, "no such ended season")
		}
		b.reply(w, http.StatusOK, json.RawMessage(raw), err)
	default:
		protocol.WriteHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	}
}

func cmpErr(a *protocol.Error, b *protocol.Error) *protocol.Error {
	if a != nil {
		return a
	}
	return b
}

func (b *Board) reply(w http.ResponseWriter, status int, v any, err error) {
	if err == nil {
		protocol.WriteJSON(w, status, v)
		return
	}
	if perr, ok := err.(*protocol.Error); ok {
		code := http.StatusBadRequest
		if perr.Code == protocol.CodeNotFound {
			code = http.StatusNotFound
		}
		protocol.WriteHTTPError(w, code, perr)
		return
	}
	panic(err) // a storage failure: the runtime answers 500 and drops the event's writes
}

func (b *Board) topN(raw string) (int, error) {
	if raw == "" {
		return 10, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > b.opts.MaxTop {
		return 0, protocol.Errorf(protocol.CodeInvalidField, "n must be 1..%d", b.opts.MaxTop)
	}
	return n, nil
}

// submit records a score if it beats the player's best, in one transaction,
// and tells the live sockets when the top changed.
func (b *Board) submit(f *frame.Frame, principal runtime.Principal) (*Entry, error) {
	playerID, perr := f.PlayerID()
	if perr != nil {
		return nil, perr
	}
	if principal.ID != "" && principal.ID != playerID {
		return nil, protocol.Errorf(protocol.CodeForbidden, "this token belongs to %s", principal.ID)
	}
	name, perr := f.String("playerName")
	if perr != nil {
		return nil, perr
	}
	if principal.Name != "" {
		name = principal.Name
	}
	if n := frame.RuneCount(name); n < 1 || n > frame.MaxNameRunes {
		return nil, protocol.Errorf(protocol.CodeInvalidField, "playerName must be 1..%d characters", frame.MaxNameRunes)
	}
	score, perr := f.Number("score")
	if perr != nil {
		return nil, perr
	}
	return b.record(playerID, name, score)
}

// record keeps score as the player's best if it beats it, in one
// transaction, and tells the live sockets when the top changed.
func (b *Board) record(playerID, name string, score float64) (*Entry, error) {
	var out *Entry
	err := b.state.Storage().Transaction(func(tx *runtime.Storage) error {
		if err := b.ensureSeason(tx); err != nil {
			return err
		}
		prev, had, err := runtime.GetJSON[Entry](tx, prefixScore+playerID)
		if err != nil {
			return err
		}
		if had && prev.Score >= score {
			out = &prev
			return nil
		}
		if had {
			if err := tx.Delete(rankKey(prev.Score, playerID)); err != nil {
				return err
			}
		}
		e := Entry{PlayerID: playerID, PlayerName: name, Score: score, At: frame.Timestamp(b.state.Now())}
		if err := runtime.PutJSON(tx, prefixScore+playerID, e); err != nil {
			return err
		}
		if err := tx.Put(rankKey(score, playerID), nil); err != nil {
			return err
		}
		out = &e
		return nil
	})
	if err != nil {
		return nil, err
	}
	rank, err := b.rankOf(out.Score, playerID)
	if err != nil {
		return nil, err
	}
	out.Rank = rank
	if rank <= b.opts.MaxTop {
		top, err := b.top(min(10, b.opts.MaxTop))
		if err != nil {
			return nil, err
		}
		b.broadcast(map[string]any{"type": "leaderboard_updated", "entry": out, "top": top})
	}
	return out, nil
}

// GameResultsPath is where an object posts a finished game's scores
// (GameResults), as a call: each player's score counts as a submission,
// and a game's results are recorded once whatever number of times they
// are posted, so a poster retries until it hears an answer.
const GameResultsPath = "/game-results"

// GameResults is the body of a POST to GameResultsPath.
type GameResults struct {
	// Game names the game uniquely among every poster's games; it is the
	// key that makes a repeated post count once.
	Game   string       `json:"game"`
	Scores []GameResult `json:"scores"`
}

// GameResult is one player's final score of a game.
type GameResult struct {
	PlayerID   string  `json:"playerId"`
	PlayerName string  `json:"playerName"`
	Score      float64 `json:"score"`
}

// GameResultsAnswer answers a post: Recorded is false when the game's
// results had been recorded before.
type GameResultsAnswer struct {
	Game     string  `json:"game"`
	Recorded bool    `json:"recorded"`
	Entries  []Entry `json:"entries"`
}

// MaxGameResults bounds the scores of one posted game.
const MaxGameResults = 1000

// postResults records a game's scores, once per game: only objects may post
// (runtime.CallerFrom), never clients.
func (b *Board) postResults(w http.ResponseWriter, r *http.Request) {
	if _, ok := runtime.CallerFrom(r.Context()); !ok {
		protocol.WriteHTTPError(w, http.StatusForbidden, protocol.Errorf(protocol.CodeForbidden, "game results are posted by objects, not clients"))
		return
	}
	var in GameResults
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		protocol.WriteHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeInvalidJSON, "game results: %v", err))
		return
	}
	if in.Game == "" || len(in.Game) > 512 || len(in.Scores) > MaxGameResults {
		protocol.WriteHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeInvalidField, "game must be 1..512 bytes and scores at most %d", MaxGameResults))
		return
	}
	st := b.state.Storage()
	_, seen, err := st.Get(prefixGame + in.Game)
	if err != nil {
		panic(err)
	}
	out := GameResultsAnswer{Game: in.Game, Recorded: !seen, Entries: []Entry{}}
	if !seen {
		for _, s := range in.Scores {
			if n := frame.RuneCount(s.PlayerID); n < 1 || n > 64 || math.IsNaN(s.Score) || math.IsInf(s.Score, 0) ||
				frame.RuneCount(s.PlayerName) < 1 || frame.RuneCount(s.PlayerName) > frame.MaxNameRunes {
				protocol.WriteHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeInvalidField, "a score of game %s is malformed", in.Game))
				return
			}
		}
		for _, s := range in.Scores {
			e, err := b.record(s.PlayerID, s.PlayerName, s.Score)
			if err != nil {
				panic(err)
			}
			out.Entries = append(out.Entries, *e)
		}
		if err := st.Put(prefixGame+in.Game, nil); err != nil {
			panic(err)
		}
		n, _, err := runtime.GetJSON[int](st, keyGames)
		if err == nil {
			err = runtime.PutJSON(st, keyGames, n+1)
		}
		if err != nil {
			panic(err)
		}
	}
	protocol.WriteJSON(w, http.StatusOK, out)
}

// ensureSeason starts the first season (with SeasonLength, its alarm).
func (b *Board) ensureSeason(tx *runtime.Storage) error {
	if _, ok, err := tx.Get(keySeason); err != nil || ok {
		return err
	}
	s := season{Number: 1}
	if b.opts.SeasonLength > 0 {
		end := b.state.Now().Add(b.opts.SeasonLength)
		s.EndsAt = frame.Timestamp(end)
		if err := tx.SetAlarm(end); err != nil {
			return err
		}
	}
	return runtime.PutJSON(tx, keySeason, s)
}

// startSeason (re)sets the current season's end.
func (b *Board) startSeason(d time.Duration) (*season, error) {
	var s season
	err := b.state.Storage().Transaction(func(tx *runtime.Storage) error {
		if err := b.ensureSeason(tx); err != nil {
			return err
		}
		cur, _, err := runtime.GetJSON[season](tx, keySeason)
		if err != nil {
			return err
		}
		end := b.state.Now().Add(d)
		cur.EndsAt = frame.Timestamp(end)
		s = cur
		if err := tx.SetAlarm(end); err != nil {
			return err
		}
		return runtime.PutJSON(tx, keySeason, cur)
	})
	return &s, err
}

func (b *Board) season() season {
	s, ok, err := runtime.GetJSON[season](b.state.Storage(), keySeason)
	if err != nil {
		panic(err)
	}
	if !ok {
		return season{Number: 1}
	}
	return s
}

// OnAlarm ends the season: its final top is archived, every score is
// cleared, the next season starts, and the live sockets hear about it.
func (b *Board) OnAlarm(ctx context.Context) error {
	st := b.state.Storage()
	cur := b.season()
	final, err := b.top(b.opts.MaxTop)
	if err != nil {
		return err
	}
	archived, err := json.Marshal(map[string]any{"season": cur.Number, "endedAt": frame.Timestamp(b.state.Now()), "entries": final})
	if err != nil {
		return err
	}
	if err := st.Put(prefixArchive+strconv.Itoa(cur.Number), archived); err != nil {
		return err
	}
	for _, prefix := range []string{prefixScore, prefixRank} {
		kvs, err := st.List(runtime.ListOptions{Prefix: prefix})
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if err := st.Delete(kv.Key); err != nil {
				return err
			}
		}
	}
	next := season{Number: cur.Number + 1}
	if b.opts.SeasonLength > 0 {
		end := b.state.Now().Add(b.opts.SeasonLength)
		next.EndsAt = frame.Timestamp(end)
		if err := st.SetAlarm(end); err != nil {
			return err
		}
	}
	if err := runtime.PutJSON(st, keySeason, next); err != nil {
		return err
	}
	b.broadcast(map[string]any{"type": "season_ended", "season": cur.Number, "final": final, "next": next})
	return nil
}

// top returns the best n entries, ranked.
func (b *Board) top(n int) ([]Entry, error) {
	st := b.state.Storage()
	out := []Entry{}
	kvs, err := st.List(runtime.ListOptions{Prefix: prefixRank, Limit: n})
	if err != nil {
		return nil, err
	}
	for i, kv := range kvs {
		id := kv.Key[strings.LastIndexByte(kv.Key, '/')+1:]
		e, ok, err := runtime.GetJSON[Entry](st, prefixScore+id)
		if err != nil {
			return nil, err
		}
		if ok {
			e.Rank = i + 1
			out = append(out, e)
		}
	}
	return out, nil
}

// rank returns a player's standing.
func (b *Board) rank(playerID string) (*Entry, error) {
	e, ok, err := runtime.GetJSON[Entry](b.state.Storage(), prefixScore+playerID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, protocol.Errorf(protocol.CodeNotFound, "player %s has no score this season", playerID)
	}
	if e.Rank, err = b.rankOf(e.Score, playerID); err != nil {
		return nil, err
	}
	return &e, nil
}

// rankOf counts the entries ahead of (score, playerID): 1 + those before it
// in rank order. It scans, which is fine for boards of thousands.
func (b *Board) rankOf(score float64, playerID string) (int, error) {
	ahead, err := b.state.Storage().List(runtime.ListOptions{Prefix: prefixRank, End: rankKey(score, playerID)})
	return len(ahead) + 1, err
}

func (b *Board) broadcast(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Errorf("leaderboard frame: %w", err))
	}
	b.state.Broadcast("live", data)
}

// OnMessage handles {"type":"submit_score",playerId,playerName,score},
// {"type":"get_top",n?} and {"type":"ping"} from live sockets.
func (b *Board) OnMessage(ctx context.Context, ws *runtime.WebSocket, msg runtime.Message) {
	f, perr := frame.DecodeFrame(msg.Data, msg.Binary)
	if perr != nil {
		b.sendError(ws, "", perr)
		return
	}
	switch f.Type {
	case "ping":
		b.send(ws, map[string]any{"type": "pong"})
	case "submit_score":
		principal, _ := ws.Principal()
		e, err := b.submit(f, principal)
		if err != nil {
			b.sendError(ws, f.Type, err)
			return
		}
		b.send(ws, map[string]any{"type": "score_submitted", "entry": e})
	case "get_top":
		n := 10
		if v, given, perr := f.OptInt("n", 1, b.opts.MaxTop); perr != nil {
			b.sendError(ws, f.Type, perr)
			return
		} else if given {
			n = v
		}
		top, err := b.top(n)
		if err != nil {
			panic(err)
		}
		b.send(ws, map[string]any{"type": "top", "season": b.season().Number, "entries": top})
	default:
		b.sendError(ws, f.Type, protocol.Errorf(protocol.CodeUnknownType, "Unknown message type"))
	}
}

// OnClose needs nothing: live sockets hold no state.
func (b *Board) OnClose(ctx context.Context, ws *runtime.WebSocket, code int, reason string) {}

// OnError answers an oversized message.
func (b *Board) OnError(ctx context.Context, ws *runtime.WebSocket, err error) {
	b.sendError(ws, "", protocol.Errorf(protocol.CodeTooLarge, "message too large"))
}

func (b *Board) send(ws *runtime.WebSocket, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	ws.Send(data)
}

func (b *Board) sendError(ws *runtime.WebSocket, requestType string, err error) {
	perr, ok := err.(*protocol.Error)
	if !ok {
		panic(err)
	}
	b.send(ws, protocol.ErrorFrame{Type: "error", Code: perr.Code, Message: perr.Message, RequestType: requestType})
}
