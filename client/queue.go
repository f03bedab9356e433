package client

import "sync"

// eventQueue hands events to the application in order without ever blocking
// the connection's reader: a reader blocked on a slow application could not
// read the replies the application itself waits for. Events wait in memory
// until the application takes them, so an application must drain Events
// (or Close the client).
type eventQueue struct {
	out  chan Event
	wake chan struct{}
	quit chan struct{} // closed by stop: give up on undelivered events
	done chan struct{} // closed when run returned (and out is closed)

	mu       sync.Mutex
	items    []Event
	finished bool // no more events will come: close out once drained
	stopOnce sync.Once
}

func newEventQueue() *eventQueue {
	q := &eventQueue{
		out:  make(chan Event),
		wake: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go q.run()
	return q
}

// push queues e. Events pushed after finish are dropped.
func (q *eventQueue) push(e Event) {
	q.mu.Lock()
	if q.finished {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, e)
	q.mu.Unlock()
	q.signal()
}

func (q *eventQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// finish says no more events will be pushed: out closes once the
// application has taken the queued ones.
func (q *eventQueue) finish() {
	q.mu.Lock()
	q.finished = true
	q.mu.Unlock()
	q.signal()
}

// stop drops undelivered events, closes out and waits for run to return.
func (q *eventQueue) stop() {
	q.finish()
	q.stopOnce.Do(func() { close(q.quit) })
	<-q.done
}

func (q *eventQueue) run() {
	defer close(q.done)
	defer close(q.out)
	for {
		q.mu.Lock()
		var next Event
		if len(q.items) > 0 {
			next = q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
		}
		finished := q.finished
		q.mu.Unlock()
		if next == nil {
			if finished {
				return
			}
			select {
			case <-q.wake:
				continue
			case <-q.quit:
				return
			}
		}
		select {
		case q.out <- next:
		case <-q.quit:
			return
		}
	}
}
