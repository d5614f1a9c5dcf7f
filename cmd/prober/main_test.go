package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab/labtest"

	"go.uber.org/goleak"

	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/pkg/report"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidate_EveryExampleIsValid(t *testing.T) {
	files, err := filepath.Glob("../../config/examples/*.toml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	envRef := regexp.MustCompile(`env:([A-Za-z_][A-Za-z0-9_]*)`)
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "aggregator") {
			continue // aggregator configs: cmd/aggregator validates those
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range envRef.FindAllStringSubmatch(string(src), -1) {
				t.Setenv(m[1], "dummy-"+strings.ToLower(m[1]))
			}
			var out, errOut bytes.Buffer
			if code := run([]string{"validate", "-config", f}, &out, &errOut); code != 0 || out.String() != "ok\n" {
				t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
			}
		})
	}
}

func TestValidate_InvalidConfig_PrintsEveryProblemAndExits1(t *testing.T) {
	path := writeFile(t, "bad.toml", "[agent]\nregion = \"\"\n[[journey]]\nname = \"x\"\nkind = \"ftp\"\n")
	var out, errOut bytes.Buffer
	code := run([]string{"validate", "-config", path}, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), path+":2: agent.region:") || !strings.Contains(out.String(), path+":5: journey[0].kind:") {
		t.Fatalf("exit %d: %s", code, out.String())
	}
}

func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func localConfig(t *testing.T, base, listen, schedule string, journeys ...string) string {
	src := fmt.Sprintf(`
[agent]
name = "t-1"
region = "local"
data_dir = %q
listen = %q
stop_grace = "5s"
[defaults]
schedule = %q
timeout = "900ms"
`, t.TempDir(), listen, schedule)
	for _, j := range journeys {
		src += fmt.Sprintf(`
[[journey]]
name = %q
kind = "http"
[journey.http]
bearer_token = "env:PROBER_TEST_TOKEN"
[[journey.http.step]]
name = "repo"
url = "%s/api/2.0/repositories/ws/%s"
json_equals = { full_name = "ws/%s" }
`, j, base, j, j)
	}
	return src
}

func TestOnce_ExitCodesAndJSONFields(t *testing.T) {
	api := lab.NewHTTPAPI()
	srv := httptest.NewServer(api)
	defer srv.Close()
	t.Setenv("PROBER_TEST_TOKEN", "canary-once-77b1")
	path := writeFile(t, "c.toml", localConfig(t, srv.URL, "", "@every 10s", "app"))

	var out, errOut bytes.Buffer
	if code := run([]string{"once", "-config", path, "-journey", "app", "-json"}, &out, &errOut); code != 0 {
		t.Fatalf("pass: exit %d %s %s", code, out.String(), errOut.String())
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out.String())
	}
	for _, k := range []string{"id", "journey", "kind", "region", "agent", "slot", "trigger", "status", "error_type", "error", "duration_ms", "trace_id", "steps"} {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	step := got["steps"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "status", "duration_ms", "attrs"} {
		if _, ok := step[k]; !ok {
			t.Errorf("step JSON lacks %q", k)
		}
	}
	if got["trigger"] != "manual" || got["status"] != "pass" {
		t.Fatalf("got %v", got)
	}

	api.SetFault(503, 0)
	out.Reset()
	if code := run([]string{"once", "-config", path, "-journey", "app"}, &out, &errOut); code != 1 {
		t.Fatalf("fail: exit %d %s", code, out.String())
	}
	if !strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "http_5xx") || !strings.Contains(out.String(), "repo") {
		t.Fatalf("timeline:\n%s", out.String())
	}
	if code := run([]string{"once", "-config", path, "-journey", "nope"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown journey: exit %d", code)
	}
	if code := run([]string{"once", "-config", path}, &out, &errOut); code != 2 {
		t.Fatalf("bad usage: exit %d", code)
	}
	if strings.Contains(out.String()+errOut.String(), "canary-once") {
		t.Fatal("secret leaked into output")
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRun_SchedulesReloadsRejectsBadConfigAndStops(t *testing.T) {
	const canary = "canary-run-4c2d"
	api := lab.NewHTTPAPI()
	srv := httptest.NewServer(api)
	defer srv.Close()
	t.Setenv("PROBER_TEST_TOKEN", canary)
	path := writeFile(t, "c.toml", localConfig(t, srv.URL, "127.0.0.1:0", "@every 1s", "a"))

	var stdout, logs labtest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan struct{})
	exit := make(chan int)
	go func() { exit <- runAgent(ctx, path, reload, &stdout, newLogger(&logs)) }()

	results := func(journey string, status report.Status) int {
		n := 0
		for _, line := range strings.Split(stdout.String(), "\n") {
			var r map[string]any
			if json.Unmarshal([]byte(line), &r) == nil && r["journey"] == journey && r["status"] == string(status) {
				n++
			}
		}
		return n
	}
	waitFor(t, "a passing result of a", func() bool { return results("a", report.StatusPass) > 0 })

	addr := regexp.MustCompile(`"serving health endpoints","addr":"([^"]+)"`).FindStringSubmatch(logs.String())
	if addr == nil {
		t.Fatalf("no health address logged:\n%s", logs.String())
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + addr[1] + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
	// /metrics carries the scheduler's counters once the agent runs.
	resp, err := http.Get("http://" + addr[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := regexp.MustCompile(`(?m)^vantage_schedule_runs_total (\d+)$`).FindStringSubmatch(string(body)); m == nil || m[1] == "0" {
		t.Fatalf("/metrics lacks a positive vantage_schedule_runs_total:\n%s", body)
	}

	// A failing product shows as failing results (the canary token is sent).
	api.SetFault(401, 0)
	waitFor(t, "a failing result of a", func() bool { return results("a", report.StatusFail) > 0 })
	api.SetFault(0, 0)

	// An invalid config is rejected and the old one keeps running.
	os.WriteFile(path, []byte(localConfig(t, srv.URL, "127.0.0.1:0", "@every 1s", "a")+"bogus = 1\n"), 0o600)
	reload <- struct{}{}
	waitFor(t, "the rejection", func() bool { return strings.Contains(logs.String(), "reload rejected") })
	before := results("a", report.StatusPass)
	waitFor(t, "a still running", func() bool { return results("a", report.StatusPass) > before })

	// A valid config replaces the journeys.
	os.WriteFile(path, []byte(localConfig(t, srv.URL, "127.0.0.1:0", "@every 1s", "b")), 0o600)
	reload <- struct{}{}
	waitFor(t, "a result of b", func() bool { return results("b", report.StatusPass) > 0 })

	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(logs.String(), `"prober stopped","graceful":true`) {
		t.Fatalf("no graceful stop logged:\n%s", logs.String())
	}
	if strings.Contains(stdout.String()+logs.String(), canary) {
		t.Fatal("the canary secret leaked into results or logs")
	}
}
