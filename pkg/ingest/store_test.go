package ingest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
)

func TestStore_AcceptedIDs_PagedInArrivalOrderAndRingBounded(t *testing.T) {
	s := NewStore(10)
	n := AcceptedIDs + 10
	for i := 0; i < n; i++ {
		_ = s.Accept(report.Result{ID: fmt.Sprintf("id-%d", i), Journey: "j", Region: "eu"})
	}
	// The ring forgot the first 10: asking from 0 starts at the oldest kept.
	p := s.AcceptedSince(0, 3)
	if p.First != 10 || p.Next != 13 || len(p.IDs) != 3 || p.IDs[0] != "id-10" || p.IDs[2] != "id-12" {
		t.Fatalf("page from 0 = first %d next %d ids %v, want id-10..id-12", p.First, p.Next, p.IDs)
	}
	p = s.AcceptedSince(int64(n-2), 100)
	if len(p.IDs) != 2 || p.IDs[1] != fmt.Sprintf("id-%d", n-1) || p.Next != int64(n) {
		t.Fatalf("last page = %v next %d", p.IDs, p.Next)
	}
	if p = s.AcceptedSince(int64(n+5), 100); len(p.IDs) != 0 || p.Next != int64(n) {
		t.Fatalf("page past the end = %v next %d, want empty at %d", p.IDs, p.Next, n)
	}
}

func TestStore_IDsHandler_RejectsBadAfterAndCapsPage(t *testing.T) {
	s := NewStore(10)
	for i := 0; i < maxIDsPage+5; i++ {
		_ = s.Accept(report.Result{ID: fmt.Sprintf("id-%d", i)})
	}
	rec := httptest.NewRecorder()
	s.IDsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/results/ids?after=-1", nil))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("after=-1: status %d, want 400", rec.Code)
	}
	rec = httptest.NewRecorder()
	s.IDsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/results/ids?after=1", nil))
	var p IDs
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Boot == "" || p.First != 1 || len(p.IDs) != maxIDsPage || p.IDs[0] != "id-1" {
		t.Fatalf("page = boot %q first %d len %d, want first 1 and %d IDs", p.Boot, p.First, len(p.IDs), maxIDsPage)
	}
}

func TestReadDedupIDs_SeesAdmittedIDsAfterClose(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDedup(dir, time.Hour, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Admit([]report.Result{run(1, "eu"), run(2, "us")}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	got, err := ReadDedupIDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[run(1, "eu").ID].IsZero() || got[run(2, "us").ID].IsZero() {
		t.Fatalf("ReadDedupIDs = %v, want both admitted IDs", got)
	}
	if _, err := ReadDedupIDs(t.TempDir() + "/none"); err == nil {
		t.Fatal("a missing dedup file read without error")
	}
}
