package runtime

import (
	"bytes"
	"net/http"

	"github.com/holocron-run/holocron/protocol"
)

// gatedResponse buffers an object's HTTP response until the gate opens.
type gatedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
	socket *WebSocket // set by AcceptWebSocket
	failed error
}

func newGatedResponse() *gatedResponse { return &gatedResponse{header: http.Header{}} }

func (g *gatedResponse) Header() http.Header { return g.header }

func (g *gatedResponse) WriteHeader(status int) {
	if g.status == 0 {
		g.status = status
	}
}

func (g *gatedResponse) Write(p []byte) (int, error) {
	if g.status == 0 {
		g.status = http.StatusOK
	}
	return g.body.Write(p)
}

func (g *gatedResponse) reset() {
	g.header = http.Header{}
	g.status = 0
	g.body.Reset()
	if g.socket != nil {
		go g.socket.terminate(protocol.CloseInternalError, "handler failed")
		g.socket = nil
	}
}

func (g *gatedResponse) writeTo(w http.ResponseWriter) {
	for k, v := range g.header {
		w.Header()[k] = v
	}
	// Only the runtime may say that a request left no trace: a node in
	// front would send it again.
	w.Header().Del(HeaderNotServed)
	if g.status == 0 {
		g.status = http.StatusOK
	}
	w.WriteHeader(g.status)
	_, _ = w.Write(g.body.Bytes())
}
