package mqtt

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Reasons a client or one of its packets is refused: the reason label of
// lifeline_mqtt_denied_total and the reason passed to Auth.OnDenied.
const (
	DeniedAnonymous      = "anonymous"        // CONNECT without a username
	DeniedCredentials    = "bad_credentials"  // wrong password, unknown unit or a username no unit can have
	DeniedClientID       = "client_id"        // a unit's client id is not its username, the server's lacks its prefix, or the id is reserved
	DeniedWill           = "will"             // a last will on a topic other than the unit's own online topic
	DeniedPublish        = "publish"          // a publish to a topic the client may not write
	DeniedSubscribe      = "subscribe"        // a subscription (or delivery) the client may not read
	DeniedFlood          = "flood"            // over the message rate for longer than FloodTimeout; disconnected
	DeniedPacketTooLarge = "packet_too_large" // a packet over MaxPacketSize; disconnected
	DeniedTopic          = "topic"            // a QoS 1 or 2 publish to a topic no client may publish to ($SYS); refused (MQTT 5) or disconnected (3.1.1)
	DeniedPenalty        = "penalty"          // a CONNECT from a client serving a penalty for repeated offences; held, then refused
	DeniedConnLimit      = "conn_limit"       // a connection over MaxConns; closed at once
)

var deniedReasons = []string{
	DeniedAnonymous, DeniedCredentials, DeniedClientID, DeniedWill,
	DeniedPublish, DeniedSubscribe, DeniedFlood, DeniedPacketTooLarge,
	DeniedTopic, DeniedPenalty, DeniedConnLimit,
}

// Metrics are the embedded broker's Prometheus metrics:
//
//	lifeline_mqtt_denied_total{reason}   connections and packets refused by the access rules and limits
//	lifeline_mqtt_ingest_errors_total    uplink the Ingest handler failed on: left unacknowledged (and wills not recorded)
//	lifeline_mqtt_throttled_total        messages held back until the client's message rate allowed them
type Metrics struct {
	denied       *prometheus.CounterVec
	ingestErrors prometheus.Counter
	throttled    prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg; reg may be
// nil, which leaves them unregistered (for tests). It panics if they are
// already registered with reg, like prometheus.MustRegister.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "lifeline", Subsystem: "mqtt", Name: "denied_total",
			Help: "MQTT connections and packets refused by the broker's access rules and limits, by reason.",
		}, []string{"reason"}),
		ingestErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "lifeline", Subsystem: "mqtt", Name: "ingest_errors_total",
			Help: "Uplink messages the broker's ingest handler failed on; left unacknowledged so that the terminal retransmits them.",
		}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "lifeline", Subsystem: "mqtt", Name: "throttled_total",
			Help: "Messages held back until the publishing client's message rate allowed them.",
		}),
	}
	for _, r := range deniedReasons {
		m.denied.WithLabelValues(r) // export zeros
	}
	if reg != nil {
		reg.MustRegister(m.denied, m.ingestErrors, m.throttled)
	}
	return m
}

// Denied returns the current count of refusals for reason.
func (m *Metrics) Denied(reason string) float64 {
	return counterValue(m.denied.WithLabelValues(reason))
}

// IngestErrors returns the current count of messages the Ingest handler
// failed on.
func (m *Metrics) IngestErrors() float64 { return counterValue(m.ingestErrors) }

// Throttled returns the current count of messages held back by the rate
// limit.
func (m *Metrics) Throttled() float64 { return counterValue(m.throttled) }

func counterValue(c prometheus.Counter) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		return 0
	}
	return d.GetCounter().GetValue()
}
