package ingest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
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
	// ids is a ring of the last len(ids) accepted Result IDs; ids[i%len]
	// holds the ID accepted as number i (0-based, i < total).
	ids  []string
	boot string
}

// AcceptedIDs is the number of accepted Result IDs Store keeps for GET
// /api/v1/results/ids (about 100 bytes each: 1.6 MB). A reader that
// polls more often than AcceptedIDs results arrive sees every one.
const AcceptedIDs = 16384

// maxIDsPage bounds one GET /api/v1/results/ids answer.
const maxIDsPage = 4096

type storeKey struct{ journey, region, agent string }

// NewStore returns a Store keeping at most max series (journey, region,
// agent); further series are ignored until the store is restarted.
func NewStore(max int) *Store {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Store{max: max, latest: map[storeKey]report.Result{}, ids: make([]string, AcceptedIDs),
		boot: hex.EncodeToString(b[:])}
}

// Accept keeps r if it is the newest of its series. It never fails.
func (s *Store) Accept(r report.Result) error {
	k := storeKey{r.Journey, r.Region, r.Agent}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[s.total%int64(len(s.ids))] = r.ID
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

// IDs is one page of accepted Result IDs.
type IDs struct {
	// Boot identifies this process's Store: numbering restarts with it.
	Boot string `json:"boot"`
	// First is the number of IDs[0]; Next the number to ask for next.
	// First > the requested after means the ring overwrote IDs in between.
	First int64    `json:"first"`
	Next  int64    `json:"next"`
	IDs   []string `json:"ids"`
}

// AcceptedSince returns up to limit IDs accepted as number after and
// later, from the ring.
func (s *Store) AcceptedSince(after int64, limit int) IDs {
	s.mu.Lock()
	defer s.mu.Unlock()
	if after < 0 {
		after = 0
	}
	if oldest := s.total - int64(len(s.ids)); after < oldest {
		after = oldest
	}
	if after > s.total {
		after = s.total
	}
	out := IDs{Boot: s.boot, First: after, IDs: []string{}}
	for i := after; i < s.total && len(out.IDs) < limit; i++ {
		out.IDs = append(out.IDs, s.ids[i%int64(len(s.ids))])
	}
	out.Next = after + int64(len(out.IDs))
	return out
}

// IDsHandler serves GET /api/v1/results/ids?after=N: the IDs of the
// Results that reached the sinks (after deduplication), numbered in
// arrival order, at most 4096 per answer, from a ring of the last
// AcceptedIDs. A fault campaign polls it to count results lost or
// counted twice against what the probers logged; /metrics only counts.
func (s *Store) IDsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var after int64
		if v := r.URL.Query().Get("after"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				http.Error(w, "after: want a non-negative integer", http.StatusBadRequest)
				return
			}
			after = n
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.AcceptedSince(after, maxIDsPage))
	})
}
