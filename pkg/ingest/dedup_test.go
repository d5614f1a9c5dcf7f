package ingest

import (
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
)

func ids(rs []report.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestDedup_WindowExpiryAndReopen(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(10_000, 0)
	clock := func() time.Time { return now }
	d, err := OpenDedup(dir, time.Hour, 1000, clock)
	if err != nil {
		t.Fatal(err)
	}
	a, b := run(1, "eu"), run(2, "eu")
	if got, _ := d.Admit([]report.Result{a, a, b}); len(got) != 2 {
		t.Fatalf("first batch admitted %v, want a and b once", ids(got))
	}
	if got, _ := d.Admit([]report.Result{a}); len(got) != 0 {
		t.Fatal("a re-send within the window was admitted")
	}
	d.Close()

	now = now.Add(30 * time.Minute)
	d, err = OpenDedup(dir, time.Hour, 1000, clock)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Close() }()
	if d.Len() != 2 {
		t.Fatalf("reopened window holds %d IDs", d.Len())
	}
	if got, _ := d.Admit([]report.Result{b}); len(got) != 0 {
		t.Fatal("after a restart a re-send was admitted")
	}
	now = now.Add(31 * time.Minute) // a and b are now older than the window
	if got, _ := d.Admit([]report.Result{a}); len(got) != 1 {
		t.Fatal("an ID older than the window was not admitted again")
	}
	if d.Len() != 1 {
		t.Fatalf("expired IDs not forgotten: %d remembered", d.Len())
	}
}

func TestDedup_MaxIDs_ForgetsOldestFirst(t *testing.T) {
	now := time.Unix(10_000, 0)
	d, err := OpenDedup(t.TempDir(), time.Hour, 3, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i := 0; i < 5; i++ {
		now = now.Add(time.Second)
		d.Admit([]report.Result{run(i, "eu")})
	}
	if d.Len() != 3 {
		t.Fatalf("holds %d, want 3", d.Len())
	}
	if got, _ := d.Admit([]report.Result{run(0, "eu")}); len(got) != 1 {
		t.Fatal("the oldest ID was not the one forgotten")
	}
	if got, _ := d.Admit([]report.Result{run(4, "eu")}); len(got) != 0 {
		t.Fatal("a recent ID was forgotten")
	}
}

func TestDedup_ConcurrentOverlappingAdmits_EachIDOnce(t *testing.T) {
	d, err := OpenDedup(t.TempDir(), time.Hour, 100000, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var rs []report.Result
	for i := 0; i < 200; i++ {
		rs = append(rs, run(i, "eu"))
	}
	const workers = 8
	counts := make(chan map[string]int, workers)
	for w := 0; w < workers; w++ {
		go func() {
			got := map[string]int{}
			for i := 0; i < len(rs); i += 10 { // every worker sends every ID, in batches
				j := (i + w*30) % len(rs)
				fresh, err := d.Admit(rs[j:min(j+10, len(rs))])
				if err != nil {
					t.Error(err)
				}
				for _, r := range fresh {
					got[r.ID]++
				}
			}
			counts <- got
		}()
	}
	total := map[string]int{}
	for w := 0; w < workers; w++ {
		for id, n := range <-counts {
			total[id] += n
		}
	}
	for _, r := range rs {
		if total[r.ID] != 1 {
			t.Fatalf("ID admitted %d times", total[r.ID])
		}
	}
}
