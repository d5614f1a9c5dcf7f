package alert

import (
	"testing"

	"github.com/vantage-fleet/vantage/pkg/verdict"
)

func TestFromCondition_SuspectProberIsOneAlertPerAgent(t *testing.T) {
	c := verdict.Condition{Key: "VantageProberSuspect|eu-1", Alert: verdict.AlertProberSuspect, Severity: "info",
		Regions: []string{"eu"}, Agent: "eu-1", Journeys: []string{"lab-http"}, Kinds: []string{"http"}, Summary: "s"}
	a := FromCondition(c, nil, "")
	c.Journeys, c.Kinds = []string{"lab-http", "lab-git-ssh"}, []string{"http", "git"}
	b := FromCondition(c, nil, "")
	if len(a.Labels) != len(b.Labels) {
		t.Fatalf("labels differ: %v vs %v", a.Labels, b.Labels)
	}
	for k, v := range a.Labels {
		if b.Labels[k] != v {
			t.Fatalf("label %s changed with the journey set: %q → %q", k, v, b.Labels[k])
		}
	}
	if a.Labels["agent"] != "eu-1" || a.Labels["journey"] != "" {
		t.Fatalf("labels: %v", a.Labels)
	}
	if b.Annotations[AnnJourneys] != "lab-http,lab-git-ssh" {
		t.Fatalf("annotations: %v", b.Annotations)
	}
}
