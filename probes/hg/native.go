package hg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/vantage-fleet/vantage/probes"
	"github.com/vantage-fleet/vantage/probes/hg/revlog"
	"github.com/vantage-fleet/vantage/probes/hg/store"
	"github.com/vantage-fleet/vantage/probes/hg/wire"
)

// runNative is the journey with the Go client: capabilities, heads,
// clone or pull, and with push: push and verify.
func (j *Journey) runNative(ctx context.Context, run *probes.Run) error {
	hc := j.httpClient(true)
	defer hc.CloseIdleConnections()
	c := j.wireClient(hc)

	step := run.Rec.Step("capabilities")
	caps, err := c.Capabilities(ctx)
	if err == nil && j.cfg.Push {
		if _, ok := caps["unbundle"]; !ok {
			err = fmt.Errorf("server does not accept pushes (no unbundle capability): %w", wire.ErrMalformed)
		} else if !hasVersion(c.Bundle2Caps()["changegroup"], "02") {
			err = fmt.Errorf("server does not take bundle2 changegroup 02: %w", wire.ErrMalformed)
		}
	}
	if err := step.End(classify(err)); err != nil {
		return err
	}

	step = run.Rec.Step("heads")
	heads, err := c.Heads(ctx)
	step.Set(attribute.Int("vantage.hg.heads", len(heads)))
	if err := step.End(classify(err)); err != nil {
		return err
	}

	repo := &store.Repo{URL: j.cfg.URL}
	cached := false
	if j.cfg.Push {
		repo, cached = store.Load(j.cacheDir, j.cfg.URL, j.cfg.MaxBundleBytes)
	}
	name := "clone"
	if cached {
		name = "pull"
	}
	step = run.Rec.Step(name)
	before := c.BytesRead
	if cached {
		// A repository replaced at the same URL (rotation) no longer has
		// the cached heads: start over rather than mix two histories.
		known, err := c.Known(ctx, repo.Heads())
		if err != nil {
			return step.End(classify(err))
		}
		for _, k := range known {
			if !k {
				step.Set(attribute.Bool("vantage.hg.recloned", true))
				repo = &store.Repo{URL: j.cfg.URL}
				break
			}
		}
	}
	next, st, err := store.Pull(ctx, c, repo, heads)
	if cached && errors.Is(err, store.ErrMissingBase) {
		// The server deltas against a revision the cache dropped: clone afresh.
		step.Set(attribute.Bool("vantage.hg.recloned", true))
		next, st, err = store.Pull(ctx, c, &store.Repo{URL: j.cfg.URL}, heads)
	}
	step.Set(attribute.Int("vantage.hg.changesets", st.Changesets), attribute.Int("vantage.hg.revisions", st.Revisions),
		attribute.Int("vantage.hg.cached_bases", st.CachedBases),
		attribute.Int64("vantage.hg.bytes", c.BytesRead-before))
	if err := step.End(classify(err)); err != nil {
		return err
	}
	repo = next
	run.Rec.SetAttrs(attribute.Int("vantage.hg.repo_changesets", len(repo.Changesets)))
	if !j.cfg.Push {
		return nil
	}
	if err := repo.Save(j.cacheDir); err != nil {
		return probes.Internal(fmt.Errorf("saving the hg cache: %w", err))
	}
	if len(repo.Changesets) > j.cfg.MaxChangesets {
		return j.tooBig(len(repo.Changesets))
	}

	step = run.Rec.Step("push")
	var (
		cg   []byte
		node revlog.Node
	)
	for attempt := 1; ; attempt++ {
		step.Set(attribute.Int("vantage.hg.push.attempts", attempt))
		now := time.Now()
		cg, node, err = repo.Commit(j.cfg.ProbeFile, probeContent(run, now), j.cfg.CommitUser,
			"vantage probe run "+run.ID, now)
		if err != nil {
			return step.End(probes.Internal(fmt.Errorf("building the probe changeset: %w", err)))
		}
		step.Set(attribute.String("vcs.ref.head.revision", node.Hex()))
		if j.beforePush != nil {
			j.beforePush(ctx, attempt)
		}
		err = push(ctx, c, heads, cg)
		if !j.retryPush(ctx, err, attempt) {
			break
		}
		// Another agent pushed first: pull its changesets and rebuild ours
		// on the new tip, as a developer would.
		run.Log.Debug("hg push lost a race, pulling and retrying", "attempt", attempt, "err", err)
		if heads, err = c.Heads(ctx); err != nil {
			break
		}
		var next *store.Repo
		if next, _, err = store.Pull(ctx, c, repo, heads); err != nil {
			break
		}
		repo = next
	}
	if err := step.End(classify(err)); err != nil {
		return err
	}
	// Record our own changeset in the cache, so that the next pull skips it.
	cgr, _ := wire.NewCGReader(bytes.NewReader(cg), "02", c.Limits)
	if after, _, err := repo.Apply(cgr, c.Limits); err == nil {
		if err := after.Save(j.cacheDir); err != nil {
			return probes.Internal(fmt.Errorf("saving the hg cache: %w", err))
		}
	}

	if !*j.cfg.Verify {
		return nil
	}
	step = run.Rec.Step("verify")
	// A fresh client without keep-alive: the answer must come from a new
	// request, as another user's would.
	fresh := j.httpClient(false)
	vc := j.wireClient(fresh)
	err = j.verifyLoop(ctx, step, node.Hex(), func(ctx context.Context) (bool, error) {
		got, found, err := vc.Lookup(ctx, node.Hex())
		return found && got == node, err
	})
	return step.End(err)
}

func hasVersion(vs []string, want string) bool {
	for _, v := range vs {
		if v == want {
			return true
		}
	}
	return false
}

// push sends the changegroup with unbundle and reads the reply.
func push(ctx context.Context, c *wire.Client, heads []revlog.Node, cg []byte) error {
	b, err := wire.PushBundle(heads, cg, 1)
	if err != nil {
		return probes.Internal(err)
	}
	body, err := c.Unbundle(ctx, b)
	if err != nil {
		return err
	}
	defer body.Close()
	_, err = wire.ReadPushReply(body, c.Limits)
	return err
}
