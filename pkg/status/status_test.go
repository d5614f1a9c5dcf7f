package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/pkg/alert"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/status"
	"github.com/vantage-fleet/vantage/pkg/verdict"
	"go.uber.org/goleak"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// fleet builds a real engine in a realistic state: clone and push (sharing
// https-edge) failing globally in eu and us, api passing, ap blind-free,
// one suspect prober.
func fleet(t *testing.T) *alert.Engine {
	t.Helper()
	now := t0.Add(40 * time.Second)
	e, err := alert.Open(context.Background(), alert.Options{DataDir: t.TempDir(), Sinks: []alert.Sink{}, Now: func() time.Time { return now },
		Verdict: verdict.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	e.SetMembership(verdict.Membership{Known: true, Probers: map[string][]string{"eu": {"eu-1", "eu-2"}, "us": {"us-1", "us-2"}, "ap": {"ap-1"}}})
	iv := 30 * time.Second
	add := func(j, region, agent string, k int, trig report.Trigger, st report.Status) {
		slot := t0.Add(time.Duration(k) * iv)
		r := report.Result{Journey: j, Kind: "git", Region: region, Agent: agent, Slot: slot, Trigger: trig, Status: st,
			Interval: iv, Runbook: "https://runbooks.example/" + j, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
		if j != "api" {
			r.Components = []string{"https-edge"}
		} else {
			r.Kind = "http"
		}
		r.ID = report.ResultID(j, region, agent, slot, trig)
		if st == report.StatusFail {
			r.ErrorType, r.Error = report.ErrTLS, "tls: handshake failure talking to git.example.com:443"
			r.Steps = []report.Step{{Name: "dns", Status: report.StatusPass}, {Name: "tls", Status: report.StatusFail}}
		}
		if err := e.Accept(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, j := range []string{"clone", "push"} {
		add(j, "eu", "eu-1", 0, report.TriggerSchedule, report.StatusFail)
		add(j, "eu", "eu-2", 0, report.TriggerConfirm, report.StatusFail)
		add(j, "us", "us-1", 0, report.TriggerConfirm, report.StatusFail)
		add(j, "us", "us-2", 0, report.TriggerConfirm, report.StatusFail)
		add(j, "ap", "ap-1", 0, report.TriggerConfirm, report.StatusPass)
	}
	for _, reg := range []string{"eu", "us", "ap"} {
		add("api", reg, reg+"-1", 1, report.TriggerSchedule, report.StatusPass)
	}
	e.Tick(now)
	return e
}

func TestStatusAPI_ReportsMatrixAndAlerts(t *testing.T) {
	srv := httptest.NewServer(status.NewHandler(fleet(t), status.Options{Now: func() time.Time { return t0.Add(time.Minute) }}))
	defer srv.Close()
	var doc status.StatusDoc
	getJSON(t, srv.URL+"/api/v1/status", "", &doc)
	if len(doc.Status.Journeys) != 3 || strings.Join(doc.Status.Regions, ",") != "ap,eu,us" {
		t.Fatalf("status: %+v", doc.Status)
	}
	if c := doc.Status.Journeys[1].Cells["eu"]; doc.Status.Journeys[1].Name != "clone" || doc.Status.Journeys[1].Scope != verdict.ScopeGlobal ||
		c.State != verdict.StateFailing || c.LastFail == nil || c.LastFail.FailingStep != "tls" {
		t.Fatalf("clone/eu: %+v", doc.Status.Journeys[1])
	}
	var al status.AlertsDoc
	getJSON(t, srv.URL+"/api/v1/alerts", "", &al)
	if len(al.Alerts) != 1 || al.Alerts[0].Labels["alertname"] != "VantageJourneyGlobal" || al.Alerts[0].Labels["journey"] != "clone,push" {
		t.Fatalf("alerts: %+v", al.Alerts)
	}
}

func TestStatusAPI_BearerTokenRequiredWhenSet(t *testing.T) {
	srv := httptest.NewServer(status.NewHandler(fleet(t), status.Options{Token: "tok-123456"}))
	defer srv.Close()
	for _, path := range []string{"/", "/api/v1/status", "/api/v1/alerts", "/metrics"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s without token: %d", path, resp.StatusCode)
		}
	}
	var doc status.StatusDoc
	getJSON(t, srv.URL+"/api/v1/status", "tok-123456", &doc)
	resp, err := http.Get(srv.URL + "/?token=tok-123456")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("page with ?token: %d", resp.StatusCode)
	}
	resp, _ = http.Get(srv.URL + "/api/v1/status?token=tok-123456")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the API must not take the token from the URL: %d", resp.StatusCode)
	}
}

func TestMetrics_DerivedFromEngineState(t *testing.T) {
	e := fleet(t)
	m := string(status.Metrics(e.Snapshot(), e.DetectionLatency()))
	for _, want := range []string{
		`vantage_journey_state{journey="clone",region="eu",state="failing"} 1`,
		`vantage_journey_state{journey="clone",region="ap",state="ok"} 1`,
		`vantage_journey_state{journey="clone",region="eu",state="ok"} 0`,
		`vantage_journey_scope{journey="clone",scope="global"} 1`,
		`vantage_journey_scope{journey="api",scope="none"} 1`,
		"vantage_incidents_open 1",
		// every alert opened came 40 s after the first failing slot
		`vantage_detection_latency_seconds_bucket{le="30"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// However many alerts the incident went through on its way to global,
	// each was opened 40 s after the first failing slot.
	var le45, count int
	var sum float64
	for _, line := range strings.Split(m, "\n") {
		fmt.Sscanf(line, `vantage_detection_latency_seconds_bucket{le="45"} %d`, &le45)
		fmt.Sscanf(line, "vantage_detection_latency_seconds_count %d", &count)
		fmt.Sscanf(line, "vantage_detection_latency_seconds_sum %g", &sum)
	}
	if count == 0 || le45 != count || sum != 40*float64(count) {
		t.Errorf("detection latency: %d alerts, %d within 45 s, sum %g; want every one at 40 s", count, le45, sum)
	}
	if t.Failed() {
		t.Log(m)
	}
}

func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// chromium runs headless Chromium with args and returns stdout.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	bin := labtest.NeedBinary(t, "chromium", "apt-get install -y chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--hide-scrollbars"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return string(out)
}

func TestStatusPage_RendersMatrixAndIncidentInChromium(t *testing.T) {
	srv := httptest.NewServer(status.NewHandler(fleet(t), status.Options{Now: func() time.Time { return t0.Add(time.Minute) }, Refresh: time.Hour}))
	defer srv.Close()
	dom := chromium(t, "--dump-dom", srv.URL+"/")
	for _, want := range []string{
		`id="matrix"`,
		`<tr data-journey="clone">`,
		`data-region="eu" data-state="failing"`,
		`data-region="ap" data-state="ok"`,
		`data-alert="VantageJourneyGlobal"`,
		"clone, push failing globally at step tls",
		`href="https://runbooks.example/clone"`,
		"eu-1, eu-2",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(dom)
	}
	shot := screenshotPath(t)
	chromium(t, "--screenshot="+shot, "--window-size=1280,800", srv.URL+"/")
	if st, err := os.Stat(shot); err != nil || st.Size() < 10000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
	phone := strings.TrimSuffix(shot, ".png") + "-phone.png"
	chromium(t, "--screenshot="+phone, "--window-size=390,844", srv.URL+"/")
}

// screenshotPath is bin/status-screenshot.png under the repository root
// when writable (the artifact), else a temp file.
func screenshotPath(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "bin")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		p := filepath.Join(dir, "status-screenshot.png")
		if f, err := os.Create(p); err == nil {
			f.Close()
			return p
		}
	}
	return filepath.Join(t.TempDir(), "status-screenshot.png")
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStatusPage_ShowsBlindRegionAndMissingResults(t *testing.T) {
	now := t0
	e, err := alert.Open(context.Background(), alert.Options{DataDir: t.TempDir(), Sinks: []alert.Sink{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.SetMembership(verdict.Membership{Known: true, Probers: map[string][]string{"eu": {"eu-1"}, "us": {"us-1"}}})
	for _, reg := range []string{"eu", "us", "ap"} {
		r := report.Result{Journey: "api", Kind: "http", Region: reg, Agent: reg + "-1", Slot: t0, Trigger: report.TriggerSchedule,
			Status: report.StatusPass, Interval: 30 * time.Second}
		r.ID = report.ResultID(r.Journey, reg, r.Agent, t0, r.Trigger)
		if err := e.Accept(r); err != nil {
			t.Fatal(err)
		}
	}
	now = t0.Add(100 * time.Second)
	r := report.Result{Journey: "api", Kind: "http", Region: "eu", Agent: "eu-1", Slot: t0.Add(90 * time.Second), Trigger: report.TriggerSchedule,
		Status: report.StatusPass, Interval: 30 * time.Second}
	r.ID = report.ResultID(r.Journey, "eu", r.Agent, r.Slot, r.Trigger)
	if err := e.Accept(r); err != nil {
		t.Fatal(err)
	}
	e.Tick(now)
	srv := httptest.NewServer(status.NewHandler(e, status.Options{Now: func() time.Time { return now }}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`data-region="ap" data-state="blind"`, `data-region="us" data-state="results_missing"`,
		`data-alert="VantageRegionBlind"`, `data-alert="VantageResultsMissing"`, "no live prober"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
