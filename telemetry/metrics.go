package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// KindUnknown labels the metrics of a message whose topic names no kind of
// contract v1.
const KindUnknown Kind = "unknown"

// Metrics are the Pipeline's Prometheus metrics:
//
//	lifeline_telemetry_messages_total{kind}         messages handled, bad ones included (cmd excluded)
//	lifeline_telemetry_rejected_total{kind,reason}  messages dropped, and for gps each fix dropped
//	lifeline_telemetry_fixes_total                  fixes accepted and handed to the Sink
//	lifeline_telemetry_handle_seconds               time Handle took, the Sink included
type Metrics struct {
	messages *prometheus.CounterVec
	rejected *prometheus.CounterVec
	fixes    prometheus.Counter
	handle   prometheus.Histogram

	// byKind caches the messages counter of each uplink kind, the hot path.
	byKind map[Kind]prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg; reg may be
// nil, which leaves them unregistered (for tests). It panics if they are
// already registered with reg, like prometheus.MustRegister.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "lifeline", Subsystem: "telemetry", Name: "messages_total",
			Help: "Telemetry messages handled by kind, bad ones included.",
		}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "lifeline", Subsystem: "telemetry", Name: "rejected_total",
			Help: "Telemetry messages (and gps fixes) dropped, by kind and reason.",
		}, []string{"kind", "reason"}),
		fixes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "lifeline", Subsystem: "telemetry", Name: "fixes_total",
			Help: "GPS fixes accepted and handed on.",
		}),
		handle: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "lifeline", Subsystem: "telemetry", Name: "handle_seconds",
			Help:    "Time to handle one telemetry message, the sink included.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10), // 10µs to 2.6s
		}),
		byKind: make(map[Kind]prometheus.Counter),
	}
	for _, k := range []Kind{KindGPS, KindVideo, KindStatus, KindAck, KindOnline, KindUnknown} {
		m.byKind[k] = m.messages.WithLabelValues(string(k))
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.rejected, m.fixes, m.handle)
	}
	return m
}

func (m *Metrics) message(k Kind) {
	c, ok := m.byKind[k]
	if !ok {
		c = m.byKind[KindUnknown]
	}
	c.Inc()
}

func (m *Metrics) reject(k Kind, r Reason) {
	m.rejected.WithLabelValues(string(k), string(r)).Inc()
}

// Messages returns the current count of messages of kind k.
func (m *Metrics) Messages(k Kind) float64 {
	return counterValue(m.messages.WithLabelValues(string(k)))
}

// Rejected returns the current count of rejections of kind k for reason r.
func (m *Metrics) Rejected(k Kind, r Reason) float64 {
	return counterValue(m.rejected.WithLabelValues(string(k), string(r)))
}

// Fixes returns the current count of accepted fixes.
func (m *Metrics) Fixes() float64 { return counterValue(m.fixes) }

func counterValue(c prometheus.Counter) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		return 0
	}
	return d.GetCounter().GetValue()
}
