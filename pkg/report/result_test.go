package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

func TestResultID_DeterministicAndDistinct(t *testing.T) {
	slot := time.Date(2026, 11, 26, 10, 0, 30, 0, time.UTC)
	a := ResultID("clone", "eu", "eu-1", slot, TriggerSchedule)
	if a != ResultID("clone", "eu", "eu-1", slot.In(time.FixedZone("x", 3600)), TriggerSchedule) {
		t.Fatal("same run, different zone: IDs differ")
	}
	if len(a) != 64 {
		t.Fatalf("ID %q is not 64 hex digits", a)
	}
	others := []string{
		ResultID("clone2", "eu", "eu-1", slot, TriggerSchedule),
		ResultID("clone", "us", "eu-1", slot, TriggerSchedule),
		ResultID("clone", "eu", "eu-2", slot, TriggerSchedule),
		ResultID("clone", "eu", "eu-1", slot.Add(time.Nanosecond), TriggerSchedule),
		ResultID("clone", "eu", "eu-1", slot, TriggerConfirm),
		// Field boundaries matter: "ab"+"c" must not equal "a"+"bc".
		ResultID("clon", "eeu", "eu-1", slot, TriggerSchedule),
	}
	for i, o := range others {
		if o == a {
			t.Errorf("case %d: ID collides with the base run", i)
		}
	}
}

func TestRedactor_MasksSecretsAndURLCredentials(t *testing.T) {
	const canary = "canary-S3cr3t/+value"
	r := NewRedactor(canary)
	cases := map[string]string{
		"token " + canary + " leaked":                      "token [REDACTED] leaked",
		"https://user:pw@example.com/repo.git":             "https://[REDACTED]@example.com/repo.git",
		"GET https://x.test/a?access_token=abc&b=1 failed": "GET https://x.test/a?access_token=[REDACTED]&b=1 failed",
		"escaped canary-S3cr3t%2F%2Bvalue here":            "escaped [REDACTED] here",
		"nothing to hide":                                  "nothing to hide",
		"ssh://git@bitbucket.org/ws/repo.git":              "ssh://[REDACTED]@bitbucket.org/ws/repo.git",
	}
	for in, want := range cases {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	res := &Result{
		Journey: "j", Error: "auth failed for " + canary,
		Attrs: []attribute.KeyValue{attribute.String("url.full", "https://u:"+canary+"@h/x")},
		Steps: []Step{{Name: "s", Error: canary, Attrs: []attribute.KeyValue{
			attribute.StringSlice("list", []string{canary}), attribute.Int("n", 3)}}},
	}
	r.Result(res)
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "canary") {
		t.Fatalf("canary survived redaction: %s", b)
	}
	if !strings.Contains(string(b), `"n":3`) {
		t.Fatalf("non-string attribute lost: %s", b)
	}
}

func TestResult_JSONHasDocumentedFields(t *testing.T) {
	res := Result{ID: "x", Journey: "j", Kind: "http", Status: StatusFail, ErrorType: ErrTimeout,
		Duration: 1500 * time.Millisecond, Steps: []Step{{Name: "get", Status: StatusFail, Duration: time.Second}}}
	b, _ := json.Marshal(res)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "journey", "kind", "region", "agent", "slot", "trigger", "status",
		"error_type", "error", "duration_ms", "trace_id", "steps"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if m["duration_ms"].(float64) != 1500 {
		t.Errorf("duration_ms = %v", m["duration_ms"])
	}
	step := m["steps"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "status", "duration_ms", "attrs"} {
		if _, ok := step[k]; !ok {
			t.Errorf("step JSON lacks %q: %s", k, b)
		}
	}
}

func TestErrorType_ClosedSet(t *testing.T) {
	if len(ErrorTypes) != 15 {
		t.Fatalf("DESIGN.md names 15 error types, have %d", len(ErrorTypes))
	}
	if ErrorType("bogus").Valid() || !ErrorType("").Valid() || !ErrStaleRead.Valid() {
		t.Fatal("Valid() disagrees with the closed set")
	}
}
