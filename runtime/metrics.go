package runtime

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runtime's Prometheus collectors. With no Registerer they
// still count (tests read them) but nobody scrapes them.
type metrics struct {
	objectsActive prometheus.Gauge
	socketsOpen   prometheus.Gauge
	socketsParked prometheus.Gauge
	edgeSockets   prometheus.Gauge
	activations   prometheus.Counter
	evictions     prometheus.Counter
	events        *prometheus.CounterVec
	eventSeconds  prometheus.Histogram
	queueSeconds  prometheus.Histogram
	commitSeconds prometheus.Histogram
	sendDelay     prometheus.Histogram
	panics        prometheus.Counter
	wsMessagesIn  prometheus.Counter
	wsFramesOut   prometheus.Counter
	wsRateLimited prometheus.Counter
	alarmsFired   prometheus.Counter
	alarmRetries  prometheus.Counter
	alarmsDropped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		objectsActive: prometheus.NewGauge(prometheus.GaugeOpts{Name: "holocron_objects_active", Help: "Objects with a live instance or open sockets on this node."}),
		socketsOpen:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "holocron_websockets_open", Help: "Open WebSockets on this node."}),
		edgeSockets:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "holocron_websockets_edge", Help: "Client WebSockets this node holds (is the edge of) for objects that other nodes own; holocron_websockets_open counts the sockets of this node's objects, wherever their clients connected."}),
		socketsParked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "holocron_websockets_parked", Help: "Open WebSockets quiet long enough to wait in the idle poller, without a goroutine (Linux)."}),
		activations:   prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_object_activations_total", Help: "Object instances constructed (first use or wake from hibernation)."}),
		evictions:     prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_object_evictions_total", Help: "Idle object instances evicted."}),
		events:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "holocron_object_events_total", Help: "Events handled by objects, by kind."}, []string{"kind"}),
		eventSeconds:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "holocron_object_event_seconds", Help: "Time in object handlers per event (excluding the commit wait).", Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10)}),
		queueSeconds:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "holocron_object_event_queue_seconds", Help: "Time an event waited for its object's actor (mailbox and backpressure) before its handler ran.", Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10)}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "holocron_object_commit_seconds", Help: "Time from an event's batch going to the store to it being durable (replicated, in a cluster); the event's outputs wait this long.", Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10)}),
		sendDelay:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "holocron_websocket_send_delay_seconds", Help: "Time the oldest frame of a burst waited in a socket's queue before its writer took it.", Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10)}),
		panics:        prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_object_panics_total", Help: "Object handler panics (the event's writes were dropped)."}),
		wsMessagesIn:  prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_websocket_messages_received_total", Help: "WebSocket messages received."}),
		wsFramesOut:   prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_websocket_messages_sent_total", Help: "WebSocket messages written to clients."}),
		wsRateLimited: prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_websocket_messages_rate_limited_total", Help: "WebSocket messages dropped by the per-socket rate limit."}),
		alarmsFired:   prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_alarms_fired_total", Help: "Alarms whose handler succeeded."}),
		alarmRetries:  prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_alarm_retries_total", Help: "Alarm handler failures scheduled for retry."}),
		alarmsDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_alarms_dropped_total", Help: "Alarms given up after their retries."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.objectsActive, m.socketsOpen, m.socketsParked, m.edgeSockets, m.activations, m.evictions, m.events,
		m.eventSeconds, m.queueSeconds, m.commitSeconds, m.sendDelay, m.panics, m.wsMessagesIn, m.wsFramesOut, m.wsRateLimited, m.alarmsFired, m.alarmRetries, m.alarmsDropped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
