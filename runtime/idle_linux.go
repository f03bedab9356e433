package runtime

import (
	"errors"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// waitReadable waits, for at most linger (0: only looks; < 0: no limit), until raw has
// something to read, without reading it: the caller's buffered reader and
// the WebSocket state above it are untouched, so giving up is harmless.
// deadline sets the connection's read deadline, which bounds the wait.
func waitReadable(raw syscall.RawConn, deadline func(time.Time) error, linger time.Duration) readiness {
	if raw == nil {
		return readReady
	}
	until := time.Time{} // linger < 0: no limit
	if linger >= 0 {
		until = time.Now().Add(linger)
	}
	if err := deadline(until); err != nil {
		return readFailed
	}
	var peek [1]byte
	err := raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Data, end of stream or an error: a read will tell which.
		return err != syscall.EAGAIN
	})
	switch {
	case err == nil:
		return readReady
	case errors.Is(err, os.ErrDeadlineExceeded):
		return readIdle
	default:
		return readFailed
	}
}

// idlePoller holds the sockets that have gone quiet, so that they cost no
// goroutine: one epoll instance watches them all, and the first byte that
// arrives on one (a message, a pong, the peer's close) starts its reader
// again. This is what lets a node hold tens of thousands of idle sockets in
// a few KiB each; a goroutine's stack alone would be 4–8 KiB.
type idlePoller struct {
	log   *slog.Logger
	gauge prometheus.Gauge
	once  sync.Once
	err   error
	epfd  int
	// wakeR/wakeW is a pipe in the epoll set that ends run at shutdown.
	wakeR, wakeW int

	// fdMu keeps epfd open while park uses it; run closes it at shutdown.
	fdMu     sync.RWMutex
	fdClosed bool

	mu      sync.Mutex
	parked  map[uint64]*socketConn
	nextID  uint64
	running bool
	closed  bool
}

func newIdlePoller(log *slog.Logger, gauge prometheus.Gauge) *idlePoller {
	return &idlePoller{log: log, gauge: gauge, parked: map[uint64]*socketConn{}}
}

// count is how many sockets are parked.
func (p *idlePoller) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// wakeID marks the shutdown pipe's events; socket IDs start at 1.
const wakeID = 0

func (p *idlePoller) start() error {
	p.once.Do(func() {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			p.err = err
			return
		}
		var pipe [2]int
		if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
			syscall.Close(epfd)
			p.err = err
			return
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeID}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pipe[0], &ev); err != nil {
			syscall.Close(epfd)
			syscall.Close(pipe[0])
			syscall.Close(pipe[1])
			p.err = err
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed {
			syscall.Close(epfd)
			syscall.Close(pipe[0])
			syscall.Close(pipe[1])
			p.err = errors.New("idle poller closed")
			return
		}
		p.epfd, p.wakeR, p.wakeW = epfd, pipe[0], pipe[1]
		p.running = true
		go p.run()
	})
	return p.err
}

// park hands connection c to the poller; true means the poller now owns its
// reading and the caller (c's reader) must return. False leaves the
// reader in charge: the poller is unavailable, or the socket is closing.
func (p *idlePoller) park(c *socketConn) bool {
	r := c.reader
	if r.raw == nil || p.start() != nil {
		return false
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	p.nextID++
	id := p.nextID
	p.parked[id] = c
	c.parkID = id
	p.gauge.Inc()
	p.mu.Unlock()

	// Level-triggered and one-shot: bytes that are already there report at
	// once, and the socket reports once per parking.
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(id),
		Pad:    int32(id >> 32),
	}
	var ctlErr error
	p.fdMu.RLock()
	defer p.fdMu.RUnlock()
	if p.fdClosed {
		return !p.take(id)
	}
	err := r.raw.Control(func(fd uintptr) {
		// Re-arm the socket's registration, or make its first one.
		ctlErr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		if ctlErr == syscall.ENOENT {
			ctlErr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if err == nil && ctlErr == nil {
		return true
	}
	// Not watched (the socket is being closed): whoever took it out of the
	// map meanwhile started a reader; otherwise this one goes on.
	return !p.take(id)
}

// take removes a parked socket; true if it was parked under id.
func (p *idlePoller) take(id uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.parked[id]; !ok {
		return false
	}
	delete(p.parked, id)
	p.gauge.Dec()
	return true
}

// unpark takes c back from the poller, if it is parked; true means the
// caller now owns its reading.
func (p *idlePoller) unpark(c *socketConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if got, ok := p.parked[c.parkID]; ok && got == c {
		delete(p.parked, c.parkID)
		p.gauge.Dec()
		return true
	}
	return false
}

func (p *idlePoller) run() {
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			p.log.Error("idle socket poller stopped", "err", err)
			p.shutdown()
			p.closeFDs()
			return
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == wakeID {
				p.closeFDs()
				return
			}
			p.mu.Lock()
			c, ok := p.parked[id]
			if ok {
				delete(p.parked, id)
				p.gauge.Dec()
			}
			p.mu.Unlock()
			if ok {
				go c.readLoop()
			}
		}
	}
}

// closeFDs closes the epoll instance and the wake-up pipe once no park is
// using them.
func (p *idlePoller) closeFDs() {
	p.fdMu.Lock()
	defer p.fdMu.Unlock()
	p.fdClosed = true
	syscall.Close(p.epfd)
	syscall.Close(p.wakeR)
	syscall.Close(p.wakeW)
}

// shutdown stops the poller and gives every parked socket its reader back.
func (p *idlePoller) shutdown() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	parked := p.parked
	p.parked = map[uint64]*socketConn{}
	p.gauge.Sub(float64(len(parked)))
	running := p.running
	p.mu.Unlock()
	for _, c := range parked {
		go c.readLoop()
	}
	if running {
		syscall.Write(p.wakeW, []byte{0})
	}
}
