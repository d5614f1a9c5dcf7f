package lab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
	"github.com/vantage-fleet/vantage/probes/kinds"
)

// startLab starts a lab with two regions of two agents each, so that an
// edge-scoped fault has a neighbour in its own region.
func startLab(t *testing.T) *lab.Lab {
	t.Helper()
	labtest.NeedBinary(t, "git", "apt-get install -y git")
	labtest.NeedBinary(t, "hg", "apt-get install -y mercurial")
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	l, err := lab.Start(context.Background(), lab.Options{Dir: t.TempDir(), Regions: []string{"eu", "us"},
		AgentsPerRegion: 2, PipelinesQueue: 100 * time.Millisecond, PipelinesRun: 200 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// journeys loads the lab's TOML snippet for edge as one agent's config.
func journeys(t *testing.T, l *lab.Lab, edge string, timeout time.Duration) map[string]*config.Journey {
	t.Helper()
	e := l.Edge(edge)
	src := fmt.Sprintf("[agent]\nname = %q\nregion = %q\ndata_dir = %q\n\n", e.Name, e.Region, t.TempDir()) +
		l.ProberJourneys(e, lab.JourneyOptions{Schedule: "@every 30s", Timeout: timeout, NoSweep: true})
	cfg, err := config.LoadBytes("lab.toml", []byte(src), func(k string) (string, bool) {
		v, ok := l.State().Env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("snippet does not load: %v\n%s", err, src)
	}
	out := map[string]*config.Journey{}
	for i := range cfg.Journey {
		out[strings.TrimPrefix(cfg.Journey[i].Name, "lab-")] = &cfg.Journey[i]
	}
	return out
}

// run executes journey name through edge with the real Runner.
func run(t *testing.T, l *lab.Lab, edge, name string, timeout time.Duration) report.Result {
	t.Helper()
	jc := journeys(t, l, edge, timeout)[name]
	e := l.Edge(edge)
	var secrets []string
	for _, v := range l.State().Env {
		secrets = append(secrets, v)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	j, err := kinds.Registry()[jc.Kind](jc, probes.Env{Log: log, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := j.(io.Closer); ok {
		defer c.Close()
	}
	r := &probes.Runner{Agent: e.Name, Region: e.Region, Log: log, Redact: report.NewRedactor(secrets...)}
	res := r.Execute(context.Background(), j, probes.Spec{Journey: jc, Slot: time.Now().Truncate(time.Second), Trigger: report.TriggerManual})
	js, _ := json.Marshal(res)
	for _, s := range secrets {
		if strings.Contains(string(js), s) || strings.Contains(logs.String(), s) {
			t.Fatalf("a lab secret reached the result or the logs")
		}
	}
	return res
}

func want(t *testing.T, res report.Result, status report.Status, typ report.ErrorType) {
	t.Helper()
	if res.Status != status || res.ErrorType != typ {
		t.Fatalf("%s via %s: got %s/%s (%s), want %s/%s", res.Journey, res.Agent, res.Status, res.ErrorType, res.Error, status, typ)
	}
}

func addFault(t *testing.T, l *lab.Lab, f lab.Fault) {
	t.Helper()
	if _, err := l.Faults.Add(f); err != nil {
		t.Fatal(err)
	}
}

func TestLab_JourneysThroughOneEdge_Pass(t *testing.T) {
	l := startLab(t)
	names := map[string]bool{}
	for name := range journeys(t, l, "eu-1", 10*time.Second) {
		names[name] = true
	}
	for _, name := range []string{"http", "git-http", "git-ssh", "hg", "pipelines"} {
		if !names[name] {
			t.Fatalf("the snippet has no %q journey: %v", name, names)
		}
		want(t, run(t, l, "eu-1", name, 10*time.Second), report.StatusPass, "")
	}
	if l.Pipelines.Runs() < 1 {
		t.Fatal("the pipelines journey started no run on the simulator")
	}
}

func TestLab_RegionalHTTPErrorOnGitHTTP_FailsOnlyThatRegion(t *testing.T) {
	l := startLab(t)
	addFault(t, l, lab.Fault{Kind: lab.FaultHTTPError, Region: "eu", Protocol: lab.ProtoGitHTTP, Status: 503})
	want(t, run(t, l, "eu-2", "git-http", 10*time.Second), report.StatusFail, report.ErrHTTP5xx)
	want(t, run(t, l, "us-1", "git-http", 10*time.Second), report.StatusPass, "")
	// The fault is scoped to git over HTTP: SSH in the same region works.
	want(t, run(t, l, "eu-2", "git-ssh", 10*time.Second), report.StatusPass, "")
}

func TestLab_GlobalHgHTTPError_FailsHgInEveryRegionOnly(t *testing.T) {
	l := startLab(t)
	addFault(t, l, lab.Fault{Kind: lab.FaultHTTPError, Protocol: lab.ProtoHg, Status: 502})
	want(t, run(t, l, "eu-1", "hg", 5*time.Second), report.StatusFail, report.ErrHTTP5xx)
	want(t, run(t, l, "us-2", "hg", 5*time.Second), report.StatusFail, report.ErrHTTP5xx)
	want(t, run(t, l, "us-2", "http", 5*time.Second), report.StatusPass, "")
}

func TestLab_EdgeScopedRefuse_FailsOnlyThatAgent(t *testing.T) {
	l := startLab(t)
	addFault(t, l, lab.Fault{Kind: lab.FaultRefuse, Edge: "us-1"})
	for _, name := range []string{"http", "git-http", "hg", "pipelines"} {
		want(t, run(t, l, "us-1", name, 5*time.Second), report.StatusFail, report.ErrConnect)
	}
	// Over SSH the edge accepts and resets before the version exchange; the
	// SSH client reports that as a handshake EOF, which probes classify as
	// protocol (or connect when the reset wins the race).
	if res := run(t, l, "us-1", "git-ssh", 5*time.Second); res.Status != report.StatusFail ||
		(res.ErrorType != report.ErrConnect && res.ErrorType != report.ErrProtocol) {
		t.Fatalf("git-ssh via the refused edge: %s/%s (%s)", res.Status, res.ErrorType, res.Error)
	}
	for _, name := range []string{"http", "git-ssh", "hg", "pipelines"} {
		want(t, run(t, l, "us-2", name, 10*time.Second), report.StatusPass, "")
	}
}

func TestLab_ReplicaLagFault_GitVerifyIsStaleRead(t *testing.T) {
	l := startLab(t)
	// Regional scope: the lab applies replica lag globally (one replica).
	addFault(t, l, lab.Fault{Kind: lab.FaultReplicaLag, Region: "eu", Delay: 30 * time.Second})
	if got := l.Git.Faults.Get().ReplicaLag; got != 30*time.Second {
		t.Fatalf("replica lag on the git product: %s", got)
	}
	want(t, run(t, l, "us-1", "git-http", 4*time.Second), report.StatusFail, report.ErrStaleRead)
	l.Faults.Clear()
	if got := l.Git.Faults.Get().ReplicaLag; got != 0 {
		t.Fatalf("replica lag after clear: %s", got)
	}
}

func TestLab_QueueStallFault_PipelineTimesOut(t *testing.T) {
	l := startLab(t)
	addFault(t, l, lab.Fault{Kind: lab.FaultQueueStall})
	want(t, run(t, l, "eu-1", "pipelines", 2*time.Second), report.StatusFail, report.ErrPipelineTimeout)
}

func TestLab_PushToBranch_StartsAPipeline(t *testing.T) {
	l := startLab(t)
	before := l.Pipelines.Runs()
	// The git journey pushes a probe branch: the product notifies Pipelines.
	want(t, run(t, l, "eu-1", "git-http", 10*time.Second), report.StatusPass, "")
	deadline := time.Now().Add(5 * time.Second)
	for l.Pipelines.Runs() == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if l.Pipelines.Runs() == before {
		t.Fatal("a push to refs/heads/* started no pipeline")
	}
}

func TestLab_StateFile_DescribesEveryEdge(t *testing.T) {
	l := startLab(t)
	path := filepath.Join(t.TempDir(), "state.json")
	if err := l.WriteState(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s lab.State
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.ControlURL != l.ControlURL || len(s.Edges) != 4 || strings.Join(s.Regions, ",") != "eu,us" {
		t.Fatalf("state: %+v", s)
	}
	if s.Edges[2].Name != "us-1" || s.Edges[2].Region != "us" || s.Env[lab.EnvGitPassword] == "" {
		t.Fatalf("state edges/env: %+v", s)
	}
	resp, err := http.Get(s.ControlURL + "/edges")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("control API /edges: %d", resp.StatusCode)
	}
	kh, err := os.ReadFile(s.KnownHosts)
	if err != nil || strings.Count(string(kh), "\n") != 4 {
		t.Fatalf("known_hosts should pin all four edges: %v\n%s", err, kh)
	}
}

func TestLab_RestartOnTheSameDir_StartsFromTheSeed(t *testing.T) {
	labtest.NeedBinary(t, "git", "apt-get install -y git")
	labtest.NeedBinary(t, "hg", "apt-get install -y mercurial")
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := 0; i < 2; i++ {
		l, err := lab.Start(context.Background(), lab.Options{Dir: dir, Regions: []string{"eu"}, AgentsPerRegion: 1, Log: quiet})
		if err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
		l.Close()
	}
	// A failing start (the control address is taken) cleans up and reports it.
	l, err := lab.Start(context.Background(), lab.Options{Dir: dir, Regions: []string{"eu"}, AgentsPerRegion: 1, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := strings.TrimPrefix(l.ControlURL, "http://")
	if _, err := lab.Start(context.Background(), lab.Options{Dir: t.TempDir(), NoHg: true, ControlAddr: addr, Log: quiet}); err == nil {
		t.Fatal("a second lab on a taken control address started")
	}
	for _, bad := range [][]string{{"EU"}, {"eu", "eu"}, {""}} {
		if _, err := lab.Start(context.Background(), lab.Options{Dir: t.TempDir(), Regions: bad, NoHg: true, Log: quiet}); err == nil {
			t.Errorf("regions %q accepted", bad)
		}
	}
}

// FuzzFaultJSON feeds the control API's fault decoder: whatever it accepts
// and Validate passes must be added to a table and survive a JSON round trip.
func FuzzFaultJSON(f *testing.F) {
	f.Add(`{"kind":"http_error","region":"eu","protocol":"git-http","status":503,"rate":0.5}`)
	f.Add(`{"kind":"replica_lag","delay":"30s"}`)
	f.Add(`{"kind":"latency","delay":"-1s"}`)
	f.Add(`{"kind":"refuse","edge":"us-1","colour":"red"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var flt lab.Fault
		if err := json.Unmarshal([]byte(s), &flt); err != nil || flt.Validate() != nil {
			return
		}
		ft := lab.NewFaultTable()
		added, err := ft.Add(flt)
		if err != nil {
			t.Fatalf("valid fault refused: %v", err)
		}
		b, err := json.Marshal(added)
		if err != nil {
			t.Fatal(err)
		}
		var back lab.Fault
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("own JSON does not decode: %v: %s", err, b)
		}
		if back.Kind != added.Kind || back.Delay != added.Delay || back.Region != added.Region ||
			back.Edge != added.Edge || back.Status != added.Status || back.Rate != added.Rate {
			t.Fatalf("round trip changed the fault: %+v → %+v", added, back)
		}
	})
}
