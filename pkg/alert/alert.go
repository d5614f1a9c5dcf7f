// Package alert owns what Vantage tells people: the alert model built from
// verdict conditions, the notification pipeline (dedup, inhibit, retry,
// send) with one bounded queue and goroutine per sink, the sinks
// (Alertmanager API v2, PagerDuty Events API v2, Slack, a JSON webhook), the
// durable state that survives a restart (bbolt), and Engine, the façade the
// aggregator calls. Decisions stay in pkg/verdict; this package does the I/O.
package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/verdict"
)

// Alert is one notification subject, firing or resolved.
type Alert struct {
	// Key is deterministic (alert name and incident, region or agent): the
	// same condition after a restart has the same Key, and sinks derive their
	// deduplication keys from it.
	Key         string            `json:"key"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"starts_at"`
	// EndsAt is zero while firing and the resolution time once resolved.
	EndsAt time.Time `json:"ends_at,omitempty"`
}

// Firing reports whether the alert is not resolved.
func (a Alert) Firing() bool { return a.EndsAt.IsZero() }

// Status is "firing" or "resolved".
func (a Alert) Status() string {
	if a.Firing() {
		return "firing"
	}
	return "resolved"
}

// Fingerprint identifies what a sink has been told about the alert: its
// key, status and labels. Annotation changes (a newer sample error) are not
// a new notification.
func (a Alert) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte(a.Key + "\x00" + a.Status()))
	for _, k := range sortedLabelNames(a.Labels) {
		h.Write([]byte("\x00" + k + "=" + a.Labels[k]))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// DedupKey is the deterministic key PagerDuty and webhooks use.
func (a Alert) DedupKey() string {
	sum := sha256.Sum256([]byte(a.Key))
	return "vantage-" + hex.EncodeToString(sum[:16])
}

func sortedLabelNames(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Annotation names.
const (
	AnnSummary          = "summary"
	AnnFirstFailingSlot = "first_failing_slot"
	AnnFailingStep      = "failing_step"
	AnnSampleError      = "sample_error"
	AnnTraceID          = "trace_id"
	AnnRunbook          = "runbook_url"
	// AnnJourneys lists the failing journeys of a suspect prober.
	AnnJourneys = "journeys"
)

// maxAnnotation bounds an annotation value (an error message can be long).
const maxAnnotation = 512

// FromCondition builds the alert for a verdict condition. Every string is
// redacted with red, and relative runbook paths are joined to runbookBase.
func FromCondition(c verdict.Condition, red *report.Redactor, runbookBase string) Alert {
	if red == nil {
		red = report.NewRedactor()
	}
	labels := map[string]string{
		"alertname":  c.Alert,
		"journey":    strings.Join(c.Journeys, ","),
		"kind":       strings.Join(c.Kinds, ","),
		"scope":      string(c.Scope),
		"regions":    strings.Join(c.Regions, ","),
		"components": strings.Join(c.Components, ","),
		"severity":   c.Severity,
	}
	if c.Agent != "" {
		labels["agent"] = c.Agent
	}
	if c.Alert == verdict.AlertProberSuspect {
		// A suspect prober is one alert per agent; which of its journeys
		// fail changes from slot to slot and goes in an annotation, so that
		// it does not re-notify at every change.
		delete(labels, "journey")
		delete(labels, "kind")
		delete(labels, "components")
	}
	if c.Incident != "" {
		labels["incident"] = c.Incident
	}
	for k, v := range labels {
		if v == "" {
			delete(labels, k) // Alertmanager treats empty labels as absent anyway
		}
	}
	ann := map[string]string{AnnSummary: c.Summary}
	if !c.FirstFailingSlot.IsZero() {
		ann[AnnFirstFailingSlot] = c.FirstFailingSlot.UTC().Format(time.RFC3339)
	}
	put := func(k, v string) {
		if v == "" {
			return
		}
		if len(v) > maxAnnotation {
			v = v[:maxAnnotation] + "…"
		}
		ann[k] = v
	}
	if c.Alert == verdict.AlertProberSuspect {
		put(AnnJourneys, strings.Join(c.Journeys, ","))
	}
	put(AnnFailingStep, c.FailingStep)
	put(AnnSampleError, c.SampleError)
	put(AnnTraceID, c.TraceID)
	rb := c.Runbook
	if rb != "" && runbookBase != "" && !strings.Contains(rb, "://") {
		rb = strings.TrimRight(runbookBase, "/") + "/" + strings.TrimLeft(rb, "/")
	}
	put(AnnRunbook, rb)
	for k, v := range ann {
		ann[k] = red.String(v)
	}
	for k, v := range labels {
		labels[k] = red.String(v)
	}
	return Alert{Key: c.Key, Labels: labels, Annotations: ann, StartsAt: c.Since}
}

// Severity returns the severity label.
func (a Alert) Severity() string { return a.Labels["severity"] }
