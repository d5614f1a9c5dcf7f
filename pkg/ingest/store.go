package ingest

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// Sink receives every deduplicated Result once. The alert engine
// (alert.Engine) implements it, and so does Store. Accept must not block
// for long: it runs on the ingest path. An error means the sink refused
// the Result (it is counted, not retried: the ID is already remembered).
type Sink interface {
	Accept(report.Result) error
}

// BatchSink is a Sink that takes a request's Results at once (alert.Engine
// evaluates once per batch); the receiver uses it when available.
type BatchSink interface {
	Sink
	AcceptBatch([]report.Result) []error
}

// Store is the stand-in Sink: the latest Result per (journey, region,
// agent), in memory, bounded.
type Store struct {
	mu     sync.Mutex
	max    int
	latest map[storeKey]report.Result
	total  int64
}

type storeKey struct{ journey, region, agent string }

// NewStore returns a Store keeping at most max series (journey, region,
// agent); further series are ignored until the store is restarted.
func NewStore(max int) *Store {
	return &Store{max: max, latest: map[storeKey]report.Result{}}
}

// Accept keeps r if it is the newest of its series. It never fails.
func (s *Store) Accept(r report.Result) error {
	k := storeKey{r.Journey, r.Region, r.Agent}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	old, ok := s.latest[k]
	if !ok && len(s.latest) >= s.max {
		return nil
	}
	if !ok || !r.Slot.Before(old.Slot) {
		s.latest[k] = r
	}
	return nil
}

// Accepted returns how many Results were accepted in all.
func (s *Store) Accepted() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Latest returns the newest Result of every series, sorted by journey,
// region and agent.
func (s *Store) Latest() []report.Result {
	s.mu.Lock()
	out := make([]report.Result, 0, len(s.latest))
	for _, r := range s.latest {
		out = append(out, r)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Journey != b.Journey {
			return a.Journey < b.Journey
		}
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		return a.Agent < b.Agent
	})
	return out
}

// Handler serves GET /api/v1/results: {"results": [Result JSON…]}.
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Results []report.Result `json:"results"`
		}{s.Latest()})
	})
}
