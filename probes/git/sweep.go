package git

import (
	"context"
	"sort"
	"strings"
	"time"
)

// sweepLoop sweeps at start and then every interval until ctx ends.
func (g *journey) sweepLoop(ctx context.Context, every time.Duration) {
	defer g.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		g.sweepOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *journey) sweepOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	n, err := g.sweep(ctx)
	if err != nil {
		g.log.Warn("sweeping old probe branches failed", "deleted", n, "error", err.Error())
		return
	}
	if n > 0 {
		g.log.Info("swept old probe branches", "deleted", n)
	}
}

// sweep deletes, oldest first, at most sweep_max probe branches under
// branch_prefix whose slot is older than sweep_age. Branches that do not
// parse as probe branches are never touched.
func (g *journey) sweep(ctx context.Context) (int, error) {
	refs, err := g.client.ListRefs(ctx)
	if err != nil {
		return 0, err
	}
	type old struct {
		branch string
		slot   time.Time
	}
	var victims []old
	cutoff := g.now().Add(-g.cfg.SweepAge.D)
	for ref := range refs {
		branch, ok := strings.CutPrefix(ref, "refs/heads/")
		if !ok {
			continue
		}
		if slot, ok := probeBranchSlot(g.cfg.BranchPrefix, branch); ok && slot.Before(cutoff) {
			victims = append(victims, old{branch, slot})
		}
	}
	sort.Slice(victims, func(i, j int) bool { return victims[i].slot.Before(victims[j].slot) })
	if max := *g.cfg.SweepMax; len(victims) > max {
		victims = victims[:max]
	}
	deleted := 0
	for _, v := range victims {
		if err := g.mustBeProbeBranch(v.branch); err != nil {
			return deleted, err
		}
		if err := g.client.DeleteBranch(ctx, v.branch); err != nil {
			return deleted, err
		}
		deleted++
	}
	return deleted, nil
}
