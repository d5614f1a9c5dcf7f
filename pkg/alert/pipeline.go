package alert

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// The notification pipeline, in the shape of Alertmanager's notify/: small
// stages, each one type with one method.
//
//	Submit → inhibit → dedup → per-sink queue → retry(send with timeout) → notification log
//
// Every sink has its own bounded queue and goroutine, so a slow or dead sink
// delays only itself, and Submit never blocks.

// inhibitStage drops firing regional alerts whose journeys all belong to a
// firing global alert (Alertmanager does this itself with the shipped
// inhibit rule; the other sinks get it here).
type inhibitStage struct{}

func (inhibitStage) filter(alerts []Alert, all map[string]Alert) []Alert {
	global := map[string]bool{}
	for _, a := range all {
		if a.Firing() && a.Labels["alertname"] == "VantageJourneyGlobal" {
			for _, j := range strings.Split(a.Labels["journey"], ",") {
				global[j] = true
			}
		}
	}
	out := alerts[:0:0]
	for _, a := range alerts {
		if a.Firing() && a.Labels["alertname"] == "VantageJourneyRegional" {
			covered := true
			for _, j := range strings.Split(a.Labels["journey"], ",") {
				covered = covered && global[j]
			}
			if covered {
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

// dedupStage passes an alert only if the sink has not acknowledged the same
// fingerprint (key, status, labels) already, per the durable log.
type dedupStage struct{ store *Store }

func (d dedupStage) fresh(q *queue, a Alert) bool {
	got, ok := d.store.Delivered(q.name(), a.Key)
	if !ok {
		// A resolution of an alert the sink never heard of (not logged, not
		// queued, not being sent) need not be sent.
		return a.Firing() || q.holds(a.Key)
	}
	return got.Fingerprint != a.Fingerprint()
}

// retryStage retries a delivery with exponential backoff, up to attempts,
// stopping early on a permanent error or when ctx ends.
type retryStage struct {
	attempts int
	base     time.Duration
	max      time.Duration
}

func (r retryStage) do(ctx context.Context, f func(context.Context) error) error {
	wait := r.base
	var err error
	for i := 0; i < r.attempts; i++ {
		if err = f(ctx); err == nil || isPermanent(err) {
			return err
		}
		if i == r.attempts-1 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if wait *= 2; wait > r.max {
			wait = r.max
		}
	}
	return err
}

// sendStage puts the sink's timeout on one delivery.
type sendStage struct {
	sink    Sink
	timeout time.Duration
}

func (s sendStage) do(ctx context.Context, a Alert) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.sink.Send(ctx, a)
}

// queue is one sink's bounded outbox. Entries for the same alert key
// coalesce: only the newest state of an alert is worth sending.
type queue struct {
	send    sendStage
	retry   retryStage
	resend  bool
	size    int
	mu      sync.Mutex
	items   []Alert
	flight  string // fingerprint of the alert being sent
	signal  chan struct{}
	dropped uint64
	failed  uint64
	sent    uint64
}

func (q *queue) name() string { return q.send.sink.Name() }

// put enqueues a (never blocks); it reports whether a was queued.
func (q *queue) put(a Alert) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	fp := a.Key + "/" + a.Fingerprint()
	if q.flight == fp { // being sent right now
		return false
	}
	for i := range q.items {
		if q.items[i].Key == a.Key {
			q.items[i] = a
			return true
		}
	}
	if len(q.items) >= q.size {
		q.items = q.items[1:]
		q.dropped++
	}
	q.items = append(q.items, a)
	select {
	case q.signal <- struct{}{}:
	default:
	}
	return true
}

// holds reports whether an alert with key is queued or being sent.
func (q *queue) holds(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if strings.HasPrefix(q.flight, key+"/") {
		return true
	}
	for i := range q.items {
		if q.items[i].Key == key {
			return true
		}
	}
	return false
}

func (q *queue) take() (Alert, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return Alert{}, false
	}
	a := q.items[0]
	q.items = q.items[1:]
	q.flight = a.Key + "/" + a.Fingerprint()
	return a, true
}

// SinkStats are one sink's counters.
type SinkStats struct {
	Name                  string
	Queued                int
	Sent, Failed, Dropped uint64
}

// pipeline owns the sink queues and their goroutines.
type pipeline struct {
	store   *Store
	queues  []*queue
	dedup   dedupStage
	inhibit inhibitStage
	log     *slog.Logger
	now     func() time.Time
	wg      sync.WaitGroup
}

func newPipeline(store *Store, sinks []sinkSpec, retryBase time.Duration, log *slog.Logger, now func() time.Time) *pipeline {
	p := &pipeline{store: store, dedup: dedupStage{store}, log: log, now: now}
	for _, s := range sinks {
		_, rs := s.sink.(resender)
		p.queues = append(p.queues, &queue{
			send:   sendStage{sink: s.sink, timeout: s.timeout},
			retry:  retryStage{attempts: s.attempts, base: retryBase, max: 32 * retryBase},
			resend: rs, size: s.queueSize, signal: make(chan struct{}, 1),
		})
	}
	return p
}

// sinkSpec is a sink and its delivery limits.
type sinkSpec struct {
	sink      Sink
	timeout   time.Duration
	queueSize int
	attempts  int
}

// start runs one goroutine per sink until ctx ends.
func (p *pipeline) start(ctx context.Context) {
	for _, q := range p.queues {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.work(ctx, q)
		}()
	}
}

func (p *pipeline) wait() { p.wg.Wait() }

func (p *pipeline) work(ctx context.Context, q *queue) {
	for {
		a, ok := q.take()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.signal:
				continue
			}
		}
		err := q.retry.do(ctx, func(ctx context.Context) error { return q.send.do(ctx, a) })
		if err == nil {
			// Log before clearing the in-flight mark, so that a concurrent
			// reconcile never sees the alert as neither sent nor in flight.
			if lerr := p.store.MarkDelivered(q.name(), a.Key, Delivery{Fingerprint: a.Fingerprint(), Status: a.Status(), At: p.now()}); lerr != nil {
				p.log.Error("notification log write failed", "sink", q.name(), "err", lerr)
			}
		}
		q.mu.Lock()
		q.flight = ""
		if err != nil {
			q.failed++
		} else {
			q.sent++
		}
		q.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("alert delivery failed", "sink", q.name(), "alert", a.Labels["alertname"], "key", a.Key, "status", a.Status(), "err", err)
		}
	}
}

// submit runs alerts through inhibit and dedup into every queue. all is
// the whole current alert set, for inhibition.
func (p *pipeline) submit(alerts []Alert, all map[string]Alert) {
	for _, q := range p.queues {
		list := alerts
		if !q.resend {
			list = p.inhibit.filter(alerts, all)
		}
		for _, a := range list {
			if p.dedup.fresh(q, a) {
				q.put(a)
			}
		}
	}
}

// resend re-queues firing alerts to the sinks that want periodic re-sends.
func (p *pipeline) resend(alerts []Alert) {
	for _, q := range p.queues {
		if !q.resend {
			continue
		}
		for _, a := range alerts {
			if a.Firing() {
				q.put(a)
			}
		}
	}
}

// delivered reports whether every sink has acknowledged a's current fingerprint.
func (p *pipeline) delivered(a Alert) bool {
	for _, q := range p.queues {
		d, ok := p.store.Delivered(q.name(), a.Key)
		if ok && d.Fingerprint != a.Fingerprint() {
			return false
		}
		if !ok && a.Firing() {
			return false
		}
	}
	return true
}

func (p *pipeline) names() []string {
	var ns []string
	for _, q := range p.queues {
		ns = append(ns, q.name())
	}
	return ns
}

func (p *pipeline) stats() []SinkStats {
	var out []SinkStats
	for _, q := range p.queues {
		q.mu.Lock()
		out = append(out, SinkStats{Name: q.name(), Queued: len(q.items), Sent: q.sent, Failed: q.failed, Dropped: q.dropped})
		q.mu.Unlock()
	}
	return out
}
