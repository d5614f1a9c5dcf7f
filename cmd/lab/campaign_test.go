package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCampaign_PlanOnly_SameSeedPrintsTheSamePlan(t *testing.T) {
	plan := func(seed string) string {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"campaign", "-plan", "-seed", seed, "-faults", "12"}, &out, &errb); code != 0 {
			t.Fatalf("campaign -plan: exit %d: %s", code, errb.String())
		}
		return out.String()
	}
	a, b := plan("77"), plan("77")
	if a != b {
		t.Fatalf("seed 77 printed two different plans:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "replay: make campaign SEED=77 FAULTS=12") || strings.Count(a, "(expect ") != 12 {
		t.Fatalf("plan output lacks the replay command or its 12 faults:\n%s", a)
	}
	if plan("78") == a {
		t.Fatal("seeds 77 and 78 printed the same plan")
	}
}

func TestCampaign_RejectsOutOfRangeFlags(t *testing.T) {
	for _, args := range [][]string{{"-faults", "0"}, {"-faults", "501"}, {"-interval", "10ms"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), append([]string{"campaign", "-plan"}, args...), &out, &errb); code != 2 {
			t.Errorf("campaign %v: exit %d, want 2 (usage); stderr %q", args, code, errb.String())
		}
	}
}
