package config

import (
	"os"
	"strings"
	"testing"
)

const otlpExport = `
[agent]
name = "eu-1"
region = "eu"

[[export]]
type = "otlp"
endpoint = "127.0.0.1:4317"
bearer_token = "env:OTLP_TOKEN"
gzip = true
[export.tls]
insecure = true
[export.headers]
x-tenant = "acme"
`

func TestExport_OTLPDefaultsAndSecret(t *testing.T) {
	c, err := LoadBytes("otlp.toml", []byte(otlpExport), env(map[string]string{"OTLP_TOKEN": "canary-tok-9"}))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Export[0]
	if e.Name != "otlp-0" || e.Protocol != "grpc" || e.SpoolMaxBytes != DefaultSpoolMaxBytes ||
		e.BatchSize != DefaultBatchSize || e.SpoolMaxAge.D != DefaultSpoolMaxAge.D || e.Timeout.D != DefaultExportTimeout.D {
		t.Fatalf("defaults not applied: %+v", e)
	}
	if e.BearerToken.Value() != "canary-tok-9" || e.Headers["x-tenant"] != "acme" {
		t.Fatal("token or headers not loaded")
	}
}

func TestExport_OTLPProblemsNamedByKey(t *testing.T) {
	bad := `
[agent]
name = "eu-1"
region = "eu"

[[export]]
type = "otlp"
protocol = "udp"
batch_size = -1
bearer_token = "env:OTLP_TOKEN"
[export.tls]
insecure = true
cert_file = "/nonexistent.pem"
[export.headers]
Authorization = "Bearer inline"
`
	_, err := LoadBytes("bad.toml", []byte(bad), env(map[string]string{"OTLP_TOKEN": "x"}))
	if err == nil {
		t.Fatal("accepted a bad export")
	}
	for _, want := range []string{"export[0].endpoint: is required", "export[0].protocol: unknown protocol",
		"export[0].batch_size", "export[0].headers: set the Authorization", "export[0].tls.insecure",
		"export[0].tls: cert_file and key_file", "export[0].tls.cert_file: cannot read"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in:\n%v", want, err)
		}
	}
}

func TestExport_BearerTokenInPlaintextToRemoteHost_IsRejected(t *testing.T) {
	cfg := strings.Replace(otlpExport, "127.0.0.1:4317", "agg.example.com:4317", 1)
	_, err := LoadBytes("p.toml", []byte(cfg), env(map[string]string{"OTLP_TOKEN": "canary-tok-9"}))
	if err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "canary-tok-9") {
		t.Fatal("secret value in an error message")
	}
}

func TestIngest_DefaultsAndProblems(t *testing.T) {
	c, err := LoadAggregatorBytes("a.toml", []byte("[aggregator]\nname = \"a\"\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	in := c.Ingest
	if in.GRPC != "127.0.0.1:4317" || in.HTTP != "127.0.0.1:4318" || in.MaxRequestBytes != DefaultMaxRequestBytes ||
		in.DedupWindow.D != DefaultDedupWindow.D || in.DedupMaxIDs != DefaultDedupMaxIDs {
		t.Fatalf("defaults: %+v", in)
	}
	bad := `
[ingest]
max_request_bytes = 10
dedup_window = "1s"
[[ingest.forward]]
endpoint = "nowhere"
protocol = "smoke"
`
	_, err = LoadAggregatorBytes("b.toml", []byte(bad), env(nil))
	if err == nil {
		t.Fatal("accepted bad ingest")
	}
	for _, want := range []string{"ingest.max_request_bytes", "ingest.dedup_window", "ingest.forward[0].endpoint", "ingest.forward[0].protocol"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestExamples_OTLPConfigsLoad(t *testing.T) {
	lookup := env(map[string]string{"VANTAGE_OTLP_TOKEN": "tok-123"})
	b, err := os.ReadFile("examples/prober-otlp.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadBytes("prober-otlp.toml", b, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Export[0]; e.Type != "otlp" || e.BearerToken.Value() != "tok-123" || !e.Gzip {
		t.Fatalf("export %+v", e)
	}
	b, err = os.ReadFile("examples/aggregator-ingest.toml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := LoadAggregatorBytes("aggregator-ingest.toml", b, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Ingest.Forward) != 1 || a.Ingest.BearerToken.Value() != "tok-123" {
		t.Fatalf("ingest %+v", a.Ingest)
	}
}

func TestExport_DuplicateNames_AreRejected(t *testing.T) {
	cfg := otlpExport + `
[[export]]
type = "otlp"
name = "otlp-0"
endpoint = "127.0.0.1:4318"
[export.tls]
insecure = true
`
	_, err := LoadBytes("dup.toml", []byte(cfg), env(map[string]string{"OTLP_TOKEN": "x"}))
	if err == nil || !strings.Contains(err.Error(), `export[1].name: duplicate export name "otlp-0"`) {
		t.Fatalf("err = %v", err)
	}
}
