package git

import (
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/vantage-fleet/vantage/pkg/report"
)

func FuzzParseBranchHead(f *testing.F) {
	f.Add("bitbucket-cloud", "b", []byte(`{"type":"branch","name":"b","target":{"type":"commit","hash":"0123456789abcdef0123456789abcdef01234567"}}`))
	f.Add("bitbucket-dc", "b", []byte(`{"values":[{"displayId":"b","latestCommit":"0123456789abcdef0123456789abcdef01234567"}]}`))
	f.Add("github", "b", []byte(`{"commit":{"sha":"zz"}}`))
	f.Add("gitlab", "b", []byte(`{"commit":{"id":null}}`))
	f.Fuzz(func(t *testing.T, apiType, branch string, body []byte) {
		h, err := parseBranchHead(apiType, branch, body)
		if err == nil && h != "" {
			if _, err := checkHash(h); err != nil {
				t.Fatalf("accepted a bad hash %q", h)
			}
		}
	})
}

// FuzzBranchName checks that every probe branch name is a valid ref under
// the prefix and parses back to its slot, whatever the region and agent.
func FuzzBranchName(f *testing.F) {
	f.Add("eu", "agent-1", "schedule", int64(1_800_000_000))
	f.Add("..", "a/../b", "confirm", int64(1))
	f.Add("", "", "", int64(42))
	f.Fuzz(func(t *testing.T, region, agent, trigger string, sec int64) {
		if sec <= 0 {
			return
		}
		const prefix = "vantage-probe/"
		b := branchName(prefix, region, agent, report.Trigger(trigger), time.Unix(sec, 0))
		if !strings.HasPrefix(b, prefix) {
			t.Fatalf("%q is outside the prefix", b)
		}
		if err := plumbing.NewBranchReferenceName(b).Validate(); err != nil {
			t.Fatalf("%q is not a valid ref: %v", b, err)
		}
		slot, ok := probeBranchSlot(prefix, b)
		if !ok || slot.Unix() != sec {
			t.Fatalf("%q parsed as %v %v, want %d", b, slot, ok, sec)
		}
	})
}
