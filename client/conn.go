package client

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// pingFrame is the protocol keepalive. It travels to the object itself (not
// just to the node a forwarded socket enters by), so its pong proves the
// whole path is alive.
var pingFrame = []byte(`{"type":"ping"}`)

// wsConn is one WebSocket connection: a writer goroutine that drains an
// unbounded queue (so senders never block on the network, and frames leave
// in the order they were queued) and a reader goroutine that hands each
// frame to dispatch. The connection is over when done is closed.
type wsConn struct {
	ws     *websocket.Conn
	addr   string
	opened time.Time

	pingEvery    time.Duration
	writeTimeout time.Duration
	pace         *pacer

	lastRecv atomic.Int64 // unix nanoseconds of the last frame received

	mu    sync.Mutex
	queue [][]byte
	wake  chan struct{}

	done chan struct{} // closed when the reader returned
	err  error         // why the reader returned; set before done closes
	wg   sync.WaitGroup
}

func newWSConn(ws *websocket.Conn, addr string, o *Options) *wsConn {
	c := &wsConn{
		ws:           ws,
		addr:         addr,
		opened:       time.Now(),
		pingEvery:    o.PingInterval,
		writeTimeout: o.WriteTimeout,
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	if o.MaxFramesPerSecond > 0 {
		c.pace = newPacer(o.MaxFramesPerSecond)
	}
	c.lastRecv.Store(time.Now().UnixNano())
	return c
}

// send queues one frame. It never blocks; frames queued on a connection
// that has ended are dropped (the caller's request logic re-sends what
// needs re-sending on the next connection).
func (c *wsConn) send(data []byte) {
	c.mu.Lock()
	c.queue = append(c.queue, data)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// start runs the reader and the writer.
func (c *wsConn) start(dispatch func([]byte)) {
	c.wg.Add(2)
	go c.readLoop(dispatch)
	go c.writeLoop()
}

func (c *wsConn) deadline() {
	if c.pingEvery > 0 {
		_ = c.ws.SetReadDeadline(time.Now().Add(2 * c.pingEvery))
	}
}

func (c *wsConn) readLoop(dispatch func([]byte)) {
	defer c.wg.Done()
	defer close(c.done)
	c.deadline()
	c.ws.SetPingHandler(func(data string) error {
		// A WebSocket-level ping from the server also proves liveness.
		// A failed pong is the writer's problem to notice, as in gorilla's
		// default handler.
		c.deadline()
		_ = c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.writeTimeout))
		return nil
	})
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		c.lastRecv.Store(time.Now().UnixNano())
		c.deadline()
		dispatch(data)
	}
}

func (c *wsConn) writeLoop() {
	defer c.wg.Done()
	var tick <-chan time.Time
	if c.pingEvery > 0 {
		t := time.NewTicker(c.pingEvery / 2)
		defer t.Stop()
		tick = t.C
	}
	var batch [][]byte
	for {
		select {
		case <-c.done:
			return
		case <-tick:
			if time.Since(time.Unix(0, c.lastRecv.Load())) < c.pingEvery {
				continue
			}
			if !c.write(pingFrame) {
				return
			}
			continue
		case <-c.wake:
		}
		c.mu.Lock()
		batch, c.queue = c.queue, batch[:0]
		c.mu.Unlock()
		for i, data := range batch {
			if c.pace != nil && !c.pace.wait(c.done) {
				return
			}
			if !c.write(data) {
				return
			}
			batch[i] = nil
		}
	}
}

// write sends one text frame; on failure it closes the connection, which
// ends the reader, and reports false.
func (c *wsConn) write(data []byte) bool {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		_ = c.ws.Close()
		return false
	}
	return true
}

// shutdown closes the connection politely (a close frame with code, then a
// moment for the server's answer) and waits for both goroutines.
func (c *wsConn) shutdown(code int, text string, grace time.Duration) {
	msg := websocket.FormatCloseMessage(code, text)
	if c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(grace)) == nil {
		select {
		case <-c.done:
		case <-time.After(grace):
		}
	}
	_ = c.ws.Close()
	c.wg.Wait()
}

// abort drops the connection without a close frame and waits for both
// goroutines.
func (c *wsConn) abort() {
	_ = c.ws.Close()
	c.wg.Wait()
}

// closeCode returns the close code and text the server ended the
// connection with, or 0 and "" when it just broke.
func (c *wsConn) closeCode() (int, string) {
	var ce *websocket.CloseError
	if errors.As(c.err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
		return ce.Code, ce.Text
	}
	return 0, ""
}

// pacer is a token bucket: rate frames per second, bursts of twice that.
type pacer struct {
	mu     sync.Mutex
	every  time.Duration // one token per every
	burst  float64
	tokens float64
	last   time.Time
}

// minPace is the slowest slowDown makes a pacer: frames per second.
const minPace = 5

func newPacer(rate int) *pacer {
	return &pacer{every: time.Second / time.Duration(rate), burst: float64(2 * rate), tokens: float64(2 * rate), last: time.Now()}
}

// slowDown halves the rate (down to minPace) and empties the bucket: the
// server's limit is lower than the client thought.
func (p *pacer) slowDown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.every = min(2*p.every, time.Second/minPace)
	p.burst = max(1, p.burst/2)
	p.tokens = 0
	p.last = time.Now()
}

// wait takes a token, sleeping until one is available; it reports false
// if done closed first.
func (p *pacer) wait(done <-chan struct{}) bool {
	p.mu.Lock()
	now := time.Now()
	p.tokens = min(p.burst, p.tokens+float64(now.Sub(p.last))/float64(p.every))
	p.last = now
	p.tokens--
	sleep := time.Duration(-p.tokens * float64(p.every))
	p.mu.Unlock()
	if sleep <= 0 {
		return true
	}
	t := time.NewTimer(sleep)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
