// Package pipelines is the kind = "pipelines" journey: it starts a CI
// pipeline through the product's API (Bitbucket Cloud Pipelines, GitHub
// Actions or GitLab CI, one file each behind the provider interface), or
// pushes a commit and finds the pipeline the push started, then follows it
// through the steps trigger, queued, running and result, and stops it when
// the journey's deadline comes first. It owns the pipeline APIs' HTTP
// client; it does not own git pushes (see pusher) and never logs or
// returns a credential.
package pipelines

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// Kind is the journey kind this package implements.
const Kind = "pipelines"

// Attribute keys without a semantic convention.
const (
	attrRunNumber   = attribute.Key("vantage.pipeline.run.number")
	attrState       = attribute.Key("vantage.pipeline.state")
	attrPolls       = attribute.Key("vantage.pipeline.polls")
	attrTaskMillis  = attribute.Key("vantage.pipeline.task.duration_ms")
	attrPushToStart = attribute.Key("vantage.pipeline.push_to_start_ms")
	attrStopped     = attribute.Key("vantage.pipeline.stopped")
)

// phase is a run's coarse state. phaseUnknown is a state name this
// journey does not know: never terminal, never a transition.
type phase int

const (
	phaseUnknown phase = iota
	phasePending
	phaseRunning
	phaseDone
)

// outcome is how a completed run ended.
type outcome int

const (
	outcomeUnknown outcome = iota
	outcomeSuccess
	outcomeFailed
	outcomeStopped
)

// status is one observation of a run, in provider-neutral terms.
type status struct {
	id     string // the provider's run ID (Bitbucket: "{uuid}")
	number int64  // build or run number
	url    string // the run's web page
	phase  phase
	state  string // the provider's own state name, e.g. "IN_PROGRESS/RUNNING"
	result string // the provider's own result name once done, e.g. "FAILED"
	outcome
}

// task is one of the pipeline's own steps (Bitbucket /steps/).
type task struct {
	name     string
	result   string
	duration time.Duration // -1 when unknown
}

// provider is one CI system's API.
type provider interface {
	// pipelineName names what runs (cicd.pipeline.name).
	pipelineName() string
	// trigger starts a run on the configured branch.
	trigger(ctx context.Context) (status, error)
	// get observes a run.
	get(ctx context.Context, id string) (status, error)
	// stop stops (cancels) a run.
	stop(ctx context.Context, id string) error
	// findByCommit returns the newest run started for sha on branch.
	findByCommit(ctx context.Context, branch, sha string) (status, bool, error)
	// tasks returns the run's own steps, nil if the provider has none.
	tasks(ctx context.Context, id string) ([]task, error)
}

// journey is one configured pipelines journey.
type journey struct {
	cfg     *config.PipelinesJourney
	prov    provider
	hc      *http.Client
	push    pusher // nil unless mode = "push"
	redact  *report.Redactor
	vcsName attribute.KeyValue
}

// New builds a pipelines journey from its validated config. Push mode
// pushes with the git journey's client (probes/gitclient).
func New(j *config.Journey, env probes.Env) (probes.Journey, error) {
	var p pusher
	var secrets []string
	if j.Pipelines != nil && j.Pipelines.Mode == config.PipelinesModePush {
		gp, s, err := newGitPusher(j.Pipelines, env.Agent.Name)
		if err != nil {
			return nil, probes.Internal(fmt.Errorf("journey %s: push client: %w", j.Name, err))
		}
		p, secrets = gp, s
	}
	jr, err := newJourney(j, env, p, secrets...)
	if err != nil {
		if gp, ok := p.(*gitPusher); ok {
			gp.Close()
		}
		return nil, err
	}
	return jr, nil
}

// newJourney builds the journey with an explicit pusher (nil for trigger
// mode); extraSecrets are redacted from its errors and logs too.
func newJourney(j *config.Journey, env probes.Env, p pusher, extraSecrets ...string) (*journey, error) {
	pc := j.Pipelines
	if pc == nil {
		return nil, probes.Internal(fmt.Errorf("journey %s: no [journey.pipelines] table", j.Name))
	}
	if pc.Mode == config.PipelinesModePush && p == nil {
		return nil, probes.Internal(fmt.Errorf("journey %s: push mode without a pusher", j.Name))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	hc := &http.Client{Transport: tr}
	secrets := append([]string(nil), extraSecrets...)
	auth := func(*http.Request) {}
	switch {
	case pc.BearerToken.Value() != "":
		tok := pc.BearerToken.Value()
		secrets = append(secrets, tok)
		auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	case pc.BasicPassword.Value() != "":
		user, pw := pc.BasicUser, pc.BasicPassword.Value()
		secrets = append(secrets, pw)
		auth = func(r *http.Request) { r.SetBasicAuth(user, pw) }
	}
	a := &api{
		hc: hc, base: strings.TrimRight(pc.APIURL, "/"), auth: auth, maxBody: pc.MaxBodyBytes,
		reqTimeout: pc.RequestTimeout.D, retries: pc.RateLimitRetries,
		minBackoff: pc.PollInterval.D, maxBackoff: pc.MaxPollInterval.D,
		redact: report.NewRedactor(secrets...),
	}
	jr := &journey{cfg: pc, hc: hc, push: p, redact: a.redact}
	switch pc.Provider {
	case config.PipelinesGitHub:
		a.headers = map[string]string{"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
		jr.prov = newGitHub(a, pc.Repository, pc.Branch, pc.Pipeline, pc.Variables, pc.PollInterval.D)
		jr.vcsName = semconv.VCSProviderNameGithub
	case config.PipelinesGitLab:
		jr.prov = newGitLab(a, pc.Repository, pc.Branch, pc.Pipeline, pc.Variables)
		jr.vcsName = semconv.VCSProviderNameGitlab
	case config.PipelinesBitbucket:
		jr.prov = newBitbucket(a, pc.WebURL, pc.Repository, pc.Branch, pc.Pipeline, pc.Variables)
		jr.vcsName = semconv.VCSProviderNameBitbucket
	default:
		return nil, probes.Internal(fmt.Errorf("journey %s: unknown pipelines provider %q", j.Name, pc.Provider))
	}
	return jr, nil
}

// Close releases the journey's idle API and git connections.
func (j *journey) Close() error {
	j.hc.CloseIdleConnections()
	if c, ok := j.push.(interface{ Close() }); ok {
		c.Close()
	}
	return nil
}

// Run performs one journey.
func (j *journey) Run(ctx context.Context, run *probes.Run) error {
	run.Rec.SetAttrs(j.vcsName, semconv.CICDPipelineName(j.prov.pipelineName()))
	if j.cfg.Mode == config.PipelinesModePush {
		return j.runPush(ctx, run)
	}
	run.Rec.SetAttrs(semconv.VCSRefHeadName(j.cfg.Branch))
	step := run.Rec.Step("trigger")
	st, err := j.prov.trigger(ctx)
	if err != nil {
		if ctx.Err() != nil && !classified(err) {
			err = probes.Errorf(report.ErrTimeout, "triggering the pipeline: no answer before the journey deadline: %w", err)
		}
		return step.End(err)
	}
	j.describe(run, step, st)
	step.End(nil)
	return j.follow(ctx, run, st)
}

// describe records the run's identity on the step and the run.
func (j *journey) describe(run *probes.Run, step *probes.StepTimer, st status) {
	kv := []attribute.KeyValue{semconv.CICDPipelineRunID(st.id), attrRunNumber.Int64(st.number), attrState.String(st.state)}
	if st.url != "" {
		kv = append(kv, semconv.CICDPipelineRunURLFull(st.url))
	}
	step.Set(kv...)
	run.Rec.SetAttrs(kv[:2]...)
	if st.url != "" {
		run.Rec.SetAttrs(semconv.CICDPipelineRunURLFull(st.url))
	}
}

// follow waits for the run to leave the queue, to finish, and judges its
// result. On any failure before the result it stops the run.
func (j *journey) follow(ctx context.Context, run *probes.Run, st status) error {
	step := run.Rec.Step("queued")
	st, polls, err := j.waitWhile(ctx, st, phasePending)
	step.Set(attrPolls.Int(polls), attrState.String(st.state))
	if err != nil {
		return step.End(j.abandon(ctx, run, st, "queued", err))
	}
	step.End(nil)

	step = run.Rec.Step("running")
	st, polls, err = j.waitWhile(ctx, st, phaseRunning)
	step.Set(attrPolls.Int(polls), attrState.String(st.state))
	if err != nil {
		return step.End(j.abandon(ctx, run, st, "running", err))
	}
	step.End(nil)

	step = run.Rec.Step("result")
	step.Set(attrState.String(st.result), resultAttr(st.outcome))
	tasks, err := j.prov.tasks(ctx, st.id)
	if len(tasks) > 0 {
		names, results, millis := make([]string, len(tasks)), make([]string, len(tasks)), make([]float64, len(tasks))
		for i, t := range tasks {
			names[i], results[i], millis[i] = t.name, t.result, -1
			if t.duration >= 0 {
				millis[i] = report.Millis(t.duration)
			}
		}
		step.Set(semconv.CICDPipelineTaskNameKey.StringSlice(names),
			semconv.CICDPipelineTaskRunResultKey.StringSlice(results), attrTaskMillis.Float64Slice(millis))
	}
	if err != nil {
		return step.End(fmt.Errorf("reading the pipeline's steps: %w", err))
	}
	switch st.outcome {
	case outcomeSuccess:
		return step.End(nil)
	case outcomeStopped:
		return step.End(probes.Errorf(report.ErrPipelineFailed, "pipeline %s was stopped before it finished (%s): %s", j.prov.pipelineName(), st.result, st.url))
	case outcomeFailed:
		return step.End(probes.Errorf(report.ErrPipelineFailed, "pipeline %s ended %s: %s", j.prov.pipelineName(), st.result, st.url))
	default:
		return step.End(probes.Errorf(report.ErrProtocol, "pipeline %s completed with an unknown result %q: %s", j.prov.pipelineName(), st.result, st.url))
	}
}

// resultAttr maps an outcome to cicd.pipeline.result.
func resultAttr(o outcome) attribute.KeyValue {
	switch o {
	case outcomeSuccess:
		return semconv.CICDPipelineResultSuccess
	case outcomeStopped:
		return semconv.CICDPipelineResultCancellation
	case outcomeFailed:
		return semconv.CICDPipelineResultFailure
	}
	return semconv.CICDPipelineResultError
}

// waitWhile polls the run while it is in phase p (or in a state this
// journey does not know), backing off from poll_interval to
// max_poll_interval. It returns the last observation and the poll count.
func (j *journey) waitWhile(ctx context.Context, st status, p phase) (status, int, error) {
	wait, polls := j.cfg.PollInterval.D, 0
	for st.phase == p || st.phase == phaseUnknown {
		if err := sleep(ctx, wait); err != nil {
			return st, polls, err
		}
		wait = min(wait*3/2, j.cfg.MaxPollInterval.D)
		next, err := j.prov.get(ctx, st.id)
		polls++
		if err != nil {
			return st, polls, err
		}
		next.url = firstNonEmpty(next.url, st.url)
		st = next
	}
	return st, polls, nil
}

// abandon stops a run that the journey will not follow to its end, under
// a short fresh context (the journey's own may have expired), and returns
// the error the waiting step ends with: pipeline_timeout at the deadline,
// otherwise err's own class.
func (j *journey) abandon(ctx context.Context, run *probes.Run, st status, waiting string, err error) error {
	deadline := ctx.Err() != nil
	stopStep := run.Rec.Step("stop")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.cfg.StopTimeout.D)
	stopErr := j.prov.stop(sctx, st.id)
	cancel()
	if stopErr != nil {
		run.Log.Warn("could not stop the pipeline", "pipeline", st.url, "error", j.redact.String(stopErr.Error()))
		if sctx.Err() != nil && !classified(stopErr) {
			stopErr = probes.Errorf(report.ErrTimeout, "stopping the pipeline: no answer within stop_timeout %s", j.cfg.StopTimeout.D)
		}
	}
	stopStep.Set(attrStopped.Bool(stopErr == nil))
	stopStep.End(stopErr)
	if deadline && !classified(err) {
		dl, _ := ctx.Deadline()
		return probes.Errorf(report.ErrPipelineTimeout, "pipeline %s still %s (%s) at the journey deadline%s; stopped: %t: %s",
			j.prov.pipelineName(), waiting, st.state, sinceNote(dl), stopErr == nil, st.url)
	}
	return err
}

func sinceNote(dl time.Time) string {
	if dl.IsZero() {
		return ""
	}
	return " (" + dl.UTC().Format(time.RFC3339) + ")"
}

// classified reports whether err already carries its class.
func classified(err error) bool {
	var pe *probes.Error
	return errors.As(err, &pe)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
