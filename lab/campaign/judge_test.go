package campaign

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func ev(sec int, status, name, key, journeys, regions string) Event {
	return Event{At: t0.Add(time.Duration(sec) * time.Second), Status: status, Key: key,
		Labels: map[string]string{"alertname": name, "journey": journeys, "regions": regions}}
}

func TestJudge(t *testing.T) {
	regional := Expect{Scope: ScopeRegional, Regions: []string{"eu"}, Journeys: []string{"git"}}
	global := Expect{Scope: ScopeGlobal, Journeys: []string{"hg"}}
	cases := []struct {
		name            string
		exp             Expect
		events          []Event
		ok, missed, mis bool
		falses          int
		lat             time.Duration
	}{
		{"regional detected", regional, []Event{ev(12, "firing", AlertRegional, "k1", "git", "eu")}, true, false, false, 0, 12 * time.Second},
		{"regional seen as global is misclassified", regional, []Event{ev(9, "firing", AlertGlobal, "k1", "git", "eu,us")}, false, false, true, 0, 0},
		{"regional with wrong region", regional, []Event{ev(9, "firing", AlertRegional, "k1", "git", "us")}, false, false, true, 0, 0},
		{"nothing is missed", regional, nil, false, true, false, 0, 0},
		{"other journey pages falsely", regional, []Event{ev(5, "firing", AlertRegional, "k2", "http", "eu"), ev(12, "firing", AlertRegional, "k1", "git", "eu")}, true, false, false, 1, 12 * time.Second},
		{"global after regional escalation", global, []Event{ev(6, "firing", AlertRegional, "k1", "hg", "eu"), ev(11, "firing", AlertGlobal, "k2", "hg", "eu,us,ap")}, true, false, false, 0, 11 * time.Second},
		{"global never beyond regional", global, []Event{ev(6, "firing", AlertRegional, "k1", "hg", "eu")}, false, false, true, 0, 0},
		{"fleet alerts are not pages", Expect{Scope: ScopeNone}, []Event{ev(3, "firing", AlertProberSuspect, "k3", "", "eu")}, true, false, false, 0, 0},
		{"product page during a prober kill is false", Expect{Scope: ScopeNone}, []Event{ev(3, "firing", AlertRegional, "k3", "git", "eu")}, false, false, false, 1, 0},
		{"repeat firing is a second page", regional, []Event{ev(4, "firing", AlertRegional, "k1", "git", "eu"), ev(30, "firing", AlertRegional, "k1", "git", "eu")}, true, false, false, 1, 4 * time.Second},
		{"events outside the window are ignored", regional, []Event{ev(-5, "firing", AlertRegional, "k1", "git", "us"), ev(400, "firing", AlertGlobal, "k1", "git", "eu")}, false, true, false, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Judge(c.exp, t0, t0.Add(5*time.Minute), c.events, nil)
			if o.OK != c.ok || o.Missed != c.missed || o.Misclassified != c.mis || len(o.FalsePages) != c.falses || o.Latency != c.lat {
				t.Fatalf("got ok=%v missed=%v mis=%v false=%d lat=%s (detected %q)", o.OK, o.Missed, o.Misclassified, len(o.FalsePages), o.Latency, o.Detected)
			}
		})
	}
}

func TestJudge_AgentLocal(t *testing.T) {
	exp := Expect{Scope: ScopeAgentLocal, Agent: "eu-1"}
	e := ev(7, "firing", AlertProberSuspect, "s1", "git", "eu")
	e.Labels["agent"] = "eu-1"
	o := Judge(exp, t0, t0.Add(time.Minute), []Event{e}, nil)
	if !o.OK || o.Latency != 7*time.Second || o.Detected != "agent-local[eu-1]" {
		t.Fatalf("%+v", o)
	}
	o = Judge(exp, t0, t0.Add(time.Minute), []Event{e, ev(8, "firing", AlertRegional, "k", "git", "eu")}, nil)
	if len(o.FalsePages) != 1 {
		t.Fatalf("a product page during an agent-local fault must be false: %+v", o)
	}
}

func TestUnresolved(t *testing.T) {
	evs := []Event{ev(1, "firing", AlertRegional, "a", "", ""), ev(50, "resolved", AlertRegional, "a", "", "")}
	if u := Unresolved([]string{"a", "b", "a"}, t0, evs); len(u) != 1 || u[0] != "b" {
		t.Fatalf("%v", u)
	}
}

func TestJudge_Partial_PagedRegionalOrNotAtAllIsRight_GlobalIsMisclassified(t *testing.T) {
	exp := Expect{Scope: ScopePartial, Regions: []string{"eu"}, Journeys: []string{"git"}}
	o := Judge(exp, t0, t0.Add(time.Minute), nil, nil)
	if !o.OK || o.Missed || o.Misclassified || o.Detected != DetectedNotPaged {
		t.Fatalf("unpaged partial fault: %+v", o)
	}
	o = Judge(exp, t0, t0.Add(time.Minute), []Event{ev(14, "firing", AlertRegional, "k", "git", "eu")}, nil)
	if !o.OK || o.Latency != 14*time.Second || o.Detected != "regional[eu]" {
		t.Fatalf("partial fault paged regionally: %+v", o)
	}
	o = Judge(exp, t0, t0.Add(time.Minute), []Event{ev(14, "firing", AlertGlobal, "k", "git", "eu,us")}, nil)
	if o.OK || !o.Misclassified {
		t.Fatalf("partial fault paged globally must be misclassified: %+v", o)
	}
	if s := Summarize([]Result{{Outcome: Judge(exp, t0, t0.Add(time.Minute), nil, nil)}}); len(s.ByScope[ScopePartial]) != 0 {
		t.Fatalf("an unpaged partial fault has no detection latency: %v", s.ByScope)
	}
}
