package alert

import (
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestStore_RoundTripAndCorruptRecordIsAClearError(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := Alert{Key: "VantageJourneyGlobal|abc", Labels: map[string]string{"alertname": "VantageJourneyGlobal"}, Annotations: map[string]string{"summary": "x"},
		StartsAt: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	if err := s.SaveVerdict([]byte(`{"version":1}`), map[string]Alert{a.Key: a}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered("pd", a.Key, Delivery{Fingerprint: a.Fingerprint(), Status: "firing"}); err != nil {
		t.Fatal(err)
	}
	state, alerts, err := s.Load()
	if err != nil || string(state) != `{"version":1}` || alerts[a.Key].Fingerprint() != a.Fingerprint() {
		t.Fatalf("load: %s %+v %v", state, alerts, err)
	}
	if d, ok := s.Delivered("pd", a.Key); !ok || d.Fingerprint != a.Fingerprint() {
		t.Fatalf("delivered: %+v %v", d, ok)
	}
	// Saving a smaller set removes alerts no longer present.
	if err := s.SaveVerdict([]byte(`{"version":1}`), map[string]Alert{}); err != nil {
		t.Fatal(err)
	}
	if _, alerts, _ := s.Load(); len(alerts) != 0 {
		t.Fatalf("stale alerts kept: %+v", alerts)
	}
	// A corrupt record is reported by key, not silently dropped.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketAlerts).Put([]byte("bad"), []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(); err == nil || !strings.Contains(err.Error(), `alert "bad"`) {
		t.Fatalf("corrupt record: %v", err)
	}
	s.Close()
}

func TestStore_SecondOpenerFailsInsteadOfHanging(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := OpenStore(dir); err == nil {
		t.Fatal("a second aggregator on the same data dir must fail")
	}
}
