package pipelines

import (
	"context"
	"fmt"
	"strings"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// pusher is the git journey's push, as push mode needs it: push a new
// commit to a probe branch, and delete the branch afterwards. It is
// implemented over probes/gitclient (PushProbeCommit, DeleteBranch), so
// that this package never carries its own copy of a git push.
type pusher interface {
	// PushProbeCommit pushes a new commit to branch and returns its sha.
	PushProbeCommit(ctx context.Context, branch string) (sha string, err error)
	// DeleteBranch deletes the probe branch.
	DeleteBranch(ctx context.Context, branch string) error
}

// runPush is mode = "push": push a commit to a fresh probe branch, find
// the pipeline the push started and record push_to_start_ms, optionally
// follow it to its result, and always delete the branch.
func (j *journey) runPush(ctx context.Context, run *probes.Run) (err error) {
	branch := j.cfg.BranchPrefix + probeBranchSuffix(run)
	run.Rec.SetAttrs(semconv.VCSRefHeadName(branch))

	step := run.Rec.Step("push")
	sha, perr := j.push.PushProbeCommit(ctx, branch)
	if perr != nil {
		if ctx.Err() != nil && !classified(perr) {
			perr = probes.Errorf(report.ErrTimeout, "pushing the probe commit: not done before the journey deadline: %w", perr)
		}
		step.End(perr)
		// The push may have landed before it failed: clean up anyway.
		j.cleanup(ctx, run, branch)
		return perr
	}
	pushed := time.Now()
	step.Set(semconv.VCSRefHeadRevision(sha))
	step.End(nil)
	defer func() {
		if cerr := j.cleanup(ctx, run, branch); err == nil {
			err = cerr
		}
	}()

	step = run.Rec.Step("start")
	st, polls, err := j.findStarted(ctx, branch, sha)
	step.Set(attrPolls.Int(polls))
	if err != nil {
		if ctx.Err() != nil && !classified(err) {
			err = probes.Errorf(report.ErrPipelineTimeout, "no pipeline started for commit %s on %s before the journey deadline", shortSHA(sha), branch)
		}
		return step.End(err)
	}
	toStart := time.Since(pushed)
	j.describe(run, step, st)
	step.Set(attrPushToStart.Float64(report.Millis(toStart)))
	run.Rec.SetAttrs(attrPushToStart.Float64(report.Millis(toStart)))
	step.End(nil)
	if !j.cfg.WaitForResult {
		return nil
	}
	return j.follow(ctx, run, st)
}

// findStarted polls for the pipeline started by the push of sha, backing
// off like status polls.
func (j *journey) findStarted(ctx context.Context, branch, sha string) (status, int, error) {
	wait, polls := j.cfg.PollInterval.D, 0
	for {
		st, found, err := j.prov.findByCommit(ctx, branch, sha)
		polls++
		if err != nil || found {
			return st, polls, err
		}
		if err := sleep(ctx, wait); err != nil {
			return st, polls, err
		}
		wait = min(wait*3/2, j.cfg.MaxPollInterval.D)
	}
}

// cleanup deletes the probe branch under a short fresh context, recorded
// as the step "cleanup".
func (j *journey) cleanup(ctx context.Context, run *probes.Run, branch string) error {
	step := run.Rec.Step("cleanup")
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.cfg.StopTimeout.D)
	defer cancel()
	err := j.push.DeleteBranch(cctx, branch)
	if err != nil {
		run.Log.Warn("could not delete the probe branch", "branch", branch, "error", j.redact.String(err.Error()))
		err = fmt.Errorf("deleting probe branch %s: %w", branch, err)
	}
	return step.End(err)
}

// probeBranchSuffix names a run's branch after its result ID (unique per
// journey, region, agent, slot and trigger) and the agent.
func probeBranchSuffix(run *probes.Run) string {
	agent := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, run.Agent)
	id := run.ID
	if len(id) > 16 {
		id = id[:16]
	}
	if agent == "" {
		return id
	}
	if len(agent) > 40 {
		agent = agent[:40]
	}
	return strings.Trim(agent, ".-") + "-" + id
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
