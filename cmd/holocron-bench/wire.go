package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The load generator shares the machine's cores with the server, so it
// builds client frames by appending to reused buffers and reads server
// frames by scanning for the few fields it needs instead of decoding them.
// That is sound because Holocron writes every frame with encoding/json from
// structs (fixed field order, "type" first) and every string the tool
// scans for (room and player ids, clientMsgIds, contents) is its own,
// free of characters JSON would escape.

// appendJoinRoom appends a join_room frame; since is sent when hasSince.
func appendJoinRoom(b []byte, room, player string, since string, hasSince bool) []byte {
	b = append(b, `{"type":"join_room","roomId":"`...)
	b = append(b, room...)
	b = append(b, `","playerId":"`...)
	b = append(b, player...)
	b = append(b, `","playerName":"`...)
	b = append(b, player...)
	if hasSince {
		b = append(b, `","since":"`...)
		b = append(b, since...)
	}
	return append(b, `"}`...)
}

// appendSendMessage appends a send_message frame whose content starts with
// stamp (the send time, in nanoseconds since the run's base time) padded
// with 'x' to size bytes, and whose clientMsgId is seq.
func appendSendMessage(b []byte, room, player string, seq, stamp int64, size int) []byte {
	b = append(b, `{"type":"send_message","roomId":"`...)
	b = append(b, room...)
	b = append(b, `","playerId":"`...)
	b = append(b, player...)
	b = append(b, `","content":"`...)
	n := len(b)
	b = strconv.AppendInt(b, stamp, 10)
	for len(b)-n < size {
		b = append(b, 'x')
	}
	b = append(b, `","clientMsgId":"`...)
	b = strconv.AppendInt(b, seq, 10)
	return append(b, `"}`...)
}

// appendGameAction appends a game_action frame carrying the send time.
func appendGameAction(b []byte, room, player string, stamp int64) []byte {
	b = append(b, `{"type":"game_action","roomId":"`...)
	b = append(b, room...)
	b = append(b, `","playerId":"`...)
	b = append(b, player...)
	b = append(b, `","action":"move","data":{"t":`...)
	b = strconv.AppendInt(b, stamp, 10)
	return append(b, `}}`...)
}

// frameType returns a server frame's type without decoding the frame.
func frameType(f []byte) []byte {
	const prefix = `{"type":"`
	if bytes.HasPrefix(f, []byte(prefix)) {
		rest := f[len(prefix):]
		if i := bytes.IndexByte(rest, '"'); i >= 0 {
			return rest[:i]
		}
	}
	t, _ := stringField(f, "type")
	return t
}

// stringField returns the value of the first string field named key in f,
// found by scanning (values with escaped quotes are cut short; the tool's
// own values have none).
func stringField(f []byte, key string) ([]byte, bool) {
	i := indexKey(f, key)
	if i < 0 || i >= len(f) || f[i] != '"' {
		return nil, false
	}
	v := f[i+1:]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil, false
	}
	return v[:j], true
}

// intField returns the value of the first integer field named key in f.
func intField(f []byte, key string) (int64, bool) {
	i := indexKey(f, key)
	if i < 0 {
		return 0, false
	}
	return leadingInt(f[i:])
}

// indexKey returns the index just past `"key":` in f, or -1.
func indexKey(f []byte, key string) int {
	var pat [72]byte
	p := append(pat[:0], '"')
	p = append(p, key...)
	p = append(p, '"', ':')
	i := bytes.Index(f, p)
	if i < 0 {
		return -1
	}
	return i + len(p)
}

// leadingInt parses the decimal digits at the start of b.
func leadingInt(b []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, i > 0
}

// chatDelivery is what a client needs from one new_message frame.
type chatDelivery struct {
	ID          []byte
	SenderID    []byte
	ClientMsgID int64
	HasCMID     bool
	Stamp       int64
	HasStamp    bool
}

// parseNewMessage scans a new_message frame. Holocron writes the message's
// fields in ChatMessage order: id, roomId, senderId, senderName, content,
// timestamp, type, clientMsgId.
func parseNewMessage(f []byte) (chatDelivery, bool) {
	var d chatDelivery
	i := indexKey(f, "message")
	if i < 0 {
		return d, false
	}
	m := f[i:]
	var ok bool
	if d.ID, ok = stringField(m, "id"); !ok {
		return d, false
	}
	if d.SenderID, ok = stringField(m, "senderId"); !ok {
		return d, false
	}
	if c, ok := stringField(m, "content"); ok {
		d.Stamp, d.HasStamp = leadingInt(c)
	}
	if c, ok := stringField(m, "clientMsgId"); ok {
		d.ClientMsgID, d.HasCMID = leadingInt(c)
	}
	return d, true
}

// wsDialer opens WebSockets from many loopback source addresses, so the
// 5-tuple space is not limited to one source IP's ~28k ephemeral ports.
type wsDialer struct {
	srcs []net.IP
	next atomic.Uint64
	ws   websocket.Dialer
}

// newWSDialer spreads connections over n source addresses 127.0.0.2…
// (when the target is IPv4 loopback; otherwise the kernel picks).
// Buffers are small: most sockets of a load test are idle or receive small
// frames, and every byte here is memory the server does not get.
func newWSDialer(n, readBuf, writeBuf int) *wsDialer {
	d := &wsDialer{}
	for i := range min(max(n, 0), 250) {
		d.srcs = append(d.srcs, net.IPv4(127, 0, byte((i+2)/256), byte((i+2)%256)))
	}
	d.ws = websocket.Dialer{
		HandshakeTimeout: 15 * time.Second,
		ReadBufferSize:   readBuf,
		WriteBufferSize:  writeBuf,
		NetDialContext:   d.dialContext,
	}
	return d
}

func (d *wsDialer) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	if host, _, err := net.SplitHostPort(addr); err == nil && len(d.srcs) > 0 {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() && ip.To4() != nil {
			nd.LocalAddr = &net.TCPAddr{IP: d.srcs[d.next.Add(1)%uint64(len(d.srcs))]}
		}
	}
	return nd.DialContext(ctx, network, addr)
}

// Dial opens a WebSocket to base (http://host:port) + path.
func (d *wsDialer) Dial(ctx context.Context, base, path string) (*websocket.Conn, error) {
	u, err := url.Parse(base + path)
	if err != nil {
		return nil, fmt.Errorf("websocket url: %w", err)
	}
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	c, resp, err := d.ws.DialContext(ctx, u.String(), nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", u, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	return c, nil
}

// frameReader reads whole text messages into one reused buffer: no
// allocation per frame. The returned slice is valid until the next Read.
type frameReader struct {
	c   *websocket.Conn
	buf []byte
}

func (r *frameReader) Read() ([]byte, error) {
	_, rd, err := r.c.NextReader()
	if err != nil {
		return nil, err
	}
	r.buf = r.buf[:0]
	for {
		if len(r.buf) == cap(r.buf) {
			r.buf = append(r.buf, 0)[:len(r.buf)]
		}
		n, err := rd.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+n]
		if errors.Is(err, io.EOF) {
			return r.buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// errorFrame is a server failure frame.
type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e errorFrame) Error() string { return e.Type + " " + e.Code + ": " + e.Message }

// awaitType reads frames until one of type want arrives; a join_failed or
// error frame first is returned as an error.
func awaitType(r *frameReader, want string) ([]byte, error) {
	for {
		f, err := r.Read()
		if err != nil {
			return nil, err
		}
		switch t := string(frameType(f)); t {
		case want:
			return f, nil
		case "join_failed", "error", "start_game_failed":
			var e errorFrame
			_ = json.Unmarshal(f, &e)
			return nil, e
		}
	}
}

// httpJSON sends body (if not nil) as JSON and decodes a JSON answer into
// out (if not nil); it returns the status code.
func httpJSON(ctx context.Context, hc *http.Client, method, u string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("encode %s %s: %w", method, u, err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, u, err)
		}
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, nil
}
