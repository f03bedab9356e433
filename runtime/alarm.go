package runtime

import (
	"context"
	"time"

	"github.com/holocron-run/holocron/storage"
)

// alarmScheduler fires due alarms from the store's alarm index. Each object
// has at most one alarm in flight; a failed alarm is retried with
// exponential backoff and dropped after Options.AlarmRetries retries.
type alarmScheduler struct {
	rt   *Runtime
	wake chan struct{}
	// stopped is closed when run returns: from then on the scheduler
	// does not touch the store.
	stopped chan struct{}

	// Owned by run.
	inflight map[ID]bool
	retry    map[ID]alarmRetry
	results  chan alarmResult
}

type alarmRetry struct {
	// at is the failing alarm's time: an alarm the object set anew is
	// another alarm, with retries of its own.
	at        time.Time
	attempts  int
	notBefore time.Time
}

type alarmResult struct {
	id ID
	at time.Time
	ok bool
}

func newAlarmScheduler(rt *Runtime) *alarmScheduler {
	return &alarmScheduler{
		rt:       rt,
		wake:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
		inflight: map[ID]bool{},
		retry:    map[ID]alarmRetry{},
		results:  make(chan alarmResult, 64),
	}
}

// poke makes the scheduler look at the alarm index again (an alarm was set).
func (a *alarmScheduler) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// maxAlarmSleep bounds how long the scheduler sleeps, so a clock that jumps
// or an alarm written by another path is noticed.
const maxAlarmSleep = time.Second

func (a *alarmScheduler) run(ctx context.Context) {
	defer close(a.stopped)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-a.wake:
		case r := <-a.results:
			a.record(r)
		}
		next := a.fire(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

func (a *alarmScheduler) record(r alarmResult) {
	delete(a.inflight, r.id)
	if r.ok {
		delete(a.retry, r.id)
		return
	}
	rt := a.rt
	st := a.retry[r.id]
	if !st.at.Equal(r.at) {
		st = alarmRetry{at: r.at}
	}
	st.attempts++
	if st.attempts > rt.opts.AlarmRetries {
		// The last run's own batch deleted the alarm (see lastAlarm), and
		// r comes once that is durable.
		rt.log.Error("alarm dropped after retries", "object", r.id.String(), "attempts", st.attempts)
		delete(a.retry, r.id)
		rt.metrics.alarmsDropped.Inc()
		return
	}
	st.notBefore = rt.opts.Now().Add(time.Second << (st.attempts - 1))
	a.retry[r.id] = st
	// Counted once scheduled: whoever reads the counter may move the clock.
	rt.metrics.alarmRetries.Inc()
}

// fire dispatches every due alarm not already in flight or backing off and
// returns how long to sleep.
func (a *alarmScheduler) fire(ctx context.Context) time.Duration {
	rt := a.rt
	now := rt.opts.Now()
	due, err := rt.opts.Store.Alarms(now, 512)
	if err != nil {
		rt.log.Error("read alarm index", "err", err)
		return maxAlarmSleep
	}
	sleep := maxAlarmSleep
	for _, al := range due {
		id := ID(al.Object)
		if a.inflight[id] {
			continue
		}
		r, retrying := a.retry[id]
		if retrying && !r.at.Equal(al.At) {
			// The object set a new alarm: it starts afresh.
			delete(a.retry, id)
			r, retrying = alarmRetry{}, false
		}
		if retrying && now.Before(r.notBefore) {
			sleep = min(sleep, r.notBefore.Sub(now))
			continue
		}
		ns, err := rt.Namespace(al.Meta.Class)
		if err != nil {
			rt.log.Error("alarm for unknown class; dropping", "class", al.Meta.Class, "object", id.String())
			rt.opts.Store.Commit(&storage.Batch{Object: al.Object, Alarm: storage.AlarmChange{Delete: true}}, func(error) {})
			continue
		}
		e, err := rt.acquire(ns.class, ns.ctor, id, al.Meta.Name)
		if err != nil {
			return sleep
		}
		a.inflight[id] = true
		at := al.At
		results := a.results
		ev := event{kind: evAlarm, alarmAt: at, lastAlarm: r.attempts >= rt.opts.AlarmRetries, alarmDone: func(ok bool) {
			go func() {
				select {
				case results <- alarmResult{id: id, at: at, ok: ok}:
				case <-ctx.Done():
				}
			}()
		}}
		if err := e.deliver(ctx, ev); err != nil {
			delete(a.inflight, id)
		}
		e.release()
	}
	if next, ok, err := rt.opts.Store.NextAlarm(); err == nil && ok {
		if d := next.Sub(now); d > 0 {
			sleep = min(sleep, d)
		}
	}
	return sleep
}
