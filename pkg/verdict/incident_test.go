package verdict

import (
	"strings"
	"testing"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// TestVerdict_IncidentKeepsItsKeyWhileJourneysJoinAndLeave: git over
// HTTP fails in eu (components git-http, git-storage), then git over SSH
// (git-ssh, git-storage) joins the incident through git-storage, then
// recovers. The chaos test of a region cut from the product saw the key
// change as the group grew (a second page for one incident) and the first
// key fire again as it shrank (a page during recovery). One incident is
// one page: its key holds, the join and the leave are updates.
func TestVerdict_IncidentKeepsItsKeyWhileJourneysJoinAndLeave(t *testing.T) {
	comp := func(r report.Result) report.Result {
		r.Components = map[string][]string{"gh": {"git-http", "git-storage"}, "gs": {"git-ssh", "git-storage"}}[r.Journey]
		return r
	}
	all := func(rs []report.Result) []report.Result {
		for i := range rs {
			rs[i] = comp(rs[i])
		}
		return rs
	}
	failEU := func(j string, k int) []report.Result {
		return all([]report.Result{res(j, "eu", "eu-1", k, S, F), res(j, "eu", "eu-2", k, C, F), res(j, "us", "us-1", k, S, P), res(j, "ap", "ap-1", k, S, P)})
	}
	tr := play(t, scenario{steps: []step{
		{at: 0, mem: three, res: all(append(passAll("gh", 0), passAll("gs", 0)...))},
		{at: sec(31), res: failEU("gh", 1)},
	}})
	open := tr.Open()
	if len(open) != 1 || strings.Join(open[0].Journeys, ",") != "gh" {
		t.Fatalf("want one incident of gh, got %+v", open)
	}
	key := open[0].Key
	step := func(at int, rs []report.Result) []Change {
		for _, r := range rs {
			if err := tr.Accept(r, t0.Add(sec(at))); err != nil {
				t.Fatal(err)
			}
		}
		return tr.Evaluate(t0.Add(sec(at))).Changes
	}
	// gs joins.
	ch := step(32, failEU("gs", 1))
	if len(ch) != 1 || ch[0].Type != Updated || ch[0].Condition.Key != key || strings.Join(ch[0].Condition.Journeys, ",") != "gh,gs" {
		t.Fatalf("gs joining: want one update of %s listing gh,gs, got %+v", key, ch)
	}
	// gs recovers, gh still fails.
	var changes []Change
	for k := 2; k <= 4; k++ {
		changes = append(changes, step(31+30*(k-1), append(failEU("gh", k), all(passAll("gs", k))...))...)
	}
	for _, c := range changes {
		if c.Type != Updated || c.Condition.Key != key {
			t.Errorf("gs recovering: want only updates of %s, got %s of %s (%v)", key, c.Type, c.Condition.Key, c.Condition.Journeys)
		}
	}
	if open := tr.Open(); len(open) != 1 || open[0].Key != key || strings.Join(open[0].Journeys, ",") != "gh" {
		t.Fatalf("after gs recovered: want %s listing gh, got %+v", key, open)
	}
}
