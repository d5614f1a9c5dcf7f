// Package spool owns the agent's durable outbox: a bbolt file in the data
// directory with one bucket per export, so that every export keeps its own
// position. A Result is committed (fsync) before Put returns and deleted
// only when its export acknowledges it. Each queue is bounded by bytes and
// by age; eviction takes the oldest entries first and is counted. The
// package knows nothing of OTLP: entries are opaque bytes.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the spool's file inside the data directory.
const FileName = "spool.db"

// entryOverhead approximates bbolt's per-entry cost beyond key and value.
const entryOverhead = 16

// DB is the spool file. Open it once per process; bbolt locks the file, so
// a second process (or a second Open) waits up to the timeout and fails.
type DB struct {
	db *bolt.DB
}

// Open opens (creating if needed) the spool in dir.
func Open(dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", filepath.Join(dir, FileName), err)
	}
	return &DB{db: db}, nil
}

// Close closes the file. Queues must not be used afterwards.
func (d *DB) Close() error { return d.db.Close() }

// Limits bound one queue.
type Limits struct {
	// MaxBytes bounds the bytes of all entries (payload plus a small
	// overhead). A Put that would exceed it evicts the oldest entries first.
	MaxBytes int64
	// MaxAge evicts entries spooled longer ago than this; 0 keeps them.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Queue is one export's FIFO in the spool.
type Queue struct {
	db     *bolt.DB
	name   []byte
	limits Limits

	mu      sync.Mutex
	bytes   int64
	count   int
	evicted atomic.Int64
}

// Entry is one spooled item.
type Entry struct {
	// Seq orders entries; it is the key Ack takes.
	Seq uint64
	// Spooled is when Put committed it.
	Spooled time.Time
	// Data is the payload given to Put.
	Data []byte
}

// ErrTooLarge is returned by Put for a payload larger than the whole queue.
var ErrTooLarge = errors.New("spool: entry larger than the queue's byte limit")

// Queue opens the queue named name (one bucket), creating it if needed.
func (d *DB) Queue(name string, l Limits) (*Queue, error) {
	if name == "" {
		return nil, errors.New("spool: queue name is empty")
	}
	if l.Now == nil {
		l.Now = time.Now
	}
	q := &Queue{db: d.db, name: []byte(name), limits: l}
	err := d.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(q.name)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			q.bytes += int64(len(k) + len(v) + entryOverhead)
			q.count++
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("spool: queue %s: %w", name, err)
	}
	return q, nil
}

// Put appends data and returns once it is committed to disk. It returns
// how many old entries were evicted to make room (also counted in Stats).
func (q *Queue) Put(data []byte) (evicted int, err error) {
	size := int64(8+8+len(data)) + entryOverhead
	if q.limits.MaxBytes > 0 && size > q.limits.MaxBytes {
		return 0, ErrTooLarge
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var dBytes int64
	var dCount int
	err = q.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(q.name)
		dBytes, dCount = 0, 0
		n, freed, err := q.evictLocked(b, size)
		if err != nil {
			return err
		}
		evicted, dBytes, dCount = n, -freed, -n
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		v := make([]byte, 8+len(data))
		binary.BigEndian.PutUint64(v, uint64(q.limits.Now().UnixNano()))
		copy(v[8:], data)
		if err := b.Put(key(seq), v); err != nil {
			return err
		}
		dBytes += size
		dCount++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("spool: put: %w", err)
	}
	q.bytes += dBytes
	q.count += dCount
	q.evicted.Add(int64(evicted))
	return evicted, nil
}

// evictLocked deletes expired entries and then the oldest entries until
// room more bytes fit. It returns how many it deleted and their bytes.
func (q *Queue) evictLocked(b *bolt.Bucket, room int64) (n int, freed int64, err error) {
	cutoff := int64(0)
	if q.limits.MaxAge > 0 {
		cutoff = q.limits.Now().Add(-q.limits.MaxAge).UnixNano()
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		expired := cutoff != 0 && len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) < cutoff
		full := q.limits.MaxBytes > 0 && q.bytes-freed+room > q.limits.MaxBytes
		if !expired && !full {
			break
		}
		freed += int64(len(k)+len(v)) + entryOverhead
		n++
		if err := c.Delete(); err != nil {
			return n, freed, err
		}
	}
	return n, freed, nil
}

// Peek returns up to n of the oldest entries, after evicting expired ones.
// It does not remove them: Ack does, once they are exported. It reads in a
// read-only transaction and writes (and syncs) only when something expired.
func (q *Queue) Peek(n int) ([]Entry, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.expiredLocked() {
		var freed int64
		var evicted int
		err := q.db.Update(func(tx *bolt.Tx) error {
			var err error
			evicted, freed, err = q.evictLocked(tx.Bucket(q.name), 0)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("spool: evict: %w", err)
		}
		q.bytes -= freed
		q.count -= evicted
		q.evicted.Add(int64(evicted))
	}
	var out []Entry
	err := q.db.View(func(tx *bolt.Tx) error {
		out = nil
		c := tx.Bucket(q.name).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			if len(k) != 8 || len(v) < 8 {
				continue
			}
			out = append(out, Entry{
				Seq:     binary.BigEndian.Uint64(k),
				Spooled: time.Unix(0, int64(binary.BigEndian.Uint64(v))),
				Data:    append([]byte(nil), v[8:]...),
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spool: peek: %w", err)
	}
	return out, nil
}

// expiredLocked reports whether the oldest entry is older than MaxAge.
func (q *Queue) expiredLocked() bool {
	if q.limits.MaxAge <= 0 || q.count == 0 {
		return false
	}
	cutoff := q.limits.Now().Add(-q.limits.MaxAge).UnixNano()
	expired := false
	_ = q.db.View(func(tx *bolt.Tx) error {
		_, v := tx.Bucket(q.name).Cursor().First()
		expired = len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) < cutoff
		return nil
	})
	return expired
}

// Ack deletes exported entries. Unknown sequences (already evicted) are
// ignored.
func (q *Queue) Ack(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var freed int64
	var n int
	err := q.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(q.name)
		freed, n = 0, 0
		for _, s := range seqs {
			k := key(s)
			v := b.Get(k)
			if v == nil {
				continue
			}
			freed += int64(len(k)+len(v)) + entryOverhead
			n++
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool: ack: %w", err)
	}
	q.bytes -= freed
	q.count -= n
	return nil
}

// Stats is a snapshot of a queue.
type Stats struct {
	// Entries and Bytes are what the queue holds now.
	Entries int
	Bytes   int64
	// Evicted counts entries dropped for space or age since the queue was opened.
	Evicted int64
}

// Stats returns the queue's current size and eviction count.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Stats{Entries: q.count, Bytes: q.bytes, Evicted: q.evicted.Load()}
}

func key(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}
