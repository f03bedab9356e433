package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gorilla/websocket"
)

// gameRoom is one game room and the RoomManager object holding it.
type gameRoom struct {
	ID     string
	Object string // "main" or, with -shard, the room's own
}

func (r gameRoom) path() string {
	if r.Object == "main" {
		return "/api/room-manager"
	}
	return "/objects/RoomManager/" + r.Object
}

// gamePlayer is one player's socket and its figures.
type gamePlayer struct {
	room   gameRoom
	player string
	conn   *websocket.Conn
	rd     *frameReader

	started        atomic.Bool
	acts, deliv    int64 // in the window: own actions broadcast, deliveries
	echo, delivery *hdrhistogram.Histogram
	failures       int64
	sample         string
}

// runGame plays -games rooms of -players: every player sends game_action at
// -tick-rate on a fixed schedule, and every player times each action's
// broadcast from its scheduled send.
func runGame(ctx context.Context, b *bench) error {
	cfg := b.cfg
	id := runID()
	var rooms []gameRoom
	for g := range cfg.Games {
		room := gameRoom{ID: fmt.Sprintf("game-%s-%d", id, g), Object: "main"}
		if cfg.Shard {
			room.Object = room.ID
		}
		body := map[string]any{"roomId": room.ID, "name": room.ID, "gameType": "competitive", "maxPlayers": cfg.Players,
			"settings": map[string]any{"duration": 86400, "maxRounds": 1000}}
		err := retryHTTP(ctx, b, func(n *node) (int, error) {
			return httpJSON(ctx, b.fleet.hc, "POST", n.URL+room.path()+"/rooms", body, nil)
		}, 201)
		if err != nil {
			return fmt.Errorf("create game room %s: %w", room.ID, err)
		}
		rooms = append(rooms, room)
	}
	dialer := newWSDialer(cfg.SourceAddrs, 4<<10, 1<<10)
	var players []*gamePlayer
	defer func() {
		for _, p := range players {
			p.conn.Close()
		}
	}()
	b.log.Info("joining game rooms", "games", cfg.Games, "players", cfg.Games*cfg.Players)
	for g, room := range rooms {
		for k := range cfg.Players {
			p := &gamePlayer{room: room, player: fmt.Sprintf("g%dp%d", g, k), echo: newHist(), delivery: newHist()}
			conn, err := dialer.Dial(ctx, b.fleet.pick(g*cfg.Players+k).URL, room.path()+"/websocket")
			if err != nil {
				return fmt.Errorf("player %s: %w", p.player, err)
			}
			p.conn, p.rd = conn, &frameReader{c: conn}
			players = append(players, p)
			if err := conn.WriteMessage(websocket.TextMessage, appendJoinRoom(nil, room.ID, p.player, "", false)); err != nil {
				return fmt.Errorf("player %s join: %w", p.player, err)
			}
			if _, err := awaitType(p.rd, "room_joined"); err != nil {
				return fmt.Errorf("player %s join: %w", p.player, err)
			}
		}
	}

	base := time.Now()
	var start, end time.Duration // the window, since base; set before startCh closes
	startCh := make(chan struct{})
	var readers sync.WaitGroup
	for _, p := range players {
		readers.Add(1)
		go func() {
			defer readers.Done()
			p.read(base, startCh, &start, &end)
		}()
	}
	// Player 0 of every room starts its game; every player must see it.
	for g := range rooms {
		p := players[g*cfg.Players]
		msg := fmt.Sprintf(`{"type":"start_game","roomId":%q,"playerId":%q}`, p.room.ID, p.player)
		if err := p.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			return fmt.Errorf("start game: %w", err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := 0
		for _, p := range players {
			if p.started.Load() {
				n++
			}
		}
		if n == len(players) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("only %d of %d players saw their game start", n, len(players))
		}
		time.Sleep(10 * time.Millisecond)
	}

	loadStart := time.Since(base)
	start = loadStart + cfg.Warmup
	end = start + cfg.Duration
	close(startCh)
	interval := time.Duration(float64(time.Second) / cfg.TickRate)
	stopCh := make(chan struct{})
	var writers sync.WaitGroup
	for i, p := range players {
		writers.Add(1)
		go func() {
			defer writers.Done()
			p.write(base, loadStart+time.Duration(int64(interval)*int64(i)/int64(len(players))), interval, stopCh)
		}()
	}
	b.log.Info("game load started", "actions_per_sec", float64(len(players))*cfg.TickRate)
	ok := sleepUntil(ctx, base.Add(start))
	if ok {
		win := b.beginWindow(ctx)
		ok = sleepUntil(ctx, base.Add(end))
		b.endWindow(ctx, win)
	}
	close(stopCh)
	writers.Wait()
	time.Sleep(500 * time.Millisecond)
	for _, p := range players {
		p.conn.Close()
	}
	readers.Wait()
	if !ok {
		return ctx.Err()
	}

	echo, deliv := newHist(), newHist()
	var acts, delivs, failures int64
	var sample string
	for _, p := range players {
		echo.Merge(p.echo)
		deliv.Merge(p.delivery)
		acts += p.acts
		delivs += p.deliv
		failures += p.failures
		if sample == "" {
			sample = p.sample
		}
	}
	d := end - start
	res := b.res
	res.MeasuredSec = d.Seconds()
	res.Figures["offered_actions_per_sec"] = float64(len(players)) * cfg.TickRate
	res.Figures["actions_per_sec"] = perSec(acts, d)
	res.Figures["deliveries_per_sec"] = perSec(delivs, d)
	res.Figures["players"] = float64(len(players))
	res.Latencies["action_to_broadcast"] = summarize(deliv)
	res.Latencies["action_to_own_echo"] = summarize(echo)
	if failures > 0 {
		return fmt.Errorf("%d failure frames, e.g. %s", failures, sample)
	}
	return nil
}

// write sends a game_action every interval from first (since base) until
// stop; each carries its scheduled time, so a server that falls behind
// shows in the latency instead of slowing the senders.
func (p *gamePlayer) write(base time.Time, first, interval time.Duration, stop <-chan struct{}) {
	buf := make([]byte, 0, 256)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for next := first; ; next += interval {
		if wait := next - time.Since(base); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-stop:
				return
			}
		}
		select {
		case <-stop:
			return
		default:
		}
		buf = appendGameAction(buf[:0], p.room.ID, p.player, int64(next))
		if err := p.conn.WriteMessage(websocket.TextMessage, buf); err != nil {
			return
		}
	}
}

// read counts and times game_action broadcasts until the socket closes.
func (p *gamePlayer) read(base time.Time, startCh <-chan struct{}, start, end *time.Duration) {
	me := p.player
	var s, e time.Duration
	ready := false
	for {
		f, err := p.rd.Read()
		if err != nil {
			return
		}
		now := time.Since(base)
		switch string(frameType(f)) {
		case "game_started":
			p.started.Store(true)
		case "game_action":
			if !ready {
				select {
				case <-startCh:
					s, e, ready = *start, *end, true
				default:
					continue
				}
			}
			if now < s || now >= e {
				continue
			}
			stamp, ok := intField(f, "t")
			if !ok {
				continue
			}
			lat := now - time.Duration(stamp)
			p.deliv++
			record(p.delivery, lat)
			if pid, _ := stringField(f, "playerId"); string(pid) == me {
				p.acts++
				record(p.echo, lat)
			}
		case "error", "start_game_failed":
			p.failures++
			if p.sample == "" {
				p.sample = string(f)
			}
		}
	}
}
