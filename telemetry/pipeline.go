package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Registry tells the units the system knows. dispatch implements it.
type Registry interface {
	Known(unit string) bool
}

// Sink receives the reports that pass the Pipeline. dispatch implements
// it; that is how it consumes telemetry. A Sink returns an error only when
// it could not take a report and wants it again (the broker redelivers).
//
// Positions for one unit are delivered one call at a time, in the order
// they were validated, with the unit's Validator state locked: a Sink must
// not call Validator.Check or Validator.Seed for that unit from within
// Positions. Positions without Fixes tell only of the terminal's Clock.
type Sink interface {
	Positions(ctx context.Context, p Positions) error
	Video(ctx context.Context, v Video) error
	Status(ctx context.Context, s Status) error
	Ack(ctx context.Context, a Ack) error
	Presence(ctx context.Context, p Presence) error
}

// LogEvery is how often the Pipeline logs dropped input per unit; what
// falls between is counted and reported as suppressed on the next line.
const LogEvery = time.Minute

// Pipeline is the ingest path between a broker client and the rest of the
// system: it parses the topic, checks the unit, decodes and validates the
// payload and hands the result to a Sink. It is safe for concurrent use.
type Pipeline struct {
	reg     Registry
	v       *Validator
	sink    Sink
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
	logs    logLimiter
}

// NewPipeline returns a Pipeline. A nil v gets a Validator with
// DefaultLimits, a nil m unregistered Metrics, a nil logger discards and a
// nil now is time.Now; now stamps Received times and paces logging.
func NewPipeline(reg Registry, v *Validator, sink Sink, m *Metrics, logger *slog.Logger, now func() time.Time) *Pipeline {
	if now == nil {
		now = time.Now
	}
	if v == nil {
		v = NewValidator(DefaultLimits, now)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{
		reg:     reg,
		v:       v,
		sink:    sink,
		metrics: m,
		log:     logger.With("component", "telemetry"),
		now:     now,
		logs:    logLimiter{every: LogEvery, max: maxLogKeys},
	}
}

// Handle takes one MQTT message. Bad input (a payload over
// Limits.MaxPayload, a topic that is not a unit uplink, an unknown unit, a
// malformed payload, rejected fixes, a status or video report older than
// Limits.MaxAge) is dropped, counted in lifeline_telemetry_rejected_total
// with its Reason and logged at most once per unit per LogEvery; Handle
// returns nil for it, so that the message is acknowledged and not
// redelivered forever. A gps message keeps its good fixes. Messages on cmd
// topics (our own downlink, matched by UplinkFilter) are ignored silently.
//
// Handle returns an error only when the Sink failed, so that the caller
// does not acknowledge the message and the broker redelivers it. The
// Validator then forgets the message's fixes, so they are not duplicates
// the second time.
func (p *Pipeline) Handle(ctx context.Context, topic string, payload []byte) error {
	start := time.Now()
	defer func() { p.metrics.handle.Observe(time.Since(start).Seconds()) }()

	unit, kind, err := ParseTopic(topic)
	if err != nil {
		// A bad topic names no unit: all of them share one log budget.
		k := topicKind(topic)
		p.metrics.message(k)
		p.drop("", &Rejection{Kind: k, Reason: BadTopic, Detail: err.Error()})
		return nil
	}
	if kind == KindCmd {
		return nil
	}
	p.metrics.message(kind)
	if limit := p.v.limits.MaxPayload; len(payload) > limit {
		p.drop(unit, reject(unit, kind, TooLarge, "payload of %d bytes, max %d", len(payload), limit))
		return nil
	}
	if !p.reg.Known(unit) {
		p.drop(unit, reject(unit, kind, UnknownUnit, ""))
		return nil
	}
	received := p.now().UTC()
	switch kind {
	case KindGPS:
		return p.gps(ctx, unit, payload, received)
	case KindVideo:
		v, err := DecodeVideo(unit, payload, received)
		if err == nil {
			v.Time, err = p.reportTime(unit, kind, v.Time, received)
		}
		if err != nil {
			p.drop(unit, asRejection(unit, kind, err))
			return nil
		}
		return p.sinkErr(unit, kind, p.sink.Video(ctx, v))
	case KindStatus:
		s, err := DecodeStatus(unit, payload, received)
		if err == nil {
			s.Time, err = p.reportTime(unit, kind, s.Time, received)
		}
		if err != nil {
			p.drop(unit, asRejection(unit, kind, err))
			return nil
		}
		return p.sinkErr(unit, kind, p.sink.Status(ctx, s))
	case KindAck:
		a, err := DecodeAck(unit, payload, received)
		if err != nil {
			p.drop(unit, asRejection(unit, kind, err))
			return nil
		}
		return p.sinkErr(unit, kind, p.sink.Ack(ctx, a))
	case KindOnline:
		pr, err := DecodePresence(unit, payload, received)
		if err != nil {
			p.drop(unit, asRejection(unit, kind, err))
			return nil
		}
		return p.sinkErr(unit, kind, p.sink.Presence(ctx, pr))
	}
	return nil // unreachable: ParseTopic returns only the kinds above
}

func (p *Pipeline) gps(ctx context.Context, unit string, payload []byte, received time.Time) error {
	fixes, err := DecodeFixes(unit, payload, received)
	if err != nil {
		p.drop(unit, asRejection(unit, KindGPS, err))
		return nil
	}
	pos, rejs, err := p.v.check(unit, fixes, func(pos Positions) error {
		return p.sink.Positions(ctx, pos)
	})
	if len(rejs) > 0 {
		p.dropAll(unit, rejs)
	}
	if err != nil {
		return p.sinkErr(unit, KindGPS, err)
	}
	p.metrics.fixes.Add(float64(len(pos.Fixes)))
	return nil
}

// reportTime judges the time of a video or status report. One from
// before Limits.MaxAge is dropped as TooOld: a press replayed from a
// terminal's buffer days later must not change a unit's status now. One
// from the future takes the received time instead: the terminal's clock is
// wrong, but a crew's press is real and must not be lost to it.
func (p *Pipeline) reportTime(unit string, k Kind, t, received time.Time) (time.Time, error) {
	now := p.v.now()
	switch p.v.timeReason(t, now) {
	case TooOld:
		return t, reject(unit, k, TooOld, "time %s, now %s", t.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case Future:
		return received, nil
	}
	return t, nil
}

func (p *Pipeline) sinkErr(unit string, k Kind, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("telemetry: unit %s %s: sink: %w", unit, k, err)
}

// asRejection returns err as a *Rejection, making a Malformed one of any
// other error.
func asRejection(unit string, k Kind, err error) *Rejection {
	var r *Rejection
	if errors.As(err, &r) {
		return r
	}
	return &Rejection{Unit: unit, Kind: k, Reason: Malformed, Detail: err.Error(), Err: err}
}

// drop counts and maybe logs one rejected message.
func (p *Pipeline) drop(key string, r *Rejection) {
	p.dropAll(key, []Rejection{*r})
}

// dropAll counts every rejection of one message and logs the first, at
// most once per key (a unit) per LogEvery.
func (p *Pipeline) dropAll(key string, rejs []Rejection) {
	for _, r := range rejs {
		p.metrics.reject(r.Kind, r.Reason)
	}
	ok, suppressed := p.logs.allow(key, p.now())
	if !ok {
		return
	}
	r := rejs[0]
	attrs := []any{"unit", r.Unit, "kind", string(r.Kind), "reason", string(r.Reason), "detail", truncate(r.Detail, 200)}
	if len(rejs) > 1 {
		attrs = append(attrs, "rejected", len(rejs))
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	p.log.Warn("telemetry dropped", attrs...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// topicKind returns the kind a bad topic's last level names, for the
// metric's label, or KindUnknown.
func topicKind(topic string) Kind {
	k := Kind(topic[strings.LastIndexByte(topic, '/')+1:])
	if k.Uplink() || k == KindCmd {
		return k
	}
	return KindUnknown
}

// maxLogKeys bounds the units the log limiter remembers, so that a flood
// of made-up unit ids cannot grow it without end.
const maxLogKeys = 4096

// overflowKey is where the log limiter counts units it has no room for.
const overflowKey = "\x00overflow"

// logLimiter allows one log line per key per every, counting the rest.
type logLimiter struct {
	mu    sync.Mutex
	every time.Duration
	max   int
	keys  map[string]*logWindow
}

type logWindow struct {
	next       time.Time // when the next line may be logged
	suppressed int
}

// allow reports whether to log for key now and how many lines were
// suppressed since the last one.
func (l *logLimiter) allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = make(map[string]*logWindow)
	}
	w := l.keys[key]
	if w == nil {
		if len(l.keys) >= l.max {
			for k, w := range l.keys {
				if !now.Before(w.next) {
					delete(l.keys, k)
				}
			}
		}
		if len(l.keys) >= l.max {
			key = overflowKey
			w = l.keys[key]
		}
		if w == nil {
			w = &logWindow{}
			l.keys[key] = w
		}
	}
	if now.Before(w.next) {
		w.suppressed++
		return false, 0
	}
	suppressed = w.suppressed
	w.next, w.suppressed = now.Add(l.every), 0
	return true, suppressed
}
