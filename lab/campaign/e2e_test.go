package campaign

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/lab/labtest"
)

// TestE2E_RegionalAndGlobalFaultsAreScopedRight runs a shortened campaign
// on a real fleet: the lab product, an aggregator and six probers in three
// regions as real processes gossiping on loopback, streaming OTLP. A fault
// of git over HTTPS in one region must page as regional in that region
// only; SSH refused everywhere must page as global; nothing else may page,
// and every alert must resolve once the fault is gone.
func TestE2E_RegionalAndGlobalFaultsAreScopedRight(t *testing.T) {
	labtest.NeedBinary(t, "git", "apt-get install -y git")
	labtest.NeedBinary(t, "hg", "apt-get install -y mercurial")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		t.Skipf("no go tool at %s to build the binaries", goTool)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin := t.TempDir()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(goTool)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if err := BuildBinaries(ctx, root, bin); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := Start(ctx, Options{Dir: dir, BinDir: bin, Interval: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	defer func() {
		if t.Failed() {
			for _, f := range []string{"aggregator.log", "prober-eu-1.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("--- %s (tail)\n%s", f, b)
			}
		}
	}()
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	if err := st.WaitGreen(wctx); err != nil {
		wcancel()
		t.Fatal(err)
	}
	wcancel()

	var out bytes.Buffer
	r := &Runner{Stack: st, Out: &out, DetectTimeout: time.Minute, RecoverTimeout: 90 * time.Second}
	results := r.Run(ctx, []Scenario{
		FaultScenario("git over HTTP down in eu",
			lab.Fault{Kind: lab.FaultHTTPError, Region: "eu", Protocol: lab.ProtoGitHTTP, Status: 503},
			Expect{Scope: ScopeRegional, Regions: []string{"eu"}, Journeys: []string{JourneyGitHTTP}}),
		FaultScenario("git over SSH refused everywhere",
			lab.Fault{Kind: lab.FaultRefuse, Protocol: lab.ProtoGitSSH},
			Expect{Scope: ScopeGlobal, Journeys: []string{JourneyGitSSH}}),
	})
	sum := PrintSummary(&out, results, "e2e")
	t.Log("\n" + out.String())
	for _, res := range results {
		o := res.Outcome
		if res.Err != nil || !o.OK || o.Misclassified || len(o.FalsePages) > 0 || len(res.Unresolved) > 0 {
			t.Errorf("%s: ok=%v detected=%q misclassified=%v false pages=%d unresolved=%v err=%v",
				res.Scenario, o.OK, o.Detected, o.Misclassified, len(o.FalsePages), res.Unresolved, res.Err)
		}
	}
	if sum.Detected != 2 {
		t.Errorf("detected %d of 2 faults", sum.Detected)
	}
}
