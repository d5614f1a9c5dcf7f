package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/report/reporttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "aggregator.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidate_PrintsOkOrProblems(t *testing.T) {
	var out, errb bytes.Buffer
	good := writeConfig(t, "[aggregator]\nname = \"a\"\ndata_dir = \"/tmp/x\"\n")
	if code := run(context.Background(), []string{"validate", "-config", good}, &out, &errb); code != 0 || out.String() != "ok\n" {
		t.Fatalf("good config: code %d out %q err %q", code, out.String(), errb.String())
	}
	out.Reset()
	bad := writeConfig(t, "[ingest]\nmax_request_bytes = 1\nbogus = 2\n")
	if code := run(context.Background(), []string{"validate", "-config", bad}, &out, &errb); code != 1 ||
		!strings.Contains(out.String(), "aggregator.toml:2: ingest.max_request_bytes") || !strings.Contains(out.String(), "ingest.bogus: unknown key") {
		t.Fatalf("bad config: code %d out %q", code, out.String())
	}
	if code := run(context.Background(), []string{"validate"}, &out, &errb); code != 2 {
		t.Fatalf("missing -config: code %d", code)
	}
}

func TestServe_ReceivesResults_ShowsThemAndCountsThem(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.LoadAggregatorBytes("a.toml", []byte("[aggregator]\nname = \"a\"\ndata_dir = \""+dir+"\"\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ls := &listeners{grpc: lis(t), http: lis(t), api: lis(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler), ls) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	conn, err := grpc.NewClient(ls.grpc.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rl, err := report.EncodeOTLP(reporttest.Full())
	if err != nil {
		t.Fatal(err)
	}
	req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{rl}}
	for i := 0; i < 2; i++ { // the second send is a duplicate
		if _, err := collogspb.NewLogsServiceClient(conn).Export(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	api := "http://" + ls.api.Addr().String()
	body := get(t, api+"/api/v1/results")
	if !strings.Contains(body, reporttest.Full().ID) || strings.Count(body, `"id"`) != 1 {
		t.Fatalf("results API: %s", body)
	}
	// A current run reaches the verdict engine: the status API shows it.
	now := time.Now().UTC().Truncate(time.Minute)
	cur := report.Result{Journey: "live-journey", Kind: "http", Region: "eu", Agent: "eu-1", Slot: now,
		Trigger: report.TriggerSchedule, Interval: time.Minute, Start: now, Duration: time.Second, Status: report.StatusPass}
	cur.ID = report.ResultID(cur.Journey, cur.Region, cur.Agent, cur.Slot, cur.Trigger)
	rl2, err := report.EncodeOTLP(cur)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := collogspb.NewLogsServiceClient(conn).Export(context.Background(), &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{rl2}})
	if err != nil || resp.GetPartialSuccess().GetRejectedLogRecords() != 0 {
		t.Fatalf("export: %v %v", err, resp)
	}
	if st := get(t, api+"/api/v1/status"); !strings.Contains(st, "live-journey") {
		t.Fatalf("status API lacks the journey: %s", st)
	}
	m := get(t, api+"/metrics")
	for _, want := range []string{"vantage_aggregator_results_received_total 3", "vantage_aggregator_results_duplicates_total 1"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

func lis(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
