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

	// Owned by run.
	inflight map[ID]bool
	retry    map[ID]alarmRetry
	results  chan alarmResult
}

type alarmRetry struct {
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
	st.attempts++
	if st.attempts > rt.opts.AlarmRetries {
		rt.log.Error("alarm dropped after retries", "object", r.id.String(), "attempts", st.attempts)
		delete(a.retry, r.id)
		rt.metrics.alarmsDropped.Inc()
		rt.opts.Store.Commit(&storage.Batch{Object: storage.ObjectID(r.id), Alarm: storage.AlarmChange{Delete: true}}, func(error) {})
		return
	}
	rt.metrics.alarmRetries.Inc()
	st.notBefore = rt.opts.Now().Add(time.Second << (st.attempts - 1))
	a.retry[r.id] = st
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
		if r, ok := a.retry[id]; ok && now.Before(r.notBefore) {
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
		ev := event{kind: evAlarm, alarmDone: func(ok bool) {
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
