// Package report owns the Result model: what one run of a journey produced,
// its deterministic ID, the closed set of error classes, redaction of secrets
// from every string a Result can hold, and (in otlp.go) its encoding as an
// OTLP log record. It does no I/O.
package report

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// Status says who failed: nobody, the product, or the prober itself.
type Status string

const (
	// StatusPass means the journey succeeded.
	StatusPass Status = "pass"
	// StatusFail means the product failed the journey; it counts against the product.
	StatusFail Status = "fail"
	// StatusProbeError means the prober could not judge the product (bad config,
	// local disk, its own network). It never counts against the product.
	StatusProbeError Status = "probe_error"
)

// Valid reports whether s is one of the three statuses.
func (s Status) Valid() bool {
	return s == StatusPass || s == StatusFail || s == StatusProbeError
}

// ErrorType is the closed set of failure classes. The empty value means no error.
type ErrorType string

// The error classes. Keep ErrorTypes in sync.
const (
	ErrDNS             ErrorType = "dns"
	ErrConnect         ErrorType = "connect"
	ErrTLS             ErrorType = "tls"
	ErrTimeout         ErrorType = "timeout"
	ErrAuth            ErrorType = "auth"
	ErrHTTP4xx         ErrorType = "http_4xx"
	ErrHTTP5xx         ErrorType = "http_5xx"
	ErrRateLimited     ErrorType = "rate_limited"
	ErrProtocol        ErrorType = "protocol"
	ErrAssertion       ErrorType = "assertion"
	ErrStaleRead       ErrorType = "stale_read"
	ErrPushRejected    ErrorType = "push_rejected"
	ErrPipelineFailed  ErrorType = "pipeline_failed"
	ErrPipelineTimeout ErrorType = "pipeline_timeout"
	ErrProbeInternal   ErrorType = "probe_internal"
)

// ErrorTypes lists every valid ErrorType, in a stable order.
var ErrorTypes = []ErrorType{
	ErrDNS, ErrConnect, ErrTLS, ErrTimeout, ErrAuth, ErrHTTP4xx, ErrHTTP5xx,
	ErrRateLimited, ErrProtocol, ErrAssertion, ErrStaleRead, ErrPushRejected,
	ErrPipelineFailed, ErrPipelineTimeout, ErrProbeInternal,
}

// Valid reports whether t is empty or one of ErrorTypes.
func (t ErrorType) Valid() bool {
	if t == "" {
		return true
	}
	for _, v := range ErrorTypes {
		if v == t {
			return true
		}
	}
	return false
}

// Trigger says why a run happened.
type Trigger string

const (
	// TriggerSchedule is a run of the journey's own schedule.
	TriggerSchedule Trigger = "schedule"
	// TriggerConfirm is a run asked for by another agent whose scheduled run failed.
	TriggerConfirm Trigger = "confirm"
	// TriggerManual is a run started by hand (`prober once`).
	TriggerManual Trigger = "manual"
)

// Valid reports whether t is one of the three triggers.
func (t Trigger) Valid() bool {
	return t == TriggerSchedule || t == TriggerConfirm || t == TriggerManual
}

// Step is one timed part of a journey (dns, clone, push, verify, …).
type Step struct {
	Name      string
	Start     time.Time
	Duration  time.Duration
	Status    Status
	ErrorType ErrorType
	Error     string
	// Attrs carry what the step measured: bytes, objects, HTTP status, phases.
	// Keys follow OpenTelemetry semantic conventions where one exists.
	Attrs []attribute.KeyValue
}

// Result is what one run of one journey produced. Every run yields exactly one.
type Result struct {
	ID      string
	Journey string
	Kind    string
	Region  string
	Agent   string
	// Slot is the scheduled instant this run belongs to; confirmation runs
	// carry the slot they confirm.
	Slot    time.Time
	Trigger Trigger
	// Interval is the journey's schedule interval; the aggregator uses it to
	// judge missing data without reading the agents' config.
	Interval time.Duration
	// Components name the product parts the journey exercises (e.g.
	// "https-edge"); journeys sharing one are grouped into one incident.
	Components []string
	// Runbook is the journey's runbook URL, copied into alerts.
	Runbook   string
	Start     time.Time
	Duration  time.Duration
	Status    Status
	ErrorType ErrorType
	Error     string
	Steps     []Step
	// TraceID is the hex trace ID of the run's trace (32 hex digits).
	TraceID string
	// Attrs are journey-level attributes (url.full, server.address, vcs.*).
	Attrs []attribute.KeyValue
}

// ResultID is the deterministic ID of a run: hex SHA-256 over journey,
// region, agent, slot (Unix ns) and trigger. A re-sent run has the same ID.
func ResultID(journey, region, agent string, slot time.Time, trigger Trigger) string {
	h := sha256.New()
	for _, s := range []string{journey, region, agent} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var ns [8]byte
	binary.BigEndian.PutUint64(ns[:], uint64(slot.UnixNano()))
	h.Write(ns[:])
	h.Write([]byte(trigger))
	return hex.EncodeToString(h.Sum(nil))
}

// FailingStep returns the first step that did not pass, or nil.
func (r *Result) FailingStep() *Step {
	for i := range r.Steps {
		if r.Steps[i].Status != StatusPass {
			return &r.Steps[i]
		}
	}
	return nil
}
