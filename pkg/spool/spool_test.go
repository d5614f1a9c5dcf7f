package spool

import (
	"fmt"
	"testing"
	"time"
)

func open(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func payloads(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Data))
	}
	return out
}

func TestSpool_FIFOAckAndReopen_KeepsUnacknowledged(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := db.Queue("otlp-0", Limits{MaxBytes: 1 << 20})
	for i := 0; i < 5; i++ {
		if _, err := q.Put([]byte(fmt.Sprint("r", i))); err != nil {
			t.Fatal(err)
		}
	}
	es, _ := q.Peek(3)
	if got := fmt.Sprint(payloads(es)); got != "[r0 r1 r2]" {
		t.Fatalf("peek = %s", got)
	}
	if err := q.Ack(es[0].Seq, es[1].Seq); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db2 := open(t, dir)
	q2, _ := db2.Queue("otlp-0", Limits{MaxBytes: 1 << 20})
	es, _ = q2.Peek(10)
	if got := fmt.Sprint(payloads(es)); got != "[r2 r3 r4]" {
		t.Fatalf("after reopen = %s", got)
	}
	if s := q2.Stats(); s.Entries != 3 {
		t.Fatalf("stats after reopen %+v", s)
	}
	// New entries go after the old ones: sequences keep growing.
	q2.Put([]byte("r5"))
	es, _ = q2.Peek(10)
	if got := fmt.Sprint(payloads(es)); got != "[r2 r3 r4 r5]" {
		t.Fatalf("order = %s", got)
	}
}

func TestSpool_FullEvictsOldestFirst_AndCountsThem(t *testing.T) {
	q, _ := open(t, t.TempDir()).Queue("x", Limits{MaxBytes: 10 * (8 + 8 + 10 + entryOverhead)})
	total := 0
	for i := 0; i < 15; i++ {
		n, err := q.Put([]byte(fmt.Sprintf("entry-%04d", i)))
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 5 || q.Stats().Evicted != 5 || q.Stats().Entries != 10 {
		t.Fatalf("evicted %d, stats %+v; want 5 evicted, 10 kept", total, q.Stats())
	}
	es, _ := q.Peek(1)
	if string(es[0].Data) != "entry-0005" {
		t.Fatalf("oldest kept = %s, want entry-0005", es[0].Data)
	}
	if _, err := q.Put(make([]byte, 1000)); err != ErrTooLarge {
		t.Fatalf("huge entry: err = %v", err)
	}
}

func TestSpool_OlderThanMaxAge_IsEvicted(t *testing.T) {
	now := time.Unix(1000, 0)
	q, _ := open(t, t.TempDir()).Queue("x", Limits{MaxBytes: 1 << 20, MaxAge: time.Hour, Now: func() time.Time { return now }})
	q.Put([]byte("old"))
	now = now.Add(30 * time.Minute)
	q.Put([]byte("newer"))
	now = now.Add(45 * time.Minute)
	es, _ := q.Peek(10)
	if got := fmt.Sprint(payloads(es)); got != "[newer]" || q.Stats().Evicted != 1 {
		t.Fatalf("peek = %s, stats %+v", got, q.Stats())
	}
}

func TestSpool_EachExportKeepsItsOwnPosition(t *testing.T) {
	db := open(t, t.TempDir())
	a, _ := db.Queue("a", Limits{})
	b, _ := db.Queue("b", Limits{})
	a.Put([]byte("1"))
	a.Put([]byte("2"))
	b.Put([]byte("1"))
	es, _ := a.Peek(1)
	a.Ack(es[0].Seq)
	ea, _ := a.Peek(10)
	eb, _ := b.Peek(10)
	if fmt.Sprint(payloads(ea)) != "[2]" || fmt.Sprint(payloads(eb)) != "[1]" {
		t.Fatalf("a=%v b=%v", payloads(ea), payloads(eb))
	}
}
