package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/spool"
)

func TestBuildExporters_OTLPExportsShareOneSpool_AndServeCounters(t *testing.T) {
	dir := t.TempDir()
	toml := `
[agent]
name = "eu-1"
region = "eu"
data_dir = "` + dir + `"
[[export]]
type = "jsonl"
path = "` + dir + `/results.jsonl"
[[export]]
type = "otlp"
endpoint = "127.0.0.1:1"
[export.tls]
insecure = true
[[export]]
type = "otlp"
name = "second"
protocol = "http"
endpoint = "127.0.0.1:1"
[export.tls]
insecure = true
`
	cfg, err := config.LoadBytes("p.toml", []byte(toml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	xs, err := buildExporters(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(xs) != 3 {
		t.Fatalf("%d exporters, want 3", len(xs))
	}
	rec := httptest.NewRecorder()
	metricsHandler(xs).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`vantage_agent_results_spooled_total{export="otlp-1"} 0`, `vantage_agent_results_evicted_total{export="second"} 0`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("missing %q in\n%s", want, rec.Body.String())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	closeExporters(ctx, xs) // the endpoint is unreachable: bounded by ctx
	// The last close released the spool file: it opens again at once.
	db, err := spool.Open(dir)
	if err != nil {
		t.Fatalf("spool still locked after every export closed: %v", err)
	}
	db.Close()
}
