// Package campaign runs fault campaigns against the lab: it starts a whole
// fleet (aggregator and probers as real processes) against the local
// product, injects faults, records the alerts the aggregator sends to its
// webhook sink, and judges each fault's detection: scope, latency, missed
// alerts and false pages. `make demo`, `make campaign` and the end-to-end
// test drive it.
package campaign

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Event is one notification received from the aggregator's webhook sink
// (payload version 1, see README "Generic webhook payload").
type Event struct {
	At          time.Time         `json:"at"`
	Status      string            `json:"status"` // firing | resolved
	Key         string            `json:"key"`
	DedupKey    string            `json:"dedup_key"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// Alertname returns the event's alertname label.
func (e Event) Alertname() string { return e.Labels["alertname"] }

// Regions returns the event's regions label as a sorted list.
func (e Event) Regions() []string {
	var out []string
	for _, r := range strings.Split(e.Labels["regions"], ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// Journeys returns the event's journey label as a list.
func (e Event) Journeys() []string {
	var out []string
	for _, j := range strings.Split(e.Labels["journey"], ",") {
		if j = strings.TrimSpace(j); j != "" {
			out = append(out, j)
		}
	}
	return out
}

// IsProductAlert reports whether the alert pages for the product (as
// opposed to the fleet's own health).
func (e Event) IsProductAlert() bool {
	n := e.Alertname()
	return n == AlertGlobal || n == AlertRegional
}

// Alert names, as the aggregator sends them.
const (
	AlertGlobal         = "VantageJourneyGlobal"
	AlertRegional       = "VantageJourneyRegional"
	AlertProberSuspect  = "VantageProberSuspect"
	AlertRegionBlind    = "VantageRegionBlind"
	AlertResultsMissing = "VantageResultsMissing"
)

// maxEventBytes bounds one webhook body.
const maxEventBytes = 256 << 10

// Recorder is the webhook receiver: it keeps every notification with the
// time it arrived. It is an http.Handler and safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	now    func() time.Time
	events []Event
	notify chan struct{}
}

// NewRecorder returns an empty Recorder using the given clock (time.Now if nil).
func NewRecorder(now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{now: now, notify: make(chan struct{}, 1)}
}

// ServeHTTP records one webhook notification.
func (r *Recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var e Event
	if err := json.NewDecoder(io.LimitReader(req.Body, maxEventBytes)).Decode(&e); err != nil {
		http.Error(w, "invalid payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	e.At = r.now()
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// Events returns every event so far, in arrival order.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Since returns the events that arrived at or after t.
func (r *Recorder) Since(t time.Time) []Event {
	var out []Event
	for _, e := range r.Events() {
		if !e.At.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

// Changed is signalled (without blocking) after every new event.
func (r *Recorder) Changed() <-chan struct{} { return r.notify }
