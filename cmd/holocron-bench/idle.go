package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// maxRoomsPerSocket is the server's cap on the rooms one socket may join.
const maxRoomsPerSocket = 100

// runIdle opens -conns sockets joined to rooms of -room-size, reads the
// servers' RSS before and after, then sends one message to every room and
// times until the last socket has it.
func runIdle(ctx context.Context, b *bench) error {
	cfg := b.cfg
	nrooms := (cfg.Conns + cfg.RoomSize - 1) / cfg.RoomSize
	id := runID()
	rooms := make([]chatRoom, nrooms)
	for r := range rooms {
		rooms[r] = chatRoom{ID: fmt.Sprintf("idle-%s-%d", id, r), Lobby: "main"}
		if cfg.Shard {
			rooms[r].Lobby = rooms[r].ID
		}
		if err := createChatRoom(ctx, b, rooms[r], max(cfg.RoomSize+1, 50)); err != nil {
			return fmt.Errorf("create room %s: %w", rooms[r].ID, err)
		}
	}
	pids := b.fleet.pids()
	rss := func() (int64, bool) {
		var sum int64
		for _, p := range pids {
			kib, err := rssKiB(p)
			if err != nil {
				b.log.Warn("RSS", "pid", p, "err", err)
				return 0, false
			}
			sum += kib
		}
		return sum, len(pids) > 0
	}
	before, haveRSS := rss()
	goBefore := scrapeCounters(ctx, b.fleet)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	dialer := newWSDialer(cfg.SourceAddrs, 1024, 512)
	base := time.Now()
	arrivals := make([]atomic.Int64, cfg.Conns) // ns since base, 0 = not yet
	var got atomic.Int64
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()

	// Open and join every socket, -dial-concurrency at a time.
	b.log.Info("opening idle sockets", "conns", cfg.Conns, "rooms", nrooms, "nodes", len(b.fleet.nodes))
	slots := make(chan struct{}, cfg.DialConcur)
	var opened atomic.Int64
	errc := make(chan error, 1)
	var dials sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < cfg.Conns && runCtx.Err() == nil; i++ {
		slots <- struct{}{}
		dials.Add(1)
		go func() {
			defer dials.Done()
			defer func() { <-slots }()
			room := rooms[i%nrooms]
			n := b.fleet.pick(i)
			conn, err := dialer.Dial(runCtx, n.URL, room.path()+"/websocket")
			if err == nil {
				err = conn.WriteMessage(websocket.TextMessage, appendJoinRoom(nil, room.ID, fmt.Sprintf("i%d", i), "", false))
				if err == nil {
					_, err = awaitType(&frameReader{c: conn}, "room_joined")
				}
				if err != nil {
					conn.Close()
				}
			}
			if err != nil {
				select {
				case errc <- fmt.Errorf("socket %d of %d: %w", i+1, cfg.Conns, err):
				default:
				}
				cancel()
				return
			}
			if k := opened.Add(1); k%5000 == 0 {
				b.log.Info("sockets joined", "n", k)
			}
			readers.Add(1)
			go func() {
				defer readers.Done()
				idleReader(runCtx, conn, func() {
					if arrivals[i].CompareAndSwap(0, int64(time.Since(base))) {
						got.Add(1)
					}
				})
			}()
		}()
	}
	dials.Wait()
	select {
	case err := <-errc:
		b.res.Figures["sockets_opened_before_failure"] = float64(opened.Load())
		return fmt.Errorf("open sockets: %w (largest count reached: %d)", err, opened.Load())
	default:
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	joinTook := time.Since(t0)
	b.log.Info("all sockets joined", "conns", cfg.Conns, "took", joinTook.Round(time.Millisecond))
	b.res.Figures["sockets"] = float64(cfg.Conns)
	b.res.Figures["rooms"] = float64(nrooms)
	b.res.Figures["joins_per_sec"] = perSec(int64(cfg.Conns), joinTook)

	if !sleepUntil(ctx, time.Now().Add(cfg.Settle)) {
		return ctx.Err()
	}
	if after, ok := rss(); ok && haveRSS {
		b.res.Figures["server_rss_before_mib"] = round3(float64(before) / 1024)
		b.res.Figures["server_rss_after_mib"] = round3(float64(after) / 1024)
		b.res.Figures["server_rss_per_socket_kib"] = round3(float64(after-before) / float64(cfg.Conns))
		b.res.Figures["server_rss_total_per_socket_kib"] = round3(float64(after) / float64(cfg.Conns))
	} else {
		b.res.Notes = append(b.res.Notes, "server RSS unknown: give -server-pid/-pids or use -spawn")
	}
	// Where the memory went, per socket, from the Go runtime's own figures.
	goAfter := scrapeCounters(ctx, b.fleet)
	for name, fig := range map[string]string{
		"go_goroutines":                 "server_goroutines_per_socket",
		"go_memstats_heap_inuse_bytes":  "server_heap_inuse_per_socket_kib",
		"go_memstats_stack_inuse_bytes": "server_stack_inuse_per_socket_kib",
	} {
		var d float64
		for node, a := range goAfter {
			d += a[name] - goBefore[node][name]
		}
		if fig != "server_goroutines_per_socket" {
			d /= 1024
		}
		b.res.Figures[fig] = round3(d / float64(cfg.Conns))
	}

	// One message into every room, from broadcaster sockets joined to up
	// to 100 rooms each; they join now, so the idle sockets see one
	// user_joined each before the message.
	var bconns []*websocket.Conn
	defer func() {
		for _, c := range bconns {
			c.Close()
		}
	}()
	for k := 0; k*maxRoomsPerSocket < nrooms; k++ {
		conn, err := dialer.Dial(ctx, b.fleet.pick(k).URL, rooms[0].path()+"/websocket")
		if err != nil {
			return fmt.Errorf("broadcaster: %w", err)
		}
		bconns = append(bconns, conn)
	}
	// With -shard every room is its own lobby: one socket per room then.
	type sendTo struct {
		conn *websocket.Conn
		room chatRoom
	}
	var sends []sendTo
	if cfg.Shard {
		for k := range bconns {
			bconns[k].Close()
		}
		bconns = bconns[:0]
		for r, room := range rooms {
			conn, err := dialer.Dial(ctx, b.fleet.pick(r).URL, room.path()+"/websocket")
			if err != nil {
				return fmt.Errorf("broadcaster: %w", err)
			}
			bconns = append(bconns, conn)
			sends = append(sends, sendTo{conn, room})
		}
	} else {
		for r, room := range rooms {
			sends = append(sends, sendTo{bconns[r/maxRoomsPerSocket], room})
		}
	}
	for k, s := range sends {
		player := fmt.Sprintf("b%d", k/maxRoomsPerSocket)
		if cfg.Shard {
			player = fmt.Sprintf("b%d", k)
		}
		if err := s.conn.WriteMessage(websocket.TextMessage, appendJoinRoom(nil, s.room.ID, player, "", false)); err != nil {
			return fmt.Errorf("broadcaster join: %w", err)
		}
		if _, err := awaitType(&frameReader{c: s.conn}, "room_joined"); err != nil {
			return fmt.Errorf("broadcaster join %s: %w", s.room.ID, err)
		}
	}
	// The broadcasters' own frames are not read from here on; drain them.
	for _, c := range bconns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			idleReader(runCtx, c, func() {})
		}()
	}
	time.Sleep(time.Second)
	win := b.beginWindow(ctx)
	sent := time.Since(base)
	buf := make([]byte, 0, 256)
	for k, s := range sends {
		player := fmt.Sprintf("b%d", k/maxRoomsPerSocket)
		if cfg.Shard {
			player = fmt.Sprintf("b%d", k)
		}
		buf = appendSendMessage(buf[:0], s.room.ID, player, int64(k+1), int64(time.Since(base)), 16)
		if err := s.conn.WriteMessage(websocket.TextMessage, buf); err != nil {
			return fmt.Errorf("broadcast: %w", err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for got.Load() < int64(cfg.Conns) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	b.endWindow(ctx, win)
	h := newHist()
	var last time.Duration
	for i := range arrivals {
		if a := time.Duration(arrivals[i].Load()); a > 0 {
			record(h, a-sent)
			last = max(last, a-sent)
		}
	}
	b.res.Latencies["broadcast_to_socket"] = summarize(h)
	b.res.Figures["broadcast_messages"] = float64(len(sends))
	b.res.Figures["broadcast_reached"] = float64(got.Load())
	b.res.Figures["broadcast_time_to_last_ms"] = round3(float64(last) / float64(time.Millisecond))
	if n := got.Load(); n < int64(cfg.Conns) {
		return fmt.Errorf("only %d of %d sockets received the broadcast within 60s", n, cfg.Conns)
	}
	return nil
}

// idleReader reads and drops frames until the socket closes, calling
// onMessage for every new_message.
func idleReader(ctx context.Context, conn *websocket.Conn, onMessage func()) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	rd := &frameReader{c: conn}
	for {
		f, err := rd.Read()
		if err != nil {
			return
		}
		if string(frameType(f)) == "new_message" {
			onMessage()
		}
	}
}
