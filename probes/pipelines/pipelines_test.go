package pipelines

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// canary is the API token; it must never appear in a Result, its JSON, a
// log line or an error.
const canary = "canary-pipelines-tok-7f3a9c"

// sim is what every CI simulator offers a test.
type sim interface {
	http.Handler
	SetOutcome(lab.CIOutcome)
	SetTimes(queue, run time.Duration)
	SetQueueStall(bool)
	SetFault(lab.CIFault)
	SetRequestBudget(n int, window time.Duration)
	SetTriggerDelay(time.Duration)
	NotifyPush(branch, sha string)
	Stops() []string
	Runs() int
	RateLimited() int
	Requests() int
	Abandoned() int
	Close()
}

type providerCase struct {
	name   string
	newSim func(lab.CISimConfig) sim
}

var providers = []providerCase{
	{config.PipelinesBitbucket, func(c lab.CISimConfig) sim { return lab.NewPipelinesSim(c) }},
	{config.PipelinesGitHub, func(c lab.CISimConfig) sim { return lab.NewGitHubActionsSim(c) }},
	{config.PipelinesGitLab, func(c lab.CISimConfig) sim { return lab.NewGitLabSim(c) }},
}

// env is a journey under test against a simulator on loopback.
type env struct {
	t    *testing.T
	sim  sim
	srv  *httptest.Server
	logs *labtest.Buffer
}

func newEnv(t *testing.T, pc providerCase, cfg lab.CISimConfig) *env {
	t.Helper()
	if cfg.Repository == "" {
		cfg.Repository = "acme/app"
	}
	if cfg.Token == "" {
		cfg.Token = canary
	}
	s := pc.newSim(cfg)
	srv := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); srv.Close() })
	return &env{t: t, sim: s, srv: srv, logs: &labtest.Buffer{}}
}

// journeyConfig loads a pipelines journey through the real config loader.
func (e *env) journeyConfig(provider, timeout, extra string) *config.Journey {
	e.t.Helper()
	src := fmt.Sprintf(`
[agent]
name = "eu-1"
region = "eu"
[[journey]]
name = "pipelines"
kind = "pipelines"
schedule = "@every 1m"
timeout = %q
[journey.pipelines]
provider = %q
api_url = %q
web_url = "https://bitbucket.example"
repository = "acme/app"
pipeline = "probe-pipeline"
variables = { PROBE = "1" }
bearer_token = "env:PIPE_TOKEN"
poll_interval = "5ms"
max_poll_interval = "20ms"
%s
`, timeout, provider, e.srv.URL, extra)
	c, err := config.LoadBytes("test.toml", []byte(src), func(k string) (string, bool) {
		return canary, k == "PIPE_TOKEN" || k == "GIT_PW"
	})
	if err != nil {
		e.t.Fatalf("config: %v", err)
	}
	return &c.Journey[0]
}

// run executes the journey once through the real Runner.
func (e *env) run(jc *config.Journey, p pusher) report.Result {
	e.t.Helper()
	j, err := newJourney(jc, probes.Env{}, p)
	if err != nil {
		e.t.Fatal(err)
	}
	defer j.Close()
	r := &probes.Runner{Agent: "eu-1", Region: "eu", Redact: report.NewRedactor(canary),
		Log: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	res := r.Execute(context.Background(), j, probes.Spec{Journey: jc, Slot: time.Now().Truncate(time.Second), Trigger: report.TriggerManual})
	e.noCanary(res)
	return res
}

// noCanary checks the Result, its JSON and the logs for the token.
func (e *env) noCanary(res report.Result) {
	e.t.Helper()
	b, err := json.Marshal(res)
	if err != nil {
		e.t.Fatal(err)
	}
	for what, s := range map[string]string{"result JSON": string(b), "error": res.Error, "logs": e.logs.String(),
		"result": fmt.Sprintf("%+v", res)} {
		if strings.Contains(s, canary) {
			e.t.Fatalf("the token leaked into the %s: %s", what, s)
		}
	}
}

func stepNames(res report.Result) string {
	var names []string
	for _, s := range res.Steps {
		names = append(names, s.Name+"="+string(s.Status))
	}
	return strings.Join(names, " ")
}

// stepAttr returns the value of key on the named step, or nil.
func stepAttr(res report.Result, step, key string) any {
	for _, s := range res.Steps {
		if s.Name != step {
			continue
		}
		for _, kv := range s.Attrs {
			if string(kv.Key) == key {
				return kv.Value.AsInterface()
			}
		}
	}
	return nil
}

func runAttr(res report.Result, key string) any {
	for _, kv := range res.Attrs {
		if string(kv.Key) == key {
			return kv.Value.AsInterface()
		}
	}
	return nil
}

func forEachProvider(t *testing.T, f func(t *testing.T, pc providerCase)) {
	for _, pc := range providers {
		t.Run(pc.name, func(t *testing.T) { f(t, pc) })
	}
}

func TestPipelines_SuccessfulRun_PassesTriggerQueuedRunningResult(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		e := newEnv(t, pc, lab.CISimConfig{QueueTime: 30 * time.Millisecond, RunTime: 60 * time.Millisecond})
		res := e.run(e.journeyConfig(pc.name, "5s", ""), nil)
		if res.Status != report.StatusPass {
			t.Fatalf("status %s/%s %q; steps %s", res.Status, res.ErrorType, res.Error, stepNames(res))
		}
		if got := stepNames(res); got != "trigger=pass queued=pass running=pass result=pass" {
			t.Fatalf("steps: %s", got)
		}
		if stepAttr(res, "trigger", "cicd.pipeline.run.id") == nil || runAttr(res, "cicd.pipeline.run.url.full") == nil {
			t.Fatalf("run ID or URL not recorded: %+v", res.Attrs)
		}
		if got := stepAttr(res, "result", "cicd.pipeline.result"); got != "success" {
			t.Fatalf("cicd.pipeline.result = %v", got)
		}
		if got := runAttr(res, "cicd.pipeline.name"); got != "probe-pipeline" && pc.name != config.PipelinesGitLab {
			t.Fatalf("cicd.pipeline.name = %v", got)
		}
		if pc.name == config.PipelinesBitbucket {
			names, _ := stepAttr(res, "result", "cicd.pipeline.task.name").([]string)
			if strings.Join(names, ",") != "build,test" {
				t.Fatalf("task names %v", names)
			}
			if u, _ := runAttr(res, "cicd.pipeline.run.url.full").(string); !strings.HasPrefix(u, "https://bitbucket.example/acme/app/pipelines/results/") {
				t.Fatalf("web URL %q", u)
			}
		}
	})
}

func TestPipelines_FailedErrorExpired_ArePipelineFailedWithURL(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		for _, o := range []lab.CIOutcome{lab.CIFailed, lab.CIError, lab.CIExpired, lab.CIStopped} {
			e := newEnv(t, pc, lab.CISimConfig{Outcome: o, RunTime: 10 * time.Millisecond})
			res := e.run(e.journeyConfig(pc.name, "5s", ""), nil)
			if res.Status != report.StatusFail || res.ErrorType != report.ErrPipelineFailed {
				t.Fatalf("%s: got %s/%s %q", o, res.Status, res.ErrorType, res.Error)
			}
			u, _ := runAttr(res, "cicd.pipeline.run.url.full").(string)
			if u == "" || !strings.Contains(res.Error, u) {
				t.Fatalf("%s: error %q does not name the pipeline URL %q", o, res.Error, u)
			}
			if f := res.FailingStep(); f == nil || f.Name != "result" {
				t.Fatalf("%s: failing step %+v", o, f)
			}
			if len(e.sim.Stops()) != 0 {
				t.Fatalf("%s: a completed pipeline was stopped", o)
			}
		}
	})
}

func TestPipelines_QueueStallAtDeadline_StopsPipelineAndIsPipelineTimeout(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		e := newEnv(t, pc, lab.CISimConfig{})
		e.sim.SetQueueStall(true)
		res := e.run(e.journeyConfig(pc.name, "200ms", ""), nil)
		if res.ErrorType != report.ErrPipelineTimeout {
			t.Fatalf("got %s/%s %q; steps %s", res.Status, res.ErrorType, res.Error, stepNames(res))
		}
		if f := res.FailingStep(); f == nil || f.Name != "queued" {
			t.Fatalf("failing step %+v", f)
		}
		if got := e.sim.Stops(); len(got) != 1 || got[0] != stepAttr(res, "trigger", "cicd.pipeline.run.id") {
			t.Fatalf("simulator recorded stops %v, want the triggered pipeline", got)
		}
		if stepAttr(res, "stop", "vantage.pipeline.stopped") != true {
			t.Fatalf("stop step not recorded: %s", stepNames(res))
		}
	})
}

func TestPipelines_RunningAtDeadline_StopsPipelineAndIsPipelineTimeout(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		e := newEnv(t, pc, lab.CISimConfig{RunTime: time.Hour})
		res := e.run(e.journeyConfig(pc.name, "200ms", ""), nil)
		if res.ErrorType != report.ErrPipelineTimeout {
			t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
		}
		if f := res.FailingStep(); f == nil || f.Name != "running" {
			t.Fatalf("failing step %+v (%s)", f, stepNames(res))
		}
		if len(e.sim.Stops()) != 1 {
			t.Fatalf("stops %v", e.sim.Stops())
		}
	})
}

func TestPipelines_429_BacksOffAndRecovers(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		// Trigger and the first poll spend the budget; the next poll comes
		// well within the window and is refused until the window turns.
		e := newEnv(t, pc, lab.CISimConfig{RunTime: 100 * time.Millisecond, RequestBudget: 2, BudgetWindow: 150 * time.Millisecond})
		res := e.run(e.journeyConfig(pc.name, "5s", `rate_limit_retries = 20`), nil)
		if res.Status != report.StatusPass {
			t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
		}
		if e.sim.RateLimited() == 0 {
			t.Fatal("the simulator never answered 429: the test proves nothing")
		}
	})
}

func TestPipelines_429WithRetryAfter_WaitsAsTold(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		// Budget 2 per second: the third request is refused with
		// Retry-After: 1. Exponential backoff from 5 ms would be refused
		// several times within that second; honouring Retry-After, once.
		e := newEnv(t, pc, lab.CISimConfig{RunTime: 30 * time.Millisecond, RequestBudget: 2, BudgetWindow: time.Second, RetryAfter: time.Second})
		res := e.run(e.journeyConfig(pc.name, "5s", `rate_limit_retries = 20`), nil)
		if res.Status != report.StatusPass {
			t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
		}
		if got := e.sim.RateLimited(); got != 1 {
			t.Fatalf("refused %d times, want 1 (Retry-After not honoured)", got)
		}
	})
}

func TestPipelines_PersistentRateLimiting_IsRateLimited(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		e := newEnv(t, pc, lab.CISimConfig{RunTime: time.Hour, RequestBudget: 1})
		res := e.run(e.journeyConfig(pc.name, "5s", `rate_limit_retries = 3`), nil)
		if res.Status != report.StatusFail || res.ErrorType != report.ErrRateLimited {
			t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
		}
		// Trigger spent the budget; the first poll was refused 1+3 times.
		if got := e.sim.RateLimited(); got < 4 {
			t.Fatalf("only %d refusals", got)
		}
	})
}

func TestPipelines_WrongToken_IsAuth(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		e := newEnv(t, pc, lab.CISimConfig{Token: "the-right-token"})
		res := e.run(e.journeyConfig(pc.name, "5s", ""), nil)
		if res.Status != report.StatusFail || res.ErrorType != report.ErrAuth {
			t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
		}
		if e.sim.Runs() != 0 {
			t.Fatal("an unauthenticated trigger started a pipeline")
		}
	})
}

func TestPipelines_MalformedOrTruncatedJSON_IsProtocol(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		for _, f := range []lab.CIFault{lab.CIFaultTruncated, lab.CIFaultMalformed} {
			e := newEnv(t, pc, lab.CISimConfig{})
			e.sim.SetFault(f)
			res := e.run(e.journeyConfig(pc.name, "5s", ""), nil)
			if res.Status != report.StatusFail || res.ErrorType != report.ErrProtocol {
				t.Fatalf("fault %d: got %s/%s %q", f, res.Status, res.ErrorType, res.Error)
			}
		}
	})
}

func TestPipelines_MalformedJSONWhilePolling_IsProtocolAndStops(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		e := newEnv(t, pc, lab.CISimConfig{RunTime: time.Hour})
		jc := e.journeyConfig(pc.name, "5s", "")
		done := make(chan report.Result)
		go func() { done <- e.run(jc, nil) }()
		// Trigger and at least two polls done: the journey is polling.
		waitFor(t, func() bool { return e.sim.Requests() >= 4 })
		e.sim.SetFault(lab.CIFaultTruncated)
		res := <-done
		if res.ErrorType != report.ErrProtocol {
			t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
		}
		if s := stepNames(res); !strings.Contains(s, "stop=") {
			t.Fatalf("no stop attempted: %s", s)
		}
	})
}

func TestPipelines_SilentAPIAtTrigger_DeadlineHoldsAsTimeout(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		e := newEnv(t, pc, lab.CISimConfig{})
		e.sim.SetFault(lab.CIFaultSilent)
		res := e.run(e.journeyConfig(pc.name, "150ms", ""), nil)
		if res.Status != report.StatusFail || res.ErrorType != report.ErrTimeout {
			t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
		}
		// The journey gave up on the request rather than waiting for it.
		waitFor(t, func() bool { return e.sim.Abandoned() >= 1 })
	})
}

func TestPipelines_SilentAPIWhilePolling_IsTimeoutAndStopIsBounded(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		e := newEnv(t, pc, lab.CISimConfig{RunTime: time.Hour})
		jc := e.journeyConfig(pc.name, "10s", `request_timeout = "100ms"
stop_timeout = "100ms"`)
		done := make(chan report.Result)
		go func() { done <- e.run(jc, nil) }()
		waitFor(t, func() bool { return e.sim.Requests() >= 4 })
		e.sim.SetFault(lab.CIFaultSilent)
		res := <-done
		if res.Status != report.StatusFail || res.ErrorType != report.ErrTimeout {
			t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
		}
		// Both the poll and the stop were abandoned by their own timeouts.
		waitFor(t, func() bool { return e.sim.Abandoned() >= 2 })
		if stepAttr(res, "stop", "vantage.pipeline.stopped") != false {
			t.Fatalf("stop step: %s", stepNames(res))
		}
	})
}

func TestPipelines_BasicAuthAppPassword(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		for _, pw := range []string{canary, "wrong-password"} {
			e := newEnv(t, pc, lab.CISimConfig{BasicUser: "probe", BasicPassword: pw, Token: "unused-token"})
			jc := e.journeyConfig(pc.name, "5s", "")
			jc.Pipelines.BearerToken = config.Secret{}
			jc.Pipelines.BasicUser, jc.Pipelines.BasicPassword = "probe", config.SecretValue("env:PW", canary)
			res := e.run(jc, nil)
			if want := report.StatusPass; pw != canary {
				if res.ErrorType != report.ErrAuth {
					t.Fatalf("wrong password: %s/%s %q", res.Status, res.ErrorType, res.Error)
				}
			} else if res.Status != want {
				t.Fatalf("basic auth: %s/%s %q", res.Status, res.ErrorType, res.Error)
			}
		}
	})
}

func TestPipelines_GitHubDispatchWithoutRunDetails_FindsTheRun(t *testing.T) {
	pc := providers[1]
	e := newEnv(t, pc, lab.CISimConfig{NoRunDetails: true, RunTime: 20 * time.Millisecond})
	res := e.run(e.journeyConfig(pc.name, "5s", ""), nil)
	if res.Status != report.StatusPass || stepAttr(res, "trigger", "cicd.pipeline.run.id") == nil {
		t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
	}
}

func TestPipelines_OversizedBody_IsProtocol(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		e := newEnv(t, pc, lab.CISimConfig{})
		res := e.run(e.journeyConfig(pc.name, "5s", `max_body_bytes = 40`), nil)
		if res.ErrorType != report.ErrProtocol || !strings.Contains(res.Error, "larger than 40 bytes") {
			t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
		}
	})
}

func TestPipelines_APIEchoingTheToken_NeverLeaksIt(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"type":"error","error":{"message":"bad header %s"}}`, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	e := &env{t: t, srv: srv, logs: &labtest.Buffer{}}
	jc := e.journeyConfig(config.PipelinesBitbucket, "5s", "")
	j, err := newJourney(jc, probes.Env{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// No Runner-level redactor: the journey's own errors must be clean.
	r := &probes.Runner{Agent: "a", Region: "eu", Log: slog.New(slog.NewTextHandler(e.logs, nil))}
	res := r.Execute(context.Background(), j, probes.Spec{Journey: jc, Slot: time.Now(), Trigger: report.TriggerManual})
	if res.ErrorType != report.ErrHTTP4xx || !strings.Contains(res.Error, report.Mask) {
		t.Fatalf("got %s %q", res.ErrorType, res.Error)
	}
	e.noCanary(res)
}

func TestPipelines_BitbucketStepDurations_FallBackToTimestamps(t *testing.T) {
	pc := providers[0]
	e := newEnv(t, pc, lab.CISimConfig{RunTime: 300 * time.Millisecond, Steps: []string{"a", "b", "c"}, OmitStepDuration: true})
	res := e.run(e.journeyConfig(pc.name, "5s", ""), nil)
	if res.Status != report.StatusPass {
		t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
	}
	ms, _ := stepAttr(res, "result", "vantage.pipeline.task.duration_ms").([]float64)
	if len(ms) != 3 || ms[0] != 100 || ms[1] != 100 || ms[2] != 100 {
		t.Fatalf("task durations %v, want 100 ms each from started_on/completed_on", ms)
	}
}

func TestPipelines_BitbucketSteps_FollowsPagination(t *testing.T) {
	pc := providers[0]
	var names []string
	for i := range 130 {
		names = append(names, fmt.Sprintf("s%d", i))
	}
	e := newEnv(t, pc, lab.CISimConfig{RunTime: 130 * time.Second / 1000, Steps: names})
	res := e.run(e.journeyConfig(pc.name, "5s", ""), nil)
	if res.Status != report.StatusPass {
		t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
	}
	got, _ := stepAttr(res, "result", "cicd.pipeline.task.name").([]string)
	if len(got) != 130 || got[129] != "s129" {
		t.Fatalf("read %d steps", len(got))
	}
	ms, _ := stepAttr(res, "result", "vantage.pipeline.task.duration_ms").([]float64)
	if len(ms) != 130 || ms[0] != 0 {
		t.Fatalf("duration_in_seconds (rounded to 0 s) not preferred: %v", ms[:1])
	}
}

func TestWaitWhile_UnknownStateIsNotTerminal(t *testing.T) {
	f := &scripted{seq: []status{{phase: phaseUnknown, state: "PARSING"}, {phase: phaseUnknown, state: "HALTED?"},
		{phase: phaseRunning, state: "IN_PROGRESS"}}}
	j := &journey{cfg: &config.PipelinesJourney{PollInterval: config.Dur(time.Millisecond), MaxPollInterval: config.Dur(time.Millisecond)}, prov: f}
	st, polls, err := j.waitWhile(context.Background(), status{phase: phasePending}, phasePending)
	if err != nil || st.phase != phaseRunning || polls != 3 {
		t.Fatalf("got %+v after %d polls: %v", st, polls, err)
	}
}

func TestBitbucketStatus_StateNames(t *testing.T) {
	b := newBitbucket(nil, "https://bitbucket.org", "w/r", "main", "", nil)
	cases := []struct {
		body  string
		phase phase
		out   outcome
	}{
		{`{"uuid":"{a}","state":{"name":"PENDING"}}`, phasePending, outcomeUnknown},
		{`{"uuid":"{a}","state":{"name":"IN_PROGRESS","stage":{"name":"PAUSED"}}}`, phaseRunning, outcomeUnknown},
		{`{"uuid":"{a}","state":{"name":"HALTED_NEW"}}`, phaseUnknown, outcomeUnknown},
		{`{"uuid":"{a}","state":{"name":"COMPLETED","result":{"name":"SUCCESSFUL"}}}`, phaseDone, outcomeSuccess},
		{`{"uuid":"{a}","state":{"name":"COMPLETED","result":{"name":"EXPIRED"}}}`, phaseDone, outcomeFailed},
		{`{"uuid":"{a}","state":{"name":"COMPLETED","result":{"name":"STOPPED"}}}`, phaseDone, outcomeStopped},
		{`{"uuid":"{a}","state":{"name":"COMPLETED","result":{"name":"NEWFANGLED"}}}`, phaseDone, outcomeUnknown},
	}
	for _, c := range cases {
		p, err := parseBitbucketPipeline("GET", "/x", []byte(c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		if st := b.status(p); st.phase != c.phase || st.outcome != c.out {
			t.Errorf("%s: phase %d outcome %d", c.body, st.phase, st.outcome)
		}
	}
	if got := b.pipelinePath("{1b2c}"); !strings.HasSuffix(got, "/pipelines/%7B1b2c%7D") {
		t.Fatalf("braces not percent-encoded: %s", got)
	}
}

// scripted is a provider that replays observations.
type scripted struct {
	provider
	seq []status
	i   int
}

func (s *scripted) get(context.Context, string) (status, error) {
	st := s.seq[s.i]
	s.i++
	return st, nil
}

// --- push mode ---

// labGit starts the lab's git product (real git http-backend over HTTPS)
// with one repository, and tells the simulator about every branch update
// as a product would. The git password is the canary too.
func labGit(t *testing.T, s sim) *lab.GitProduct {
	t.Helper()
	labtest.NeedBinary(t, "git", "apt-get install -y git")
	p, err := lab.StartGitProduct(t.TempDir(), lab.GitProductOptions{Repos: []string{"ws/app.git"}, User: "probe", Password: canary})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if s != nil {
		p.Repos.OnPush(func(repo, ref, oldSHA, newSHA string) {
			if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
				s.NotifyPush(b, newSHA)
			}
		})
	}
	return p
}

func pushConfig(p *lab.GitProduct, extra string) string {
	return fmt.Sprintf(`mode = "push"
push_url = %q
push_user = "probe"
push_password = "env:GIT_PW"
push_ca_file = %q
%s`, p.HTTPSURL("ws/app.git"), p.CAFile, extra)
}

// runNew runs the journey built by the real constructor New.
func (e *env) runNew(jc *config.Journey) report.Result {
	e.t.Helper()
	j, err := New(jc, probes.Env{Agent: config.Agent{Name: "eu-1"}})
	if err != nil {
		e.t.Fatal(err)
	}
	defer j.(probes.Closer).Close()
	r := &probes.Runner{Agent: "eu-1", Region: "eu", Redact: report.NewRedactor(canary),
		Log: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	res := r.Execute(context.Background(), j, probes.Spec{Journey: jc, Slot: time.Now().Truncate(time.Millisecond), Trigger: report.TriggerManual})
	e.noCanary(res)
	return res
}

func probeBranches(t *testing.T, p *lab.GitProduct) []string {
	t.Helper()
	refs, err := p.Repos.Refs(context.Background(), "ws/app.git")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for ref := range refs {
		if strings.Contains(ref, "vantage-probe/") {
			out = append(out, ref)
		}
	}
	return out
}

func TestPipelinesPush_LabGitServer_TriggerDelayIsReflectedInPushToStart(t *testing.T) {
	forEachProvider(t, func(t *testing.T, pc providerCase) {
		const delay = 250 * time.Millisecond
		e := newEnv(t, pc, lab.CISimConfig{TriggerDelay: delay, RunTime: 20 * time.Millisecond})
		g := labGit(t, e.sim)
		jc := e.journeyConfig(pc.name, "10s", pushConfig(g, "wait_for_result = true"))
		res := e.runNew(jc)
		if res.Status != report.StatusPass {
			t.Fatalf("got %s/%s %q; steps %s", res.Status, res.ErrorType, res.Error, stepNames(res))
		}
		if got := stepNames(res); got != "push=pass start=pass queued=pass running=pass result=pass cleanup=pass" {
			t.Fatalf("steps %s", got)
		}
		sha, _ := stepAttr(res, "push", "vcs.ref.head.revision").(string)
		if len(sha) != 40 {
			t.Fatalf("pushed sha %q", sha)
		}
		// The server notifies the simulator during the push, before the
		// client sees it done: the delay is a lower bound less that margin.
		ms, _ := runAttr(res, "vantage.pipeline.push_to_start_ms").(float64)
		var pushMS float64
		for _, s := range res.Steps {
			if s.Name == "push" {
				pushMS = report.Millis(s.Duration)
			}
		}
		if ms+pushMS < float64(delay/time.Millisecond) {
			t.Fatalf("push_to_start_ms = %.1f (push %.1f ms), below the simulated trigger delay %s", ms, pushMS, delay)
		}
		if b := probeBranches(t, g); len(b) != 0 {
			t.Fatalf("probe branch not cleaned up: %v", b)
		}

		// Without a trigger delay the same journey sees the pipeline sooner.
		e.sim.SetTriggerDelay(0)
		res = e.runNew(jc)
		fast, _ := runAttr(res, "vantage.pipeline.push_to_start_ms").(float64)
		if res.Status != report.StatusPass || fast >= ms {
			t.Fatalf("no-delay run: %s %q push_to_start_ms %.1f (delayed %.1f)", res.Status, res.Error, fast, ms)
		}
	})
}

func TestPipelinesPush_NoPipelineStarted_IsPipelineTimeoutAndCleansUp(t *testing.T) {
	pc := providers[0]
	e := newEnv(t, pc, lab.CISimConfig{})
	g := labGit(t, nil) // the product never starts a pipeline
	res := e.runNew(e.journeyConfig(pc.name, "1s", pushConfig(g, "")))
	if res.ErrorType != report.ErrPipelineTimeout {
		t.Fatalf("got %s/%s %q", res.Status, res.ErrorType, res.Error)
	}
	if got := stepNames(res); got != "push=pass start=fail cleanup=pass" {
		t.Fatalf("steps %s", got)
	}
	if b := probeBranches(t, g); len(b) != 0 {
		t.Fatalf("probe branch not cleaned up: %v", b)
	}
}

func TestPipelinesPush_WrongGitPassword_IsAuthAndStartsNothing(t *testing.T) {
	pc := providers[0]
	e := newEnv(t, pc, lab.CISimConfig{})
	g := labGit(t, e.sim)
	jc := e.journeyConfig(pc.name, "5s", pushConfig(g, ""))
	jc.Pipelines.PushPassword = config.SecretValue("env:GIT_PW", "not-the-password")
	res := e.runNew(jc)
	if res.ErrorType != report.ErrAuth {
		t.Fatalf("got %s/%s %q; steps %s", res.Status, res.ErrorType, res.Error, stepNames(res))
	}
	if e.sim.Runs() != 0 {
		t.Fatal("a rejected push started a pipeline")
	}
}

// --- helpers ---

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached within 5s")
}
