package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab/campaign"
	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/pkg/fleet"
	"github.com/vantage-fleet/vantage/pkg/ingest"
	"github.com/vantage-fleet/vantage/pkg/report"
)

const interval = 5 * time.Second

var allJourneys = []string{campaign.JourneyHTTP, campaign.JourneyGitHTTP, campaign.JourneyGitSSH,
	campaign.JourneyHg, campaign.JourneyPipelines}

// TestChaos_IsolatedRegions runs a real fleet (the lab product, an
// aggregator and two probers in each of three regions, as real processes)
// with each region's probers in their own network namespace, and breaks
// real links with nftables. Each subtest asserts its expected outcome
// through the alerts the aggregator sends to its webhook sink.
func TestChaos_IsolatedRegions(t *testing.T) {
	if os.Getenv("VANTAGE_CHAOS") == "" {
		t.Skip("the fleet chaos test takes minutes: run it with `make chaos` (VANTAGE_CHAOS=1, as root)")
	}
	labtest.NeedBinary(t, "ip", "apt-get install -y iproute2")
	labtest.NeedBinary(t, "nft", "apt-get install -y nftables")
	labtest.NeedBinary(t, "git", "apt-get install -y git")
	labtest.NeedBinary(t, "hg", "apt-get install -y mercurial")
	if os.Geteuid() != 0 {
		t.Skip("chaos tests need root to create network namespaces, veths and nft tables; run `make chaos` as root")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		t.Skipf("no go tool at %s to build the binaries", goTool)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	regions := []string{"eu", "us", "ap"}
	nw, err := New(ctx, regions)
	if errors.Is(err, ErrNotPermitted) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nw.Close(); err != nil {
			t.Errorf("cleanup of the namespaces: %v", err)
		}
	})
	bin := t.TempDir()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(goTool)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if err := campaign.BuildBinaries(ctx, root, bin); err != nil {
		t.Fatal(err)
	}
	place := map[string]campaign.Placement{}
	for _, r := range regions {
		place[r] = campaign.Placement{Host: nw.Regions[r].IP, Wrap: nw.Wrap(r), FirstPort: 17000}
	}
	dir := t.TempDir()
	st, err := campaign.Start(ctx, campaign.Options{Dir: dir, BinDir: bin, Regions: regions, Interval: interval,
		EdgeHost: nw.EdgeIP, AggregatorHost: nw.AggregatorIP, Placement: place})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close) // runs before nw.Close: processes leave the namespaces first
	t.Cleanup(func() {
		if t.Failed() {
			keep := filepath.Join(os.TempDir(), "vantage-chaos-"+nw.Suffix)
			if err := os.MkdirAll(keep, 0o700); err == nil {
				logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
				jsonl, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
				for _, f := range append(logs, jsonl...) {
					if b, err := os.ReadFile(f); err == nil {
						_ = os.WriteFile(filepath.Join(keep, filepath.Base(f)), b, 0o600)
					}
				}
				t.Logf("logs and results kept in %s", keep)
			}
			for _, f := range []string{"aggregator.log", "prober-eu-1.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("--- %s (tail)\n%s", f, b)
			}
		}
	})
	green := func(t *testing.T) {
		t.Helper()
		if err := nw.HealAll(ctx); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
		defer wcancel()
		if err := st.WaitGreen(wctx); err != nil {
			t.Fatal(err)
		}
	}
	green(t)

	t.Run("RegionPartitionedFromProduct_PagesRegional", func(t *testing.T) {
		green(t)
		var out bytes.Buffer
		r := &campaign.Runner{Stack: st, Out: &out, DetectTimeout: 90 * time.Second, RecoverTimeout: 2 * time.Minute}
		res := r.Run(ctx, []campaign.Scenario{{
			Name:   "eu cut from the product (nft drop to the edges)",
			Expect: campaign.Expect{Scope: campaign.ScopeRegional, Regions: []string{"eu"}, Journeys: allJourneys},
			Inject: func(ctx context.Context, _ *campaign.Stack) error { return nw.Cut(ctx, "eu", nw.EdgeIP) },
			Clear:  func(ctx context.Context, _ *campaign.Stack) error { return nw.Heal(ctx, "eu") },
		}})
		t.Log("\n" + out.String())
		o := res[0].Outcome
		if res[0].Err != nil || !o.OK || o.Misclassified || len(o.FalsePages) > 0 || len(res[0].Unresolved) > 0 {
			t.Fatalf("ok=%v detected=%q misclassified=%v false pages=%v unresolved=%v err=%v",
				o.OK, o.Detected, o.Misclassified, o.FalsePages, res[0].Unresolved, res[0].Err)
		}
		t.Logf("measured: regional[eu] detected %.1fs after the cut", o.Latency.Seconds())
	})

	t.Run("RegionPartitionedFromAggregator_ResultsMissingNeverProductAlert", func(t *testing.T) {
		green(t)
		already := firing(st.Rec.Events())
		t0 := time.Now()
		if err := nw.Cut(ctx, "eu", nw.AggregatorIP); err != nil {
			t.Fatal(err)
		}
		ev, err := waitEvent(ctx, st, t0, 90*time.Second, func(e campaign.Event) bool {
			return e.Status == "firing" && (e.Alertname() == campaign.AlertResultsMissing || e.Alertname() == campaign.AlertRegionBlind) &&
				slices.Contains(e.Regions(), "eu")
		})
		healErr := nw.Heal(ctx, "eu")
		if err != nil {
			t.Fatalf("no results-missing or blind alert for eu: %v; events: %v", err, describe(st.Rec.Since(t0)))
		}
		if healErr != nil {
			t.Fatal(healErr)
		}
		t.Logf("measured: %s for eu %.1fs after the cut", ev.Alertname(), ev.At.Sub(t0).Seconds())
		if _, err := waitEvent(ctx, st, ev.At, 2*time.Minute, func(e campaign.Event) bool {
			return e.Status == "resolved" && e.Key == ev.Key
		}); err != nil {
			t.Errorf("%s did not resolve after the heal: %v", ev.Key, err)
		}
		green(t)
		o := campaign.Judge(campaign.Expect{Scope: campaign.ScopeNone}, t0, time.Now(), st.Rec.Events(), already)
		if !o.OK || len(o.FalsePages) > 0 {
			t.Errorf("product pages while only the aggregator link was cut: %v", describe(o.FalsePages))
		}
		for _, e := range st.Rec.Since(t0) {
			if e.IsProductAlert() {
				t.Errorf("product alert during or after the cut: %s", describe([]campaign.Event{e}))
			}
		}
	})

	t.Run("RollEveryProber_NoSlotMissed", func(t *testing.T) {
		green(t)
		t0 := time.Now()
		for _, a := range st.Agents {
			if err := st.StopProber(a.Name); err != nil {
				t.Fatalf("stop %s: %v", a.Name, err)
			}
			if err := st.StartProber(a.Name); err != nil {
				t.Fatalf("restart %s: %v", a.Name, err)
			}
			if err := waitMember(ctx, st, a.Region, a.Name, time.Minute); err != nil {
				t.Fatal(err)
			}
			// As a careful operator would: one interval of the restarted
			// prober running before the next is touched.
			sleepCtx(ctx, interval)
		}
		t1 := time.Now()
		sleepCtx(ctx, 3*interval) // let the last slots' results arrive
		results, err := readAllResults(st)
		if err != nil {
			t.Fatal(err)
		}
		gaps := slotGaps(results, t0, t1, regions)
		for _, g := range gaps {
			t.Error(g)
		}
		t.Logf("measured: rolled %d probers in %.1fs; %d slot gaps over %d journeys × %d regions",
			len(st.Agents), t1.Sub(t0).Seconds(), len(gaps), len(allJourneys), len(regions))
	})

	t.Run("RotateGossipKey_NoMembershipLoss", func(t *testing.T) {
		green(t)
		old, err := fleet.ReadKeyFile(st.KeyFile())
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := fleet.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name string
			keys [][]byte
		}{
			{"append the new key", append(append([][]byte(nil), old...), fresh)},
			{"promote the new key", append([][]byte{fresh}, old...)},
			{"remove the old key", [][]byte{fresh}},
		}
		polls := 0
		for _, s := range steps {
			if err := os.WriteFile(st.KeyFile(), fleet.FormatKeys(s.keys), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := st.Hangup(); err != nil {
				t.Fatal(err)
			}
			// Watch membership for several suspicion timeouts.
			for i := 0; i < 16; i++ {
				sleepCtx(ctx, 500*time.Millisecond)
				polls++
				if lost := missingMembers(ctx, st); len(lost) > 0 {
					t.Fatalf("after %q: members lost: %v", s.name, lost)
				}
			}
			if !st.Procs.Running("aggregator") {
				t.Fatalf("after %q: the aggregator died", s.name)
			}
		}
		// The old key alone is now refused: a node holding only it cannot
		// read the fleet (checked by the fleet package's own tests); here
		// the fleet must still be whole and green.
		green(t)
		t.Logf("measured: %d membership polls over 3 rotation steps, all %d probers present in each", polls, len(st.Agents))
	})

	t.Run("KillAggregatorUnderLoad_NothingLostNothingDoubled", func(t *testing.T) {
		green(t)
		_, grpcPort, _ := net.SplitHostPort(st.AggregatorGRPC)
		port, _ := strconv.Atoi(grpcPort)
		// freeze stops OTLP from every region (requests stall in flight),
		// so that the counters read next are final for this lifetime.
		freeze := func() {
			for _, r := range regions {
				if err := nw.Stall(ctx, r, nw.AggregatorIP, port); err != nil {
					t.Fatal(err)
				}
			}
			sleepCtx(ctx, 2*time.Second)
		}
		sleepCtx(ctx, 2*interval) // load: every journey running
		freeze()
		acc1, err := accepted(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.KillAggregator(); err != nil {
			t.Fatal(err)
		}
		if err := nw.HealAll(ctx); err != nil {
			t.Fatal(err)
		}
		sleepCtx(ctx, interval) // results pile up in the probers' spools
		if err := st.StartAggregator(); err != nil {
			t.Fatal(err)
		}
		sleepCtx(ctx, 4*interval)
		freeze()
		acc2, err := accepted(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.StopAggregator(); err != nil {
			t.Fatal(err)
		}
		ids, err := writtenIDs(st)
		if err != nil {
			t.Fatal(err)
		}
		pending, remembered, err := notAdmitted(t, st.AggregatorDir, ids)
		if err != nil {
			t.Fatal(err)
		}
		delivered := len(ids) - len(pending)
		t.Logf("measured: probers wrote %d results; aggregator accepted %d before the SIGKILL and %d after; %d in its dedup window; %d still in spools (behind the freeze)",
			len(ids), acc1, acc2, remembered, len(pending))
		if acc1+acc2 != int64(delivered) || remembered != delivered {
			t.Errorf("exactly once broken: accepted %d+%d=%d, dedup window %d, delivered IDs %d", acc1, acc2, acc1+acc2, remembered, delivered)
		}
		// The rest must arrive once the link is back.
		if err := nw.HealAll(ctx); err != nil {
			t.Fatal(err)
		}
		if err := st.StartAggregator(); err != nil {
			t.Fatal(err)
		}
		sleepCtx(ctx, 4*interval)
		if err := st.StopAggregator(); err != nil {
			t.Fatal(err)
		}
		lost, _, err := notAdmitted(t, st.AggregatorDir, pending)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.StartAggregator(); err != nil {
			t.Fatal(err)
		}
		if len(lost) > 0 {
			t.Errorf("%d of %d results never reached the aggregator, e.g. %v", len(lost), len(ids), lost[:min(3, len(lost))])
		}
		green(t)
	})
}

func firing(events []campaign.Event) map[string]bool {
	f := map[string]bool{}
	for _, e := range events {
		f[e.Key] = e.Status == "firing"
	}
	return f
}

func describe(evs []campaign.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "[%s %s regions=%s journey=%s agent=%s] ", e.Status, e.Alertname(), e.Labels["regions"], e.Labels["journey"], e.Labels["agent"])
	}
	return b.String()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// waitEvent waits up to limit for an event at or after since matching ok.
func waitEvent(ctx context.Context, st *campaign.Stack, since time.Time, limit time.Duration, ok func(campaign.Event) bool) (campaign.Event, error) {
	deadline := time.Now().Add(limit)
	for {
		for _, e := range st.Rec.Since(since) {
			if ok(e) {
				return e, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return campaign.Event{}, fmt.Errorf("none within %s", limit)
		}
		select {
		case <-st.Rec.Changed():
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// waitMember waits until the aggregator sees name alive in region.
func waitMember(ctx context.Context, st *campaign.Stack, region, name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if s, err := st.Status(ctx); err == nil && slices.Contains(s.Members[region], name) {
			return nil
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
	return fmt.Errorf("%s did not rejoin %s within %s", name, region, limit)
}

// missingMembers returns the probers the aggregator does not see alive,
// or a description of why it could not tell.
func missingMembers(ctx context.Context, st *campaign.Stack) []string {
	s, err := st.Status(ctx)
	if err != nil {
		return []string{"status: " + err.Error()}
	}
	var out []string
	for _, a := range st.Agents {
		if !slices.Contains(s.Members[a.Region], a.Name) {
			out = append(out, a.Name)
		}
	}
	return out
}

// written is the part of a jsonl Result line the tests compare.
type written struct {
	ID      string    `json:"id"`
	Journey string    `json:"journey"`
	Region  string    `json:"region"`
	Agent   string    `json:"agent"`
	Slot    time.Time `json:"slot"`
}

// readAllResults reads every Result the probers wrote (their jsonl
// exports).
func readAllResults(st *campaign.Stack) ([]written, error) {
	var out []written
	for _, a := range st.Agents {
		f, err := os.Open(a.ResultsFile)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var r written
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ID == "" {
				continue // a line cut short by the writer right now
			}
			out = append(out, r)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func writtenIDs(st *campaign.Stack) ([]string, error) {
	rs, err := readAllResults(st)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var ids []string
	for _, r := range rs {
		if !seen[r.ID] {
			seen[r.ID] = true
			ids = append(ids, r.ID)
		}
	}
	return ids, nil
}

// slotGaps lists, for each journey and region, the slots in (t0, t1)
// without any result: scheduled slots are interval apart, so any two
// consecutive slots seen further apart mean a missed one.
func slotGaps(rs []written, t0, t1 time.Time, regions []string) []string {
	slots := map[string][]time.Time{}
	for _, r := range rs {
		k := r.Journey + "/" + r.Region
		slots[k] = append(slots[k], r.Slot)
	}
	var gaps []string
	for _, j := range allJourneys {
		for _, region := range regions {
			k := j + "/" + region
			var in []time.Time
			for _, s := range slots[k] {
				if !s.Before(t0.Add(-interval)) && !s.After(t1.Add(interval)) {
					in = append(in, s)
				}
			}
			sort.Slice(in, func(a, b int) bool { return in[a].Before(in[b]) })
			in = slices.CompactFunc(in, func(a, b time.Time) bool { return a.Equal(b) })
			if len(in) == 0 {
				gaps = append(gaps, k+": no result at all during the roll")
				continue
			}
			if in[0].After(t0.Add(interval)) {
				gaps = append(gaps, fmt.Sprintf("%s: first slot %s is later than one interval after the roll began", k, in[0].Format(time.RFC3339)))
			}
			if in[len(in)-1].Before(t1.Add(-interval)) {
				gaps = append(gaps, fmt.Sprintf("%s: last slot %s is earlier than one interval before the roll ended", k, in[len(in)-1].Format(time.RFC3339)))
			}
			for i := 1; i < len(in); i++ {
				if d := in[i].Sub(in[i-1]); d > interval {
					gaps = append(gaps, fmt.Sprintf("%s: no result for the slot(s) between %s and %s", k,
						in[i-1].Format("15:04:05"), in[i].Format("15:04:05")))
				}
			}
		}
	}
	return gaps
}

// accepted reads the aggregator's ingest counters: Results received and
// not dropped as duplicates, in this process's lifetime.
func accepted(ctx context.Context, st *campaign.Stack) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.AggregatorURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, err
	}
	val := func(name string) (int64, error) {
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		return 0, fmt.Errorf("no %s in /metrics", name)
	}
	recv, err := val("vantage_aggregator_results_received_total")
	if err != nil {
		return 0, err
	}
	dup, err := val("vantage_aggregator_results_duplicates_total")
	if err != nil {
		return 0, err
	}
	return recv - dup, nil
}

// notAdmitted copies the stopped aggregator's dedup window and returns the
// ids it does not hold, and how many IDs it holds.
func notAdmitted(t *testing.T, aggDir string, ids []string) ([]string, int, error) {
	b, err := os.ReadFile(filepath.Join(aggDir, ingest.DedupFileName))
	if err != nil {
		return nil, 0, err
	}
	cp := t.TempDir()
	if err := os.WriteFile(filepath.Join(cp, ingest.DedupFileName), b, 0o600); err != nil {
		return nil, 0, err
	}
	d, err := ingest.OpenDedup(cp, time.Hour, 1<<22, nil)
	if err != nil {
		return nil, 0, err
	}
	defer d.Close()
	n := d.Len()
	rs := make([]report.Result, len(ids))
	for i, id := range ids {
		rs[i].ID = id
	}
	fresh, err := d.Admit(rs)
	if err != nil {
		return nil, 0, err
	}
	var out []string
	for _, r := range fresh {
		out = append(out, r.ID)
	}
	return out, n, nil
}
