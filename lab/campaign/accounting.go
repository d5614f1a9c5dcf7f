package campaign

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/vantage-fleet/vantage/pkg/ingest"
)

// idWatcher follows GET /api/v1/results/ids and counts how often each
// Result ID reached the aggregator's sinks, across aggregator restarts
// (each process numbers its IDs afresh under a new boot token).
type idWatcher struct {
	url string

	mu    sync.Mutex
	boot  string
	next  int64
	count map[string]int
	// gaps counts IDs the ring overwrote before they were read.
	gaps int64
}

func newIDWatcher(aggregatorURL string) *idWatcher {
	return &idWatcher{url: aggregatorURL + "/api/v1/results/ids", count: map[string]int{}}
}

func (w *idWatcher) run(ctx context.Context, every time.Duration) {
	for ctx.Err() == nil {
		w.poll(ctx)
		sleep(ctx, every)
	}
}

// poll reads every ID accepted since the last poll; errors (the aggregator
// restarting) are left for the next poll.
func (w *idWatcher) poll(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 0; i < 1000 && ctx.Err() == nil; i++ {
		var page ingest.IDs
		if err := getJSON(ctx, fmt.Sprintf("%s?after=%d", w.url, w.next), &page); err != nil {
			return
		}
		if page.Boot != w.boot {
			w.boot, w.next = page.Boot, 0
			continue // a new process: read it from its first ID
		}
		w.gaps += page.First - w.next
		for _, id := range page.IDs {
			w.count[id]++
		}
		w.next = page.Next
		if len(page.IDs) == 0 {
			return
		}
	}
}

func (w *idWatcher) counts() (map[string]int, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.count))
	for k, v := range w.count {
		out[k] = v
	}
	return out, w.gaps
}

// Accounting compares the Results the probers logged with what the
// aggregator admitted and handed to its sinks.
type Accounting struct {
	// Logged is the distinct Result IDs in the probers' JSONL logs.
	Logged int `json:"logged"`
	// Received is how many of them the aggregator admitted (its dedup
	// window on disk, read after it stopped: exact across restarts).
	Received int `json:"received"`
	// Lost is Logged − Received; LostSample names some of them.
	Lost       int      `json:"lost"`
	LostSample []string `json:"lost_sample,omitempty"`
	// DoubleCounted is the IDs that reached the sinks (verdict engine and
	// store) more than once, seen through GET /api/v1/results/ids.
	DoubleCounted int `json:"double_counted"`
	// SinkSeen is the distinct IDs the watcher saw reach the sinks;
	// SinkUnseen the admitted ones it did not see (accepted in the moment
	// between its last poll and an aggregator stop, or overwritten in the
	// ring: SinkGaps).
	SinkSeen   int   `json:"sink_seen"`
	SinkUnseen int   `json:"sink_unseen"`
	SinkGaps   int64 `json:"sink_gaps"`
	// Unknown is IDs the aggregator admitted that no prober logged.
	Unknown int `json:"unknown"`
}

type loggedResult struct {
	ID      string    `json:"id"`
	Journey string    `json:"journey"`
	Agent   string    `json:"agent"`
	Start   time.Time `json:"start"`
}

// readLogged reads the probers' JSONL logs; a torn last line (a prober
// killed mid-write) is skipped.
func readLogged(paths []string) (map[string]loggedResult, error) {
	out := map[string]loggedResult{}
	for _, p := range paths {
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var r loggedResult
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.ID != "" {
				out[r.ID] = r
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return out, nil
}

// Finish stops the probers (gracefully, so that they flush their exports),
// reads the last accepted IDs, stops the aggregator and counts results
// lost or double-counted.
func (d *Driver) Finish(ctx context.Context) (Accounting, error) {
	s := d.Stack
	var wg sync.WaitGroup
	for _, a := range s.Agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Procs.Signal(a.Name, syscall.SIGTERM, 20*time.Second)
		}()
	}
	wg.Wait()
	sleep(ctx, 2*time.Second)
	d.ids.poll(ctx)
	if err := s.StopAggregator(); err != nil {
		return Accounting{}, err
	}
	admitted, err := ingest.ReadDedupIDs(s.AggregatorDataDir())
	if err != nil {
		return Accounting{}, err
	}
	var paths []string
	for _, a := range s.Agents {
		paths = append(paths, s.ResultsFile(a.Name))
	}
	logged, err := readLogged(paths)
	if err != nil {
		return Accounting{}, err
	}
	counts, gaps := d.ids.counts()
	acc := Accounting{Logged: len(logged), SinkGaps: gaps}
	var lost []loggedResult
	for id, r := range logged {
		if _, ok := admitted[id]; ok {
			acc.Received++
		} else {
			lost = append(lost, r)
		}
	}
	acc.Lost = len(lost)
	sort.Slice(lost, func(i, j int) bool { return lost[i].Start.Before(lost[j].Start) })
	for i, r := range lost {
		if i == 10 {
			break
		}
		acc.LostSample = append(acc.LostSample, fmt.Sprintf("%s %s %s %s", r.Start.Format(time.RFC3339), r.Agent, r.Journey, r.ID))
	}
	for id := range admitted {
		if _, ok := logged[id]; !ok {
			acc.Unknown++
		}
		if counts[id] == 0 {
			acc.SinkUnseen++
		}
	}
	for _, n := range counts {
		acc.SinkSeen++
		if n > 1 {
			acc.DoubleCounted++
		}
	}
	return acc, nil
}
