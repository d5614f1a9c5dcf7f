package campaign

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/vantage-fleet/vantage/pkg/ingest"
	"github.com/vantage-fleet/vantage/pkg/report"
)

func TestReadLogged_SkipsATornLastLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.jsonl")
	body := `{"id":"a","journey":"j","agent":"eu-1"}` + "\n" + `{"id":"b","journey":"j"}` + "\n" + `{"id":"c","jou`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readLogged([]string{p, filepath.Join(t.TempDir(), "absent.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"].Agent != "eu-1" {
		t.Fatalf("readLogged = %v, want a and b", got)
	}
}

// TestIDWatcher_CountsAcrossRestarts_FindsIDsCountedTwice serves the real
// ingest.Store handler, swaps in a new Store (an aggregator restart) and
// re-accepts one ID: the watcher must count it twice and the others once.
func TestIDWatcher_CountsAcrossRestarts_FindsIDsCountedTwice(t *testing.T) {
	var mu sync.Mutex
	store := ingest.NewStore(10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := store.IDsHandler()
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	w := newIDWatcher(srv.URL)
	ctx := context.Background()
	for i := 0; i < 5000; i++ { // more than one page
		_ = store.Accept(report.Result{ID: "id-" + strconv.Itoa(i)})
	}
	w.poll(ctx)
	mu.Lock()
	store = ingest.NewStore(10)
	mu.Unlock()
	_ = store.Accept(report.Result{ID: "id-7"})
	_ = store.Accept(report.Result{ID: "new"})
	w.poll(ctx)
	w.poll(ctx) // nothing new: nothing counted again
	counts, gaps := w.counts()
	if len(counts) != 5001 || counts["id-7"] != 2 || counts["id-8"] != 1 || counts["new"] != 1 || gaps != 0 {
		b, _ := json.Marshal(map[string]any{"n": len(counts), "id-7": counts["id-7"], "new": counts["new"], "gaps": gaps})
		t.Fatalf("watcher counts: %s", b)
	}
}
