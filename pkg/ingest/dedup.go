package ingest

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// DedupFileName is the dedup window's file inside the aggregator's data_dir.
const DedupFileName = "dedup.db"

var dedupBucket = []byte("result-ids-by-time")

// maxIDBytes bounds a Result ID kept in the window (IDs are 64 hex digits;
// report bounds strings, this bounds the window's memory further).
const maxIDBytes = 128

// maxGroup bounds the Admits one commit takes together.
const maxGroup = 256

// Dedup remembers the Result IDs seen within a window, in memory and in a
// bbolt file, so that re-sends, overlapping owners and replays after an
// outage or an aggregator restart are counted once. IDs are committed
// (fsync) before Admit returns; concurrent Admits share one commit.
//
// Memory: about 130 bytes per remembered ID (a 64-byte ID string, its map
// entry and its place in the expiry queue); BenchmarkDedup_BytesPerID
// measures it. Disk: about 100 bytes per ID.
type Dedup struct {
	db     *bolt.DB
	window time.Duration
	maxIDs int
	now    func() time.Time

	mu    sync.Mutex
	seen  map[string]int64 // ID → first seen, Unix ns
	order []seenID         // FIFO by first seen; order[head:] is live
	head  int
	// pending holds the IDs of Admits whose commit is under way, so that a
	// concurrent Admit carrying one of them waits for that outcome.
	pending map[string]*commit

	commits chan *commit // to the writer
	stopped chan struct{}
}

// commit is one Admit's disk work.
type commit struct {
	puts, dels [][]byte
	done       chan error    // the writer's outcome
	finished   chan struct{} // closed once Admit has applied it in memory
}

type seenID struct {
	id string
	at int64
}

// OpenDedup opens (creating if needed) the dedup window in dir and loads
// the IDs still within window. now is the clock (nil: time.Now). Close
// stops its writer goroutine.
func OpenDedup(dir string, window time.Duration, maxIDs int, now func() time.Time) (*Dedup, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, DedupFileName), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("dedup: open: %w", err)
	}
	d := &Dedup{db: db, window: window, maxIDs: maxIDs, now: now, seen: map[string]int64{},
		pending: map[string]*commit{}, commits: make(chan *commit, maxGroup), stopped: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(dedupBucket)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, _ []byte) error {
			if len(k) > 8 {
				d.order = append(d.order, seenID{id: string(k[8:]), at: int64(binary.BigEndian.Uint64(k))})
			}
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("dedup: load: %w", err)
	}
	sort.Slice(d.order, func(i, j int) bool { return d.order[i].at < d.order[j].at })
	for _, s := range d.order {
		d.seen[s.id] = s.at
	}
	dels := d.expireLocked()
	if err := db.Update(func(tx *bolt.Tx) error { return deleteKeys(tx.Bucket(dedupBucket), dels) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("dedup: expire: %w", err)
	}
	go d.writer()
	return d, nil
}

// Close stops the writer and closes the file. Admit must not be called
// during or after Close.
func (d *Dedup) Close() error {
	close(d.commits)
	<-d.stopped
	return d.db.Close()
}

// Len returns the number of IDs remembered.
func (d *Dedup) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

// Admit returns the Results whose IDs were not seen within the window (a
// batch's own repeats included), after committing their IDs to disk. On
// error no ID was admitted and the sender should retry.
func (d *Dedup) Admit(rs []report.Result) ([]report.Result, error) {
	for {
		fresh, wait, c := d.reserve(rs)
		if wait != nil {
			<-wait // another request is committing one of these IDs
			continue
		}
		if c == nil {
			return nil, nil
		}
		d.commits <- c
		err := <-c.done
		d.mu.Lock()
		for _, r := range fresh {
			delete(d.pending, r.ID)
		}
		if err == nil {
			now := int64(binary.BigEndian.Uint64(c.puts[0]))
			for _, r := range fresh {
				d.seen[r.ID] = now
				d.order = append(d.order, seenID{id: r.ID, at: now})
			}
			if d.head > 1024 && d.head > len(d.order)/2 {
				d.order = append([]seenID(nil), d.order[d.head:]...)
				d.head = 0
			}
		}
		close(c.finished)
		d.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("dedup: commit: %w", err)
		}
		return fresh, nil
	}
}

// reserve picks the new IDs of rs, marks them pending and prepares their
// commit; or it returns a channel to wait on when another Admit is
// committing one of the IDs.
func (d *Dedup) reserve(rs []report.Result) (fresh []report.Result, wait <-chan struct{}, c *commit) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now().UnixNano()
	batch := make(map[string]bool, len(rs))
	for _, r := range rs {
		if len(r.ID) > maxIDBytes {
			continue // cannot happen for IDs made by report.ResultID
		}
		if pc, ok := d.pending[r.ID]; ok {
			return nil, pc.finished, nil
		}
		// An ID seen longer ago than the window is new again, even if
		// expiry has not removed it yet.
		if at, dup := d.seen[r.ID]; (dup && now-at <= int64(d.window)) || batch[r.ID] {
			continue
		}
		batch[r.ID] = true
		fresh = append(fresh, r)
	}
	if len(fresh) == 0 {
		return nil, nil, nil
	}
	c = &commit{done: make(chan error, 1), finished: make(chan struct{})}
	for _, r := range fresh {
		c.puts = append(c.puts, diskKey(now, r.ID))
		d.pending[r.ID] = c
	}
	c.dels = d.expireLocked()
	return fresh, nil, c
}

// expireLocked forgets, in memory, the IDs older than the window and the
// oldest IDs beyond maxIDs, and returns their disk keys to delete. Should
// that deletion fail, the keys stay on disk until the next start filters
// them again: forgetting an expired ID early is harmless.
func (d *Dedup) expireLocked() [][]byte {
	cutoff := d.now().Add(-d.window).UnixNano()
	var dels [][]byte
	for d.head < len(d.order) {
		s := d.order[d.head]
		if s.at >= cutoff && len(d.seen)+len(d.pending) <= d.maxIDs {
			break
		}
		dels = append(dels, diskKey(s.at, s.id))
		if d.seen[s.id] == s.at {
			delete(d.seen, s.id)
		}
		d.head++
	}
	return dels
}

// writer commits the waiting Admits together: one that arrives while a
// commit is under way joins the next, so concurrent requests share an
// fsync and a lone request waits for nobody.
func (d *Dedup) writer() {
	defer close(d.stopped)
	for c := range d.commits {
		group := []*commit{c}
	collect:
		for len(group) < maxGroup {
			select {
			case c, ok := <-d.commits:
				if !ok {
					break collect
				}
				group = append(group, c)
			default:
				break collect
			}
		}
		err := d.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(dedupBucket)
			for _, c := range group {
				for _, k := range c.puts {
					if err := b.Put(k, nil); err != nil {
						return err
					}
				}
				if err := deleteKeys(b, c.dels); err != nil {
					return err
				}
			}
			return nil
		})
		for _, c := range group {
			c.done <- err
		}
	}
}

func deleteKeys(b *bolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// diskKey is the first-seen time then the ID: keys sort by age, so that
// inserts append to the B+tree and expiry deletes from its front, and a
// commit writes few pages however random the IDs are.
func diskKey(at int64, id string) []byte {
	k := make([]byte, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(at))
	copy(k[8:], id)
	return k
}

// ReadDedupIDs opens the dedup window in dir read-only (its aggregator
// must be stopped: bbolt locks the file) and returns every remembered
// Result ID with the time it was first seen. A fault campaign uses it to
// find which of the Results the probers logged the aggregator admitted,
// across its restarts.
func ReadDedupIDs(dir string) (map[string]time.Time, error) {
	db, err := bolt.Open(filepath.Join(dir, DedupFileName), 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("dedup: open: %w", err)
	}
	defer db.Close()
	out := map[string]time.Time{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(dedupBucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			if len(k) > 8 {
				out[string(k[8:])] = time.Unix(0, int64(binary.BigEndian.Uint64(k)))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("dedup: read: %w", err)
	}
	return out, nil
}
