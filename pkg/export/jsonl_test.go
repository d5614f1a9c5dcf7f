package export

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
)

func TestJSONL_WritesOneParsableLinePerResult(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.jsonl")
	j, err := NewJSONL(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		r := report.Result{ID: "id-" + name, Journey: name, Status: report.StatusPass, Slot: time.Unix(60, 0), Trigger: report.TriggerSchedule}
		if err := j.Put(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), b)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil || got["journey"] != "b" || got["status"] != "pass" {
		t.Fatalf("line %q: %v %v", lines[1], got, err)
	}
}

func TestJSONL_DashIsTheGivenWriter(t *testing.T) {
	var buf bytes.Buffer
	j, err := NewJSONL("-", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Put(context.Background(), report.Result{Journey: "x"}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "{") || !strings.HasSuffix(buf.String(), "}\n") {
		t.Fatalf("got %q", buf.String())
	}
}
