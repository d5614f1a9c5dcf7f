package campaign

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Scopes a fault is expected to produce.
const (
	ScopeRegional   = "regional"
	ScopeGlobal     = "global"
	ScopeAgentLocal = "agent-local"
	// ScopePartial is a partial fault (a share of requests fail) in the
	// Expect.Regions: the region is degraded, which is not paged, but a
	// regional page there for the affected journeys is right too (when
	// enough runs fail, region-slots fail twice in a row). Not being paged
	// is no miss; a global page or one for another region is a
	// misclassification.
	ScopePartial = "partial"
	// DetectedNotPaged is the Detected of a partial fault that paged no one.
	DetectedNotPaged = "degraded (not paged)"
	// ScopeNone expects no product page at all (a dead prober, a restarted
	// aggregator without a product fault).
	ScopeNone = "none"
)

// Expect says what a fault should produce.
type Expect struct {
	Scope string
	// Regions is the failing regions of a regional fault.
	Regions []string
	// Journeys are the journeys the fault breaks; product alerts about
	// other journeys are false pages.
	Journeys []string
	// Agent is the suspect prober of an agent-local fault.
	Agent string
}

func (e Expect) String() string {
	switch e.Scope {
	case ScopeRegional:
		return "regional[" + strings.Join(e.Regions, ",") + "]"
	case ScopeAgentLocal:
		return "agent-local[" + e.Agent + "]"
	case ScopePartial:
		return "partial[" + strings.Join(e.Regions, ",") + "]"
	}
	return e.Scope
}

// Outcome is the judgement of one fault.
type Outcome struct {
	Expect Expect
	// Detected is the scope the alerts showed ("" when nothing came).
	Detected string
	// Latency is from injection to the first correctly scoped alert.
	Latency time.Duration
	// OK is true when the expected alert came with the expected scope (or,
	// for ScopeNone, when no product page came).
	OK bool
	// Missed is true when the expected alert never came.
	Missed bool
	// Misclassified is true when an alert came with the wrong scope.
	Misclassified bool
	// FalsePages are product pages the fault does not explain, including
	// a second page for an alert already firing.
	FalsePages []Event
	// Fired are the keys of the alerts this fault explains; they must be
	// resolved after the fault is cleared.
	Fired []string
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func sameSet(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func describe(e Event) string {
	switch e.Alertname() {
	case AlertGlobal:
		return ScopeGlobal
	case AlertRegional:
		return "regional[" + strings.Join(e.Regions(), ",") + "]"
	case AlertProberSuspect:
		return "agent-local[" + e.Labels["agent"] + "]"
	}
	return e.Alertname()
}

// Judge decides the outcome of a fault injected at start from the events
// that arrived in [start, end]. alreadyFiring lists alert keys firing when
// the fault began (a repeat "firing" for them is a second page).
func Judge(exp Expect, start, end time.Time, events []Event, alreadyFiring map[string]bool) Outcome {
	o := Outcome{Expect: exp}
	seen := map[string]string{} // key → labels fingerprint of its last firing
	for k := range alreadyFiring {
		seen[k] = ""
	}
	for _, e := range events {
		if e.At.Before(start) || e.At.After(end) || e.Status != "firing" {
			continue
		}
		fp := fmt.Sprint(e.Labels)
		prev, repeat := seen[e.Key]
		seen[e.Key] = fp
		if repeat && (prev == fp || prev == "") {
			if e.IsProductAlert() {
				o.FalsePages = append(o.FalsePages, e)
			}
			continue
		}
		explained := false
		switch exp.Scope {
		case ScopeRegional, ScopePartial:
			if e.IsProductAlert() && overlaps(e.Journeys(), exp.Journeys) {
				explained = true
				if e.Alertname() == AlertRegional && sameSet(e.Regions(), exp.Regions) {
					if !o.OK {
						o.OK, o.Detected, o.Latency = true, describe(e), e.At.Sub(start)
					}
				} else {
					o.Misclassified = true
					if o.Detected == "" {
						o.Detected = describe(e)
					}
				}
			}
		case ScopeGlobal:
			if e.IsProductAlert() && overlaps(e.Journeys(), exp.Journeys) {
				explained = true
				if e.Alertname() == AlertGlobal {
					if !o.OK {
						o.OK, o.Detected, o.Latency = true, describe(e), e.At.Sub(start)
					}
				} else if o.Detected == "" {
					// A regional alert on the way to global is the same
					// incident escalating; Alertmanager inhibits it.
					o.Detected = describe(e)
				}
			}
		case ScopeAgentLocal:
			if e.Alertname() == AlertProberSuspect && e.Labels["agent"] == exp.Agent {
				explained = true
				if !o.OK {
					o.OK, o.Detected, o.Latency = true, describe(e), e.At.Sub(start)
				}
			}
		}
		if explained {
			o.Fired = append(o.Fired, e.Key)
		} else if e.IsProductAlert() {
			o.FalsePages = append(o.FalsePages, e)
		}
	}
	switch exp.Scope {
	case ScopeNone:
		o.OK = len(o.FalsePages) == 0
		o.Detected = ScopeNone
	case ScopePartial:
		if !o.OK && o.Detected == "" {
			o.OK, o.Detected = true, DetectedNotPaged
		}
		if !o.OK {
			o.Misclassified = true
		}
	default:
		if !o.OK && o.Detected == "" {
			o.Missed = true
		}
		if !o.OK && o.Detected != "" {
			o.Misclassified = true
		}
	}
	return o
}

// Unresolved returns the keys among fired that have no "resolved" event
// at or after start.
func Unresolved(fired []string, start time.Time, events []Event) []string {
	resolved := map[string]bool{}
	for _, e := range events {
		if e.Status == "resolved" && !e.At.Before(start) {
			resolved[e.Key] = true
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, k := range fired {
		if !resolved[k] && !seen[k] {
			out = append(out, k)
			seen[k] = true
		}
	}
	return out
}
