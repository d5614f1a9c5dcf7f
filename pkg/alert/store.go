package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"time"

	"github.com/vantage-fleet/vantage/pkg/verdict"
	bolt "go.etcd.io/bbolt"
)

// Store is the aggregator's durable state in one bbolt file: the verdict
// state, the alerts not yet resolved everywhere, and the notification log
// (what each sink has been told), so that a restart neither pages again nor
// forgets a resolution.
type Store struct {
	db *bolt.DB
}

var (
	bucketState    = []byte("state")
	bucketJourneys = []byte("journeys")
	bucketAlerts   = []byte("alerts")
	bucketLog      = []byte("nlog")
	keyMeta        = []byte("meta")
	// keyLegacyVerdict held the whole verdict state as one JSON blob
	// before the state was stored per journey.
	keyLegacyVerdict = []byte("verdict")
)

// Delivery is one notification-log entry: the fingerprint a sink last
// acknowledged for an alert.
type Delivery struct {
	Fingerprint string    `json:"fingerprint"`
	Status      string    `json:"status"`
	At          time.Time `json:"at"`
}

// OpenStore opens (or creates) dir/alerts.db. The lock wait is bounded so
// that a second aggregator on the same directory fails instead of hanging.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("alert store: %w", err)
	}
	path := filepath.Join(dir, "alerts.db")
	db, err := openDB(path)
	if err != nil {
		return nil, fmt.Errorf("alert store: open %s: %w", dir, err)
	}
	if db, err = compactIfSparse(db, path); err != nil {
		return nil, fmt.Errorf("alert store: compact %s: %w", dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketState, bucketJourneys, bucketAlerts, bucketLog} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("alert store: %w", err)
	}
	return &Store{db: db}, nil
}

// openDB opens the bbolt file. The map freelist and not syncing it keep a
// save of many journey records cheap; the freelist is rebuilt by a scan on
// open.
func openDB(path string) (*bolt.DB, error) {
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second,
		FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
}

// Compaction on open: a file of at least compactMinBytes that is more
// than half free pages is rewritten, since bbolt never shrinks its file
// and its mapped pages count against the aggregator's memory.
const (
	compactMinBytes = 16 << 20
	compactTxBytes  = 16 << 20
)

// compactIfSparse returns db, or a freshly opened compacted copy that has
// replaced the file at path. On error db is closed.
func compactIfSparse(db *bolt.DB, path string) (*bolt.DB, error) {
	fi, err := os.Stat(path)
	if err != nil {
		db.Close()
		return nil, err
	}
	st := db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(db.Info().PageSize)
	if fi.Size() < compactMinBytes || free*2 < fi.Size() {
		return db, nil
	}
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := openDB(tmp)
	if err == nil {
		err = bolt.Compact(dst, db, compactTxBytes)
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return db, nil // keep using the sparse file: it is still correct
	}
	// The lock on path is held until the rename is done, so that a second
	// aggregator cannot open the old file meanwhile.
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return db, nil
	}
	db.Close()
	return openDB(path)
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// saveBatchBytes bounds the journey records written in one transaction,
// so that a save of every journey does not hold them all in memory.
const saveBatchBytes = 4 << 20

// SaveVerdict stores the verdict state changes and the alert set: the
// changed journeys' records (from record) in transactions of about
// saveBatchBytes, then the meta record, the removals and the alerts in a
// last one. After a crash between them the store holds journeys newer than
// its meta record; a restart evaluates them like fresh results, and the
// alerts always agree with the open conditions stored with them.
func (s *Store) SaveVerdict(ch verdict.StateChanges, record func(b []byte, journey string) []byte, alerts map[string]Alert) error {
	for names := ch.Journeys; len(names) > 0; {
		err := s.db.Update(func(tx *bolt.Tx) error {
			jb := tx.Bucket(bucketJourneys)
			for size := 0; len(names) > 0 && size < saveBatchBytes; names = names[1:] {
				v := record(nil, names[0])
				if len(v) == 0 {
					continue
				}
				if err := jb.Put([]byte(names[0]), v); err != nil {
					return fmt.Errorf("journey %q: %w", names[0], err)
				}
				size += len(v)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketState)
		if err := st.Put(keyMeta, ch.Meta); err != nil {
			return err
		}
		if err := st.Delete(keyLegacyVerdict); err != nil {
			return err
		}
		jb := tx.Bucket(bucketJourneys)
		for _, name := range ch.Removed {
			if err := jb.Delete([]byte(name)); err != nil {
				return err
			}
		}
		b := tx.Bucket(bucketAlerts)
		// Replace the whole set: it is small (open incidents).
		var stale [][]byte
		_ = b.ForEach(func(k, _ []byte) error {
			if _, ok := alerts[string(k)]; !ok {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		for k, a := range alerts {
			v, err := json.Marshal(a)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// maxAlertBytes bounds one stored alert record.
const maxAlertBytes = 64 << 10

// RestoreFunc receives the stored verdict state: the meta record and the
// journey records, whose bytes are valid only during the call.
type RestoreFunc func(meta []byte, journeys iter.Seq2[string, []byte]) error

// Load calls restore with the stored verdict state (not at all when none
// is stored) and returns the stored alerts.
func (s *Store) Load(restore RestoreFunc) (map[string]Alert, error) {
	alerts := map[string]Alert{}
	err := s.db.View(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketState)
		if m := st.Get(keyMeta); m != nil {
			jb := tx.Bucket(bucketJourneys)
			err := restore(m, func(yield func(string, []byte) bool) {
				c := jb.Cursor()
				for k, v := c.First(); k != nil; k, v = c.Next() {
					if !yield(string(k), v) {
						return
					}
				}
			})
			if err != nil {
				return err
			}
		} else if st.Get(keyLegacyVerdict) != nil {
			return errors.New("the verdict state was written by an older aggregator (one blob); it cannot be read: move alerts.db aside to start afresh")
		}
		return tx.Bucket(bucketAlerts).ForEach(func(k, v []byte) error {
			if len(v) > maxAlertBytes {
				return fmt.Errorf("alert %q: record of %d bytes", k, len(v))
			}
			var a Alert
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("alert %q: %w", k, err)
			}
			if a.Key != string(k) {
				return errors.New("alert record key mismatch")
			}
			alerts[a.Key] = a
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("alert store: load: %w", err)
	}
	return alerts, nil
}

func logKey(sink, key string) []byte { return []byte(sink + "\x00" + key) }

// Delivered returns what sink last acknowledged for the alert key.
func (s *Store) Delivered(sink, key string) (Delivery, bool) {
	var d Delivery
	var ok bool
	_ = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLog).Get(logKey(sink, key))
		if v != nil && json.Unmarshal(v, &d) == nil {
			ok = true
		}
		return nil
	})
	return d, ok
}

// MarkDelivered records that sink acknowledged d for the alert key.
func (s *Store) MarkDelivered(sink, key string, d Delivery) error {
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketLog).Put(logKey(sink, key), v) })
}

// ForgetDelivered drops the log entries of an alert once every sink has
// its resolution.
func (s *Store) ForgetDelivered(sinks []string, key string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, sk := range sinks {
			if err := tx.Bucket(bucketLog).Delete(logKey(sk, key)); err != nil {
				return err
			}
		}
		return nil
	})
}
