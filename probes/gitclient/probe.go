package gitclient

import (
	"context"
)

// ProbeCommit says what PushProbeCommit pushes.
type ProbeCommit struct {
	// Base is the branch the commit goes on top of; empty means the
	// server's HEAD.
	Base string
	// Branch is the short name of the branch to write (refs/heads/<Branch>).
	// Callers are responsible for keeping it under their probe prefix.
	Branch string
	// Message is the commit message (e.g. the run ID).
	Message string
	// Dir, when set, clones on disk under Dir instead of in memory.
	Dir string
}

// PushProbeCommit makes a shallow clone (depth 1, single branch, no tags)
// of pc.Base, adds a commit with pc.Message and pushes it to
// refs/heads/<pc.Branch>. It returns the new commit's hash. Phases are
// recorded in the Phases found in ctx (WithPhases), if any.
func PushProbeCommit(ctx context.Context, c *Client, pc ProbeCommit) (sha string, err error) {
	cl, err := c.Clone(ctx, CloneOptions{Branch: pc.Base, Dir: pc.Dir})
	if err != nil {
		return "", err
	}
	defer cl.Close()
	h, err := c.Commit(cl, pc.Message)
	if err != nil {
		return "", err
	}
	if err := c.Push(ctx, cl, h, pc.Branch); err != nil {
		return "", err
	}
	return h.String(), nil
}

// DeleteBranch deletes refs/heads/<branch> on c's repository; a branch that
// does not exist is not an error.
func DeleteBranch(ctx context.Context, c *Client, branch string) error {
	return c.DeleteBranch(ctx, branch)
}
