package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gorilla/websocket"
)

// stallTimeout is how long a sender waits for any acknowledgement while it
// has messages in flight before it drops the socket and reconnects (a node
// that died may leave a forwarded socket open but silent).
const stallTimeout = 5 * time.Second

// chatRoom is one chat room under load and the lobby object holding it.
type chatRoom struct {
	ID    string
	Lobby string // object name: "main" or, with -shard, the room's own
}

// path is the room's lobby route.
func (r chatRoom) path() string {
	if r.Lobby == "main" {
		return "/api/lobby"
	}
	return "/api/lobbies/" + r.Lobby
}

// runID makes room names unique per run, so runs against the same servers
// do not meet each other's rooms.
func runID() string { return fmt.Sprintf("%06x", time.Now().UnixNano()/1000%0xffffff) }

// createChatRoom creates a room through any live node, retrying while a
// cluster is still moving partitions.
func createChatRoom(ctx context.Context, b *bench, room chatRoom, maxParticipants int) error {
	body := map[string]any{"roomId": room.ID, "name": room.ID, "maxParticipants": maxParticipants}
	return retryHTTP(ctx, b, func(n *node) (int, error) {
		return httpJSON(ctx, b.fleet.hc, "POST", n.URL+room.path()+"/rooms", body, nil)
	}, 201, 409)
}

// retryHTTP calls do on live nodes in turn until it answers one of ok
// (30s at most).
func retryHTTP(ctx context.Context, b *bench, do func(*node) (int, error), ok ...int) error {
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		n := b.fleet.pick(i)
		if n == nil {
			return errors.New("no live node")
		}
		code, err := do(n)
		if err == nil && slices.Contains(ok, code) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err == nil {
				err = fmt.Errorf("HTTP %d", code)
			}
			return fmt.Errorf("via %s: %w", n.Name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// chatLoad is the durable and fanout scenarios: senders in chat rooms, each
// a sender and a receiver of every message of its room.
type chatLoad struct {
	b       *bench
	rooms   []chatRoom
	senders []*chatSender
	dialer  *wsDialer
	// base is the origin of the stamps sent in message contents.
	base time.Time
	// start and end bound the measurement window, since base.
	start, end time.Duration
	// interval is each sender's send interval in -rate mode, else 0.
	interval time.Duration
	verify   bool
	acks     *timeline
	// sendLag, in -rate mode, is how late each send left the tool, by
	// scheduled send time: the tool's own share of a latency spike.
	sendLag *timeline

	startCh chan struct{} // closed when the senders may send
	stopCh  chan struct{} // closed when they must stop

	rateLimited atomic.Int64
	failures    atomic.Int64
	reconnects  atomic.Int64
	errMu       sync.Mutex
	errSamples  []string
}

// now is the time since base.
func (l *chatLoad) now() time.Duration { return time.Since(l.base) }

func (l *chatLoad) inWindow(t time.Duration) bool { return t >= l.start && t < l.end }

func (l *chatLoad) noteError(format string, args ...any) {
	l.failures.Add(1)
	l.errMu.Lock()
	if len(l.errSamples) < 5 {
		l.errSamples = append(l.errSamples, fmt.Sprintf(format, args...))
	}
	l.errMu.Unlock()
}

// chatSender is one client: it sends into its room and receives the room.
type chatSender struct {
	idx    int
	room   chatRoom
	player string

	mu      sync.Mutex
	pending map[int64]time.Duration // seq → stamp: sent, not acknowledged
	nextSeq int64
	nextAt  time.Duration // -rate mode: the next scheduled send
	tokens  chan struct{} // closed-loop mode: free window slots

	lastProgress atomic.Int64 // since base, ns: last ack or session start

	// Owned by the session's reader (sessions do not overlap).
	acked               []int64
	ackTotal, ackWin    int64
	delivWin            int64
	echoHist, delivHist *hdrhistogram.Histogram
	// lagHist (-rate mode) is owned by the session's writer: how long
	// after its scheduled time each send in the window left the tool.
	lagHist *hdrhistogram.Histogram
}

// runChat runs durable (one room of -senders) or fanout (-rooms × -clients).
func runChat(ctx context.Context, b *bench) error {
	cfg := b.cfg
	rooms, perRoom := 1, cfg.Senders
	if cfg.Scenario == "fanout" {
		rooms, perRoom = cfg.Rooms, cfg.Clients
	}
	l := &chatLoad{
		b:       b,
		dialer:  newWSDialer(cfg.SourceAddrs, 16<<10, 4<<10),
		verify:  cfg.Verify,
		startCh: make(chan struct{}),
		stopCh:  make(chan struct{}),
	}
	id := runID()
	for r := range rooms {
		room := chatRoom{ID: fmt.Sprintf("%s-%s-%d", cfg.Scenario, id, r), Lobby: "main"}
		if cfg.Shard {
			room.Lobby = room.ID
		}
		if err := createChatRoom(ctx, b, room, max(perRoom, 50)); err != nil {
			return fmt.Errorf("create room %s: %w", room.ID, err)
		}
		l.rooms = append(l.rooms, room)
	}
	total := rooms * perRoom
	if cfg.Rate > 0 {
		l.interval = time.Duration(float64(total) / cfg.Rate * float64(time.Second))
	}
	for i := range total {
		s := &chatSender{
			idx:       i,
			room:      l.rooms[i%rooms],
			player:    fmt.Sprintf("p%d", i),
			pending:   map[int64]time.Duration{},
			tokens:    make(chan struct{}, cfg.Window),
			echoHist:  newHist(),
			delivHist: newHist(),
			lagHist:   newHist(),
		}
		for range cfg.Window {
			s.tokens <- struct{}{}
		}
		l.senders = append(l.senders, s)
	}

	// Connect and join everyone, then start the load.
	l.base = time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	joined := make(chan error, total)
	dialSlots := make(chan struct{}, 64)
	for _, s := range l.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(runCtx, l, dialSlots, joined)
		}()
	}
	b.log.Info("joining", "scenario", cfg.Scenario, "rooms", rooms, "clients", total, "nodes", len(b.fleet.nodes))
	for range total {
		select {
		case err := <-joined:
			if err != nil {
				cancel()
				wg.Wait()
				return fmt.Errorf("join: %w", err)
			}
		case <-ctx.Done():
			cancel()
			wg.Wait()
			return ctx.Err()
		}
	}
	// Let the join notices drain before the clock starts.
	time.Sleep(300 * time.Millisecond)
	loadStart := l.now()
	l.start = loadStart + cfg.Warmup
	l.end = l.start + cfg.Duration
	l.acks = newTimeline(loadStart, cfg.Warmup+cfg.Duration+30*time.Second)
	l.sendLag = newTimeline(loadStart, cfg.Warmup+cfg.Duration+30*time.Second)
	for _, s := range l.senders {
		s.nextAt = loadStart + time.Duration(int64(l.interval)*int64(s.idx)/int64(total))
		s.lastProgress.Store(int64(loadStart))
	}
	close(l.startCh)
	b.log.Info("load started", "warmup", cfg.Warmup, "duration", cfg.Duration)

	var fo *Failover
	var killErr error
	killDone := make(chan struct{})
	if cfg.KillOwner {
		go func() {
			defer close(killDone)
			fo, killErr = l.killOwner(runCtx, l.start+cfg.KillAfter)
		}()
	} else {
		close(killDone)
	}

	if !sleepUntil(ctx, l.base.Add(l.start)) {
		cancel()
		wg.Wait()
		return ctx.Err()
	}
	win := b.beginWindow(ctx)
	ok := sleepUntil(ctx, l.base.Add(l.end))
	b.endWindow(ctx, win)
	close(l.stopCh)
	<-killDone
	// Give messages in flight a moment to be acknowledged (they are not
	// counted in the window, but a check of the history wants them final).
	drainBy := time.Now().Add(2 * time.Second)
	if l.verify {
		drainBy = time.Now().Add(10 * time.Second)
	}
	for ok && l.inFlight() > 0 && time.Now().Before(drainBy) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if !ok {
		return ctx.Err()
	}
	l.report(fo)
	if killErr != nil {
		return fmt.Errorf("kill owner: %w", killErr)
	}
	if l.verify {
		if err := l.verifyHistory(ctx, fo); err != nil {
			return fmt.Errorf("verify history: %w", err)
		}
	}
	if n := l.rateLimited.Load(); n > 0 {
		return fmt.Errorf("%d frames were refused as rate_limited: start the servers with -rate-limit -1", n)
	}
	return nil
}

// sleepUntil sleeps until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	select {
	case <-time.After(time.Until(t)):
		return true
	case <-ctx.Done():
		return false
	}
}

// inFlight counts messages sent and not yet acknowledged.
func (l *chatLoad) inFlight() int {
	n := 0
	for _, s := range l.senders {
		s.mu.Lock()
		n += len(s.pending)
		s.mu.Unlock()
	}
	return n
}

// report fills the result from the senders' counters and histograms.
func (l *chatLoad) report(fo *Failover) {
	res := l.b.res
	echo, deliv, lag := newHist(), newHist(), newHist()
	var acks, delivs, ackTotal int64
	for _, s := range l.senders {
		echo.Merge(s.echoHist)
		deliv.Merge(s.delivHist)
		lag.Merge(s.lagHist)
		acks += s.ackWin
		delivs += s.delivWin
		ackTotal += s.ackTotal
	}
	d := l.end - l.start
	res.MeasuredSec = d.Seconds()
	res.Figures["acked_msgs_per_sec"] = perSec(acks, d)
	res.Figures["deliveries_per_sec"] = perSec(delivs, d)
	res.Figures["clients"] = float64(len(l.senders))
	res.Figures["rooms"] = float64(len(l.rooms))
	if l.interval > 0 {
		res.Figures["offered_msgs_per_sec"] = l.b.cfg.Rate
		res.Latencies["send_lag"] = summarize(lag)
		res.SlowestSendLagPer100ms = l.sendLag.slowest(l.start, l.end)
	}
	res.Latencies["send_to_echo"] = summarize(echo)
	res.SlowestPer100ms = l.acks.slowest(l.start, l.end)
	res.Latencies["send_to_delivery"] = summarize(deliv)
	if n := l.reconnects.Load(); n > 0 && fo == nil {
		res.Notes = append(res.Notes, fmt.Sprintf("%d sessions were re-established during the run (sockets dropped)", n))
	}
	if n := l.failures.Load(); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d failure frames or session errors, e.g. %v", n, l.errSamples))
	}
	if fo != nil {
		fo.Acked = ackTotal
		fo.Reconnects = l.reconnects.Load()
		res.Failover = fo
	}
}

// run keeps the sender connected until ctx ends: the first session reports
// its join on joined; later ones (after a dropped socket) reconnect through
// the next live node and resend what was not acknowledged.
func (s *chatSender) run(ctx context.Context, l *chatLoad, dialSlots chan struct{}, joined chan<- error) {
	first := true
	for attempt := 0; ctx.Err() == nil; attempt++ {
		n := l.b.fleet.pick(s.idx + attempt)
		if n == nil {
			if first {
				joined <- errors.New("no live node")
			}
			return
		}
		err := s.session(ctx, l, n, first, dialSlots, joined)
		if first {
			if err != nil {
				joined <- fmt.Errorf("%s via %s: %w", s.player, n.Name, err)
				return
			}
			first = false
		}
		if ctx.Err() != nil {
			return
		}
		l.reconnects.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(20+10*min(attempt, 10)) * time.Millisecond):
		}
	}
}

// session is one socket: join, then send and receive until it fails. On
// the first session a nil error means the join succeeded (reported on
// joined) and the socket later closed.
func (s *chatSender) session(ctx context.Context, l *chatLoad, n *node, first bool, dialSlots chan struct{}, joined chan<- error) error {
	dialSlots <- struct{}{}
	conn, err := l.dialer.Dial(ctx, n.URL, s.room.path()+"/websocket")
	if err != nil {
		<-dialSlots
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	rd := &frameReader{c: conn}
	err = conn.WriteMessage(websocket.TextMessage, appendJoinRoom(nil, s.room.ID, s.player, "", false))
	if err == nil {
		_, err = awaitType(rd, "room_joined")
	}
	<-dialSlots
	if err != nil {
		if !first {
			l.noteError("%s rejoin via %s: %v", s.player, n.Name, err)
		}
		return err
	}
	if first {
		joined <- nil
	} else {
		s.lastProgress.Store(int64(l.now()))
	}
	sessCtx, cancel := context.WithCancel(ctx)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.write(sessCtx, l, conn)
	}()
	rerr := s.read(l, rd)
	cancel()
	conn.Close()
	<-writerDone
	if first {
		return nil
	}
	return rerr
}

// write sends until the session or the load ends: closed-loop (a window of
// unacknowledged messages) or on a fixed schedule (-rate). It first resends
// what an earlier session left unacknowledged, with the same clientMsgId
// (the server stores it once).
func (s *chatSender) write(ctx context.Context, l *chatLoad, conn *websocket.Conn) {
	select {
	case <-l.startCh:
	case <-ctx.Done():
		return
	}
	size := l.b.cfg.ContentSize
	buf := make([]byte, 0, 128+size)
	send := func(seq int64, stamp time.Duration) bool {
		buf = appendSendMessage(buf[:0], s.room.ID, s.player, seq, int64(stamp), size)
		if err := conn.WriteMessage(websocket.TextMessage, buf); err != nil {
			conn.Close()
			return false
		}
		return true
	}
	s.mu.Lock()
	resend := make([]int64, 0, len(s.pending))
	for seq := range s.pending {
		resend = append(resend, seq)
	}
	slices.Sort(resend)
	stamps := make([]time.Duration, len(resend))
	for i, seq := range resend {
		stamps[i] = s.pending[seq]
	}
	s.mu.Unlock()
	for i, seq := range resend {
		if !send(seq, stamps[i]) {
			return
		}
	}
	watchdog := time.NewTicker(250 * time.Millisecond)
	defer watchdog.Stop()
	stalled := func() bool {
		s.mu.Lock()
		waiting := len(s.pending) > 0
		s.mu.Unlock()
		return waiting && l.now()-time.Duration(s.lastProgress.Load()) > stallTimeout
	}
	var timer *time.Timer
	if l.interval > 0 {
		timer = time.NewTimer(0)
		defer timer.Stop()
	}
	for {
		// What the next send waits for: a free window slot (closed loop)
		// or its scheduled time (-rate); nil channels never fire.
		var slot <-chan struct{}
		var due <-chan time.Time
		if l.interval == 0 {
			slot = s.tokens
		} else if wait := s.nextAt - l.now(); wait > 0 {
			timer.Reset(wait)
			due = timer.C
		}
		if slot != nil || due != nil {
			select {
			case <-slot:
			case <-due:
			case <-watchdog.C:
				if stalled() {
					conn.Close()
					return
				}
				continue
			case <-l.stopCh:
				return
			case <-ctx.Done():
				return
			}
		}
		var stamp time.Duration
		if l.interval == 0 {
			stamp = l.now()
		} else {
			stamp = s.nextAt
			s.nextAt += l.interval
		}
		select {
		case <-l.stopCh:
			return
		default:
		}
		s.mu.Lock()
		s.nextSeq++
		seq := s.nextSeq
		s.pending[seq] = stamp
		s.mu.Unlock()
		if !send(seq, stamp) {
			return
		}
		if l.interval > 0 {
			lag := l.now() - stamp
			l.sendLag.mark(stamp, lag)
			if l.inWindow(stamp) {
				record(s.lagHist, lag)
			}
		}
	}
}

// read receives until the socket fails: it counts and times every
// delivery and takes its own echoes as acknowledgements.
func (s *chatSender) read(l *chatLoad, rd *frameReader) error {
	me := []byte(s.player)
	for {
		f, err := rd.Read()
		if err != nil {
			return err
		}
		now := l.now()
		switch t := frameType(f); string(t) {
		case "new_message":
			d, ok := parseNewMessage(f)
			if !ok {
				l.noteError("unparsed new_message %.200s", f)
				continue
			}
			in := l.inWindow(now)
			if in {
				s.delivWin++
				if d.HasStamp {
					record(s.delivHist, now-time.Duration(d.Stamp))
				}
			}
			if !d.HasCMID || !bytes.Equal(d.SenderID, me) {
				continue
			}
			s.mu.Lock()
			stamp, first := s.pending[d.ClientMsgID]
			delete(s.pending, d.ClientMsgID)
			s.mu.Unlock()
			if !first {
				continue // the echo of a resend that was already stored
			}
			s.lastProgress.Store(int64(now))
			s.ackTotal++
			l.acks.mark(now, now-stamp)
			if l.verify {
				s.acked = append(s.acked, d.ClientMsgID)
			}
			if in {
				s.ackWin++
				record(s.echoHist, now-stamp)
			}
			if l.interval == 0 {
				select {
				case s.tokens <- struct{}{}:
				default:
				}
			}
		case "error":
			if code, _ := stringField(f, "code"); string(code) == "rate_limited" {
				l.rateLimited.Add(1)
			} else {
				l.noteError("%s: %.300s", s.player, f)
			}
		}
	}
}

// killOwner waits until at (since base), kills the node owning the first
// room's lobby object and returns the failover figures once the load ends.
func (l *chatLoad) killOwner(ctx context.Context, at time.Duration) (*Failover, error) {
	if !sleepUntil(ctx, l.base.Add(at)) {
		return nil, ctx.Err()
	}
	owner, err := l.b.fleet.owner(ctx, "ChatLobby", l.rooms[0].Lobby)
	if err != nil {
		return nil, err
	}
	killedAt := l.now()
	if err := l.b.fleet.kill9(owner); err != nil {
		return nil, err
	}
	l.b.log.Info("killed the owner", "node", owner.Name, "pid", owner.PID, "object", "ChatLobby/"+l.rooms[0].Lobby)
	select {
	case <-l.stopCh:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	fo := &Failover{Killed: owner.Name, KilledAtSec: round3((killedAt - l.start).Seconds())}
	gap, after, ok := l.acks.gapAround(killedAt)
	if !ok {
		fo.GapMs, fo.FirstAckAfterKillMs = -1, -1
		return fo, fmt.Errorf("no acknowledgement after the kill of %s", owner.Name)
	}
	fo.GapMs = float64(gap.Milliseconds())
	fo.FirstAckAfterKillMs = float64(after.Milliseconds())
	return fo, nil
}

// historyMessage is the part of a stored message the check reads.
type historyMessage struct {
	ID          string `json:"id"`
	SenderID    string `json:"senderId"`
	ClientMsgID string `json:"clientMsgId"`
	Type        string `json:"type"`
}

// verifyHistory reads every room's whole history through a live node and
// looks up every acknowledged message in it.
func (l *chatLoad) verifyHistory(ctx context.Context, fo *Failover) error {
	var verified, lost, dup int64
	for _, room := range l.rooms {
		msgs, err := l.history(ctx, room)
		if err != nil {
			return err
		}
		seen := map[string]int{} // sender/clientMsgId → copies
		for _, m := range msgs {
			if m.Type == "text" && m.ClientMsgID != "" {
				seen[m.SenderID+"/"+m.ClientMsgID]++
			}
		}
		for _, s := range l.senders {
			if s.room != room {
				continue
			}
			for _, seq := range s.acked {
				verified++
				switch seen[fmt.Sprintf("%s/%d", s.player, seq)] {
				case 0:
					lost++
				case 1:
				default:
					dup++
				}
			}
		}
		if hl := l.b.cfg.HistoryLimit; len(msgs) >= hl {
			l.b.res.Notes = append(l.b.res.Notes, fmt.Sprintf("room %s holds %d messages = -history-limit: trimmed messages count as lost", room.ID, len(msgs)))
		}
	}
	res := l.b.res
	res.Figures["verified_acked"] = float64(verified)
	res.Figures["lost_acked"] = float64(lost)
	res.Figures["duplicated_acked"] = float64(dup)
	if fo != nil {
		fo.Verified, fo.Lost, fo.Duplicated = verified, lost, dup
	}
	if lost > 0 {
		return fmt.Errorf("%d of %d acknowledged messages are missing from the history", lost, verified)
	}
	return nil
}

// history pages through a room's whole history.
func (l *chatLoad) history(ctx context.Context, room chatRoom) ([]historyMessage, error) {
	var all []historyMessage
	after := ""
	for {
		var page struct {
			Messages []historyMessage `json:"messages"`
			HasMore  bool             `json:"hasMore"`
		}
		err := retryHTTP(ctx, l.b, func(n *node) (int, error) {
			page.Messages, page.HasMore = nil, false
			u := n.URL + room.path() + "/rooms/" + room.ID + "/messages?limit=1000&after=" + url.QueryEscape(after)
			return httpJSON(ctx, l.b.fleet.hc, http.MethodGet, u, nil, &page)
		}, 200)
		if err != nil {
			return nil, fmt.Errorf("history of %s after %q: %w", room.ID, after, err)
		}
		all = append(all, page.Messages...)
		if !page.HasMore || len(page.Messages) == 0 {
			return all, nil
		}
		after = page.Messages[len(page.Messages)-1].ID
	}
}

// timeline counts events per millisecond (acknowledgements: to find the
// pause a failover causes) and keeps the largest latency of every 100 ms,
// to show when spikes happen. The load's sends in -rate mode use one too,
// marked at their scheduled time with how late they left.
type timeline struct {
	origin time.Duration
	ms     []atomic.Int32
	slow   []atomic.Int64 // per 100 ms: the largest send→echo, ns
}

func newTimeline(origin, span time.Duration) *timeline {
	return &timeline{
		origin: origin,
		ms:     make([]atomic.Int32, span.Milliseconds()+1),
		slow:   make([]atomic.Int64, span.Milliseconds()/100+1),
	}
}

// mark records an event at at (an acknowledgement, or a send) that took lat.
func (t *timeline) mark(at, lat time.Duration) {
	i := (at - t.origin).Milliseconds()
	if i < 0 || i >= int64(len(t.ms)) {
		return
	}
	t.ms[i].Add(1)
	s := &t.slow[i/100]
	for old := s.Load(); int64(lat) > old && !s.CompareAndSwap(old, int64(lat)); old = s.Load() {
	}
}

// slowest returns the largest send→echo per 100 ms from from to to (since
// base), in milliseconds.
func (t *timeline) slowest(from, to time.Duration) []float64 {
	var out []float64
	for i := max((from-t.origin).Milliseconds()/100, 0); i < min((to-t.origin).Milliseconds()/100, int64(len(t.slow))); i++ {
		out = append(out, round3(float64(t.slow[i].Load())/1e6))
	}
	return out
}

// gapAround returns the longest pause between acknowledgements that starts
// at most a second before kill, and the time from kill to the first
// acknowledgement that ended it. ok is false if none came after the kill.
func (t *timeline) gapAround(kill time.Duration) (gap, firstAfterKill time.Duration, ok bool) {
	counts := make([]int32, len(t.ms))
	for i := range t.ms {
		counts[i] = t.ms[i].Load()
	}
	k := int((kill - t.origin).Milliseconds())
	last, next, ok := longestGap(counts, k-1000, k)
	if !ok {
		return 0, 0, false
	}
	return time.Duration(next-last) * time.Millisecond, time.Duration(next-k) * time.Millisecond, true
}

// longestGap finds, among the runs of empty buckets that start at or
// after from and end with a non-empty bucket after kill, the longest; it
// returns the non-empty buckets on either side.
func longestGap(counts []int32, from, kill int) (last, next int, ok bool) {
	if len(counts) == 0 {
		return 0, 0, false
	}
	from = min(max(from, 0), len(counts)-1)
	prev := -1
	for i := from; i >= 0; i-- {
		if counts[i] > 0 {
			prev = i
			break
		}
	}
	best := -1
	for i := from + 1; i < len(counts); i++ {
		if counts[i] == 0 {
			continue
		}
		if prev >= 0 && i > kill && i-prev > best {
			best, last, next, ok = i-prev, prev, i, true
		}
		prev = i
	}
	return last, next, ok
}
