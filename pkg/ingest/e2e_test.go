package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/report/reporttest"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
)

func logsRequest(t testing.TB, rs ...report.Result) *collogspb.ExportLogsServiceRequest {
	t.Helper()
	req := &collogspb.ExportLogsServiceRequest{}
	for _, r := range rs {
		rl, err := report.EncodeOTLP(r)
		if err != nil {
			t.Fatal(err)
		}
		req.ResourceLogs = append(req.ResourceLogs, rl)
	}
	return req
}

func grpcClient(t *testing.T, addr string) collogspb.LogsServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return collogspb.NewLogsServiceClient(conn)
}

func post(t *testing.T, url, ct, enc string, body []byte, hdr ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// otlpJSON renders a request as OTLP/JSON: protojson with trace and span
// IDs in hex, as the OTLP specification requires.
func otlpJSON(t *testing.T, req proto.Message) []byte {
	t.Helper()
	b, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var m collogspb.ExportLogsServiceRequest
	proto.Merge(&m, req)
	for _, rl := range m.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				if len(lr.TraceId) > 0 {
					b = bytes.ReplaceAll(b, []byte(`"`+b64(lr.TraceId)+`"`), []byte(`"`+hex.EncodeToString(lr.TraceId)+`"`))
				}
			}
		}
	}
	return b
}

func b64(b []byte) string {
	s, _ := protojson.Marshal(&commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: b}})
	// {"bytesValue":"..."}
	v := string(s)
	return v[strings.Index(v, `:"`)+2 : len(v)-2]
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestIngest_EveryFieldRoundTrips_OverGRPCAndHTTP_ProtobufAndJSON(t *testing.T) {
	agg := startAggregator(t, t.TempDir(), "", "")
	want := reporttest.Full()
	variants := []struct {
		name string
		send func(r report.Result)
	}{
		{"agent export over gRPC (SDK exporter)", func(r report.Result) {
			ag := startAgent(t, t.TempDir(), exportConfig(agg.grpcAddr, "grpc"))
			if err := ag.exp.Put(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}},
		{"agent export over HTTP protobuf gzip (SDK exporter)", func(r report.Result) {
			e := exportConfig(agg.httpAddr, "http")
			e.Gzip = true
			ag := startAgent(t, t.TempDir(), e)
			if err := ag.exp.Put(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}},
		{"raw gRPC", func(r report.Result) {
			if _, err := grpcClient(t, agg.grpcAddr).Export(context.Background(), logsRequest(t, r)); err != nil {
				t.Fatal(err)
			}
		}},
		{"HTTP JSON", func(r report.Result) {
			code, body := post(t, "http://"+agg.httpAddr+"/v1/logs", "application/json", "", otlpJSON(t, logsRequest(t, r)))
			if code != 200 {
				t.Fatalf("HTTP %d: %s", code, body)
			}
		}},
		{"HTTP JSON gzip", func(r report.Result) {
			code, body := post(t, "http://"+agg.httpAddr+"/v1/logs", "application/json", "gzip", gz(otlpJSON(t, logsRequest(t, r))))
			if code != 200 {
				t.Fatalf("HTTP %d: %s", code, body)
			}
		}},
	}
	for i, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			r := want
			r.Agent = fmt.Sprintf("agent-%d", i) // a new ID per variant
			r.ID = report.ResultID(r.Journey, r.Region, r.Agent, r.Slot, r.Trigger)
			v.send(r)
			var got report.Result
			waitFor(t, "the result in the store", func() bool {
				for _, x := range agg.store.Latest() {
					if x.ID == r.ID {
						got = x
						return true
					}
				}
				return false
			})
			reporttest.Same(t, got, r)
		})
	}
}

func TestIngest_AgentTracesAndMetrics_ReachTheAggregator(t *testing.T) {
	agg := startAggregator(t, t.TempDir(), "", "")
	ag := startAgent(t, t.TempDir(), exportConfig(agg.grpcAddr, "grpc"))
	r := reporttest.Full()
	if err := ag.exp.Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	ag.close() // flushes spans and metrics
	if n := agg.counter("vantage.aggregator.spans.received"); n != int64(1+len(r.Steps)) {
		t.Fatalf("spans received = %d, want %d (root + steps)", n, 1+len(r.Steps))
	}
	if agg.counter("vantage.aggregator.metrics.received") == 0 {
		t.Fatal("no metrics received")
	}
}

func TestIngest_OfficialSDKLogExporter_OrdinaryLogsAcceptedNotResults(t *testing.T) {
	agg := startAggregator(t, t.TempDir(), "", "")
	exp, err := otlploghttp.New(context.Background(), otlploghttp.WithEndpoint(agg.httpAddr), otlploghttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)))
	var rec otellog.Record
	rec.SetBody(attribute.StringValue("hello"))
	lp.Logger("test").Emit(context.Background(), rec)
	if err := lp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if agg.counter("vantage.aggregator.logs.received") != 1 || agg.counter("vantage.aggregator.results.invalid") != 0 {
		t.Fatalf("logs=%d invalid=%d", agg.counter("vantage.aggregator.logs.received"), agg.counter("vantage.aggregator.results.invalid"))
	}
}

func TestIngest_Garbage_IsRejectedWithAnError_AndChangesNothing(t *testing.T) {
	agg := startAggregator(t, t.TempDir(), "", "")
	url := "http://" + agg.httpAddr + "/v1/logs"
	valid, _ := proto.Marshal(logsRequest(t, run(1, "eu")))
	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	cases := []struct {
		name, ct, enc string
		body          []byte
		code          int
	}{
		{"random bytes", "application/x-protobuf", "", random, 400},
		{"truncated body", "application/x-protobuf", "", valid[:len(valid)/2], 400},
		{"random JSON", "application/json", "", []byte(`{"resourceLogs": 7}`), 400},
		{"not gzip", "application/x-protobuf", "gzip", valid, 400},
		{"wrong content type", "text/plain", "", valid, 415},
		{"too large", "application/x-protobuf", "", make([]byte, 5<<20), 413},
		{"gzip bomb", "application/x-protobuf", "gzip", gz(make([]byte, 5<<20)), 413},
	}
	for _, c := range cases {
		code, body := post(t, url, c.ct, c.enc, c.body)
		if code != c.code {
			t.Errorf("%s: HTTP %d (%s), want %d", c.name, code, body, c.code)
		}
	}

	// Well-formed requests with invalid result records: partial success.
	bad := logsRequest(t, run(2, "eu"), run(3, "eu"), run(4, "eu"))
	a := bad.ResourceLogs[0].ScopeLogs[0].LogRecords[0].Attributes
	for _, kv := range a {
		if kv.Key == "vantage.result.status" {
			kv.Value = &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 3}} // wrong type
		}
	}
	bad.ResourceLogs[1].ScopeLogs[0].LogRecords[0].Attributes = append(bad.ResourceLogs[1].ScopeLogs[0].LogRecords[0].Attributes,
		&commonpb.KeyValue{Key: "huge", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: strings.Repeat("x", 100000)}}})
	bad.ResourceLogs[2].ScopeLogs[0].LogRecords[0].TraceId = []byte{1, 2, 3} // truncated ID
	resp, err := grpcClient(t, agg.grpcAddr).Export(context.Background(), bad)
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.GetPartialSuccess()
	if ps.GetRejectedLogRecords() != 3 || !strings.Contains(ps.GetErrorMessage(), "vantage.result.status") {
		t.Fatalf("partial success = %v", ps)
	}
	b, _ := proto.Marshal(bad)
	code, body := post(t, url, "application/x-protobuf", "", b)
	var hr collogspb.ExportLogsServiceResponse
	if code != 200 || proto.Unmarshal(body, &hr) != nil || hr.GetPartialSuccess().GetRejectedLogRecords() != 3 {
		t.Fatalf("HTTP %d partial success = %v", code, hr.GetPartialSuccess())
	}
	// gRPC: a message over the limit is refused.
	huge := logsRequest(t, run(5, "eu"))
	huge.ResourceLogs[0].SchemaUrl = strings.Repeat("x", 5<<20)
	if _, err := grpcClient(t, agg.grpcAddr).Export(context.Background(), huge); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("huge gRPC request: %v", err)
	}
	if n := len(agg.store.Latest()); n != 0 || agg.dedup.Len() != 0 || agg.counter("vantage.aggregator.results.received") != 0 {
		t.Fatalf("state changed: store %d, dedup %d", n, agg.dedup.Len())
	}
	if agg.counter("vantage.aggregator.results.invalid") != 6 {
		t.Fatalf("invalid = %d, want 6", agg.counter("vantage.aggregator.results.invalid"))
	}
}

func TestIngest_BearerToken_IsRequiredWhenConfigured(t *testing.T) {
	const canary = "canary-token-7f3"
	a := &aggregator{dir: t.TempDir(), reg: nil}
	a.reg = telemetry.NewRegistry()
	a.store = NewStore(10)
	a.token = canary
	a.start(t, "", "")
	t.Cleanup(a.stop)
	body, _ := proto.Marshal(logsRequest(t, run(1, "eu")))
	if code, resp := post(t, "http://"+a.httpAddr+"/v1/logs", "application/x-protobuf", "", body); code != 401 || bytes.Contains(resp, []byte(canary)) {
		t.Fatalf("no token: HTTP %d", code)
	}
	if code, _ := post(t, "http://"+a.httpAddr+"/v1/logs", "application/x-protobuf", "", body, "Authorization", "Bearer "+canary); code != 200 {
		t.Fatalf("with token: HTTP %d", code)
	}
	c := grpcClient(t, a.grpcAddr)
	if _, err := c.Export(context.Background(), logsRequest(t, run(2, "eu"))); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC without token: %v", err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+canary)
	if _, err := c.Export(ctx, logsRequest(t, run(2, "eu"))); err != nil {
		t.Fatalf("gRPC with token: %v", err)
	}
	if len(a.store.Latest()) != 2 {
		t.Fatalf("store has %d", len(a.store.Latest()))
	}
}

func TestIngest_Outage_EveryResultArrivesExactlyOnce(t *testing.T) {
	agg := startAggregator(t, t.TempDir(), "", "")
	ag := startAgent(t, t.TempDir(), exportConfig(agg.grpcAddr, "grpc"))
	const n = 150
	for i := 0; i < 20; i++ {
		ag.exp.Put(context.Background(), run(i, "eu"))
	}
	waitFor(t, "first results", func() bool { return agg.store.Accepted() == 20 })
	agg.stop() // listener closed: the endpoint is down
	for i := 20; i < n; i++ {
		if err := ag.exp.Put(context.Background(), run(i, "eu")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "failed export attempts", func() bool { return ag.counter("vantage.agent.export.failures") >= 2 })
	agg.start(t, agg.grpcAddr, agg.httpAddr)
	waitFor(t, "the backlog", func() bool { return agg.store.Accepted() >= n && ag.exp.Stats().Entries == 0 })
	if got := agg.store.Accepted(); got != n || len(agg.store.Latest()) != n {
		t.Fatalf("accepted %d results (%d distinct), want %d exactly once", got, len(agg.store.Latest()), n)
	}
	if ag.counter("vantage.agent.results.exported") != n || ag.counter("vantage.agent.results.spooled") != n {
		t.Fatalf("agent counters: exported %d spooled %d", ag.counter("vantage.agent.results.exported"), ag.counter("vantage.agent.results.spooled"))
	}
}

func TestIngest_AggregatorRestart_ResentResultsCountedOnce(t *testing.T) {
	agg := startAggregator(t, t.TempDir(), "", "")
	var rs []report.Result
	for i := 0; i < 50; i++ {
		rs = append(rs, run(i, "eu"))
	}
	req := logsRequest(t, rs...)
	c := grpcClient(t, agg.grpcAddr)
	if _, err := c.Export(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Export(context.Background(), req); err != nil { // a re-send before the restart
		t.Fatal(err)
	}
	if agg.store.Accepted() != 50 || agg.counter("vantage.aggregator.results.duplicates") != 50 {
		t.Fatalf("before restart: accepted %d", agg.store.Accepted())
	}
	agg.restart(t)
	code, body := post(t, "http://"+agg.httpAddr+"/v1/logs", "application/x-protobuf", "", mustMarshal(t, req))
	if code != 200 {
		t.Fatalf("HTTP %d %s", code, body)
	}
	if got := agg.store.Accepted(); got != 0 {
		t.Fatalf("after restart the re-sent batch was accepted %d times", got)
	}
	if _, err := grpcClient(t, agg.grpcAddr).Export(context.Background(), logsRequest(t, run(99, "eu"))); err != nil {
		t.Fatal(err)
	}
	if agg.store.Accepted() != 1 {
		t.Fatal("a new result after the restart was not accepted")
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIngest_FullSpool_EvictsOldestFirst_AndSaysHowMany(t *testing.T) {
	agg := startAggregator(t, t.TempDir(), "", "")
	addr := agg.grpcAddr
	agg.stop()
	e := exportConfig(addr, "grpc")
	one, _ := report.MarshalOTLP(run(0, "eu"))
	e.SpoolMaxBytes = int64(10 * (len(one) + 48))
	ag := startAgent(t, t.TempDir(), e)
	for i := 0; i < 25; i++ {
		if err := ag.exp.Put(context.Background(), run(i, "eu")); err != nil {
			t.Fatal(err)
		}
	}
	evicted := ag.counter("vantage.agent.results.evicted")
	kept := ag.exp.Stats().Entries
	if evicted == 0 || int64(kept)+evicted != 25 {
		t.Fatalf("evicted %d, kept %d: want evictions adding up to 25", evicted, kept)
	}
	agg.start(t, addr, "")
	waitFor(t, "the kept results", func() bool { return agg.store.Accepted() == int64(kept) })
	for _, r := range agg.store.Latest() {
		i, _ := strconv.Atoi(strings.TrimPrefix(r.Journey, "journey-"))
		if i < int(evicted) {
			t.Fatalf("result %d arrived although the %d oldest were evicted", i, evicted)
		}
	}
}

// The SIGKILL test runs the agent in a child process (this test binary,
// re-executed with VANTAGE_TEST_CHILD set) that puts results and prints
// "put N" after each Put returned.
const childEnv = "VANTAGE_TEST_CHILD"

func childMain() bool {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return false
	}
	// spec: dir|endpoint|from|to
	p := strings.Split(spec, "|")
	from, _ := strconv.Atoi(p[2])
	to, _ := strconv.Atoi(p[3])
	ag, err := childAgent(p[0], p[1])
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := from; i < to; i++ {
		if err := ag.exp.Put(context.Background(), run(i, "eu")); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("put", i)
	}
	for ag.exp.Stats().Entries > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("drained")
	ag.close()
	return true
}

func TestIngest_ProberKilledMidExport_LosesNothingCountsNothingTwice(t *testing.T) {
	agg := startAggregator(t, t.TempDir(), "", "")
	dir := t.TempDir()
	const n = 400
	// First life: killed with SIGKILL after 150 acknowledged Puts.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir+"|"+agg.grpcAddr+"|0|"+strconv.Itoa(n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	acked := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "put ") {
			acked++
			if acked == 150 {
				break
			}
		}
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked != 150 {
		t.Fatalf("child acknowledged only %d puts", acked)
	}
	if agg.store.Accepted() >= 400 {
		t.Fatal("everything was exported before the kill; the test proves nothing")
	}
	// Second life: same spool, the rest of the results, then drain.
	cmd2 := exec.Command(os.Args[0], "-test.run=^$")
	cmd2.Env = append(os.Environ(), childEnv+"="+dir+"|"+agg.grpcAddr+"|"+strconv.Itoa(acked)+"|"+strconv.Itoa(n))
	b, err := cmd2.CombinedOutput()
	if err != nil || !bytes.Contains(b, []byte("drained")) {
		t.Fatalf("second life: %v\n%s", err, b)
	}
	waitFor(t, "every result", func() bool { return agg.store.Accepted() >= n })
	if got := agg.store.Accepted(); got != n || len(agg.store.Latest()) != n {
		t.Fatalf("accepted %d (%d distinct), want %d exactly once", got, len(agg.store.Latest()), n)
	}
}

func TestIngest_OTLPJSONTraces_WithHexIDs_AreAccepted(t *testing.T) {
	agg := startAggregator(t, t.TempDir(), "", "")
	body := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",
	"spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173","name":"clone","kind":3,
	"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000"}]}]}]}`
	code, resp := post(t, "http://"+agg.httpAddr+"/v1/traces", "application/json", "", []byte(body))
	if code != 200 || agg.counter("vantage.aggregator.spans.received") != 1 {
		t.Fatalf("HTTP %d %s, spans %d", code, resp, agg.counter("vantage.aggregator.spans.received"))
	}
	code, _ = post(t, "http://"+agg.httpAddr+"/v1/metrics", "application/json", "", []byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","sum":{"dataPoints":[{"asInt":"1"}]}}]}]}]}`))
	if code != 200 || agg.counter("vantage.aggregator.metrics.received") != 1 {
		t.Fatalf("metrics: HTTP %d", code)
	}
}

// rawCodec sends bytes as they are, to put garbage on the gRPC wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(b []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), b...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func TestIngest_GRPCGarbage_IsRejected_NoStateChange(t *testing.T) {
	agg := startAggregator(t, t.TempDir(), "", "")
	conn, err := grpc.NewClient(agg.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	valid := mustMarshal(t, logsRequest(t, run(1, "eu")))
	for name, body := range map[string][]byte{
		"random":    {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01},
		"truncated": valid[:len(valid)-7],
	} {
		var out []byte
		err := conn.Invoke(context.Background(), "/opentelemetry.proto.collector.logs.v1.LogsService/Export", body, &out, grpc.ForceCodec(rawCodec{}))
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if agg.dedup.Len() != 0 || agg.store.Accepted() != 0 {
		t.Fatal("garbage changed state")
	}
}

func TestIngest_ConcurrentPuts_AllArriveOnce(t *testing.T) {
	agg := startAggregator(t, t.TempDir(), "", "")
	ag := startAgent(t, t.TempDir(), exportConfig(agg.httpAddr, "http"))
	const workers, each = 8, 25
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				if err := ag.exp.Put(context.Background(), run(w*each+i, "eu")); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every result", func() bool { return agg.store.Accepted() >= workers*each && ag.exp.Stats().Entries == 0 })
	if agg.store.Accepted() != workers*each || len(agg.store.Latest()) != workers*each {
		t.Fatalf("accepted %d (%d distinct), want %d", agg.store.Accepted(), len(agg.store.Latest()), workers*each)
	}
}
