package alert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/verdict"
	bolt "go.etcd.io/bbolt"
)

func noRestore([]byte, iter.Seq2[string, []byte]) error { return nil }

func TestStore_RoundTripAndCorruptRecordIsAClearError(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := Alert{Key: "VantageJourneyGlobal|abc", Labels: map[string]string{"alertname": "VantageJourneyGlobal"}, Annotations: map[string]string{"summary": "x"},
		StartsAt: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	meta, err := verdict.New(verdict.DefaultConfig()).Changes()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveVerdict(meta, nil, map[string]Alert{a.Key: a}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered("pd", a.Key, Delivery{Fingerprint: a.Fingerprint(), Status: "firing"}); err != nil {
		t.Fatal(err)
	}
	var state []byte
	alerts, err := s.Load(func(m []byte, _ iter.Seq2[string, []byte]) error { state = append(state, m...); return nil })
	if err != nil || string(state) != string(meta.Meta) || alerts[a.Key].Fingerprint() != a.Fingerprint() {
		t.Fatalf("load: %s %+v %v", state, alerts, err)
	}
	if d, ok := s.Delivered("pd", a.Key); !ok || d.Fingerprint != a.Fingerprint() {
		t.Fatalf("delivered: %+v %v", d, ok)
	}
	// Saving a smaller set removes alerts no longer present.
	if err := s.SaveVerdict(meta, nil, map[string]Alert{}); err != nil {
		t.Fatal(err)
	}
	if alerts, _ := s.Load(noRestore); len(alerts) != 0 {
		t.Fatalf("stale alerts kept: %+v", alerts)
	}
	// A corrupt record is reported by key, not silently dropped.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketAlerts).Put([]byte("bad"), []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(noRestore); err == nil || !strings.Contains(err.Error(), `alert "bad"`) {
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

// storedJourneys returns the journey records in the store.
func storedJourneys(t *testing.T, s *Store) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJourneys).ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStore_VerdictStateIsSavedPerJourney_OnlyChangedJourneysRewritten(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	iv := 30 * time.Second
	tr := verdict.New(verdict.DefaultConfig())
	save := func() verdict.StateChanges {
		t.Helper()
		ch, err := tr.Changes()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveVerdict(ch, tr.AppendRecord, map[string]Alert{}); err != nil {
			t.Fatal(err)
		}
		tr.MarkSaved()
		return ch
	}
	accept := func(r report.Result, now time.Time) {
		t.Helper()
		if err := tr.Accept(r, now); err != nil {
			t.Fatal(err)
		}
	}
	for _, j := range []string{"clone", "push", "api"} {
		for _, reg := range []string{"eu", "us"} {
			accept(result(j, reg, reg+"-1", t0, iv, report.TriggerSchedule, report.StatusPass), t0)
		}
	}
	accept(result("clone", "eu", "eu-2", t0, iv, report.TriggerConfirm, report.StatusFail), t0)
	tr.Evaluate(t0)
	if ch := save(); len(ch.Journeys) != 3 {
		t.Fatalf("first save wrote %d journeys, want 3", len(ch.Journeys))
	}
	before := storedJourneys(t, s)

	// One journey gets a result: only its record is rewritten.
	t1 := t0.Add(iv)
	accept(result("push", "us", "us-1", t1, iv, report.TriggerSchedule, report.StatusFail), t1)
	tr.Evaluate(t1)
	ch := save()
	if len(ch.Journeys) != 1 || ch.Journeys[0] != "push" {
		t.Fatalf("second save wrote %+v, want only push", ch.Journeys)
	}
	after := storedJourneys(t, s)
	if !bytes.Equal(before["clone"], after["clone"]) || bytes.Equal(before["push"], after["push"]) {
		t.Fatal("records of unchanged journeys changed, or the changed one was not rewritten")
	}
	// A forgotten journey's record is deleted.
	tr.Forget("api")
	tr.Evaluate(t1)
	if ch := save(); len(ch.Removed) != 1 || len(ch.Journeys) != 0 {
		t.Fatalf("forget saved %+v", ch)
	}
	if _, ok := storedJourneys(t, s)["api"]; ok {
		t.Fatal("forgotten journey still stored")
	}
	if ch, _ := tr.Changes(); len(ch.Journeys) != 0 {
		t.Fatalf("nothing changed, yet %d journeys to save", len(ch.Journeys))
	}

	// A restored tracker shows the same verdicts and samples, and its
	// dedup still knows the stored runs.
	tr2 := verdict.New(verdict.DefaultConfig())
	if _, err := s.Load(tr2.RestoreRecords); err != nil {
		t.Fatal(err)
	}
	if out := tr2.Evaluate(t1); len(out.Changes) != 0 || len(out.Cells) != 0 {
		t.Fatalf("restored tracker reports changes: %+v", out)
	}
	tr.Evaluate(t1)
	if a, b := snapJSON(t, tr.Snapshot()), snapJSON(t, tr2.Snapshot()); a != b {
		t.Fatalf("snapshot differs after restore:\n%s\n%s", a, b)
	}
	err = tr2.Accept(result("clone", "eu", "eu-2", t0, iv, report.TriggerConfirm, report.StatusFail), t1)
	if err != verdict.ErrDuplicate {
		t.Fatalf("a re-sent result after restore: %v, want a duplicate", err)
	}
}

func TestStore_LegacyStateBlobIsAClearError(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketState).Put(keyLegacyVerdict, []byte(`{"version":1}`))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(noRestore); err == nil || !strings.Contains(err.Error(), "older aggregator") {
		t.Fatalf("legacy blob: %v", err)
	}
}

func snapJSON(t *testing.T, s verdict.Snapshot) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStore_SparseFileIsCompactedOnOpen_KeepingItsRecords(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := verdict.New(verdict.DefaultConfig()).Changes()
	rec := func(b []byte, name string) []byte { return append(b, bytes.Repeat([]byte(name), 12<<10/len(name))...) }
	var names []string
	for i := 0; i < 2500; i++ {
		names = append(names, fmt.Sprintf("journey-%05d", i))
	}
	ch := meta
	ch.Journeys = names
	if err := s.SaveVerdict(ch, rec, map[string]Alert{}); err != nil {
		t.Fatal(err)
	}
	// All but one journey go away: most of the file is free pages now.
	ch = meta
	ch.Removed = names[1:]
	if err := s.SaveVerdict(ch, rec, map[string]Alert{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	size := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, "alerts.db"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	if before < compactMinBytes {
		t.Fatalf("test file of %d bytes is too small to compact", before)
	}
	s, err = OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if after := size(); after*4 > before {
		t.Fatalf("file of %d bytes, %d after open: not compacted", before, after)
	}
	got := storedJourneys(t, s)
	if len(got) != 1 || !bytes.Equal(got[names[0]], rec(nil, names[0])) {
		t.Fatalf("compaction lost or changed records: %d kept", len(got))
	}
	if _, err := OpenStore(dir); err == nil {
		t.Fatal("the compacted file is not locked")
	}
}
