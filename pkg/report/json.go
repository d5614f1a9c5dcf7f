package report

import (
	"encoding/json"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// jsonResult is the documented JSON form of a Result, used by `prober once
// -json` and the jsonl export. Field names are stable; durations are
// milliseconds, times RFC 3339 with nanoseconds in UTC.
type jsonResult struct {
	ID         string         `json:"id"`
	Journey    string         `json:"journey"`
	Kind       string         `json:"kind"`
	Region     string         `json:"region"`
	Agent      string         `json:"agent"`
	Slot       time.Time      `json:"slot"`
	Trigger    Trigger        `json:"trigger"`
	Start      time.Time      `json:"start"`
	Status     Status         `json:"status"`
	ErrorType  ErrorType      `json:"error_type"`
	Error      string         `json:"error"`
	DurationMS float64        `json:"duration_ms"`
	IntervalMS float64        `json:"interval_ms,omitempty"`
	Components []string       `json:"components,omitempty"`
	Runbook    string         `json:"runbook,omitempty"`
	TraceID    string         `json:"trace_id"`
	Attrs      map[string]any `json:"attrs,omitempty"`
	Steps      []jsonStep     `json:"steps"`
}

type jsonStep struct {
	Name       string         `json:"name"`
	Start      time.Time      `json:"start"`
	Status     Status         `json:"status"`
	DurationMS float64        `json:"duration_ms"`
	ErrorType  ErrorType      `json:"error_type,omitempty"`
	Error      string         `json:"error,omitempty"`
	Attrs      map[string]any `json:"attrs"`
}

// Millis converts a duration to fractional milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func attrMap(attrs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(attrs))
	for _, kv := range attrs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

// MarshalJSON encodes the Result in its documented JSON form.
func (r Result) MarshalJSON() ([]byte, error) {
	j := jsonResult{
		ID: r.ID, Journey: r.Journey, Kind: r.Kind, Region: r.Region, Agent: r.Agent,
		Slot: r.Slot.UTC(), Trigger: r.Trigger, Start: r.Start.UTC(), Status: r.Status,
		ErrorType: r.ErrorType, Error: r.Error, DurationMS: Millis(r.Duration),
		IntervalMS: Millis(r.Interval), Components: r.Components, Runbook: r.Runbook,
		TraceID: r.TraceID, Steps: make([]jsonStep, 0, len(r.Steps)),
	}
	if len(r.Attrs) > 0 {
		j.Attrs = attrMap(r.Attrs)
	}
	for _, s := range r.Steps {
		j.Steps = append(j.Steps, jsonStep{
			Name: s.Name, Start: s.Start.UTC(), Status: s.Status, DurationMS: Millis(s.Duration),
			ErrorType: s.ErrorType, Error: s.Error, Attrs: attrMap(s.Attrs),
		})
	}
	return json.Marshal(j)
}
