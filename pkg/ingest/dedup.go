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

// Dedup remembers the Result IDs seen within a window, in memory and in a
// bbolt file, so that re-sends, overlapping owners and replays after an
// outage or an aggregator restart are counted once.
//
// Memory: about 130 bytes per remembered ID (a 64-byte ID string, its map
// entry and its place in the expiry queue); BenchmarkDedup_BytesPerID
// measures it. Disk: about 100 bytes per ID.
type Dedup struct {
	mu     sync.Mutex
	db     *bolt.DB
	window time.Duration
	maxIDs int
	now    func() time.Time
	seen   map[string]int64 // ID → first seen, Unix ns
	order  []seenID         // FIFO by first seen; order[head:] is live
	head   int
}

type seenID struct {
	id string
	at int64
}

// OpenDedup opens (creating if needed) the dedup window in dir and loads
// the IDs still within window. now is the clock (nil: time.Now).
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
	d := &Dedup{db: db, window: window, maxIDs: maxIDs, now: now, seen: map[string]int64{}}
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
	if err := d.db.Update(func(tx *bolt.Tx) error { return d.expireLocked(tx.Bucket(dedupBucket), 0) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("dedup: expire: %w", err)
	}
	return d, nil
}

// Close closes the file.
func (d *Dedup) Close() error { return d.db.Close() }

// Len returns the number of IDs remembered.
func (d *Dedup) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

// Admit returns the Results whose IDs were not seen within the window (a
// batch's own repeats included), after committing their IDs to disk. On
// error nothing changed, in memory or on disk, and the sender should retry.
func (d *Dedup) Admit(rs []report.Result) ([]report.Result, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now().UnixNano()
	fresh := make([]report.Result, 0, len(rs))
	batch := make(map[string]bool, len(rs))
	for _, r := range rs {
		if len(r.ID) > maxIDBytes {
			continue // cannot happen for IDs made by report.ResultID
		}
		// An ID seen longer ago than the window is new again, even if
		// expiry (which runs with the next commit) has not removed it yet.
		if at, dup := d.seen[r.ID]; (dup && now-at <= int64(d.window)) || batch[r.ID] {
			continue
		}
		batch[r.ID] = true
		fresh = append(fresh, r)
	}
	if len(fresh) == 0 {
		return nil, nil
	}
	// Work on a copy of the queue's head so that a failed commit changes nothing.
	head := d.head
	err := d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(dedupBucket)
		for _, r := range fresh {
			if err := b.Put(diskKey(now, r.ID), nil); err != nil {
				return err
			}
		}
		return d.expireLocked(b, len(fresh))
	})
	if err != nil {
		d.head = head
		d.rebuildSeen()
		return nil, fmt.Errorf("dedup: commit: %w", err)
	}
	for _, r := range fresh {
		d.seen[r.ID] = now
		d.order = append(d.order, seenID{id: r.ID, at: now})
	}
	if d.head > 1024 && d.head > len(d.order)/2 {
		d.order = append([]seenID(nil), d.order[d.head:]...)
		d.head = 0
	}
	return fresh, nil
}

// expireLocked forgets IDs older than the window, and the oldest IDs
// beyond maxIDs once adding more IDs, in memory and in b.
func (d *Dedup) expireLocked(b *bolt.Bucket, adding int) error {
	cutoff := d.now().Add(-d.window).UnixNano()
	for d.head < len(d.order) {
		s := d.order[d.head]
		if s.at >= cutoff && len(d.seen)+adding <= d.maxIDs {
			break
		}
		if err := b.Delete(diskKey(s.at, s.id)); err != nil {
			return err
		}
		if d.seen[s.id] == s.at {
			delete(d.seen, s.id)
		}
		d.head++
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

// rebuildSeen restores the map from the queue after a failed commit.
func (d *Dedup) rebuildSeen() {
	d.seen = make(map[string]int64, len(d.order)-d.head)
	for _, s := range d.order[d.head:] {
		d.seen[s.id] = s.at
	}
}
