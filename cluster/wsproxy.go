package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/internal/corkconn"
	"github.com/holocron-run/holocron/runtime"
)

// maxRelayedMessage bounds one message relayed between a client and the
// leader (the runtime's own frame limit is the same).
const maxRelayedMessage = 16 << 20

// relayBufferSize is the read buffer of each side of a relay, and the size
// of the write buffers the relays share: an idle forwarded socket holds two
// small read buffers, not four 4 KiB buffers (gorilla's defaults). Larger
// messages go through in several reads and writes (corkconn coalesces the
// writes).
const relayBufferSize = 1024

// cork wraps a dial function so the connection it makes is corked (its
// writes coalesced) and recorded in *last; nil stays nil.
func (n *Node) cork(dial func(ctx context.Context, network, addr string) (net.Conn, error), last **corkconn.Conn) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		*last = &corkconn.Conn{Conn: c, Pool: &n.relayCorkBuffers}
		return *last, nil
	}
}

// forwardWebSocket relays a WebSocket to the partition's leader message by
// message rather than as raw bytes, so that when the leader goes away the
// client still gets a proper close frame: 1012 "moved", which tells it to
// reconnect through any node. A close the leader sends is passed on as is.
// It reports retry, having written nothing, when no candidate could be
// dialled or the one reached answered that it no longer serves the
// partition.
func (n *Node) forwardWebSocket(w http.ResponseWriter, r *http.Request, p int, candidates []string) (retry bool) {
	header := http.Header{}
	for _, k := range []string{"Authorization", "Cookie", "Origin", "User-Agent"} {
		if v := r.Header.Values(k); len(v) > 0 {
			header[k] = v
		}
	}
	header.Set(HopHeader, n.cfg.NodeName)
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		header.Set("X-Forwarded-For", host)
	}
	netDialer := &net.Dialer{Timeout: 2 * time.Second}
	var backendConn *corkconn.Conn // the connection of the last dial
	dialer := websocket.Dialer{
		// With mutual TLS the relay is its own HTTP/1.1 connection to the
		// peer listener (WebSocket upgrades need HTTP/1.1), proven like
		// the link's: the node there must be the one routed to.
		NetDialTLSContext: n.cork(n.peer.DialWebSocketTLS(), &backendConn),
		HandshakeTimeout:  5 * time.Second,
		ReadBufferSize:    relayBufferSize,
		WriteBufferSize:   relayBufferSize,
		WriteBufferPool:   &n.relayWriteBuffers,
		NetDialContext:    n.cork(netDialer.DialContext, &backendConn),
		Subprotocols:      websocket.Subprotocols(r),
	}
	var backend *websocket.Conn
	for _, addr := range candidates {
		u := n.peer.WebSocketURL(addr, r.URL.RequestURI())
		conn, resp, err := dialer.DialContext(r.Context(), u, header)
		if err == nil {
			backend = conn
			break
		}
		if resp != nil && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(runtime.HeaderNotServed) != "" {
			// It no longer serves the partition: route again.
			resp.Body.Close()
			return true
		}
		if resp != nil {
			// The leader answered without upgrading (an error, or
			// unavailable): that answer is the client's.
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			if resp.Body != nil {
				io.Copy(w, resp.Body)
			}
			return
		}
		n.log.Debug("forward websocket failed", "to", addr, "err", err)
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			// The upgrade request may have reached the leader (the
			// handshake timed out, or its answer broke off): sending it
			// again could run the object's accept twice.
			unavailable(w, fmt.Sprintf("partition %d leader did not answer the upgrade", p))
			return false
		}
	}
	if backend == nil {
		return true // no candidate could be dialled: route again
	}
	up := websocket.Upgrader{
		CheckOrigin:     func(*http.Request) bool { return true },
		ReadBufferSize:  relayBufferSize,
		WriteBufferSize: relayBufferSize,
		WriteBufferPool: &n.relayWriteBuffers,
	}
	if sp := backend.Subprotocol(); sp != "" {
		up.Subprotocols = []string{sp}
	}
	hj := &corkconn.Hijacker{ResponseWriter: w, Pool: &n.relayCorkBuffers}
	client, err := up.Upgrade(hj, r, nil)
	if err != nil {
		backend.Close()
		return
	}
	// Each relay's writes go out when it is about to wait for its source.
	hj.Conn.FlushOnRead, backendConn.FlushOnRead = backendConn, hj.Conn
	client.SetReadLimit(maxRelayedMessage)
	backend.SetReadLimit(maxRelayedMessage)
	go relay(backend, client, hj.Conn, &n.relayReadBuffers, websocket.CloseServiceRestart, "moved")
	go relay(client, backend, backendConn, &n.relayReadBuffers, websocket.CloseGoingAway, "client gone")
	return false
}

// relay copies messages from src to dst until src ends, then closes dst
// with src's close code, or with code and reason when src broke off
// without one.
func relay(src, dst *websocket.Conn, dstConn *corkconn.Conn, bufs *sync.Pool, code int, reason string) {
	defer src.Close()
	for {
		typ, msg, err := src.NextReader()
		var buf *[]byte
		if err == nil {
			// Borrowed only while a message passes: a quiet relay holds no
			// buffer, and a busy one allocates none per message.
			buf = borrowRelayBuffer(bufs)
			*buf, err = appendMessage((*buf)[:0], msg)
		}
		if err != nil {
			if buf != nil {
				returnRelayBuffer(bufs, buf)
			}
			// A connection that broke off (1006 as gorilla reports an
			// unexpected EOF, or any other error) keeps the default.
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
				code, reason = ce.Code, ce.Text
				if code == websocket.CloseNoStatusReceived {
					code, reason = websocket.CloseNormalClosure, ""
				}
			}
			dst.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
			dst.Close()
			return
		}
		// Held until src's next Read: messages already received go out
		// together.
		dstConn.Hold()
		err = dst.WriteMessage(typ, *buf) // copied out before it returns
		returnRelayBuffer(bufs, buf)
		if err != nil {
			return
		}
	}
}

// maxPooledRelayBuffer is the largest message buffer a relay gives back to
// the pool; the rare larger message's buffer is left to the collector.
const maxPooledRelayBuffer = 64 << 10

func borrowRelayBuffer(bufs *sync.Pool) *[]byte {
	if b, ok := bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, relayBufferSize)
	return &b
}

func returnRelayBuffer(bufs *sync.Pool, b *[]byte) {
	if cap(*b) <= maxPooledRelayBuffer {
		bufs.Put(b)
	}
}

// appendMessage appends the rest of a message to buf.
func appendMessage(buf []byte, msg io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := msg.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
