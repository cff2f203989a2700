package dispatch

import "github.com/prometheus/client_golang/prometheus"

// metrics are the engine's own Prometheus metrics.
type metrics struct {
	pressRefused *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		pressRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeline_status_refused_total",
			Help: "Crew status presses refused because the lifecycle does not allow them, by the unit's status and the status pressed.",
		}, []string{"from", "to"}),
	}
	if reg != nil {
		reg.MustRegister(m.pressRefused)
	}
	return m
}
